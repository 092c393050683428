//! The Activations tab: models A and B, layer, attention block and head, reduction, colour map
//! and opacity, capture, and what was captured.

use crate::model::panels::{ModelCommand, model_picker};
use crate::model::training::{Job, ModelJobs};
use eframe::egui;
use engine::infer::{Colormap, Reduction};

/// The Activations tab.
pub fn activations_panel_ui(
    ui: &mut egui::Ui,
    jobs: &mut ModelJobs,
    has_case: bool,
    commands: &mut Vec<ModelCommand>,
) {
    let capturing = jobs.job == Some(Job::Capturing) || jobs.activations.is_capturing();
    let before = display_state(jobs);
    ui.label("Model A (e.g. ViT-Baseline)");
    let a = jobs.activations.models[0]
        .clone()
        .or_else(|| jobs.checkpoint.clone());
    model_picker(ui, jobs, 0, a.as_ref(), commands);
    ui.label("Model B (e.g. MedVisionLlama), optional");
    let b = jobs.activations.models[1].clone();
    model_picker(ui, jobs, 1, b.as_ref(), commands);
    let panel = &mut jobs.activations;
    egui::Grid::new("activation-choices")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("Layer");
            let layers = crate::model::activations::layer_choices(panel.attention);
            let shown = layers
                .iter()
                .find(|(stem, _)| *stem == panel.layer)
                .map_or(panel.layer.clone(), |(_, name)| name.clone());
            egui::ComboBox::from_id_salt("layer")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (stem, name) in layers {
                        ui.selectable_value(&mut panel.layer, stem, name);
                    }
                });
            ui.end_row();
            ui.label("Attention");
            ui.horizontal(|ui| {
                ui.add(
                    egui::DragValue::new(&mut panel.attention.0)
                        .range(0..=63)
                        .prefix("block "),
                );
                ui.add(
                    egui::DragValue::new(&mut panel.attention.1)
                        .range(0..=63)
                        .prefix("head "),
                );
            })
            .response
            .on_hover_text(
                "Attention received per token in this ViT block and head (capture again after changing)",
            );
            ui.end_row();
            ui.label("Reduction");
            ui.horizontal(|ui| {
                for (reduction, name) in [
                    (Reduction::L2, "L2"),
                    (Reduction::Mean, "mean"),
                    (Reduction::Pca, "PCA 1"),
                ] {
                    ui.selectable_value(&mut panel.reduction, reduction, name);
                }
            });
            ui.end_row();
            ui.label("Colour map");
            ui.horizontal(|ui| {
                for (map, name) in [
                    (Colormap::Inferno, "inferno"),
                    (Colormap::Viridis, "viridis"),
                    (Colormap::Grey, "grey"),
                ] {
                    ui.selectable_value(&mut panel.colormap, map, name);
                }
            });
            ui.end_row();
            ui.label("Opacity");
            ui.add(egui::Slider::new(&mut panel.opacity, 0.0..=1.0));
            ui.end_row();
        });
    ui.checkbox(&mut panel.visible, "Show over the views");
    ui.checkbox(&mut panel.side_by_side, "A and B side by side (active view)");
    ui.horizontal(|ui| {
        let enabled = has_case && !capturing && jobs.job.is_none();
        if ui
            .add_enabled(enabled, egui::Button::new("Capture"))
            .on_hover_text("Run the model(s) on this case and keep every layer's map")
            .clicked()
        {
            commands.push(ModelCommand::Capture);
        }
        if capturing {
            ui.spinner();
            ui.label("capturing…");
        }
    });
    let panel = &jobs.activations;
    if let Some(error) = &panel.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    for (slot, captured) in panel.captured.iter().enumerate() {
        if let Some(captured) = captured {
            ui.weak(format!(
                "{}: {} maps of {}",
                panel.model_name(slot),
                captured.maps.len(),
                captured
                    .scan
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
        }
    }
    if display_state(jobs) != before {
        jobs.activations.generation += 1;
    }
}

/// What of the activations panel changes the pixels drawn.
fn display_state(jobs: &ModelJobs) -> (String, Colormap, u32, bool, bool) {
    let panel = &jobs.activations;
    (
        panel.layer.clone(),
        panel.colormap,
        panel.opacity.to_bits(),
        panel.visible,
        panel.side_by_side,
    )
}
