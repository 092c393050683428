//! Review state of a task's cases: a verdict, a comment and a time per case. Kept in memory in a
//! shape that serialises as-is (the types live in [`engine::data`], where the parser is fuzzed);
//! [`crate::io::sidecar`] saves it as `reviews.json` in the task.

pub use engine::data::{CaseReview, REVIEW_SHEET_VERSION, ReviewSheet, ReviewState};

/// The colour of a state's dot in the case list.
pub fn state_colour(state: ReviewState) -> eframe::egui::Color32 {
    use eframe::egui::Color32;
    match state {
        ReviewState::NotReviewed => Color32::GRAY,
        ReviewState::Accepted => Color32::from_rgb(60, 190, 80),
        ReviewState::NeedsCorrection => Color32::from_rgb(240, 150, 30),
        ReviewState::Corrected => Color32::from_rgb(70, 140, 240),
    }
}

/// Sets a case's verdict and stamps it with the current time.
pub fn set_state(sheet: &mut ReviewSheet, id: &str, state: ReviewState) {
    sheet.set_state_at(id, state, crate::common::clock::now_utc());
}

/// What the case list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    /// Case ids and comments containing this text (case-insensitive); empty matches all.
    pub text: String,
    /// Only cases in this state, or all.
    pub state: Option<ReviewState>,
    /// List the cases by uncertainty score, least certain first (unscored ones last).
    pub by_uncertainty: bool,
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
            ..CaseFilter::default()
        };
        assert!(by_text.matches("case_002", &sheet));
        assert!(!by_text.matches("case_001", &sheet));
        let by_state = CaseFilter {
            state: Some(ReviewState::NotReviewed),
            ..CaseFilter::default()
        };
        assert!(by_state.matches("case_001", &sheet));
        assert!(!by_state.matches("case_002", &sheet));
    }
}
