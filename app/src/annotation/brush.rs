//! The brush and eraser as the user sets them: tool, footprint, radius, label and rules. The
//! geometry, the bound on its size and the paint rules are `engine::edit`'s.

pub use engine::edit::{BrushShape, PaintOver, PaintRule};

/// What a primary drag in a view does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tool {
    /// Click moves the crosshair, drag pans.
    #[default]
    Navigate,
    /// Paint the selected label.
    Brush,
    /// Paint background (0).
    Eraser,
    /// Click a seed: the region connected to it within an intensity window takes the label.
    Grow,
    /// Click two points: their distance in mm, kept on the slice until cleared.
    Ruler,
}

impl Tool {
    /// Name shown on its button.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Navigate => "Navigate",
            Tool::Brush => "Brush",
            Tool::Eraser => "Eraser",
            Tool::Grow => "Grow",
            Tool::Ruler => "Ruler",
        }
    }
}

/// Smallest and largest brush radius.
pub const RADIUS_RANGE_MM: (f64, f64) = (0.25, 100.0);
/// `[` and `]` divide or multiply the radius by this.
pub const RADIUS_STEP_FACTOR: f64 = 1.25;

/// The brush and eraser settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BrushSettings {
    /// The active tool.
    pub tool: Tool,
    /// Disc or ball.
    pub shape: BrushShape,
    /// Radius in millimetres.
    pub radius_mm: f64,
    /// The label value painted (from dataset.json's labels).
    pub label: u32,
    /// Which voxels may be changed.
    pub paint_over: PaintOver,
    /// Paint only voxels whose intensity lies in `[low, high]`.
    pub intensity_range: Option<(f32, f32)>,
    /// "Remove islands under": islands of the label smaller than this many mL are removed.
    pub min_island_ml: f64,
    /// Region growing takes voxels whose intensity lies in this closed range; `None` until set
    /// (the first seed then takes the display window).
    pub grow_range: Option<(f32, f32)>,
    /// Region growing through the volume (3-D) instead of the seed's slice (2-D).
    pub grow_in_3d: bool,
}

impl Default for BrushSettings {
    fn default() -> Self {
        Self {
            tool: Tool::Navigate,
            shape: BrushShape::Disc,
            radius_mm: 5.0,
            label: 1,
            paint_over: PaintOver::AnyLabel,
            intensity_range: None,
            min_island_ml: 0.1,
            grow_range: None,
            grow_in_3d: false,
        }
    }
}

impl BrushSettings {
    /// Whether a primary drag paints (brush and eraser) rather than clicking or panning.
    pub fn paints(&self) -> bool {
        matches!(self.tool, Tool::Brush | Tool::Eraser)
    }

    /// Grows (`steps > 0`) or shrinks the radius by [`RADIUS_STEP_FACTOR`] per step.
    pub fn resize(&mut self, steps: i32) {
        self.radius_mm =
            (self.radius_mm * RADIUS_STEP_FACTOR.powi(steps)).clamp(RADIUS_RANGE_MM.0, RADIUS_RANGE_MM.1);
    }

    /// The rule a stroke or a grown region of the active tool follows (`None` when navigating
    /// or measuring).
    pub fn rule(&self) -> Option<PaintRule> {
        let value = match self.tool {
            Tool::Navigate | Tool::Ruler => return None,
            Tool::Brush | Tool::Grow => self.label,
            Tool::Eraser => 0,
        };
        Some(PaintRule {
            value,
            selected_label: self.label,
            paint_over: self.paint_over,
            intensity_range: self.intensity_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_is_bounded_and_navigating_paints_nothing() {
        let mut settings = BrushSettings::default();
        settings.resize(1);
        assert!((settings.radius_mm - 5.0 * 1.25).abs() < 1e-12);
        settings.resize(-100);
        assert_eq!(settings.radius_mm, RADIUS_RANGE_MM.0);
        settings.resize(100);
        assert_eq!(settings.radius_mm, RADIUS_RANGE_MM.1);
        assert_eq!(BrushSettings::default().rule(), None);
        let eraser = BrushSettings {
            tool: Tool::Eraser,
            label: 3,
            ..BrushSettings::default()
        };
        assert_eq!(eraser.rule().map(|r| (r.value, r.selected_label)), Some((0, 3)));
    }
}
