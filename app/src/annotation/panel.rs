//! The annotation panel (tools, brush, label, rules, undo, fill, save) and the commands it and
//! the editor's questions send.

use crate::annotation::brush::{BrushSettings, BrushShape, PaintOver, RADIUS_RANGE_MM, Tool};
use crate::viewer::case_view::CaseView;
use crate::viewer::render::OverlaySettings;
use eframe::egui;
use std::collections::BTreeMap;

/// An annotation command (keys, buttons, dialogs).
#[derive(Debug, Clone, PartialEq)]
pub enum EditCommand {
    /// New brush settings from the panel (tool, shape, radius, label, rules).
    SetBrush(BrushSettings),
    /// Select this tool, or go back to navigating when it already is selected.
    ToggleTool(Tool),
    /// Grow (positive) or shrink the brush by this many steps.
    ResizeBrush(i32),
    /// Take back the last edit.
    Undo,
    /// Apply the last undone edit again.
    Redo,
    /// Save the label to the corrected-labels folder.
    Save,
    /// Ask whether to overwrite the ground-truth file.
    AskOverwriteGroundTruth,
    /// Overwrite the ground-truth file (after the user confirmed).
    OverwriteGroundTruth,
    /// Copy the prediction into the label.
    StartFromPrediction,
    /// Interpolate labels between labelled slices along the active view's axis.
    FillBetween,
    /// Remove islands of the brush's label: keep the largest, or drop those under the brush
    /// settings' `min_island_ml`.
    RemoveIslands(engine::edit::IslandRule),
    /// Load the autosaved edit session offered on opening the case.
    RestoreAutosave,
    /// Delete the autosaved edit session.
    DiscardAutosave,
    /// The answer to "unsaved changes".
    Unsaved(UnsavedChoice),
    /// Stop waiting for the whole-label edit under way and drop its result.
    CancelJob,
    /// Forget the ruler's measurement.
    ClearRuler,
}

/// What to do with unsaved edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsavedChoice {
    /// Save them, then go on.
    Save,
    /// Drop them and go on.
    Discard,
    /// Stay.
    Cancel,
}

/// What the panel needs to know beyond the case on screen.
pub struct PanelContext<'a> {
    /// Label names from dataset.json.
    pub label_names: &'a BTreeMap<u32, String>,
    /// Whether the case has a ground-truth file that could be overwritten.
    pub has_ground_truth_file: bool,
    /// Whether a label is being written.
    pub writing: bool,
    /// The whole-label edit under way ("fill between slices", …), if any.
    pub edit_job: Option<&'static str>,
    /// The overlays as drawn (the legend's label colours).
    pub overlays: &'a OverlaySettings,
}

/// Draws the annotation section of the right panel.
pub fn annotation_panel_ui(
    ui: &mut egui::Ui,
    view: &CaseView,
    brush: &BrushSettings,
    context: &PanelContext<'_>,
    commands: &mut Vec<EditCommand>,
) {
    // The panel edits a copy; a change reaches the app as one command.
    let mut edited = brush.clone();
    brush_ui(ui, view, &mut edited, context);
    match edited.tool {
        Tool::Grow => grow_ui(ui, view, &mut edited),
        Tool::Ruler => ruler_ui(ui, view, commands),
        _ => {}
    }
    history_ui(ui, view, commands);
    islands_ui(ui, &mut edited, commands);
    if edited != *brush {
        commands.push(EditCommand::SetBrush(edited));
    }
    if let Some(what) = context.edit_job {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("{what}…"));
            if ui.button("Cancel").clicked() {
                commands.push(EditCommand::CancelJob);
            }
        });
    }
    save_ui(ui, view, context, commands);
}

/// Tool, shape, radius, label and painting rules.
fn brush_ui(ui: &mut egui::Ui, view: &CaseView, brush: &mut BrushSettings, context: &PanelContext<'_>) {
    ui.heading("Annotation");
    ui.horizontal(|ui| {
        for (tool, hint) in [
            (Tool::Navigate, "Click moves the crosshair, drag pans"),
            (Tool::Brush, "Paint the selected label (B)"),
            (Tool::Eraser, "Erase (E)"),
            (
                Tool::Grow,
                "Click a seed: the region connected to it within the intensity window takes the \
                 label, as one undoable step (G)",
            ),
            (
                Tool::Ruler,
                "Click two points on a slice: their distance in mm (M)",
            ),
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
    label_picker_ui(ui, view, brush, context);
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
}

/// Region growing's window and extent.
fn grow_ui(ui: &mut egui::Ui, view: &CaseView, brush: &mut BrushSettings) {
    let window = view.window;
    let display = (
        window.level - window.width / 2.0,
        window.level + window.width / 2.0,
    );
    ui.horizontal(|ui| {
        ui.radio_value(&mut brush.grow_in_3d, false, "2-D (the slice)");
        ui.radio_value(&mut brush.grow_in_3d, true, "3-D");
    });
    let (low, high) = brush.grow_range.get_or_insert(display);
    ui.horizontal(|ui| {
        let speed = ((*high - *low).abs() * 0.005).max(0.01);
        let label = ui.label("Grow within");
        ui.add(egui::DragValue::new(low).speed(speed))
            .labelled_by(label.id);
        let label = ui.label("to");
        ui.add(egui::DragValue::new(high).speed(speed))
            .labelled_by(label.id);
    });
    if ui
        .button("Use the display window")
        .on_hover_text("Grow over the intensities the window shows from black to white")
        .clicked()
    {
        brush.grow_range = Some(display);
    }
    ui.weak("Click a seed in a view; Undo takes the region back.");
}

/// The ruler's length and its Clear button.
fn ruler_ui(ui: &mut egui::Ui, view: &CaseView, commands: &mut Vec<EditCommand>) {
    let length = view
        .ruler
        .as_ref()
        .and_then(|r| r.length_mm(view.case.image.world_from_voxel()));
    ui.horizontal(|ui| {
        match (length, &view.ruler) {
            (Some(length), _) => ui.label(format!("Ruler: {length:.1} mm")),
            (None, Some(_)) => ui.label("Ruler: click the second point on the same slice"),
            (None, None) => ui.label("Ruler: click two points on a slice"),
        };
        if ui
            .add_enabled(view.ruler.is_some(), egui::Button::new("Clear ruler"))
            .clicked()
        {
            commands.push(EditCommand::ClearRuler);
        }
    });
}

/// Undo, redo, fill between slices and start from prediction.
fn history_ui(ui: &mut egui::Ui, view: &CaseView, commands: &mut Vec<EditCommand>) {
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
            commands.push(EditCommand::Undo);
        }
        if ui
            .add_enabled(undo.redo_len() > 0, egui::Button::new("Redo"))
            .clicked()
        {
            commands.push(EditCommand::Redo);
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
        commands.push(EditCommand::FillBetween);
    }
    if ui
        .add_enabled(
            view.case.prediction.is_some(),
            egui::Button::new("Start from prediction"),
        )
        .clicked()
    {
        commands.push(EditCommand::StartFromPrediction);
    }
}

/// Island removal for the brush's label: keep the largest island, or remove the small ones.
fn islands_ui(ui: &mut egui::Ui, brush: &mut BrushSettings, commands: &mut Vec<EditCommand>) {
    use engine::edit::IslandRule;
    let hover = "Islands are the parts of the brush's label connected face to face; one undoable step";
    if ui.button("Keep largest island").on_hover_text(hover).clicked() {
        commands.push(EditCommand::RemoveIslands(IslandRule::KeepLargest));
    }
    ui.horizontal(|ui| {
        if ui.button("Remove islands under").on_hover_text(hover).clicked() {
            commands.push(EditCommand::RemoveIslands(IslandRule::SmallerThanMl(
                brush.min_island_ml,
            )));
        }
        let label = ui.label("mL");
        ui.add(
            egui::DragValue::new(&mut brush.min_island_ml)
                .range(0.0..=1.0e6)
                .speed(0.01)
                .max_decimals(3),
        )
        .labelled_by(label.id);
    });
}

/// Save, overwrite the ground truth, and whether there are unsaved changes.
fn save_ui(ui: &mut egui::Ui, view: &CaseView, context: &PanelContext<'_>, commands: &mut Vec<EditCommand>) {
    ui.separator();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!context.writing, egui::Button::new("Save label"))
            .on_hover_text("Ctrl+S")
            .clicked()
        {
            commands.push(EditCommand::Save);
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
        commands.push(EditCommand::AskOverwriteGroundTruth);
    }
    if view.edit.is_dirty() {
        ui.colored_label(ui.visuals().warn_fg_color, "Unsaved changes");
    }
}

fn label_picker_ui(
    ui: &mut egui::Ui,
    view: &CaseView,
    brush: &mut BrushSettings,
    context: &PanelContext<'_>,
) {
    let names = context.label_names;
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
        crate::viewer::overlays::swatch_ui(ui, context.overlays.label_colour(brush.label));
        egui::ComboBox::from_label("Label")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                for (value, text) in choices {
                    ui.selectable_value(&mut brush.label, value, text);
                }
            });
    });
}
