//! The display controls (right panel): the channel of a multi-channel scan, window/level
//! presets and values, then the overlays.

use crate::viewer::case_view::CaseView;
use crate::viewer::command::ViewCommand;
use crate::viewer::overlays::{AvailableLayers, overlays_ui};
use crate::viewer::render::{MIN_WINDOW_WIDTH, OverlaySettings, WindowPreset};
use eframe::egui;

/// The channel picker of a multi-channel scan, named from dataset.json's `modality`.
fn channel_ui(ui: &mut egui::Ui, view: &CaseView, commands: &mut Vec<ViewCommand>) {
    let names = &view.case.channel_names;
    if names.len() < 2 {
        return;
    }
    let text = |c: usize| format!("{c}: {}", names[c]);
    egui::ComboBox::from_label("Channel")
        .selected_text(text(view.case.channel))
        .show_ui(ui, |ui| {
            for channel in 0..names.len() {
                if ui
                    .selectable_label(view.case.channel == channel, text(channel))
                    .clicked()
                {
                    commands.push(ViewCommand::SetChannel(channel));
                }
            }
        })
        .response
        .on_hover_text("C: next channel; each channel keeps its own window");
}

/// Draws the window/level section and the overlay section.
pub fn controls_ui(
    ui: &mut egui::Ui,
    view: &CaseView,
    presets: &[WindowPreset],
    overlays: &OverlaySettings,
    label_names: &std::collections::BTreeMap<u32, String>,
    commands: &mut Vec<ViewCommand>,
) {
    channel_ui(ui, view, commands);
    ui.heading("Window");
    ui.horizontal_wrapped(|ui| {
        for preset in presets {
            if ui
                .selectable_label(view.preset == Some(*preset), preset.name())
                .clicked()
            {
                commands.push(ViewCommand::SetPreset(*preset));
            }
        }
    });
    let mut window = view.window;
    let width_speed = (window.width * 0.005).max(0.01);
    ui.horizontal(|ui| {
        let width_label = ui.label("Width");
        let width = ui
            .add(
                egui::DragValue::new(&mut window.width)
                    .speed(width_speed)
                    .range(MIN_WINDOW_WIDTH..=f32::MAX),
            )
            .labelled_by(width_label.id);
        let level_label = ui.label("Level");
        let level = ui
            .add(egui::DragValue::new(&mut window.level).speed(width_speed))
            .labelled_by(level_label.id);
        if width.changed() || level.changed() {
            commands.push(ViewCommand::SetWindow(window));
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
        uncertainty: view.case.uncertainty.is_some(),
    };
    let mut edited = overlays.clone();
    overlays_ui(ui, &mut edited, &available);
    if edited != *overlays {
        commands.push(ViewCommand::SetOverlays(edited));
    }
}
