//! What the views draw beside the slice itself: the heat map's colour bar, the read-out of the
//! voxel under the pointer and the case information under the views.

use crate::viewer::case_view::CaseView;
use crate::viewer::render::Heat;
use eframe::egui::{self, Align2, Color32, FontId, Rect, Stroke, pos2, vec2};

/// What lies under the mouse pointer, for the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct HoverInfo {
    /// Voxel index in the RAS+ volume.
    pub voxel: [usize; 3],
    /// World position in millimetres.
    pub world_mm: [f64; 3],
    /// Image intensity.
    pub intensity: f32,
    /// Ground-truth label value, when there is a ground truth.
    pub ground_truth: Option<u32>,
    /// Predicted label value, when there is a prediction.
    pub prediction: Option<u32>,
}

/// Steps of the colour bar's gradient.
const BAR_STEPS: usize = 32;

/// A vertical colour bar with its value range in the view's lower-right corner.
pub fn colour_bar(painter: &egui::Painter, area: Rect, heat: &Heat) {
    let height = (area.height() * 0.4).clamp(40.0, 200.0);
    let bar = Rect::from_min_size(
        pos2(area.right() - 28.0, area.bottom() - 24.0 - height),
        vec2(12.0, height),
    );
    let step = height / BAR_STEPS as f32;
    for i in 0..BAR_STEPS {
        // Top is the high end.
        let t = 1.0 - (i as f32 + 0.5) / BAR_STEPS as f32;
        let value = heat.low + t * (heat.high - heat.low);
        let cell = Rect::from_min_size(
            pos2(bar.left(), bar.top() + i as f32 * step),
            vec2(bar.width(), step + 0.5),
        );
        painter.rect_filled(cell, 0.0, heat.colour(value));
    }
    painter.rect_stroke(
        bar,
        0.0,
        Stroke::new(1.0, Color32::GRAY),
        egui::StrokeKind::Outside,
    );
    let font = FontId::proportional(11.0);
    for (value, y, anchor) in [
        (heat.high, bar.top(), Align2::RIGHT_TOP),
        (heat.low, bar.bottom(), Align2::RIGHT_BOTTOM),
    ] {
        painter.text(
            pos2(bar.left() - 4.0, y),
            anchor,
            format!("{value:.3}"),
            font.clone(),
            Color32::WHITE,
        );
    }
}

pub(crate) fn hover_info(view: &CaseView, voxel: [usize; 3]) -> HoverInfo {
    let [x, y, z] = voxel;
    let image = &view.case.image;
    let label_at = |label: &crate::common::label::Label| label.at([x, y, z]).map_or(0, u32::from);
    HoverInfo {
        voxel,
        world_mm: image.world_from_voxel().apply(voxel.map(|i| i as f64)),
        intensity: image.at(x, y, z),
        ground_truth: view.case.ground_truth.as_ref().map(label_at),
        prediction: view.case.prediction.as_ref().map(label_at),
    }
}
