//! Datasets: Medical Segmentation Decathlon task folders, the phantom generator, splits and the
//! cached preprocessing that turns scans into model-grid tensors, and their normalisation per run.

mod corrected;
mod msd;
mod normalise;
mod phantom;
mod preprocess;
mod reviews;
mod splits;

pub use crate::volume::CtStatistics;
pub use corrected::{CORRECTED_FOLDER, apply_label_overrides, corrected_labels};
pub use msd::{Case, CaseReport, Task, TaskReport, case_id, check_task, open_task, parse_dataset_json};
pub use normalise::{
    CT_SAMPLES_PER_CASE, normalise_channels, single_scan_ct_statistics, training_ct_statistics,
};
pub use phantom::{LESION_RADIUS_MM, PhantomModality, PhantomOptions, write_phantom_task};
pub use preprocess::{
    PREPROCESS_MANIFEST, PreprocessOptions, PreprocessReport, PreprocessedCase, PreprocessedTask,
    model_grid_input, preprocess_task,
};
pub use reviews::{CaseReview, REVIEW_SHEET_VERSION, REVIEWS_FILE, ReviewSheet, ReviewState};
pub use splits::{
    FewShotSize, FewShotSubset, Fold, SPLITS_FILE, SplitOptions, Splits, few_shot_subset, make_splits,
};

use std::path::PathBuf;

/// Everything that can go wrong with a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The folder has no dataset.json.
    #[error("{}: no dataset.json here; an MSD task folder holds dataset.json, imagesTr/ and labelsTr/ (make a demo one with `mvl demo-data --out DIR`)", dir.display())]
    NoDatasetJson {
        /// The folder.
        dir: PathBuf,
    },
    /// dataset.json is not what an MSD task has.
    #[error("{}: {reason}", path.display())]
    BadDatasetJson {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file named in dataset.json is not there.
    #[error("{}: listed in dataset.json but missing; restore it or remove its entry", path.display())]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
    /// A volume could not be read or written.
    #[error(transparent)]
    Nifti(#[from] crate::volume::NiftiError),
    /// An image and its label do not match.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The label file.
        path: PathBuf,
        /// How it differs from its image.
        reason: String,
    },
    /// An option that cannot work (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// Split settings that cannot work for this dataset.
    #[error("cannot make splits: {0}")]
    Splits(String),
    /// A malformed splits.json or preprocess manifest.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file-system error on a named path.
    #[error("{action} {}: {source}{}", path.display(), crate::fault::hint(source))]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl DataError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Writes JSON atomically, pretty-printed.
pub(crate) fn write_json_atomically(
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), DataError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| DataError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    crate::volume::write_atomically(path, |w| std::io::Write::write_all(w, &text))
        .map_err(|e| DataError::io("cannot write", path, e))
}

/// Creates a folder and its parents.
pub(crate) fn create_dir(path: &std::path::Path) -> Result<(), DataError> {
    std::fs::create_dir_all(path).map_err(|e| DataError::io("cannot create folder", path, e))
}
