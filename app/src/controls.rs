//! The display controls (right panel): window/level presets and values, then the overlays.

use crate::overlays::{AvailableLayers, overlays_ui};
use crate::render::{MIN_WINDOW_WIDTH, OverlaySettings, WindowPreset};
use crate::studio::{CaseView, Command};
use eframe::egui;

/// Draws the window/level section and the overlay section.
pub fn controls_ui(
    ui: &mut egui::Ui,
    view: &mut CaseView,
    presets: &[WindowPreset],
    overlays: &mut OverlaySettings,
    label_names: &std::collections::BTreeMap<u32, String>,
    commands: &mut Vec<Command>,
) {
    ui.heading("Window");
    ui.horizontal_wrapped(|ui| {
        for preset in presets {
            if ui
                .selectable_label(view.preset == Some(*preset), preset.name())
                .clicked()
            {
                commands.push(Command::SetPreset(*preset));
            }
        }
    });
    let width_speed = (view.window.width * 0.005).max(0.01);
    ui.horizontal(|ui| {
        let width_label = ui.label("Width");
        let width = ui
            .add(
                egui::DragValue::new(&mut view.window.width)
                    .speed(width_speed)
                    .range(MIN_WINDOW_WIDTH..=f32::MAX),
            )
            .labelled_by(width_label.id);
        let level_label = ui.label("Level");
        let level = ui
            .add(egui::DragValue::new(&mut view.window.level).speed(width_speed))
            .labelled_by(level_label.id);
        if width.changed() || level.changed() {
            view.preset = None;
        }
    });
    ui.weak("Right-drag in a view: window and level");
    ui.separator();
    ui.heading("Overlays");
    let available = AvailableLayers {
        ground_truth: view.case.ground_truth.is_some(),
        prediction: view.case.prediction.is_some(),
        label_names,
        label_values: &view.case.label_values,
    };
    overlays_ui(ui, overlays, &available);
}
