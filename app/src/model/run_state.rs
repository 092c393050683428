//! What the Training tab shows and chooses: the panel's choices, the run in progress with its
//! curves, each case's Dice before and after, and the job the worker is on.

use crate::model::presets::Preset;
use engine::device::DeviceKind;
use engine::metrics::CaseMetrics;
use engine::train::TrainOptions;
use std::path::PathBuf;

/// Folder inside the app folder that the app's predictions are written to (the first the case
/// list looks in); predictions the user put in `labelsPred/` are never overwritten.
pub const PREDICTION_FOLDER: &str = "predictions";

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
    /// The engine's device for the request (`None`: CUDA if present, else the CPU).
    pub fn kind(self) -> Option<DeviceKind> {
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
    /// Whether the model that predicted it was fine-tuned on this case's corrected label (its
    /// "after" is then a score on a training case).
    pub trained_on: bool,
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
        /// Its uncertainty score, when predicted with an uncertainty method.
        uncertainty: Option<f64>,
    },
    /// A message for the status line.
    Notice(Result<String, String>),
}

/// The training panel's choices.
#[derive(Debug, Clone, PartialEq)]
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
    /// Precision of the frozen block (bf16 halves its memory on a GPU; trainable weights stay
    /// f32).
    pub dtype: engine::device::Precision,
    /// Predict several times (mirroring or Monte-Carlo dropout), giving each case an
    /// uncertainty score and map (`None`: plain predictions).
    pub uncertainty: Option<engine::infer::UncertaintyMethod>,
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
            dtype: engine::device::Precision::F32,
            uncertainty: Some(engine::infer::UncertaintyMethod::EachAxis),
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
