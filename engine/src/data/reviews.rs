//! The review sheet of a task: a verdict, a comment and a time per case, saved by the app as
//! `reviews.json` in the task folder. Kept in the engine so its parser can be fuzzed and its
//! writer tested under `kill -9` without the GUI.

use super::DataError;
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the sheet in a task folder.
pub const REVIEWS_FILE: &str = "reviews.json";

/// Format version written into the sheet, for whoever reads it later.
pub const REVIEW_SHEET_VERSION: u32 = 1;

/// A reviewer's verdict on one case's segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Nobody has looked at it yet.
    #[default]
    NotReviewed,
    /// The segmentation is right as it is.
    Accepted,
    /// The segmentation has errors to fix.
    NeedsCorrection,
    /// The errors were fixed.
    Corrected,
}

impl ReviewState {
    /// Every state, in the order the UI lists them.
    pub const ALL: [ReviewState; 4] = [
        ReviewState::NotReviewed,
        ReviewState::Accepted,
        ReviewState::NeedsCorrection,
        ReviewState::Corrected,
    ];

    /// Name shown in the UI.
    pub fn name(self) -> &'static str {
        match self {
            ReviewState::NotReviewed => "Not reviewed",
            ReviewState::Accepted => "Accepted",
            ReviewState::NeedsCorrection => "Needs correction",
            ReviewState::Corrected => "Corrected",
        }
    }
}

/// The review of one case.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CaseReview {
    /// The verdict.
    pub state: ReviewState,
    /// Free text, e.g. where the error is.
    pub comment: String,
    /// When the verdict was last set (ISO 8601 UTC), if ever.
    pub reviewed_at: Option<String>,
}

/// The reviews of one task, by case id. Cases never touched have no entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ReviewSheet {
    /// [`REVIEW_SHEET_VERSION`] when written.
    pub version: u32,
    /// The task's name (from dataset.json) or the scan's file name.
    pub task: String,
    /// Case id → review.
    pub cases: BTreeMap<String, CaseReview>,
}

impl Default for ReviewSheet {
    fn default() -> Self {
        Self {
            version: REVIEW_SHEET_VERSION,
            task: String::new(),
            cases: BTreeMap::new(),
        }
    }
}

impl ReviewSheet {
    /// An empty sheet for a task.
    pub fn new(task: impl Into<String>) -> Self {
        Self {
            task: task.into(),
            ..Self::default()
        }
    }

    /// The state of a case (not reviewed when absent).
    pub fn state(&self, id: &str) -> ReviewState {
        self.cases.get(id).map(|r| r.state).unwrap_or_default()
    }

    /// The review of a case, created on first use.
    pub fn review_mut(&mut self, id: &str) -> &mut CaseReview {
        self.cases.entry(id.to_string()).or_default()
    }

    /// Sets a case's verdict and stamps it with `reviewed_at` (ISO 8601 UTC).
    pub fn set_state_at(&mut self, id: &str, state: ReviewState, reviewed_at: String) {
        let review = self.review_mut(id);
        review.state = state;
        review.reviewed_at = Some(reviewed_at);
    }

    /// Parses the text of a `reviews.json` (`path` only names it in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, DataError> {
        serde_json::from_str(text).map_err(|e| DataError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not a reviews file ({e}); move it away to start afresh"),
        })
    }

    /// Reads a sheet; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Self>, DataError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(DataError::io("cannot read the reviews in", path, error)),
        }
    }

    /// Writes the sheet atomically (temporary file, fsync, rename): a crash at any moment
    /// leaves the old complete file or the new complete one.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        super::write_json_atomically(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_serialises_with_snake_case_states_and_reads_partial_files() -> anyhow::Result<()> {
        let mut sheet = ReviewSheet::new("demo");
        sheet.review_mut("a").state = ReviewState::Accepted;
        let text = serde_json::to_string(&sheet)?;
        assert!(text.contains("\"accepted\""), "{text}");
        let back = ReviewSheet::parse(&text, Path::new(REVIEWS_FILE))?;
        assert_eq!(back, sheet);
        let partial = ReviewSheet::parse(r#"{"cases": {"b": {"comment": "x"}}}"#, Path::new(REVIEWS_FILE))?;
        assert_eq!(partial.state("b"), ReviewState::NotReviewed);
        assert_eq!(partial.version, REVIEW_SHEET_VERSION);
        Ok(())
    }

    #[test]
    fn a_damaged_sheet_names_the_file_and_the_fix() {
        let error = ReviewSheet::parse("{ not json", Path::new("/task/reviews.json"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("/task/reviews.json") && error.contains("move it away"),
            "{error}"
        );
    }
}
