//! The review sidecar: a task's [`ReviewSheet`] saved as `reviews.json` in the task folder
//! (`<scan>_reviews.json` beside a single scan), written atomically whenever it changes and read
//! back when the task is opened again.

use crate::io::label_io::source_folder;
use crate::io::source::Source;
use crate::review::sheet::ReviewSheet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the sidecar in a task folder.
pub use engine::data::REVIEWS_FILE;
/// Edits (a comment being typed) are written at most this often.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// Where the reviews of `source` are kept.
pub fn reviews_path(source: &Source) -> Option<PathBuf> {
    let folder = source_folder(source)?;
    match &source.request.path {
        Some(path) if path.is_file() => Some(folder.join(format!("{}_reviews.json", source.name))),
        _ => Some(folder.join(REVIEWS_FILE)),
    }
}

/// Reads a sidecar; `Ok(None)` when there is none yet.
pub fn read_reviews(path: &Path) -> anyhow::Result<Option<ReviewSheet>> {
    Ok(ReviewSheet::load(path)?)
}

/// Writes a sidecar atomically (temporary file, then rename).
pub fn write_reviews(path: &Path, sheet: &ReviewSheet) -> anyhow::Result<()> {
    sheet
        .save(path)
        .map_err(|e| anyhow::anyhow!("cannot save the reviews: {e}"))
}

/// Keeps one sidecar file in step with the sheet in memory.
#[derive(Debug, Default)]
pub struct SidecarSync {
    path: Option<PathBuf>,
    written: ReviewSheet,
    last_write: Option<Instant>,
}

impl SidecarSync {
    /// Starts syncing `source`'s sidecar; returns the sheet found on disk (or an empty one) and
    /// a message when the file could not be read.
    pub fn open(source: &Source) -> (Self, ReviewSheet, Option<String>) {
        let path = reviews_path(source);
        let empty = ReviewSheet::new(source.name.clone());
        let (sheet, error) = match path.as_deref().map(read_reviews) {
            Some(Ok(Some(sheet))) => (sheet, None),
            Some(Err(error)) => (empty, Some(format!("{error:#}"))),
            _ => (empty, None),
        };
        let sync = Self {
            // A sidecar that could not be read is not overwritten.
            path: if error.is_none() { path } else { None },
            written: sheet.clone(),
            last_write: None,
        };
        (sync, sheet, error)
    }

    /// The file being kept in step.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes `sheet` when it differs from the file and the last write is [`WRITE_INTERVAL`] old
    /// (or `now` is set). Returns whether something is still waiting to be written.
    pub fn sync(&mut self, sheet: &ReviewSheet, now: bool) -> Result<bool, String> {
        let Some(path) = &self.path else { return Ok(false) };
        if *sheet == self.written {
            return Ok(false);
        }
        if !now && self.last_write.is_some_and(|t| t.elapsed() < WRITE_INTERVAL) {
            return Ok(true);
        }
        self.last_write = Some(Instant::now());
        // Remember it even when the write fails, so a broken disk is reported once, not per frame.
        self.written = sheet.clone();
        write_reviews(path, sheet)
            .map(|()| false)
            .map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::clock::utc_from_unix;
    use crate::io::source::{OpenRequest, open};
    use crate::review::sheet::ReviewState;

    #[test]
    fn reviews_round_trip_through_the_task_folder() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let options = engine::data::PhantomOptions {
            training_cases: 2,
            test_cases: 0,
            size: [8, 8, 8],
            ..Default::default()
        };
        engine::data::write_phantom_task(dir.path(), &options)?;
        let source = open(&OpenRequest {
            path: Some(dir.path().to_path_buf()),
            ..OpenRequest::default()
        })?;
        let (mut sync, mut sheet, error) = SidecarSync::open(&source);
        assert!(error.is_none() && sheet.cases.is_empty());
        assert_eq!(sync.path(), Some(dir.path().join(REVIEWS_FILE).as_path()));
        assert_eq!(
            sync.sync(&sheet, false),
            Ok(false),
            "nothing changed, nothing written"
        );
        assert!(!dir.path().join(REVIEWS_FILE).exists());

        let review = sheet.review_mut("phantom_001");
        review.state = ReviewState::NeedsCorrection;
        review.comment = "leak into the liver, slices 3–5".into();
        review.reviewed_at = Some(utc_from_unix(1_700_000_000));
        assert_eq!(sync.sync(&sheet, false), Ok(false));
        // A second change within the interval waits, unless forced.
        sheet.review_mut("phantom_000").state = ReviewState::Accepted;
        assert_eq!(sync.sync(&sheet, false), Ok(true));
        assert_eq!(sync.sync(&sheet, true), Ok(false));

        let (_, reopened, error) = SidecarSync::open(&source);
        assert!(error.is_none());
        assert_eq!(reopened, sheet);

        // A damaged sidecar is reported and left alone.
        std::fs::write(dir.path().join(REVIEWS_FILE), "{ not json")?;
        let (mut sync, sheet, error) = SidecarSync::open(&source);
        assert!(error.is_some_and(|e| e.contains(REVIEWS_FILE)));
        let mut changed = sheet.clone();
        changed.review_mut("x").state = ReviewState::Accepted;
        assert_eq!(sync.sync(&changed, true), Ok(false));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(REVIEWS_FILE))?,
            "{ not json"
        );
        Ok(())
    }
}
