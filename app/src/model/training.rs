//! Training, prediction and activation capture from the app, on the engine's worker thread.
//! [`ModelJobs`] owns the worker (started on first use, on the chosen device), sends it one job
//! at a time and turns its events into state the panels draw: the run's progress and curves,
//! the current checkpoint, the predictions written after a run with each case's metrics before
//! and after, and captured activation maps.
//!
//! Runs go to `<task>/.medvisionllama/runs/<preset>-<cases>-NNN`; predictions to
//! `<task>/.medvisionllama/predictions/<case>.nii.gz`, where the case list looks first.

pub use crate::model::run_state::*;
pub use crate::model::runs::{RunEntry, list_runs, next_run_folder, run_stem, task_folder, task_runs_folder};

use crate::io::label_io::APP_FOLDER;
use crate::io::source::Source;
use crate::model::activations::ActivationsPanel;
use crate::model::presets::Preset;
use engine::device::{DeviceKind, choose_device};
use engine::train::{Subset, TrainEvent, TrainOptions};
use engine::worker::{CaseJob, Command as WorkerCommand, Event, Worker};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How soon after a worker event the window redraws (events arriving meanwhile share the frame).
const WORKER_REPAINT_INTERVAL: Duration = Duration::from_millis(250);

/// The worker and what it is doing for the app.
#[derive(Default)]
pub struct ModelJobs {
    worker: Option<(DeviceKind, Worker)>,
    /// The device detected for a request, kept so detection runs once per choice, not per job.
    device_choice: Option<(DeviceRequest, engine::device::DeviceChoice)>,
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
        let request = self.choices.device;
        let choice = match &self.device_choice {
            Some((cached, choice)) if *cached == request => choice.clone(),
            _ => {
                let choice = choose_device(request.kind())?;
                self.device_choice = Some((request, choice.clone()));
                choice
            }
        };
        if self.worker.as_ref().is_some_and(|(kind, _)| *kind != choice.kind) {
            self.worker = None; // joins the old thread, which is idle
        }
        if self.worker.is_none() {
            let waker = waker.clone();
            // At most a few frames a second from the worker: a training step sends an event
            // every ~0.1 s on the CPU, and a frame drawn for each took a core from training on
            // a 2-core machine with software rendering (session 15).
            let worker = Worker::spawn(choice.kind, move || {
                waker.request_repaint_after(WORKER_REPAINT_INTERVAL)
            })
            .map_err(|e| e.to_string())?;
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
        training.dtype = choices.dtype;
        training.epochs = choices.epochs.max(1);
        let (subset, label_overrides) = match choices.cases {
            CaseChoice::Fold => (Subset::All, BTreeMap::new()),
            CaseChoice::FewShot => (Subset::Cases(choices.few_shot.max(1)), BTreeMap::new()),
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
                (Subset::Ids(ids), corrected)
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
        // The same folders as `mvl train` without --out: each lists the other's runs.
        let out = next_run_folder(
            &task_runs_folder(&task),
            &run_stem(preset.name, &subset, choices.fold),
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
        self.launch(ctx, options, preset.name.to_string())
    }

    /// Continues the stopped run on screen from its `last/` checkpoint.
    pub fn resume_training(&mut self, ctx: &eframe::egui::Context) -> Result<(), String> {
        let run = self.run.as_ref().ok_or("no run to resume")?;
        let mut options = run.options.clone();
        options.resume = true;
        let preset = run.preset.clone();
        self.launch(ctx, options, preset)
    }

    fn launch(
        &mut self,
        ctx: &eframe::egui::Context,
        options: TrainOptions,
        preset: String,
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

    /// Predicts every case of `source` with the current checkpoint into the app's predictions
    /// folder (the corrected cases too: after a fine-tune on them, their Dice before and after is
    /// what the user wants to see, marked as training cases).
    pub fn predict(&mut self, ctx: &eframe::egui::Context, source: &Source) -> Result<(), String> {
        let checkpoint = self
            .checkpoint
            .clone()
            .ok_or("no model yet: train one, or choose a checkpoint folder")?;
        let task = task_folder(source)?;
        let cases: Vec<CaseJob> = source
            .cases
            .iter()
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
            WorkerCommand::PredictCases {
                checkpoint,
                cases,
                uncertainty: self.choices.uncertainty,
            },
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
        let waker = ctx.clone();
        self.activations.set_waker(move || waker.request_repaint());
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
        if sent.is_err() {
            // The caller shows the message (in the status line); the panel only stops waiting.
            self.activations.abandon();
        }
        sent
    }
}

impl Drop for ModelJobs {
    /// Closing the app must not wait for a training step: the worker is told to stop and let go
    /// on a thread of its own (dropping it joins its thread). Training writes its checkpoints
    /// atomically, so a process that exits first leaves no half-written file.
    fn drop(&mut self) {
        if let Some((_, worker)) = self.worker.take() {
            worker.stop();
            // If the thread cannot start, the closure (and the worker) is dropped right here:
            // waiting is then the only way left.
            let _ = std::thread::Builder::new()
                .name("worker-shutdown".into())
                .spawn(move || drop(worker));
        }
    }
}

#[path = "training_events.rs"]
mod events;

fn job_name(job: Job) -> &'static str {
    match job {
        Job::Training => "training",
        Job::Predicting { .. } => "predicting",
        Job::Capturing => "capturing activations",
    }
}

#[cfg(test)]
#[path = "training_tests.rs"]
mod tests;
