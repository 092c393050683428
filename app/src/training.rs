//! Training, prediction and activation capture from the app, on the engine's worker thread.
//! [`ModelJobs`] owns the worker (started on first use, on the chosen device), sends it one job
//! at a time and turns its events into state the panels draw: the run's progress and curves,
//! the current checkpoint, the predictions written after a run with each case's metrics before
//! and after, and captured activation maps.
//!
//! Runs go to `<task>/.medvisionllama/runs/<preset>-<cases>-NNN`; predictions to
//! `<task>/.medvisionllama/predictions/<case>.nii.gz`, where the case list looks first.

use crate::activations::ActivationsPanel;
use crate::label_io::APP_FOLDER;
use crate::presets::Preset;
use crate::source::Source;
use engine::device::{DeviceKind, choose_device};
use engine::metrics::CaseMetrics;
use engine::train::{Subset, TrainEvent, TrainOptions};
use engine::worker::{CaseJob, Command as WorkerCommand, Event, Worker};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Folder inside the app folder that the app's predictions are written to (the first the case
/// list looks in); predictions the user put in `labelsPred/` are never overwritten.
pub const PREDICTION_FOLDER: &str = "predictions";
/// Folder inside the app folder that runs are written to.
pub const RUNS_FOLDER: &str = "runs";

/// Which cases a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseChoice {
    /// Every training case of the fold (validated on the fold's validation cases).
    Fold,
    /// The first N of the fold's training cases in its seeded order (nested few-shot subsets).
    FewShot,
    /// The cases with a corrected label (`labelsCorrected/`), trained on those labels.
    Corrected,
}

/// The device a worker is asked to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    /// CUDA when a driver, NVRTC and headers are found, then a hardware wgpu adapter, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first NVIDIA GPU (refused with the reason when there is none).
    Cuda,
    /// An AMD, Intel or Apple GPU through wgpu (refused with the reason when there is none).
    Wgpu,
}

impl DeviceRequest {
    fn kind(self) -> Option<DeviceKind> {
        match self {
            DeviceRequest::Auto => None,
            DeviceRequest::Cpu => Some(DeviceKind::Cpu),
            DeviceRequest::Cuda => Some(DeviceKind::Cuda),
            DeviceRequest::Wgpu => Some(DeviceKind::Wgpu),
        }
    }
}

/// How the run on screen stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// Preparing data or training.
    Running,
    /// Stopped by the user; can be resumed.
    Stopped,
    /// Every epoch done.
    Finished,
    /// Failed with this message.
    Failed(String),
}

/// One epoch's numbers, for the curves.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation Dice (foreground classes averaged).
    pub val_dice: f64,
    /// Validation Dice of each foreground class (label 1, 2, …).
    pub val_dice_per_class: Vec<f64>,
}

/// A training run started from the app.
#[derive(Debug, Clone)]
pub struct RunView {
    /// What it was started with (resume sends these again).
    pub options: TrainOptions,
    /// The preset's name.
    pub preset: String,
    /// Whether its predictions go to the corrected cases too (no for a corrected-cases run).
    pub predict_corrected: bool,
    /// How it stands.
    pub state: RunState,
    /// `(epoch, step, steps)` of the last progress event.
    pub position: Option<(usize, usize, usize)>,
    /// First and last epoch of this (possibly resumed) run.
    pub epochs: (usize, usize),
    /// Estimated seconds to go.
    pub eta_secs: Option<f64>,
    /// `(global step, loss)` of every step seen.
    pub step_losses: Vec<[f64; 2]>,
    /// Finished epochs.
    pub history: Vec<EpochPoint>,
    /// Where the LLM block's weights came from.
    pub llm_weights: String,
    /// Training and validation case counts.
    pub cases: (usize, usize),
    /// Rollbacks after a divergence, as lines for the panel.
    pub rollbacks: Vec<String>,
}

impl RunView {
    /// Fraction of the run done, 0–1.
    pub fn fraction(&self) -> f32 {
        let (first, last) = self.epochs;
        match self.position {
            Some((epoch, step, steps)) if last >= first && steps > 0 => {
                let total = (last + 1 - first) as f32;
                let done = (epoch - first) as f32 + step as f32 / steps as f32;
                (done / total).clamp(0.0, 1.0)
            }
            _ => 0.0,
        }
    }
}

/// A case's Dice (mean over classes) before and after the latest predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome {
    /// Case id.
    pub id: String,
    /// Mean Dice of the previous prediction, when there was one and a ground truth.
    pub before: Option<f64>,
    /// Mean Dice of the new prediction, when there is a ground truth.
    pub after: Option<f64>,
    /// Why the case failed, if it did.
    pub error: Option<String>,
}

/// The mean Dice over the classes that have one.
pub fn mean_dice(metrics: &CaseMetrics) -> Option<f64> {
    let values: Vec<f64> = metrics.classes.iter().filter_map(|c| c.dice).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The job the worker is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Training (then predicting, when it ends).
    Training,
    /// Predicting cases.
    Predicting {
        /// Cases done.
        done: usize,
        /// Cases in the job.
        total: usize,
    },
    /// Capturing activation maps.
    Capturing,
}

/// What the worker's events mean for the rest of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A case's prediction file was (re)written.
    Predicted {
        /// Case id.
        id: String,
        /// The file.
        path: PathBuf,
    },
    /// A message for the status line.
    Notice(Result<String, String>),
}

/// The training panel's choices.
#[derive(Debug, Clone)]
pub struct TrainingChoices {
    /// Preset name.
    pub preset: &'static str,
    /// Which cases.
    pub cases: CaseChoice,
    /// Cross-validation fold.
    pub fold: usize,
    /// N of few-shot.
    pub few_shot: usize,
    /// Epochs (the preset's by default).
    pub epochs: usize,
    /// Device.
    pub device: DeviceRequest,
    /// Start from the current checkpoint (fine-tuning) rather than from scratch.
    pub fine_tune: bool,
}

impl Default for TrainingChoices {
    fn default() -> Self {
        Self {
            preset: DEFAULT_PRESET,
            cases: CaseChoice::Fold,
            fold: 0,
            few_shot: 3,
            epochs: default_epochs(DEFAULT_PRESET, false),
            device: DeviceRequest::Auto,
            fine_tune: false,
        }
    }
}

/// The preset the panel starts with.
const DEFAULT_PRESET: &str = "demo-cpu";

/// The epochs the panel proposes: the preset's, or its fine-tuning epochs when starting from the
/// current model.
pub fn default_epochs(preset: &str, fine_tune: bool) -> usize {
    Preset::named(preset)
        .and_then(|p| p.configs().ok())
        .map_or(1, |(_, training)| {
            if fine_tune {
                training.fine_tune_epochs
            } else {
                training.epochs
            }
        })
}

/// The worker and what it is doing for the app.
#[derive(Default)]
pub struct ModelJobs {
    worker: Option<(DeviceKind, Worker)>,
    /// Why the device was chosen ("CPU: no NVIDIA driver …").
    pub device_reason: Option<String>,
    /// The job in progress.
    pub job: Option<Job>,
    /// The panel's choices.
    pub choices: TrainingChoices,
    /// The run on screen.
    pub run: Option<RunView>,
    /// The model used to predict, fine-tune and capture activations (a run's `best/` folder).
    pub checkpoint: Option<PathBuf>,
    /// Each case's Dice before and after the latest predictions.
    pub outcomes: Vec<CaseOutcome>,
    /// The task's runs with a best checkpoint, newest first.
    pub runs: Vec<RunEntry>,
    /// The activation maps panel.
    pub activations: ActivationsPanel,
}

impl ModelJobs {
    /// Whether the worker is on a job.
    pub fn is_busy(&self) -> bool {
        self.job.is_some()
    }

    /// The worker on the chosen device, started (or restarted on another device) when needed.
    fn worker(&mut self, waker: &eframe::egui::Context) -> Result<&Worker, String> {
        let choice = choose_device(self.choices.device.kind())?;
        if self.worker.as_ref().is_some_and(|(kind, _)| *kind != choice.kind) {
            self.worker = None; // joins the old thread, which is idle
        }
        if self.worker.is_none() {
            let waker = waker.clone();
            let worker =
                Worker::spawn(choice.kind, move || waker.request_repaint()).map_err(|e| e.to_string())?;
            self.worker = Some((choice.kind, worker));
        }
        self.device_reason = Some(choice.reason);
        self.worker
            .as_ref()
            .map(|(_, w)| w)
            .ok_or_else(|| "no worker".to_string())
    }

    fn send(&mut self, ctx: &eframe::egui::Context, command: WorkerCommand, job: Job) -> Result<(), String> {
        if let Some(current) = self.job {
            return Err(format!(
                "the worker is busy ({}); wait for it or stop it",
                job_name(current)
            ));
        }
        self.worker(ctx)?.send(command).map_err(|e| e.to_string())?;
        self.job = Some(job);
        Ok(())
    }

    /// Starts a run with the panel's choices on `source`'s task.
    pub fn start_training(&mut self, ctx: &eframe::egui::Context, source: &Source) -> Result<(), String> {
        let task = task_folder(source)?;
        let choices = self.choices.clone();
        let preset = Preset::named(choices.preset).ok_or_else(|| format!("no preset {}", choices.preset))?;
        let (model, mut training) = preset.configs()?;
        if choices.fine_tune {
            training = training.for_fine_tuning();
        }
        training.epochs = choices.epochs.max(1);
        let (subset, label_overrides, what) = match choices.cases {
            CaseChoice::Fold => (Subset::All, BTreeMap::new(), format!("fold{}", choices.fold)),
            CaseChoice::FewShot => (
                Subset::Cases(choices.few_shot.max(1)),
                BTreeMap::new(),
                format!("{}shot-fold{}", choices.few_shot.max(1), choices.fold),
            ),
            CaseChoice::Corrected => {
                let training: std::collections::BTreeSet<String> = engine::data::open_task(&task)
                    .map_err(|e| e.to_string())?
                    .training
                    .iter()
                    .map(|c| c.id.clone())
                    .collect();
                // Corrected test cases (no ground truth in the task) cannot be trained on.
                let corrected: BTreeMap<String, PathBuf> = engine::data::corrected_labels(&task)
                    .into_iter()
                    .filter(|(id, _)| training.contains(id))
                    .collect();
                if corrected.is_empty() {
                    return Err(format!(
                        "no corrected labels of training cases in {}; correct a case and save it (S) first",
                        task.join(engine::data::CORRECTED_FOLDER).display()
                    ));
                }
                let ids = corrected.keys().cloned().collect();
                (Subset::Ids(ids), corrected, "corrected".to_string())
            }
        };
        let init_from =
            if choices.fine_tune {
                Some(self.checkpoint.clone().ok_or(
                    "fine-tuning needs a current model: train one first, or choose a checkpoint folder",
                )?)
            } else {
                None
            };
        let out = next_run_folder(
            &task.join(APP_FOLDER).join(RUNS_FOLDER),
            &format!("{}-{what}", preset.name),
        );
        let options = TrainOptions {
            model,
            training,
            data: task,
            fold: choices.fold,
            subset,
            out,
            resume: false,
            init_from,
            label_overrides,
            allow_test_cases: false,
        };
        self.launch(
            ctx,
            options,
            preset.name.to_string(),
            choices.cases != CaseChoice::Corrected,
        )
    }

    /// Continues the stopped run on screen from its `last/` checkpoint.
    pub fn resume_training(&mut self, ctx: &eframe::egui::Context) -> Result<(), String> {
        let run = self.run.as_ref().ok_or("no run to resume")?;
        let mut options = run.options.clone();
        options.resume = true;
        let (preset, predict_corrected) = (run.preset.clone(), run.predict_corrected);
        self.launch(ctx, options, preset, predict_corrected)
    }

    fn launch(
        &mut self,
        ctx: &eframe::egui::Context,
        options: TrainOptions,
        preset: String,
        predict_corrected: bool,
    ) -> Result<(), String> {
        self.send(
            ctx,
            WorkerCommand::StartTraining(Box::new(options.clone())),
            Job::Training,
        )?;
        let previous = self
            .run
            .take()
            .filter(|r| options.resume && r.options.out == options.out);
        let mut run = RunView {
            options,
            preset,
            predict_corrected,
            state: RunState::Running,
            position: None,
            epochs: (1, 1),
            eta_secs: None,
            step_losses: Vec::new(),
            history: Vec::new(),
            llm_weights: String::new(),
            rollbacks: Vec::new(),
            cases: (0, 0),
        };
        if let Some(previous) = previous {
            run.step_losses = previous.step_losses;
            run.history = previous.history;
        }
        self.run = Some(run);
        Ok(())
    }

    /// Asks the running job to stop (training writes a resumable `last/`).
    pub fn stop(&self) {
        if let Some((_, worker)) = &self.worker {
            worker.stop();
        }
    }

    /// Predicts the cases of `source` with the current checkpoint into the app's predictions folder.
    pub fn predict(
        &mut self,
        ctx: &eframe::egui::Context,
        source: &Source,
        only_uncorrected: bool,
    ) -> Result<(), String> {
        let checkpoint = self
            .checkpoint
            .clone()
            .ok_or("no model yet: train one, or choose a checkpoint folder")?;
        let task = task_folder(source)?;
        let cases: Vec<CaseJob> = source
            .cases
            .iter()
            .filter(|c| !(only_uncorrected && c.corrected.is_some()))
            .map(|c| CaseJob {
                id: c.id.clone(),
                image: c.image.clone(),
                ground_truth: c.label_shown().cloned(),
                output: task
                    .join(APP_FOLDER)
                    .join(PREDICTION_FOLDER)
                    .join(format!("{}.nii.gz", c.id)),
            })
            .collect();
        let total = cases.len();
        self.send(
            ctx,
            WorkerCommand::PredictCases { checkpoint, cases },
            Job::Predicting { done: 0, total },
        )?;
        self.outcomes.clear();
        Ok(())
    }

    /// Captures activation maps of `scan` with `checkpoint`.
    pub fn capture(
        &mut self,
        ctx: &eframe::egui::Context,
        checkpoint: PathBuf,
        scan: PathBuf,
        attention: (usize, usize),
        reduction: engine::infer::Reduction,
    ) -> Result<(), String> {
        let sent = self.send(
            ctx,
            WorkerCommand::CaptureActivations {
                checkpoint,
                input: scan,
                attention,
                reduction,
            },
            Job::Capturing,
        );
        if let Err(message) = &sent {
            self.activations.failed(message.clone());
        }
        sent
    }

    /// Handles what the worker sent; returns what the rest of the app must do.
    pub fn poll(&mut self, ctx: &eframe::egui::Context, source: Option<&Source>) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut events = Vec::new();
        if let Some((_, worker)) = &self.worker {
            while let Some(event) = worker.try_recv() {
                events.push(event);
            }
        }
        for event in events {
            self.handle(ctx, event, source, &mut outcomes);
        }
        outcomes
    }

    fn handle(
        &mut self,
        ctx: &eframe::egui::Context,
        event: Event,
        source: Option<&Source>,
        outcomes: &mut Vec<Outcome>,
    ) {
        match event {
            Event::Training(event) => self.training_event(event),
            Event::TrainingDone(summary) => {
                self.job = None;
                let Some(run) = &mut self.run else { return };
                run.state = if summary.stopped {
                    RunState::Stopped
                } else {
                    RunState::Finished
                };
                let best = run.options.out.join("best");
                if best.is_dir() {
                    self.checkpoint = Some(best);
                }
                self.runs = list_runs(&run.options.data);
                let predict_corrected = run.predict_corrected;
                let message = format!(
                    "training {}: best validation Dice {:.3} after {} epoch(s)",
                    if summary.stopped { "stopped" } else { "finished" },
                    summary.best_val_dice,
                    summary.epochs_completed
                );
                outcomes.push(Outcome::Notice(Ok(message)));
                let run_task = run.options.data.clone();
                if !summary.stopped
                    && self.checkpoint.is_some()
                    && let Some(source) = source.filter(|s| task_folder(s).ok() == Some(run_task))
                    && let Err(message) = self.predict(ctx, source, !predict_corrected)
                {
                    outcomes.push(Outcome::Notice(Err(message)));
                }
            }
            Event::CasePredicted {
                id,
                output,
                before,
                after,
                scoring_problem,
                done,
                total,
            } => {
                self.job = Some(Job::Predicting { done, total });
                self.outcomes.push(CaseOutcome {
                    id: id.clone(),
                    before: before.as_ref().and_then(mean_dice),
                    after: after.as_ref().and_then(mean_dice),
                    error: scoring_problem,
                });
                outcomes.push(Outcome::Predicted { id, path: output });
            }
            Event::PredictionsDone { written, stopped } => {
                self.job = None;
                let message = format!(
                    "{written} prediction(s) written to {APP_FOLDER}/{PREDICTION_FOLDER}/{}",
                    if stopped { " (stopped)" } else { "" }
                );
                outcomes.push(Outcome::Notice(Ok(message)));
            }
            Event::Activations { input, maps } => {
                self.job = None;
                self.activations.received(&input, maps);
                // Model B's capture follows model A's.
                if let Some((checkpoint, scan, attention, reduction)) = self.activations.next_capture()
                    && let Err(message) = self.capture(ctx, checkpoint, scan, attention, reduction)
                {
                    outcomes.push(Outcome::Notice(Err(message)));
                }
            }
            Event::Predicted { .. } => self.job = None,
            Event::Failed(message) => match self.job {
                Some(Job::Predicting { .. }) => self.outcomes.push(CaseOutcome {
                    id: String::new(),
                    before: None,
                    after: None,
                    error: Some(message),
                }),
                Some(Job::Training) => {
                    self.job = None;
                    if let Some(run) = &mut self.run {
                        run.state = RunState::Failed(message.clone());
                    }
                    outcomes.push(Outcome::Notice(Err(format!("training failed: {message}"))));
                }
                Some(Job::Capturing) => {
                    self.job = None;
                    self.activations.failed(message.clone());
                    outcomes.push(Outcome::Notice(Err(format!(
                        "activation capture failed: {message}"
                    ))));
                }
                None => outcomes.push(Outcome::Notice(Err(message))),
            },
        }
    }

    fn training_event(&mut self, event: TrainEvent) {
        let Some(run) = &mut self.run else { return };
        match event {
            TrainEvent::Started {
                train_cases,
                val_cases,
                first_epoch,
                epochs,
                llm_weights,
            } => {
                run.epochs = (first_epoch, epochs);
                run.cases = (train_cases, val_cases);
                run.llm_weights = llm_weights;
            }
            TrainEvent::Progress {
                epoch,
                step,
                steps,
                loss,
                eta_secs,
            } => {
                run.position = Some((epoch, step, steps));
                run.eta_secs = Some(eta_secs);
                let global = ((epoch - 1) * steps + step) as f64;
                run.step_losses.push([global / steps.max(1) as f64, loss]);
            }
            TrainEvent::Epoch {
                epoch,
                train_loss,
                val_dice,
                val_dice_per_class,
                ..
            } => run.history.push(EpochPoint {
                epoch,
                train_loss,
                val_dice,
                val_dice_per_class,
            }),
            TrainEvent::RolledBack { to_epoch, .. } => {
                // The curves go back with the model: epochs after the restored one are redone.
                run.history.retain(|p| p.epoch <= to_epoch);
                run.rollbacks.extend(event.rollback_line());
            }
            _ => {}
        }
    }
}

fn job_name(job: Job) -> &'static str {
    match job {
        Job::Training => "training",
        Job::Predicting { .. } => "predicting",
        Job::Capturing => "capturing activations",
    }
}

/// The task folder of a source; training needs a task, not a single scan.
pub fn task_folder(source: &Source) -> Result<PathBuf, String> {
    crate::label_io::source_folder(source)
        .filter(|_| crate::label_io::is_task(source))
        .ok_or_else(|| "training and batch prediction need an MSD task folder, not a single scan".into())
}

/// `runs/<stem>-NNN` with the first number not taken.
pub fn next_run_folder(runs: &Path, stem: &str) -> PathBuf {
    (1..)
        .map(|n| runs.join(format!("{stem}-{n:03}")))
        .find(|path| !path.exists() && !path.with_extension("partial").exists())
        .unwrap_or_else(|| runs.join(stem))
}

/// A finished or stopped run with a best checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// The run folder's name.
    pub name: String,
    /// Its `best/` checkpoint.
    pub checkpoint: PathBuf,
}

/// The runs of a task that have a best checkpoint, newest first.
pub fn list_runs(task: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(task.join(APP_FOLDER).join(RUNS_FOLDER)) else {
        return Vec::new();
    };
    let mut runs: Vec<(std::time::SystemTime, RunEntry)> = entries
        .flatten()
        .filter_map(|entry| {
            let checkpoint = entry.path().join("best");
            let modified = std::fs::metadata(&checkpoint).ok()?.modified().ok()?;
            checkpoint.join("checkpoint.json").is_file().then(|| {
                (
                    modified,
                    RunEntry {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        checkpoint,
                    },
                )
            })
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    runs.into_iter().map(|(_, run)| run).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_take_the_next_free_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = next_run_folder(dir.path(), "demo-cpu-fold0");
        assert_eq!(first, dir.path().join("demo-cpu-fold0-001"));
        std::fs::create_dir_all(&first).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("demo-cpu-fold0-002.partial")).expect("mkdir");
        assert_eq!(
            next_run_folder(dir.path(), "demo-cpu-fold0"),
            dir.path().join("demo-cpu-fold0-003")
        );
    }

    #[test]
    fn progress_counts_resumed_epochs_only() {
        let options = TrainOptions {
            model: crate::presets::Preset::named("demo-cpu")
                .expect("preset")
                .configs()
                .expect("configs")
                .0,
            training: engine::train::TrainingConfig::default(),
            data: PathBuf::new(),
            fold: 0,
            subset: Subset::All,
            out: PathBuf::new(),
            resume: true,
            init_from: None,
            label_overrides: BTreeMap::new(),
            allow_test_cases: false,
        };
        let mut run = RunView {
            options,
            preset: "demo-cpu".into(),
            predict_corrected: true,
            state: RunState::Running,
            position: Some((6, 2, 4)),
            epochs: (5, 8),
            eta_secs: None,
            step_losses: Vec::new(),
            history: Vec::new(),
            llm_weights: String::new(),
            rollbacks: Vec::new(),
            cases: (4, 2),
        };
        // Epoch 5 done, half of epoch 6: 1.5 of 4 epochs.
        assert!((run.fraction() - 1.5 / 4.0).abs() < 1e-6);
        run.position = None;
        assert_eq!(run.fraction(), 0.0);
    }

    #[test]
    fn mean_dice_skips_undefined_classes() {
        let class = |label, dice| engine::metrics::ClassMetrics {
            label,
            dice,
            jaccard: None,
            sensitivity: None,
            specificity: None,
            hd95_mm: None,
            nsd: None,
            both_empty: dice.is_none(),
            prediction_voxels: 0,
            ground_truth_voxels: 0,
        };
        let metrics = CaseMetrics {
            tolerance_mm: 1.0,
            diagonal_mm: 10.0,
            classes: vec![class(1, Some(0.5)), class(2, None), class(3, Some(0.9))],
        };
        assert!(mean_dice(&metrics).is_some_and(|d| (d - 0.7).abs() < 1e-12));
        let empty = CaseMetrics {
            classes: vec![class(1, None)],
            ..metrics
        };
        assert_eq!(mean_dice(&empty), None);
    }
}
