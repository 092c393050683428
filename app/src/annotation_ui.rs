//! The annotation panel (tools, brush, label, rules, undo, fill, save) and the questions the
//! editor asks (unsaved changes, overwrite the ground truth, restore an autosave).

use crate::brush::{BrushSettings, BrushShape, PaintOver, RADIUS_RANGE_MM, Tool};
use crate::editing::{Confirm, EditCommand, UnsavedChoice};
use crate::render::label_colour;
use crate::studio::{CaseView, Command};
use eframe::egui;
use std::collections::BTreeMap;

/// What the panel needs to know beyond the case on screen.
pub struct PanelContext<'a> {
    /// Label names from dataset.json.
    pub label_names: &'a BTreeMap<u32, String>,
    /// Whether the case has a ground-truth file that could be overwritten.
    pub has_ground_truth_file: bool,
    /// Whether a label is being written.
    pub writing: bool,
}

/// Draws the annotation section of the right panel.
pub fn annotation_panel_ui(
    ui: &mut egui::Ui,
    view: &CaseView,
    brush: &mut BrushSettings,
    context: &PanelContext<'_>,
    commands: &mut Vec<Command>,
) {
    let edit = |command| Command::Edit(command);
    ui.heading("Annotation");
    ui.horizontal(|ui| {
        for (tool, hint) in [
            (Tool::Navigate, "Click moves the crosshair, drag pans"),
            (Tool::Brush, "Paint the selected label (B)"),
            (Tool::Eraser, "Erase (E)"),
        ] {
            if ui
                .selectable_label(brush.tool == tool, tool.name())
                .on_hover_text(hint)
                .clicked()
            {
                brush.tool = tool;
            }
        }
    });
    ui.horizontal(|ui| {
        ui.radio_value(&mut brush.shape, BrushShape::Disc, "2-D disc");
        ui.radio_value(&mut brush.shape, BrushShape::Ball, "3-D ball");
    });
    ui.horizontal(|ui| {
        let label = ui.label("Radius (mm)");
        ui.add(
            egui::DragValue::new(&mut brush.radius_mm)
                .speed(0.1)
                .range(RADIUS_RANGE_MM.0..=RADIUS_RANGE_MM.1),
        )
        .labelled_by(label.id)
        .on_hover_text("[ and ] change it");
    });
    label_picker_ui(ui, view, brush, context.label_names);
    ui.horizontal(|ui| {
        ui.label("Paint over");
        ui.radio_value(&mut brush.paint_over, PaintOver::Background, "Background only")
            .on_hover_text("Never paint over another label; the eraser removes only the selected label");
        ui.radio_value(&mut brush.paint_over, PaintOver::AnyLabel, "Any label");
    });
    let mut limit = brush.intensity_range.is_some();
    if ui.checkbox(&mut limit, "Only intensities in a range").changed() {
        let window = view.window;
        brush.intensity_range = limit.then_some((
            window.level - window.width / 2.0,
            window.level + window.width / 2.0,
        ));
    }
    if let Some((low, high)) = &mut brush.intensity_range {
        ui.horizontal(|ui| {
            let speed = ((*high - *low).abs() * 0.005).max(0.01);
            let label = ui.label("from");
            ui.add(egui::DragValue::new(low).speed(speed))
                .labelled_by(label.id);
            let label = ui.label("to");
            ui.add(egui::DragValue::new(high).speed(speed))
                .labelled_by(label.id);
        });
    }
    ui.separator();
    let undo = &view.edit.undo;
    ui.horizontal(|ui| {
        let undo_text = undo
            .undo_name()
            .map_or("Undo".to_string(), |n| format!("Undo {n}"));
        if ui
            .add_enabled(undo.undo_len() > 0, egui::Button::new(undo_text))
            .clicked()
        {
            commands.push(edit(EditCommand::Undo));
        }
        if ui
            .add_enabled(undo.redo_len() > 0, egui::Button::new("Redo"))
            .clicked()
        {
            commands.push(edit(EditCommand::Redo));
        }
    });
    ui.weak(format!(
        "{} steps, {:.1} MB of history",
        undo.undo_len(),
        undo.bytes() as f64 / 1e6
    ));
    if ui
        .button("Fill between slices")
        .on_hover_text("Interpolate each label between the slices you drew, along the active view's axis")
        .clicked()
    {
        commands.push(edit(EditCommand::FillBetween));
    }
    if ui
        .add_enabled(
            view.case.prediction.is_some(),
            egui::Button::new("Start from prediction"),
        )
        .clicked()
    {
        commands.push(edit(EditCommand::StartFromPrediction));
    }
    ui.separator();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!context.writing, egui::Button::new("Save label"))
            .on_hover_text("Ctrl+S")
            .clicked()
        {
            commands.push(edit(EditCommand::Save));
        }
        if context.writing {
            ui.spinner();
        }
    });
    if ui
        .add_enabled(
            context.has_ground_truth_file && !context.writing,
            egui::Button::new("Overwrite ground truth…"),
        )
        .clicked()
    {
        commands.push(edit(EditCommand::AskOverwriteGroundTruth));
    }
    if view.edit.is_dirty() {
        ui.colored_label(ui.visuals().warn_fg_color, "Unsaved changes");
    }
}

fn label_picker_ui(
    ui: &mut egui::Ui,
    view: &CaseView,
    brush: &mut BrushSettings,
    names: &BTreeMap<u32, String>,
) {
    let mut choices: Vec<(u32, String)> = names
        .iter()
        .filter(|(value, _)| **value > 0)
        .map(|(value, name)| (*value, format!("{value}: {name}")))
        .collect();
    if choices.is_empty() {
        let highest = view.case.label_values.iter().max().copied().unwrap_or(0);
        choices = (1..=highest + 1).map(|v| (v, format!("{v}"))).collect();
    }
    let selected = choices
        .iter()
        .find(|(value, _)| *value == brush.label)
        .map_or_else(|| brush.label.to_string(), |(_, text)| text.clone());
    ui.horizontal(|ui| {
        crate::overlays::swatch_ui(ui, label_colour(brush.label));
        egui::ComboBox::from_label("Label")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                for (value, text) in choices {
                    ui.selectable_value(&mut brush.label, value, text);
                }
            });
    });
}

/// Shows the question waiting in `confirm`, if any; answers become commands.
pub fn confirm_ui(ctx: &egui::Context, confirm: Option<&Confirm>, commands: &mut Vec<Command>) {
    let Some(confirm) = confirm else { return };
    let edit = |command| Command::Edit(command);
    let (title, text, buttons): (&str, String, Vec<(&str, EditCommand)>) = match confirm {
        Confirm::Unsaved(_) => (
            "Unsaved changes",
            "The label of this case has changes that are not saved.".into(),
            vec![
                ("Save", EditCommand::Unsaved(UnsavedChoice::Save)),
                ("Discard", EditCommand::Unsaved(UnsavedChoice::Discard)),
                ("Cancel", EditCommand::Unsaved(UnsavedChoice::Cancel)),
            ],
        ),
        Confirm::OverwriteGroundTruth(path) => (
            "Overwrite ground truth?",
            format!(
                "{} will be replaced by the edited label. This cannot be undone.",
                path.display()
            ),
            vec![
                ("Overwrite", EditCommand::OverwriteGroundTruth),
                ("Cancel", EditCommand::Unsaved(UnsavedChoice::Cancel)),
            ],
        ),
        Confirm::RestoreAutosave(path) => (
            "Restore autosave?",
            format!(
                "An autosaved edit session of this case was found ({}).",
                path.display()
            ),
            vec![
                ("Restore", EditCommand::RestoreAutosave),
                ("Discard", EditCommand::DiscardAutosave),
            ],
        ),
    };
    egui::Modal::new(egui::Id::unique("annotation confirm")).show(ctx, |ui| {
        ui.heading(title);
        ui.label(text);
        ui.horizontal(|ui| {
            for (label, command) in buttons {
                if ui.button(label).clicked() {
                    commands.push(edit(command));
                }
            }
        });
    });
}
