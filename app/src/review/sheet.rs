//! Review state of a task's cases: a verdict, a comment and a time per case. Kept in memory in a
//! shape that serialises as-is; [`crate::io::sidecar`] saves it as `reviews.json` in the task.

use std::collections::BTreeMap;

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

    /// The colour of its dot in the case list.
    pub fn colour(self) -> eframe::egui::Color32 {
        use eframe::egui::Color32;
        match self {
            ReviewState::NotReviewed => Color32::GRAY,
            ReviewState::Accepted => Color32::from_rgb(60, 190, 80),
            ReviewState::NeedsCorrection => Color32::from_rgb(240, 150, 30),
            ReviewState::Corrected => Color32::from_rgb(70, 140, 240),
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

/// Format version written into the sidecar, for whoever reads it later.
pub const REVIEW_SHEET_VERSION: u32 = 1;

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

    /// Sets a case's verdict and stamps the time.
    pub fn set_state(&mut self, id: &str, state: ReviewState) {
        let review = self.review_mut(id);
        review.state = state;
        review.reviewed_at = Some(crate::common::clock::now_utc());
    }
}

/// What the case list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    /// Case ids and comments containing this text (case-insensitive); empty matches all.
    pub text: String,
    /// Only cases in this state, or all.
    pub state: Option<ReviewState>,
}

impl CaseFilter {
    /// Whether case `id` passes the filter.
    pub fn matches(&self, id: &str, sheet: &ReviewSheet) -> bool {
        let review = sheet.cases.get(id);
        let state = review.map(|r| r.state).unwrap_or_default();
        if self.state.is_some_and(|wanted| wanted != state) {
            return false;
        }
        let needle = self.text.trim().to_lowercase();
        needle.is_empty()
            || id.to_lowercase().contains(&needle)
            || review.is_some_and(|r| r.comment.to_lowercase().contains(&needle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_text_in_id_or_comment_and_state() {
        let mut sheet = ReviewSheet::new("demo");
        let review = sheet.review_mut("case_002");
        review.state = ReviewState::NeedsCorrection;
        review.comment = "Leak into the Kidney".into();
        let by_text = CaseFilter {
            text: "kidney".into(),
            state: None,
        };
        assert!(by_text.matches("case_002", &sheet));
        assert!(!by_text.matches("case_001", &sheet));
        let by_state = CaseFilter {
            text: String::new(),
            state: Some(ReviewState::NotReviewed),
        };
        assert!(by_state.matches("case_001", &sheet));
        assert!(!by_state.matches("case_002", &sheet));
    }

    #[test]
    fn sheet_serialises_with_snake_case_states_and_reads_partial_files() -> anyhow::Result<()> {
        let mut sheet = ReviewSheet::new("demo");
        sheet.review_mut("a").state = ReviewState::Accepted;
        let text = serde_json::to_string(&sheet)?;
        assert!(text.contains("\"accepted\""), "{text}");
        let back: ReviewSheet = serde_json::from_str(&text)?;
        assert_eq!(back, sheet);
        let partial: ReviewSheet = serde_json::from_str(r#"{"cases": {"b": {"comment": "x"}}}"#)?;
        assert_eq!(partial.state("b"), ReviewState::NotReviewed);
        assert_eq!(partial.version, REVIEW_SHEET_VERSION);
        Ok(())
    }
}
