//! Carrying out the model commands: training, prediction, activation capture, checkpoints and
//! metrics requests from the Training, Activations and Metrics tabs.

use super::{Command, Notice, Studio};
use crate::model::metrics_panel::MetricsRequest;
use crate::model::panels::{ModelCommand, checkpoint_folder};
use crate::model::training::{list_runs, task_folder};
use engine::metrics::{report_csv, report_json};
use std::path::PathBuf;

impl Studio {
    /// Carries out a model command.
    pub fn apply_model(&mut self, command: ModelCommand) {
        let result = self.try_apply_model(command);
        if let Err(message) = result {
            self.notice = Some(Notice::Error(message));
        }
    }

    fn try_apply_model(&mut self, command: ModelCommand) -> Result<(), String> {
        let ctx = self.ctx.clone();
        match command {
            ModelCommand::SetChoices(choices) => self.jobs.choices = choices,
            ModelCommand::StartTraining => {
                let source = self.source.clone().ok_or("open a task first")?;
                self.jobs.start_training(&ctx, &source)?;
            }
            ModelCommand::ResumeTraining => self.jobs.resume_training(&ctx)?,
            ModelCommand::Stop => self.jobs.stop(),
            ModelCommand::PredictAll => {
                let source = self.source.clone().ok_or("open a task first")?;
                self.jobs.predict(&ctx, &source)?;
            }
            ModelCommand::Capture => {
                let view = self.view.as_ref().ok_or("open a case first")?;
                let scan = self
                    .source
                    .as_ref()
                    .and_then(|s| s.cases.iter().find(|c| c.id == view.case.id))
                    .map(|c| c.image.clone())
                    .ok_or("the case's scan is not known")?;
                let activations = &mut self.jobs.activations;
                if activations.models[0].is_none() {
                    activations.models[0] = self.jobs.checkpoint.clone();
                }
                let (checkpoint, scan, attention, reduction) = activations
                    .start_capture(&scan)
                    .ok_or("choose a model first (train one, or Choose… a checkpoint folder)")?;
                self.jobs.capture(&ctx, checkpoint, scan, attention, reduction)?;
            }
            ModelCommand::PickCheckpoint(slot) => {
                let start = self.source.as_ref().and_then(|s| task_folder(s).ok());
                self.dialog(crate::shell::dialogs::DialogRequest::Checkpoint { start, slot });
            }
            ModelCommand::UseCheckpoint(slot, path) => {
                let path = path.map(checkpoint_folder).transpose()?;
                if slot == 0 {
                    self.jobs.checkpoint = path.clone();
                }
                if let Some(model) = self.jobs.activations.models.get_mut(slot) {
                    *model = path;
                }
            }
            ModelCommand::Metrics(MetricsRequest::ComputeAll) => {
                let source = self.source.clone().ok_or("open a task first")?;
                let waker = ctx.clone();
                self.metrics.compute_all(&source, move || waker.request_repaint());
            }
            ModelCommand::Metrics(MetricsRequest::ExportCsv) => {
                let name = self.source.as_ref().map_or("metrics".into(), |s| s.name.clone());
                self.dialog(crate::shell::dialogs::DialogRequest::ExportCsv {
                    start: self.settings.export_folder.clone(),
                    file_name: format!("{name}_metrics.csv"),
                });
            }
            ModelCommand::Metrics(MetricsRequest::ShowCase(id)) => {
                let index = self
                    .source
                    .as_ref()
                    .and_then(|s| s.cases.iter().position(|c| c.id == id));
                if let Some(index) = index {
                    self.apply(Command::SelectCase(index));
                }
            }
            ModelCommand::ExportMetricsCsv(path) => {
                let names = self
                    .source
                    .as_ref()
                    .map(|s| s.label_names.clone())
                    .unwrap_or_default();
                let rows: Vec<(String, &engine::metrics::CaseMetrics)> = if self.metrics.all.is_empty() {
                    let view = self.view.as_ref().ok_or("no case open")?;
                    let metrics = self
                        .metrics
                        .current_for(view)
                        .ok_or("the metrics of this case are still being computed")?;
                    vec![(view.case.id.clone(), metrics)]
                } else {
                    self.metrics
                        .all
                        .iter()
                        .filter_map(|(id, r)| Some((id.clone(), r.as_ref().ok()?)))
                        .collect()
                };
                // A `.json` path gets the JSON report, anything else the CSV.
                let text = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
                    report_json(&rows).map_err(|e| format!("cannot format the metrics as JSON: {e}"))?
                } else {
                    report_csv(&rows, &names)
                };
                let write = |path: &std::path::Path, text: &str| {
                    engine::volume::write_atomically(path, |w| std::io::Write::write_all(w, text.as_bytes()))
                        .map_err(|e| format!("{}: {e}", path.display()))
                };
                write(&path, &text)?;
                self.settings.export_folder = path.parent().map(PathBuf::from);
                let mut written = format!("metrics written to {}", path.display());
                // The label statistics of the case on screen go beside them.
                if let Some(view) = self.view.as_ref()
                    && let Some(layers) = self.metrics.statistics_for(view)
                {
                    let rows: Vec<(String, String, &[engine::metrics::LabelStatistics])> = layers
                        .iter()
                        .map(|l| (view.case.id.clone(), l.layer.to_string(), l.labels.as_slice()))
                        .collect();
                    let stem = path
                        .file_stem()
                        .map_or("metrics".into(), |s| s.to_string_lossy().into_owned());
                    let stats_path = path.with_file_name(format!("{stem}_label_statistics.csv"));
                    write(&stats_path, &engine::metrics::label_statistics_csv(&rows, &names))?;
                    written.push_str(&format!(
                        ", label statistics of {} to {}",
                        view.case.id,
                        stats_path.display()
                    ));
                }
                self.notice = Some(Notice::Info(written));
            }
        }
        Ok(())
    }

    /// Takes note of a newly opened task: its runs, and the newest one as the current model.
    pub(crate) fn task_opened(&mut self) {
        let runs = self
            .source
            .as_ref()
            .and_then(|s| task_folder(s).ok())
            .map(|task| list_runs(&task))
            .unwrap_or_default();
        self.jobs.checkpoint = runs.first().map(|r| r.checkpoint.clone());
        self.jobs.activations = Default::default();
        self.jobs.outcomes.clear();
        self.jobs.runs = runs;
        self.metrics = Default::default();
    }
}
