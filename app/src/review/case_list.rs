//! The case list (left panel): the task's cases with their review state, filterable by text and
//! state, and the review editor (verdict and comment) of the selected case.

use crate::io::source::Source;
use crate::review::sheet::{CaseFilter, ReviewSheet, ReviewState, state_colour};
use eframe::egui;

/// What the case list asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseListCommand {
    /// Show case `index` of the source.
    Select(usize),
    /// Set the review state of a case (stamped with the time it was set).
    SetState {
        /// The case's id.
        case_id: String,
        /// Its new state.
        state: ReviewState,
    },
    /// Replace the review comment of a case.
    SetComment {
        /// The case's id.
        case_id: String,
        /// The new comment.
        comment: String,
    },
}

/// What the list needs to know about loading.
pub struct ListStatus {
    /// Index of the case on screen (or being loaded).
    pub selected: Option<usize>,
    /// Index of the case being loaded, if any.
    pub loading: Option<usize>,
}

/// The indices of the cases that pass `filter`, in list order, or by uncertainty score (least
/// certain first, unscored cases last in list order) when the filter asks for it.
pub fn visible_cases(source: &Source, sheet: &ReviewSheet, filter: &CaseFilter) -> Vec<usize> {
    let mut visible: Vec<usize> = source
        .cases
        .iter()
        .enumerate()
        .filter(|(_, case)| filter.matches(&case.id, sheet))
        .map(|(index, _)| index)
        .collect();
    if filter.by_uncertainty {
        // A stable sort: equal scores keep list order.
        visible.sort_by(|a, b| {
            let score = |i: &usize| source.cases[*i].uncertainty;
            match (score(a), score(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
    visible
}

/// Draws the filter, the list and the selected case's review editor.
pub fn case_list_ui(
    ui: &mut egui::Ui,
    source: &Source,
    sheet: &ReviewSheet,
    filter: &mut CaseFilter,
    status: &ListStatus,
    commands: &mut Vec<CaseListCommand>,
) {
    ui.heading(&source.name);
    ui.add(
        egui::TextEdit::singleline(&mut filter.text)
            .hint_text("Filter cases")
            .desired_width(f32::INFINITY),
    );
    egui::ComboBox::from_label("State")
        .selected_text(filter.state.map_or("All states", ReviewState::name))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut filter.state, None, "All states");
            for state in ReviewState::ALL {
                ui.selectable_value(&mut filter.state, Some(state), state.name());
            }
        });
    let scored = source.cases.iter().any(|c| c.uncertainty.is_some());
    ui.add_enabled(
        scored,
        egui::Checkbox::new(&mut filter.by_uncertainty, "Least certain first"),
    )
    .on_hover_text(
        "Order by the uncertainty score of the prediction (test-time mirroring or Monte-Carlo \
             dropout, chosen in the Training tab); N and P follow this order",
    )
    .on_disabled_hover_text("No prediction has an uncertainty score yet: predict with uncertainty on");
    let visible = visible_cases(source, sheet, filter);
    ui.label(format!("{} of {} cases", visible.len(), source.cases.len()));
    ui.separator();

    let editor_height = 150.0;
    egui::ScrollArea::vertical()
        .max_height((ui.available_height() - editor_height).max(80.0))
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for index in visible {
                let case = &source.cases[index];
                ui.horizontal(|ui| {
                    let state = sheet.state(&case.id);
                    state_dot_ui(ui, state);
                    let selected = status.selected == Some(index);
                    // A DICOM series is shown by what it is (the UID is its id, on hover).
                    let title = case
                        .series
                        .as_ref()
                        .map_or_else(|| case.id.clone(), |s| s.title());
                    if ui
                        .selectable_label(selected, title)
                        .on_hover_text(&case.id)
                        .clicked()
                        && !selected
                    {
                        commands.push(CaseListCommand::Select(index));
                    }
                    if status.loading == Some(index) {
                        ui.spinner();
                    }
                    if case.ground_truth.is_none() {
                        ui.weak("no label");
                    }
                    if let Some(score) = case.uncertainty {
                        ui.weak(format!("u {score:.3}")).on_hover_text(
                            "Uncertainty score: mean normalised entropy where the model sees foreground",
                        );
                    }
                });
            }
        });

    if let Some(case) = status.selected.and_then(|i| source.cases.get(i)) {
        ui.separator();
        ui.strong(format!("Review of {}", case.id));
        let review = sheet.cases.get(&case.id).cloned().unwrap_or_default();
        let mut state = review.state;
        ui.horizontal_wrapped(|ui| {
            for choice in ReviewState::ALL {
                if ui.radio_value(&mut state, choice, choice.name()).changed() {
                    commands.push(CaseListCommand::SetState {
                        case_id: case.id.clone(),
                        state,
                    });
                }
            }
        });
        if let Some(time) = &review.reviewed_at {
            ui.weak(format!("set {time}"));
        }
        let mut comment = review.comment.clone();
        let edited = ui.add(
            egui::TextEdit::multiline(&mut comment)
                .hint_text("Comment")
                .desired_rows(3)
                .desired_width(f32::INFINITY),
        );
        if edited.changed() {
            commands.push(CaseListCommand::SetComment {
                case_id: case.id.clone(),
                comment,
            });
        }
    }
}

/// Radius of the review-state dot before each case.
const DOT_RADIUS: f32 = 4.0;

/// A coloured dot showing a review state (its name on hover).
fn state_dot_ui(ui: &mut egui::Ui, state: ReviewState) {
    let size = egui::vec2(2.0 * DOT_RADIUS + 2.0, 2.0 * DOT_RADIUS + 2.0);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    ui.painter()
        .circle_filled(rect.center(), DOT_RADIUS, state_colour(state));
    response.on_hover_text(state.name());
}
