//! Training: the loss, in-memory samples with augmentation, the training loop with progress
//! events and cancellation, atomic checkpoints, resuming, and evaluation of finished runs.
//!
//! A run folder holds `run.json` (task, fold, subset, cases, label overrides, configs),
//! `splits.json`, `history.json`, `best/` (the checkpoint with the best validation Dice) and
//! `last/` (the latest state, with the optimiser, for `--resume`). Folders are replaced whole:
//! written beside, then renamed.

pub mod evaluate;
mod loss;
mod run;
mod samples;
mod selection;

#[cfg(test)]
mod run_tests;

pub use evaluate::{CaseRow, CompareRow, EvalReport, compare_runs, evaluate_run};
pub use loss::{DICE_WEIGHT, bce_with_logits, cross_entropy, segmentation_loss, soft_dice_loss};
pub use run::{RunInfo, Subset, TrainOptions, TrainSummary, train};
pub use samples::{Sample, augment, batch_tensors, load_samples, target_values};

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
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 4,
            learning_rate: 2e-3,
            augment: true,
            seed: 0,
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
        let file: TrainingFile = toml::from_str(&text).map_err(|e| TrainError::File {
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
        /// Mean validation Dice on the model grid.
        val_dice: f64,
        /// Seconds the epoch took.
        seconds: f64,
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
