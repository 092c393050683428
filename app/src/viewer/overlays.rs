//! The overlay panel: ground truth, prediction and difference layers with opacity, fill or
//! outline, and per-label visibility; the label legend takes names from dataset.json and sets
//! each label's colour and opacity.

use crate::viewer::render::{
    FALSE_NEGATIVE_COLOUR, FALSE_POSITIVE_COLOUR, LabelStyle, Layer, LayerStyle, OverlaySettings,
    TRUE_POSITIVE_COLOUR, label_colour,
};
use eframe::egui::{self, Color32, Sense, vec2};
use std::collections::{BTreeMap, BTreeSet};

/// Side of a colour swatch in the legend, in points.
const SWATCH_SIZE: f32 = 12.0;

/// Which layers the current case has.
pub struct AvailableLayers<'a> {
    /// A ground truth was loaded.
    pub ground_truth: bool,
    /// A prediction was loaded.
    pub prediction: bool,
    /// Label value → name from dataset.json.
    pub label_names: &'a BTreeMap<u32, String>,
    /// Label values present in the case.
    pub label_values: &'a BTreeSet<u32>,
    /// The prediction has an uncertainty map.
    pub uncertainty: bool,
}

/// The overlay controls and the legend.
pub fn overlays_ui(ui: &mut egui::Ui, settings: &mut OverlaySettings, available: &AvailableLayers<'_>) {
    ui.checkbox(&mut settings.enabled, "Show overlays")
        .on_hover_text("O toggles all overlays");
    ui.add_enabled_ui(settings.enabled, |ui| {
        layer_ui(
            ui,
            "Ground truth",
            &mut settings.ground_truth,
            available.ground_truth,
        );
        layer_ui(ui, "Prediction", &mut settings.prediction, available.prediction);
        layer_ui(
            ui,
            "Difference",
            &mut settings.difference,
            available.ground_truth && available.prediction,
        );
        ui.add_enabled_ui(available.uncertainty, |ui| {
            ui.checkbox(&mut settings.uncertainty, "Uncertainty (heat)")
                .on_hover_text("The prediction's uncertainty map: dark is certain, bright is even odds")
                .on_disabled_hover_text("No uncertainty map: predict with uncertainty on (Training tab)");
        });
        if !available.prediction {
            ui.weak(
                "No prediction: put labelsPred/<case>.nii.gz in the task folder, or pass --prediction FILE.",
            );
        }
        ui.add(egui::Slider::new(&mut settings.opacity, 0.0..=1.0).text("Opacity"));
        if settings.difference.visible {
            swatch_label_ui(ui, TRUE_POSITIVE_COLOUR, "TP: in both");
            swatch_label_ui(ui, FALSE_POSITIVE_COLOUR, "FP: prediction only");
            swatch_label_ui(ui, FALSE_NEGATIVE_COLOUR, "FN: ground truth only");
        }
        ui.separator();
        ui.strong("Labels");
        let values: BTreeSet<u32> = available
            .label_names
            .keys()
            .chain(available.label_values)
            .copied()
            .filter(|v| *v > 0)
            .collect();
        if values.is_empty() {
            ui.weak("no labels");
        }
        for value in values {
            let name = available
                .label_names
                .get(&value)
                .cloned()
                .unwrap_or_else(|| format!("label {value}"));
            let mut visible = !settings.hidden_labels.contains(&value);
            ui.horizontal(|ui| {
                label_style_ui(ui, settings, value, &name);
                if ui.checkbox(&mut visible, format!("{value}: {name}")).changed() {
                    if visible {
                        settings.hidden_labels.remove(&value);
                    } else {
                        settings.hidden_labels.insert(value);
                    }
                }
            });
        }
        if !settings.label_styles.is_empty()
            && ui
                .button("Default label colours")
                .on_hover_text("Forget this task's label colours and opacities")
                .clicked()
        {
            settings.label_styles.clear();
        }
    });
}

/// The colour button and opacity of one label in the legend; a change is remembered for the
/// task. A style equal to the default (palette colour, full opacity) is not stored.
fn label_style_ui(ui: &mut egui::Ui, settings: &mut OverlaySettings, value: u32, name: &str) {
    let default = label_colour(value);
    let current = settings.label_colour(value);
    let mut rgb = [current.r(), current.g(), current.b()];
    let mut opacity = settings
        .label_styles
        .get(&value)
        .map_or(1.0, |style| style.opacity);
    let colour_changed = egui::color_picker::color_edit_button_srgb(ui, &mut rgb)
        .on_hover_text(format!("Colour of {name}"))
        .changed();
    let opacity_changed = ui
        .add(
            egui::DragValue::new(&mut opacity)
                .range(0.0..=1.0)
                .speed(0.01)
                .fixed_decimals(2),
        )
        .on_hover_text(format!(
            "Opacity of {name}: times the overlay opacity on the planes, of its surface in the 3D view"
        ))
        .changed();
    if colour_changed || opacity_changed {
        if rgb == [default.r(), default.g(), default.b()] && opacity >= 1.0 {
            settings.label_styles.remove(&value);
        } else {
            settings.label_styles.insert(
                value,
                LabelStyle {
                    colour: rgb,
                    opacity: opacity.clamp(0.0, 1.0),
                },
            );
        }
    }
}

fn layer_ui(ui: &mut egui::Ui, name: &str, layer: &mut Layer, available: bool) {
    ui.add_enabled_ui(available, |ui| {
        ui.horizontal(|ui| {
            ui.checkbox(&mut layer.visible, name);
            for style in [LayerStyle::Fill, LayerStyle::Outline] {
                ui.selectable_value(&mut layer.style, style, style_name(style));
            }
        });
    });
}

fn style_name(style: LayerStyle) -> &'static str {
    match style {
        LayerStyle::Fill => "fill",
        LayerStyle::Outline => "outline",
    }
}

/// A small filled square of `colour`.
pub fn swatch_ui(ui: &mut egui::Ui, colour: Color32) {
    let (rect, _) = ui.allocate_exact_size(vec2(SWATCH_SIZE, SWATCH_SIZE), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, colour);
}

/// A swatch followed by its meaning.
pub fn swatch_label_ui(ui: &mut egui::Ui, colour: Color32, text: &str) {
    ui.horizontal(|ui| {
        swatch_ui(ui, colour);
        ui.label(text);
    });
}
