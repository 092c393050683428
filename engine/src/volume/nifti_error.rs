//! What can go wrong with a NIfTI file: shared by the header parser, the reader and the writer
//! (its own file so that none of them imports another for it).

use std::path::{Path, PathBuf};

/// Everything that can go wrong with a NIfTI file.
#[derive(Debug, thiserror::Error)]
pub enum NiftiError {
    /// A problem with a named file.
    #[error("{}: {problem}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        problem: Box<NiftiError>,
    },
    /// The bytes are not a NIfTI-1 header.
    #[error("not a NIfTI-1 file: {0}")]
    NotNifti(String),
    /// A valid NIfTI feature we do not handle.
    #[error("unsupported NIfTI file: {0}")]
    Unsupported(String),
    /// The header's fields contradict each other or are out of range.
    #[error("invalid NIfTI header: {0}")]
    InvalidHeader(String),
    /// The file ends before the data the header promises.
    #[error("truncated file: {0}; the file is damaged or was not fully copied — copy or export it again")]
    Truncated(String),
    /// The decoded volume would not fit the memory budget.
    #[error("too large to load: {0}")]
    TooLarge(String),
    /// The gzip layer is damaged.
    #[error(
        "corrupt gzip stream ({0}); the file is damaged or was not fully downloaded — download or export it again"
    )]
    Gzip(String),
    /// Values cannot be written as requested.
    #[error("cannot write: {0}")]
    Write(String),
    /// An operating-system error.
    #[error("{error}{hint}", error = .0, hint = crate::fault::hint(.0))]
    Io(#[from] std::io::Error),
}

impl NiftiError {
    pub(super) fn in_file(self, path: &Path) -> Self {
        match self {
            already @ NiftiError::InFile { .. } => already,
            other => NiftiError::InFile {
                path: path.to_path_buf(),
                problem: Box::new(other),
            },
        }
    }
}
