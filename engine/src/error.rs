//! The engine's error type: one enum per module, gathered here.

use std::path::PathBuf;

/// Any error the engine reports. Each message names what was wrong, with which file, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or checking a NIfTI volume failed.
    #[error(transparent)]
    Nifti(#[from] crate::volume::NiftiError),
    /// Reading a DICOM series failed.
    #[error(transparent)]
    Dicom(#[from] crate::volume::DicomError),
    /// A dataset, split or preprocessing step failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A model configuration is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] crate::model::ConfigError),
    /// LLM weights could not be imported.
    #[error(transparent)]
    Weights(#[from] crate::weights::WeightsError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A prediction could not be made.
    #[error(transparent)]
    Infer(#[from] crate::infer::InferError),
    /// Training or evaluation failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// Metrics or paired statistics could not be computed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A label edit was refused (brush too large, nothing to fill).
    #[error(transparent)]
    Edit(#[from] crate::edit::EditError),
    /// A plain file-system error on a named path.
    #[error("{action} {path}: {source}{}", crate::fault::hint(source))]
    Io {
        /// What we were doing, e.g. "cannot create directory".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the action and the path it concerned.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
