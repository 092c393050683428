//! Training: the loss, in-memory samples with augmentation, the training loop with progress
//! events and cancellation, atomic checkpoints, resuming, and evaluation of finished runs.
//!
//! A run folder holds `run.json` (task, fold, subset, cases, label overrides, configs),
//! `splits.json`, `history.json`, `best/` (the checkpoint with the best validation Dice) and
//! `last/` (the latest state, with the optimiser, for `--resume`). Folders are replaced whole:
//! written beside, then renamed.

mod batches;
mod compatibility;
pub mod cv;
pub mod evaluate;
pub mod guard;
mod loss;
mod run;
pub mod runs;
mod samples;
pub mod schedule;
mod selection;
mod validate;

#[cfg(test)]
mod recipe_tests;
#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod trust_tests;

pub use evaluate::{CaseRow, CompareRow, EvalReport, compare_runs, evaluate_run};
pub use loss::{
    DICE_WEIGHT, bce_with_logits, cross_entropy, segmentation_loss, segmentation_loss_tokens,
    segmentation_loss_tokens_with, soft_dice_loss,
};
pub use run::{EpochRecord, RunInfo, TrainOptions, TrainSummary, train};
pub use samples::{Sample, augment, class_fractions, load_samples, target_values};
pub use schedule::Schedule;
pub use selection::Subset;
pub use validate::validation_dice_per_class;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[training]` table of a preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Passes over the training cases (paper: 200).
    pub epochs: usize,
    /// Samples per step (paper: 4).
    pub batch_size: usize,
    /// Adam learning rate (paper: 2e-3).
    pub learning_rate: f64,
    /// Flips, small rotations and intensity changes.
    pub augment: bool,
    /// Seed of shuffling, augmentation and dropout.
    pub seed: u64,
    /// Linear learning-rate warm-up over this fraction of all steps (0 = none).
    pub warmup_fraction: f64,
    /// The learning rate after the warm-up: constant or cosine decay.
    pub schedule: Schedule,
    /// Largest global gradient norm; larger gradients are scaled down to it (0 = no clipping).
    pub grad_clip_norm: f64,
    /// An epoch whose mean loss exceeds this × the last good epoch's rolls the run back to that
    /// epoch with a lower learning rate (0 = only NaN/∞ roll back).
    pub loss_jump_factor: f64,
    /// The learning rate is multiplied by this at each rollback.
    pub rollback_lr_factor: f64,
    /// After this many rollbacks the run stops with an error.
    pub max_rollbacks: usize,
    /// Initialise the output bias from the training labels' class frequencies (fresh runs).
    pub prior_init: bool,
    /// Count the background channel of a softmax output in the soft Dice term (the official
    /// code's single sigmoid channel has no background channel).
    pub dice_background: bool,
    /// Epochs of a fine-tuning run (one that starts from a checkpoint), as the app proposes them.
    pub fine_tune_epochs: usize,
    /// Learning rate of a fine-tuning run.
    pub fine_tune_learning_rate: f64,
    /// `last/` (the resume point) is rewritten after an epoch once this many seconds have passed
    /// since it was last written, and always after the final epoch (0 = after every epoch).
    pub last_save_interval_secs: f64,
    /// Precision of the frozen block's weights and activations, `"f32"` or `"bf16"` (bf16
    /// halves its memory and runs its products on tensor cores); trainable weights, their
    /// gradients and Adam's moments stay f32 either way.
    pub dtype: crate::device::Precision,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 4,
            learning_rate: 2e-3,
            augment: true,
            seed: 0,
            warmup_fraction: 0.05,
            schedule: Schedule::Cosine,
            grad_clip_norm: 1.0,
            loss_jump_factor: 1.5,
            rollback_lr_factor: 0.5,
            max_rollbacks: 4,
            prior_init: true,
            dice_background: true,
            fine_tune_epochs: 20,
            fine_tune_learning_rate: 5e-4,
            last_save_interval_secs: 10.0,
            dtype: crate::device::Precision::F32,
        }
    }
}

impl TrainingConfig {
    /// The schedule of a run that starts from a trained checkpoint: the fine-tuning epochs and
    /// learning rate, a short warm-up, and no output-prior initialisation (the head is trained).
    pub fn for_fine_tuning(&self) -> Self {
        Self {
            epochs: self.fine_tune_epochs,
            learning_rate: self.fine_tune_learning_rate,
            prior_init: false,
            ..self.clone()
        }
    }
}

#[derive(Deserialize)]
struct TrainingFile {
    #[serde(default)]
    training: TrainingConfig,
}

impl TrainingConfig {
    /// Reads the `[training]` table of a preset (defaults when absent).
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses the `[training]` table of a preset's text (defaults when absent); `path` only
    /// names the source in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, TrainError> {
        let file: TrainingFile = toml::from_str(text).map_err(|e| TrainError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(file.training)
    }
}

/// What the trainer tells its caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TrainEvent {
    /// Training begins (or resumes at `first_epoch`).
    Started {
        /// Training cases.
        train_cases: usize,
        /// Validation cases.
        val_cases: usize,
        /// First epoch to run (1-based).
        first_epoch: usize,
        /// Last epoch.
        epochs: usize,
        /// "random (no checkpoint)" or the LLM layer's source.
        llm_weights: String,
    },
    /// One optimiser step done.
    Progress {
        /// Current epoch (1-based).
        epoch: usize,
        /// Step within the epoch (1-based).
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// Loss of this step.
        loss: f64,
        /// Estimated seconds until the run ends.
        eta_secs: f64,
    },
    /// An epoch ended.
    Epoch {
        /// The epoch (1-based).
        epoch: usize,
        /// Mean training loss.
        train_loss: f64,
        /// Mean validation Dice on the model grid (foreground classes averaged).
        val_dice: f64,
        /// Validation Dice of each foreground class (label 1, 2, …; one entry for a merged
        /// sigmoid output).
        val_dice_per_class: Vec<f64>,
        /// Learning rate at the epoch's last step.
        learning_rate: f64,
        /// Seconds the epoch took.
        seconds: f64,
    },
    /// The run diverged and went back to the end of `to_epoch` (0 = the start) with a lower
    /// learning rate; the epochs after it are trained again.
    RolledBack {
        /// The epoch in which the divergence was seen.
        epoch: usize,
        /// The last good epoch, whose state was restored.
        to_epoch: usize,
        /// What was seen.
        reason: String,
        /// The learning-rate multiplier from now on (1 = the preset's schedule).
        lr_scale: f64,
    },
    /// A checkpoint was written.
    CheckpointSaved {
        /// Its folder.
        path: PathBuf,
        /// Its validation Dice.
        val_dice: f64,
    },
    /// The run ended (stopped early when `stopped`).
    Finished {
        /// Best validation Dice reached.
        best_val_dice: f64,
        /// Whether a stop request ended it.
        stopped: bool,
    },
}

impl TrainEvent {
    /// One line for a rollback ("epoch 7: the epoch loss jumped …; rolled back to epoch 6,
    /// learning rate × 0.5"), as the CLI prints it and the app lists it; `None` for other events.
    pub fn rollback_line(&self) -> Option<String> {
        match self {
            Self::RolledBack {
                epoch,
                to_epoch,
                reason,
                lr_scale,
            } => Some(format!(
                "epoch {epoch}: {reason}; rolled back to epoch {to_epoch}, learning rate × {lr_scale}"
            )),
            _ => None,
        }
    }
}

/// Everything that can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file problem.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Settings or data that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// Data loading or preprocessing failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Predicting failed.
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),
    /// Metrics failed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A volume could not be read.
    #[error(transparent)]
    Nifti(#[from] crate::volume::NiftiError),
}
