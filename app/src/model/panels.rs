//! The Training tab (the Activations tab is in `activations_panel`) and the model commands the
//! tabs send: start, stop and resume training (then predict every case), fine-tune on the
//! corrected cases and re-predict the others, choose the current model, capture activation maps,
//! compute and export metrics.

use crate::model::metrics_panel::MetricsRequest;
use crate::model::presets::PRESETS;
use crate::model::training::{CaseChoice, DeviceRequest, Job, ModelJobs, RunState, TrainingChoices};
use eframe::egui;
use std::path::PathBuf;

/// A model-related command from the tabs.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelCommand {
    /// Start a run with the panel's choices.
    StartTraining,
    /// Continue the stopped run on screen.
    ResumeTraining,
    /// Stop the worker's job (training stops after the current step).
    Stop,
    /// Predict every case with the current model.
    PredictAll,
    /// Capture activation maps of the case on screen with models A and B.
    Capture,
    /// Show the folder dialog for model slot 0 (current / A) or 1 (B).
    PickCheckpoint(usize),
    /// Use this checkpoint folder in slot 0 (current / A) or 1 (B); `None` clears slot B.
    UseCheckpoint(usize, Option<PathBuf>),
    /// A request from the metrics tab.
    Metrics(MetricsRequest),
    /// New choices from the Training tab (preset, cases, fold, epochs, device, fine-tune).
    SetChoices(TrainingChoices),
    /// Write the metrics CSV here.
    ExportMetricsCsv(PathBuf),
}

/// A checkpoint folder as chosen: a run folder means its `best/`.
pub fn checkpoint_folder(path: PathBuf) -> Result<PathBuf, String> {
    for candidate in [path.clone(), path.join("best")] {
        if candidate.join("checkpoint.json").is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{}: not a checkpoint (no checkpoint.json); choose a run's best/ folder",
        path.display()
    ))
}

fn uncertainty_name(choice: Option<engine::infer::UncertaintyMethod>) -> &'static str {
    choice.map_or("none", engine::infer::UncertaintyMethod::label)
}

fn device_name(device: DeviceRequest) -> &'static str {
    match device {
        DeviceRequest::Auto => "Auto (CUDA, then wgpu, else CPU)",
        DeviceRequest::Cpu => "CPU",
        DeviceRequest::Cuda => "CUDA GPU",
        DeviceRequest::Wgpu => "wgpu GPU (AMD, Intel, Apple)",
    }
}

/// The model chosen for `slot` (0: current / A, 1: B), with the runs to pick from.
pub(crate) fn model_picker(
    ui: &mut egui::Ui,
    jobs: &ModelJobs,
    slot: usize,
    current: Option<&PathBuf>,
    commands: &mut Vec<ModelCommand>,
) {
    let name = |path: &PathBuf| {
        path.parent().and_then(|p| p.file_name()).map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let shown = current.map_or_else(|| "(none)".to_string(), name);
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt(("model", slot))
            .selected_text(shown)
            .width(170.0)
            .show_ui(ui, |ui| {
                if slot == 1 && ui.selectable_label(current.is_none(), "(none)").clicked() {
                    commands.push(ModelCommand::UseCheckpoint(slot, None));
                }
                for run in &jobs.runs {
                    let selected = current == Some(&run.checkpoint);
                    if ui.selectable_label(selected, &run.name).clicked() {
                        commands.push(ModelCommand::UseCheckpoint(slot, Some(run.checkpoint.clone())));
                    }
                }
            });
        if ui
            .button("Choose…")
            .on_hover_text("A checkpoint folder (a run's best/)")
            .clicked()
        {
            commands.push(ModelCommand::PickCheckpoint(slot));
        }
    });
}

/// The Training tab.
pub fn training_panel_ui(
    ui: &mut egui::Ui,
    jobs: &ModelJobs,
    corrected: usize,
    commands: &mut Vec<ModelCommand>,
) {
    let busy = jobs.job;
    ui.heading("Model");
    let current = jobs.checkpoint.clone();
    model_picker(ui, jobs, 0, current.as_ref(), commands);
    if let Some(reason) = &jobs.device_reason {
        ui.weak(reason);
    }
    ui.separator();
    ui.heading("Train");
    // The tab edits a copy; a change reaches the app as one command.
    let mut edited = jobs.choices.clone();
    let choices = &mut edited;
    let proposed = (choices.preset, choices.fine_tune);
    ui.add_enabled_ui(busy.is_none(), |ui| {
        egui::Grid::new("training-choices").num_columns(2).show(ui, |ui| {
            ui.label("Preset");
            egui::ComboBox::from_id_salt("preset")
                .selected_text(choices.preset)
                .width(170.0)
                .show_ui(ui, |ui| {
                    for preset in PRESETS {
                        ui.selectable_value(&mut choices.preset, preset.name, preset.name)
                            .on_hover_text(preset.description);
                    }
                });
            ui.end_row();
            ui.label("Cases");
            ui.vertical(|ui| {
                ui.radio_value(&mut choices.cases, CaseChoice::Fold, "all of the fold");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut choices.cases, CaseChoice::FewShot, "few-shot");
                    ui.add(
                        egui::DragValue::new(&mut choices.few_shot)
                            .range(1..=1000)
                            .suffix(" cases"),
                    );
                });
                ui.radio_value(
                    &mut choices.cases,
                    CaseChoice::Corrected,
                    format!("marked corrected ({corrected})"),
                );
            });
            ui.end_row();
            ui.label("Fold");
            ui.add(egui::DragValue::new(&mut choices.fold).range(0..=4))
                .on_hover_text("Cross-validation fold (5 folds): its validation cases are held out");
            ui.end_row();
            ui.label("Epochs");
            ui.add(egui::DragValue::new(&mut choices.epochs).range(1..=1000));
            ui.end_row();
            ui.label("Device");
            egui::ComboBox::from_id_salt("device")
                .selected_text(device_name(choices.device))
                .show_ui(ui, |ui| {
                    for device in [
                        DeviceRequest::Auto,
                        DeviceRequest::Cpu,
                        DeviceRequest::Cuda,
                        DeviceRequest::Wgpu,
                    ] {
                        ui.selectable_value(&mut choices.device, device, device_name(device));
                    }
                });
            ui.end_row();
            ui.label("Frozen block");
            egui::ComboBox::from_id_salt("dtype")
                .selected_text(choices.dtype.as_str())
                .show_ui(ui, |ui| {
                    use engine::device::Precision;
                    ui.selectable_value(&mut choices.dtype, Precision::F32, "f32");
                    ui.selectable_value(&mut choices.dtype, Precision::Bf16, "bf16")
                        .on_hover_text("The frozen block's weights and activations in bfloat16: half its memory, tensor cores on a GPU; trainable weights, gradients and Adam stay f32");
                });
            ui.end_row();
            ui.label("Uncertainty");
            egui::ComboBox::from_id_salt("uncertainty")
                .selected_text(uncertainty_name(choices.uncertainty))
                .show_ui(ui, |ui| {
                    let methods = engine::infer::UncertaintyMethod::ALL.map(Some);
                    for choice in std::iter::once(None).chain(methods) {
                        ui.selectable_value(&mut choices.uncertainty, choice, uncertainty_name(choice));
                    }
                })
                .response
                .on_hover_text(
                    "Several predictions per case, under test-time mirroring or Monte-Carlo dropout (a \
                     model trained with dropout only): each case gets an uncertainty score (the case \
                     list sorts by it) and a map (a heat layer), at 4 or 8 times the prediction time",
                );
            ui.end_row();
        });
        ui.checkbox(&mut choices.fine_tune, "Start from the current model (fine-tune)")
            .on_hover_text("Fewer epochs at a lower learning rate, from the model above");
    });
    if (choices.preset, choices.fine_tune) != proposed {
        // A new preset or mode proposes its own epochs; the user may still change them.
        choices.epochs = crate::model::training::default_epochs(choices.preset, choices.fine_tune);
    }
    if edited != jobs.choices {
        commands.push(ModelCommand::SetChoices(edited));
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(busy.is_none(), egui::Button::new("Start training"))
            .clicked()
        {
            commands.push(ModelCommand::StartTraining);
        }
        let stoppable = busy.is_some_and(|j| j != Job::Capturing);
        if ui.add_enabled(stoppable, egui::Button::new("Stop")).clicked() {
            commands.push(ModelCommand::Stop);
        }
        let resumable = busy.is_none()
            && jobs
                .run
                .as_ref()
                .is_some_and(|r| matches!(r.state, RunState::Stopped | RunState::Failed(_)));
        if ui
            .add_enabled(resumable, egui::Button::new("Resume"))
            .on_hover_text("Continue the stopped run from its last checkpoint")
            .clicked()
        {
            commands.push(ModelCommand::ResumeTraining);
        }
        let can_predict = busy.is_none() && jobs.checkpoint.is_some();
        if ui
            .add_enabled(can_predict, egui::Button::new("Predict all"))
            .on_hover_text("Predict every case with the current model (into .medvisionllama/predictions/)")
            .clicked()
        {
            commands.push(ModelCommand::PredictAll);
        }
    });
    run_ui(ui, jobs);
    outcomes_ui(ui, jobs, commands);
}

fn format_eta(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    if seconds >= 3600 {
        format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60)
    } else {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    }
}

fn run_ui(ui: &mut egui::Ui, jobs: &ModelJobs) {
    if let Some(Job::Predicting { done, total }) = jobs.job {
        let fraction = if total > 0 {
            done as f32 / total as f32
        } else {
            0.0
        };
        ui.add(egui::ProgressBar::new(fraction).text(format!("predicting {done} / {total}")));
    }
    let Some(run) = &jobs.run else { return };
    ui.separator();
    let name = run
        .options
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ui.strong(name);
    let (train_cases, val_cases) = run.cases;
    if train_cases > 0 {
        ui.weak(format!(
            "{train_cases} training / {val_cases} validation cases; LLM block: {}",
            run.llm_weights
        ));
    }
    match &run.state {
        RunState::Running => {
            let text = match (run.position, run.eta_secs) {
                (Some((epoch, step, steps)), Some(eta)) => format!(
                    "epoch {epoch}/{} · step {step}/{steps} · {} left",
                    run.epochs.1,
                    format_eta(eta)
                ),
                _ => "preparing the data…".into(),
            };
            ui.add(egui::ProgressBar::new(run.fraction()).text(text));
        }
        RunState::Stopped => {
            ui.label("Stopped: Resume continues from the last checkpoint.");
        }
        RunState::Finished => {
            ui.label("Finished.");
        }
        RunState::Failed(message) => {
            ui.colored_label(ui.visuals().error_fg_color, message);
        }
    }
    for line in &run.rollbacks {
        ui.colored_label(ui.visuals().warn_fg_color, line);
    }
    if let Some(best) = run
        .history
        .iter()
        .max_by(|a, b| a.val_dice.total_cmp(&b.val_dice))
    {
        let classes: Vec<String> = best
            .val_dice_per_class
            .iter()
            .map(|d| format!("{d:.3}"))
            .collect();
        ui.label(format!(
            "best validation Dice {:.3} (epoch {}; per label {})",
            best.val_dice,
            best.epoch,
            classes.join(" / ")
        ));
    }
    let losses: Vec<[f64; 2]> = run.step_losses.clone();
    let epoch_losses: Vec<[f64; 2]> = run
        .history
        .iter()
        .map(|p| [p.epoch as f64, p.train_loss])
        .collect();
    egui_plot::Plot::new("loss-plot")
        .height(130.0)
        .legend(egui_plot::Legend::default())
        .x_axis_label("epoch")
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(egui_plot::Line::new("step loss", losses).width(1.0));
            plot.line(egui_plot::Line::new("epoch loss", epoch_losses).width(2.0));
        });
    let dice: Vec<[f64; 2]> = run.history.iter().map(|p| [p.epoch as f64, p.val_dice]).collect();
    egui_plot::Plot::new("dice-plot")
        .height(110.0)
        .legend(egui_plot::Legend::default())
        .x_axis_label("epoch")
        .allow_scroll(false)
        .include_y(0.0)
        .include_y(1.0)
        .show(ui, |plot| {
            plot.line(egui_plot::Line::new("validation Dice", dice).width(2.0));
        });
}

fn outcomes_ui(ui: &mut egui::Ui, jobs: &ModelJobs, commands: &mut Vec<ModelCommand>) {
    if jobs.outcomes.is_empty() {
        return;
    }
    ui.separator();
    ui.heading("Dice before and after");
    let format = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"));
    // After a fine-tune on corrected cases, those (scored on their corrected labels, which the
    // model was trained on) and the others are averaged apart.
    let any_trained_on = jobs.outcomes.iter().any(|o| o.trained_on);
    for trained_on in [true, false] {
        let pairs: Vec<(f64, f64)> = jobs
            .outcomes
            .iter()
            .filter(|o| o.trained_on == trained_on)
            .filter_map(|o| Some((o.before?, o.after?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let n = pairs.len() as f64;
        let before = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let after = pairs.iter().map(|p| p.1).sum::<f64>() / n;
        let which = match (any_trained_on, trained_on) {
            (true, true) => "corrected cases (trained on)",
            (true, false) => "other cases",
            _ => "cases",
        };
        ui.strong(format!(
            "mean over {} {which}: {before:.3} before, {after:.3} after",
            pairs.len()
        ));
    }
    // A failure of the whole job (no case named) in full, wrapped to the panel's width; a case's
    // failure in the grid below, its message on hover (a grid cell does not wrap, and a long
    // line would widen the panel past the window).
    let error_colour = ui.visuals().error_fg_color;
    for error in jobs
        .outcomes
        .iter()
        .filter(|o| o.id.is_empty())
        .filter_map(|o| o.error.as_ref())
    {
        ui.add(egui::Label::new(egui::RichText::new(error).color(error_colour)).wrap());
    }
    egui::ScrollArea::vertical()
        .id_salt("outcomes")
        .max_height(220.0)
        .show(ui, |ui| {
            egui::Grid::new("outcomes-grid")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    ui.strong("Case");
                    ui.strong("before");
                    ui.strong("after");
                    ui.label("");
                    ui.end_row();
                    for outcome in &jobs.outcomes {
                        if let Some(error) = &outcome.error {
                            if !outcome.id.is_empty() {
                                ui.label(&outcome.id);
                                ui.colored_label(error_colour, "failed").on_hover_text(error);
                                ui.end_row();
                            }
                            continue;
                        }
                        if ui.link(&outcome.id).clicked() {
                            commands.push(ModelCommand::Metrics(MetricsRequest::ShowCase(
                                outcome.id.clone(),
                            )));
                        }
                        ui.monospace(format(outcome.before));
                        ui.monospace(format(outcome.after));
                        if outcome.trained_on {
                            ui.weak("corrected, trained on");
                        } else {
                            ui.label("");
                        }
                        ui.end_row();
                    }
                });
        });
}
