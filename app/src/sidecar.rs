//! The review sidecar: a task's [`ReviewSheet`] saved as `reviews.json` in the task folder
//! (`<scan>_reviews.json` beside a single scan), written atomically whenever it changes and read
//! back when the task is opened again.

use crate::label_io::source_folder;
use crate::review::ReviewSheet;
use crate::source::Source;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// File name of the sidecar in a task folder.
pub const REVIEWS_FILE: &str = "reviews.json";
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
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => anyhow::bail!("{}: cannot read the reviews: {error}", path.display()),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a reviews file ({e}); move it away to start afresh",
            path.display()
        )
    })
}

/// Writes a sidecar atomically (temporary file, then rename).
pub fn write_reviews(path: &Path, sheet: &ReviewSheet) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(sheet)?;
    engine::volume::write_atomically(path, |file| std::io::Write::write_all(file, text.as_bytes()))
        .map_err(|e| anyhow::anyhow!("{}: cannot save the reviews: {e}", path.display()))
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

/// The current time as ISO 8601 UTC, e.g. `2023-11-14T22:13:20Z`.
pub fn now_utc() -> String {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_from_unix(seconds)
}

/// Formats seconds since 1970 as ISO 8601 UTC (Howard Hinnant's days-to-civil algorithm).
pub fn utc_from_unix(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let time = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::ReviewState;
    use crate::source::{OpenRequest, open};

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(utc_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_from_unix(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc_from_unix(951_782_400), "2000-02-29T00:00:00Z");
    }

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
