//! The background worker: one named thread that owns the model and the device. The app sends
//! commands (start, stop, resume training; predict one scan or many cases into label files;
//! capture activations) over a bounded channel
//! and receives events over another; after each event the worker calls the waker the app gave
//! it (which calls `request_repaint`). Large results travel as `Arc`.
//!
//! Stop is a shared flag rather than a queued command, so it takes effect within one training
//! step (or between two cases of a prediction job) even while the worker is busy.

use crate::checkpoint::load_checkpoint;
use crate::device::{AutodiffJob, BackendJob, DeviceKind, dispatch, dispatch_autodiff};
use crate::infer::{self, ActivationMap, Prediction, Reduction};
use crate::model::{EngineAutodiffBackend, EngineBackend};
use crate::train::{TrainEvent, TrainOptions, TrainSummary, train};
use crate::volume::read_nifti;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Commands queued at most; more are refused as "busy".
const COMMAND_CAPACITY: usize = 16;
/// Events buffered for the UI; progress events beyond this are dropped, others wait.
const EVENT_CAPACITY: usize = 1024;

/// What the app asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Train (set `resume` to continue a run).
    StartTraining(Box<TrainOptions>),
    /// Predict a scan with a checkpoint.
    Predict {
        /// Checkpoint folder.
        checkpoint: PathBuf,
        /// The scan.
        input: PathBuf,
    },
    /// Predict many cases with one checkpoint, writing each label file and scoring it (and the
    /// file it replaces) against the case's ground truth. Reports `CasePredicted` per case,
    /// `Failed` for a case that cannot be done (the job goes on), and ends with `PredictionsDone`.
    PredictCases {
        /// Checkpoint folder.
        checkpoint: PathBuf,
        /// The cases, predicted in this order.
        cases: Vec<CaseJob>,
        /// Predict several times (mirroring or Monte-Carlo dropout; a model without dropout is
        /// refused for the latter): each case's uncertainty map is written to
        /// [`crate::infer::uncertainty_map_path`] and its score recorded in the predictions
        /// folder's uncertainty.json.
        uncertainty: Option<crate::infer::UncertaintyMethod>,
    },
    /// Activation maps of a scan.
    CaptureActivations {
        /// Checkpoint folder.
        checkpoint: PathBuf,
        /// The scan.
        input: PathBuf,
        /// (block, head) of the attention map.
        attention: (usize, usize),
        /// Channel reduction.
        reduction: Reduction,
    },
    /// End the worker.
    Shutdown,
}

/// One case for `Command::PredictCases`.
#[derive(Debug, Clone)]
pub struct CaseJob {
    /// Case id, echoed in `Event::CasePredicted`.
    pub id: String,
    /// The scan.
    pub image: PathBuf,
    /// The label to score against, if any.
    pub ground_truth: Option<PathBuf>,
    /// Where the predicted label is written (in the scan's geometry; folders are created).
    pub output: PathBuf,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A training event.
    Training(TrainEvent),
    /// Training ended normally or by a stop request.
    TrainingDone(TrainSummary),
    /// A prediction, in the scan's geometry.
    Predicted {
        /// The scan.
        input: PathBuf,
        /// Label and probabilities.
        prediction: Arc<Prediction>,
        /// LLM weights of the checkpoint.
        llm_weights: String,
    },
    /// Activation maps, in the scan's geometry.
    Activations {
        /// The scan.
        input: PathBuf,
        /// The maps.
        maps: Arc<Vec<ActivationMap>>,
    },
    /// One case of `Command::PredictCases` is predicted and its label written.
    CasePredicted {
        /// Case id.
        id: String,
        /// The label file written.
        output: PathBuf,
        /// The file that was at `output` before, scored against the ground truth (`None`
        /// without a ground truth, without a previous file, or when they cannot be compared).
        before: Option<crate::metrics::CaseMetrics>,
        /// The new label scored against the ground truth (`None` as for `before`).
        after: Option<crate::metrics::CaseMetrics>,
        /// Why the case could not be scored although it names a ground truth (unreadable, or
        /// not on the scan's grid); the prediction was still written.
        scoring_problem: Option<String>,
        /// The case's uncertainty score, when the job asked for one.
        uncertainty: Option<f64>,
        /// Cases handled so far, failed ones included.
        done: usize,
        /// Cases in the job.
        total: usize,
    },
    /// `Command::PredictCases` ended (after the last case, or early on a stop request).
    PredictionsDone {
        /// Label files written.
        written: usize,
        /// Whether a stop request ended it.
        stopped: bool,
    },
    /// A command failed; the message says what and how to fix it.
    Failed(String),
}

/// Errors sending to the worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The queue is full.
    #[error("the worker is busy; try again when the current job ends")]
    Busy,
    /// The worker thread has ended.
    #[error("the worker has stopped")]
    Gone,
    /// The thread could not be started.
    #[error("cannot start the worker thread: {0}")]
    Spawn(String),
}

/// The app's handle on the worker.
pub struct Worker {
    commands: SyncSender<Command>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Waker = Arc<dyn Fn() + Send + Sync>;

struct Emitter {
    events: SyncSender<Event>,
    waker: Waker,
}

impl Emitter {
    fn emit(&self, event: Event) {
        let progress = matches!(event, Event::Training(TrainEvent::Progress { .. }));
        let sent = if progress {
            // Progress is dropped rather than stalling training when the UI lags.
            !matches!(self.events.try_send(event), Err(TrySendError::Disconnected(_)))
        } else {
            self.events.send(event).is_ok()
        };
        if sent {
            (self.waker)();
        }
    }
}

impl Worker {
    /// Starts the worker on `device`; `waker` is called after every event.
    pub fn spawn(device: DeviceKind, waker: impl Fn() + Send + Sync + 'static) -> Result<Self, WorkerError> {
        let (command_sender, commands) = sync_channel::<Command>(COMMAND_CAPACITY);
        let (event_sender, events) = sync_channel::<Event>(EVENT_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = stop.clone();
        let emitter = Emitter {
            events: event_sender,
            waker: Arc::new(waker),
        };
        let thread = std::thread::Builder::new()
            .name("mvl-worker".into())
            .spawn(move || {
                // Background priority when the app asked for it: the window keeps a core.
                crate::device::enter_background_priority();
                while let Ok(command) = commands.recv() {
                    if matches!(command, Command::Shutdown) {
                        break;
                    }
                    worker_stop.store(false, Ordering::Relaxed);
                    handle(command, device, &worker_stop, &emitter);
                }
            })
            .map_err(|e| WorkerError::Spawn(e.to_string()))?;
        Ok(Self {
            commands: command_sender,
            events,
            stop,
            thread: Some(thread),
        })
    }

    /// Queues a command.
    pub fn send(&self, command: Command) -> Result<(), WorkerError> {
        self.commands.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => WorkerError::Busy,
            TrySendError::Disconnected(_) => WorkerError::Gone,
        })
    }

    /// Asks a running training to stop after the current step (a usable `last/` is written), or
    /// a prediction job after the current case.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The next event, if any.
    pub fn try_recv(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
        let _ = self.commands.try_send(Command::Shutdown);
        // Events are no longer read: drain so a blocked send cannot keep the thread alive.
        while self.events.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct TrainingJob<'a> {
    options: TrainOptions,
    stop: &'a AtomicBool,
    emitter: &'a Emitter,
}

impl AutodiffJob for TrainingJob<'_> {
    type Output = Result<TrainSummary, String>;
    fn run<B: EngineAutodiffBackend>(self, device: B::Device) -> Self::Output {
        let emitter = self.emitter;
        let mut on_event = |event: TrainEvent| emitter.emit(Event::Training(event));
        train::<B>(&self.options, &device, self.stop, &mut on_event).map_err(|e| e.to_string())
    }
}

struct InferJob(Command);

impl BackendJob for InferJob {
    type Output = Result<Event, String>;
    fn run<B: EngineBackend>(self, device: B::Device) -> Self::Output {
        match self.0 {
            Command::Predict { checkpoint, input } => {
                let (loaded, image, spec) = open_case::<B>(&checkpoint, &input, &device)?;
                let prediction = infer::predict(&loaded.model, &loaded.config, &spec, &image.volume, &device)
                    .map_err(|e| e.to_string())?;
                Ok(Event::Predicted {
                    input,
                    prediction: Arc::new(prediction),
                    llm_weights: loaded.meta.llm_weights,
                })
            }
            Command::CaptureActivations {
                checkpoint,
                input,
                attention,
                reduction,
            } => {
                let (loaded, image, spec) = open_case::<B>(&checkpoint, &input, &device)?;
                let maps = infer::activation_maps(
                    &loaded.model,
                    &loaded.config,
                    &spec,
                    &image.volume,
                    attention,
                    reduction,
                    &device,
                )
                .map_err(|e| e.to_string())?;
                Ok(Event::Activations {
                    input,
                    maps: Arc::new(maps),
                })
            }
            other => Err(format!("not an inference command: {other:?}")),
        }
    }
}

/// A checkpoint, a scan, and the preprocessing to prepare the scan with.
fn open_case<B: EngineBackend>(
    checkpoint: &std::path::Path,
    input: &std::path::Path,
    device: &B::Device,
) -> Result<
    (
        crate::checkpoint::LoadedCheckpoint<B>,
        crate::volume::NiftiImage,
        crate::checkpoint::PreprocessingSpec,
    ),
    String,
> {
    let loaded = load_checkpoint::<B>(checkpoint, None, device).map_err(|e| e.to_string())?;
    let image = read_nifti(input).map_err(|e| e.to_string())?;
    let spec = scan_spec(&loaded, &image.volume);
    Ok((loaded, image, spec))
}

/// The preprocessing a scan gets: the checkpoint's, or one derived from the scan.
fn scan_spec<B: EngineBackend>(
    loaded: &crate::checkpoint::LoadedCheckpoint<B>,
    image: &crate::volume::Volume,
) -> crate::checkpoint::PreprocessingSpec {
    loaded
        .meta
        .preprocessing
        .clone()
        .unwrap_or_else(|| infer::default_spec(&loaded.config, image))
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

fn handle(command: Command, device: DeviceKind, stop: &AtomicBool, emitter: &Emitter) {
    // A panic inside burn (e.g. out of device memory) must not take the app down with it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match command {
        Command::StartTraining(options) => dispatch_autodiff(
            device,
            TrainingJob {
                options: *options,
                stop,
                emitter,
            },
        )
        .map(Event::TrainingDone),
        Command::PredictCases {
            checkpoint,
            cases,
            uncertainty,
        } => dispatch(
            device,
            cases::CasesJob {
                checkpoint,
                cases,
                uncertainty,
                stop,
                emitter,
            },
        ),
        other => dispatch(device, InferJob(other)),
    }));
    let event = match outcome {
        Ok(Ok(event)) => event,
        Ok(Err(message)) => Event::Failed(message),
        Err(panic) => Event::Failed(format!(
            "the computation failed: {} (out of memory? try a smaller batch or the CPU)",
            panic_message(panic.as_ref())
        )),
    };
    emitter.emit(event);
}

mod cases;
#[cfg(test)]
mod tests;
