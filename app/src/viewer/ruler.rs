//! The ruler: two points clicked on one slice, their distance in mm (the engine's
//! `Affine::distance_mm`, so oblique and sheared grids measure true lengths), drawn on that
//! slice until cleared or replaced by the next measurement.

use crate::common::slice_geometry::{Axis, pixel_of_voxel, slice_size};
use crate::viewer::plane::pixel_centre;
use eframe::egui::{Align2, Color32, FontId, Painter, Rect, Stroke};
use engine::volume::Affine;

/// Colour of the ruler's line, ends and length.
const RULER_COLOUR: Color32 = Color32::from_rgb(90, 230, 255);

/// A measurement on one slice of one view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ruler {
    /// The view it was drawn in.
    pub axis: Axis,
    /// The first point.
    pub start: [usize; 3],
    /// The second point, once clicked.
    pub end: Option<[usize; 3]>,
}

impl Ruler {
    /// The ruler after a click at `voxel` in the view of `axis`: the second point of an open
    /// ruler on the same slice, or else the first point of a new one.
    pub fn click(ruler: Option<Ruler>, axis: Axis, voxel: [usize; 3]) -> Ruler {
        match ruler {
            Some(open)
                if open.end.is_none()
                    && open.axis == axis
                    && open.start[axis.normal()] == voxel[axis.normal()] =>
            {
                Ruler {
                    end: Some(voxel),
                    ..open
                }
            }
            _ => Ruler {
                axis,
                start: voxel,
                end: None,
            },
        }
    }

    /// The slice (index across its view's axis) it lies on.
    pub fn slice(&self) -> usize {
        self.start[self.axis.normal()]
    }

    /// Its length in mm through the scan's voxel-to-world transform, once both ends are set.
    pub fn length_mm(&self, world_from_voxel: &Affine) -> Option<f64> {
        let end = self.end?;
        let point = |v: [usize; 3]| v.map(|c| c as f64);
        Some(world_from_voxel.distance_mm(point(self.start), point(end)))
    }
}

/// Draws `ruler` over slice `slice` of the view across `axis`, shown in `image_rect`, when it
/// lies on that slice of that view.
pub fn draw_ruler(
    painter: &Painter,
    ruler: &Ruler,
    length_mm: Option<f64>,
    shape: [usize; 3],
    axis: Axis,
    slice: usize,
    image_rect: Rect,
) {
    let pixels = slice_size(shape, axis);
    if ruler.axis != axis || ruler.slice() != slice {
        return;
    }
    let at = |voxel| pixel_centre(image_rect, pixels, pixel_of_voxel(shape, axis, voxel));
    let start = at(ruler.start);
    let stroke = Stroke::new(2.0, RULER_COLOUR);
    painter.circle_stroke(start, 4.0, stroke);
    let Some(end) = ruler.end.map(at) else { return };
    painter.circle_stroke(end, 4.0, stroke);
    painter.line_segment([start, end], stroke);
    if let Some(length) = length_mm {
        painter.text(
            end + (end - start).normalized() * 8.0,
            Align2::LEFT_BOTTOM,
            format!("{length:.1} mm"),
            FontId::proportional(14.0),
            RULER_COLOUR,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_click_on_the_same_slice_ends_the_ruler_and_a_third_starts_another() {
        let first = Ruler::click(None, Axis::Axial, [1, 2, 5]);
        assert_eq!(first.end, None);
        // Another slice of the same view: a new ruler, not a line through the volume.
        let elsewhere = Ruler::click(Some(first), Axis::Axial, [4, 6, 6]);
        assert_eq!((elsewhere.start, elsewhere.end), ([4, 6, 6], None));
        let done = Ruler::click(Some(first), Axis::Axial, [4, 6, 5]);
        assert_eq!(done.end, Some([4, 6, 5]));
        // (3, 4, 0) voxels apart on a 1 mm grid: 5 mm.
        assert_eq!(done.length_mm(&Affine::identity()), Some(5.0));
        // On 0.5 mm pixels the same clicks are 2.5 mm apart.
        let fine = Affine::from_diagonal([0.5, 0.5, 3.0]);
        assert_eq!(done.length_mm(&fine), Some(2.5));
        let next = Ruler::click(Some(done), Axis::Axial, [0, 0, 5]);
        assert_eq!((next.start, next.end), ([0, 0, 5], None));
        assert_eq!(next.length_mm(&fine), None);
    }
}
