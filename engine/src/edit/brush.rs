//! The paint brush: a disc in the slice (2-D) or a ball (3-D) whose radius is in millimetres, so
//! it stays round under anisotropic spacing; the bound on how many voxels it may cover; the rules
//! that decide which voxels it may change; and the canvas it paints on.

use super::EditError;
use super::label::{LabelValue, LabelVoxels};
use super::undo::StepRecorder;

/// The brush's footprint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BrushShape {
    /// A disc in the slice being painted on.
    #[default]
    Disc,
    /// A ball reaching into the neighbouring slices.
    Ball,
}

impl BrushShape {
    /// "disc" or "ball".
    pub fn name(self) -> &'static str {
        match self {
            BrushShape::Disc => "disc",
            BrushShape::Ball => "ball",
        }
    }
}

/// Which voxels paint may replace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PaintOver {
    /// Only background; erasing removes only the selected label.
    #[default]
    Background,
    /// Any voxel; erasing removes every label.
    AnyLabel,
}

/// Most voxels one brush footprint may cover: 2²⁰ offsets are 24 MiB, and a stamp that size
/// already takes a noticeable fraction of a frame. (A 100 mm ball on 0.5 mm voxels would be
/// ≈ 33 M offsets, ≈ 800 MB.)
pub const MAX_BRUSH_VOXELS: u64 = 1 << 20;

/// Voxels a brush covers, from its volume: π r² / (sₐ s_b) for a disc across `normal`,
/// 4/3 π r³ / (sx sy sz) for a ball. Within a few voxels of the exact count at any size where
/// the bound matters.
pub fn brush_voxel_estimate(spacing_mm: [f64; 3], radius_mm: f64, shape: BrushShape, normal: usize) -> f64 {
    let spacing = spacing_mm.map(|s| s.max(f64::MIN_POSITIVE));
    match shape {
        BrushShape::Disc => {
            let in_plane: f64 = (0..3).filter(|a| *a != normal).map(|a| spacing[a]).product();
            std::f64::consts::PI * radius_mm * radius_mm / in_plane
        }
        BrushShape::Ball => {
            4.0 / 3.0 * std::f64::consts::PI * radius_mm.powi(3) / spacing.iter().product::<f64>()
        }
    }
}

/// Voxel offsets from the brush centre covered by the brush: every offset whose physical distance
/// `|offset ∘ spacing|` is at most `radius_mm`. A disc keeps the offset along `normal` at 0.
///
/// # Errors
/// [`EditError::BrushTooLarge`] when the brush would cover more than [`MAX_BRUSH_VOXELS`]; the
/// message gives the largest radius allowed at this spacing.
pub fn brush_offsets(
    spacing_mm: [f64; 3],
    radius_mm: f64,
    shape: BrushShape,
    normal: usize,
) -> Result<Vec<[i64; 3]>, EditError> {
    let estimate = brush_voxel_estimate(spacing_mm, radius_mm, shape, normal);
    if estimate.is_nan() || estimate > MAX_BRUSH_VOXELS as f64 {
        // Invert the estimate for the radius that just fits.
        let per_unit = brush_voxel_estimate(spacing_mm, 1.0, shape, normal);
        let power = if shape == BrushShape::Disc { 2.0 } else { 3.0 };
        let largest_radius_mm = (MAX_BRUSH_VOXELS as f64 / per_unit).powf(1.0 / power);
        return Err(EditError::BrushTooLarge {
            radius_mm,
            shape: shape.name(),
            voxels: estimate.min(u64::MAX as f64) as u64,
            largest_radius_mm,
            hint: if shape == BrushShape::Ball {
                ", or the 2-D disc"
            } else {
                ""
            },
        });
    }
    let extent = |axis: usize| -> i64 {
        if shape == BrushShape::Disc && axis == normal {
            0
        } else {
            (radius_mm / spacing_mm[axis].max(f64::MIN_POSITIVE)).floor() as i64
        }
    };
    let [ex, ey, ez] = [extent(0), extent(1), extent(2)];
    let squared_radius = radius_mm * radius_mm;
    let mut offsets = Vec::new();
    for dz in -ez..=ez {
        for dy in -ey..=ey {
            for dx in -ex..=ex {
                let distance = (dx as f64 * spacing_mm[0]).powi(2)
                    + (dy as f64 * spacing_mm[1]).powi(2)
                    + (dz as f64 * spacing_mm[2]).powi(2);
                if distance <= squared_radius {
                    offsets.push([dx, dy, dz]);
                }
            }
        }
    }
    Ok(offsets)
}

/// What one stroke writes and where it may write it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaintRule {
    /// Label written (0 erases).
    pub value: u32,
    /// The selected label (what a protective eraser removes).
    pub selected_label: u32,
    /// Which voxels may be changed.
    pub paint_over: PaintOver,
    /// Only voxels whose intensity lies in this closed range.
    pub intensity_range: Option<(f32, f32)>,
}

impl PaintRule {
    /// Whether a voxel now holding `current`, with image intensity `intensity`, may be changed.
    pub fn allows<L: LabelValue>(&self, current: L, intensity: f32) -> bool {
        if let Some((low, high)) = self.intensity_range
            && !(low <= intensity && intensity <= high)
        {
            return false;
        }
        match (self.paint_over, self.value == 0) {
            (PaintOver::AnyLabel, _) => true,
            (PaintOver::Background, false) => current.label() == 0,
            (PaintOver::Background, true) => current.label() == self.selected_label,
        }
    }
}

/// A label being painted and the image that limits it, both of `shape` (x fastest).
pub struct Canvas<'a, L: LabelValue> {
    /// The label's voxels (a flat slice or chunked storage).
    pub label: &'a mut dyn LabelVoxels<L>,
    /// The image's voxels (for the intensity range).
    pub image: &'a [f32],
    /// Voxels along x, y, z.
    pub shape: [usize; 3],
}

impl<L: LabelValue> Canvas<'_, L> {
    /// Paints the brush `offsets` around `centre` under `rule`, clipped to the volume.
    pub fn stamp(
        &mut self,
        centre: [usize; 3],
        offsets: &[[i64; 3]],
        rule: &PaintRule,
        recorder: &mut StepRecorder<L>,
    ) {
        let [nx, ny, nz] = self.shape;
        let value = L::from_label(rule.value);
        for offset in offsets {
            let x = centre[0] as i64 + offset[0];
            let y = centre[1] as i64 + offset[1];
            let z = centre[2] as i64 + offset[2];
            if x < 0 || y < 0 || z < 0 || x >= nx as i64 || y >= ny as i64 || z >= nz as i64 {
                continue;
            }
            let voxel = [x as usize, y as usize, z as usize];
            let index = (voxel[2] * ny + voxel[1]) * nx + voxel[0];
            let (Some(current), Some(intensity)) = (self.label.voxel(index), self.image.get(index)) else {
                continue;
            };
            if rule.allows(current, *intensity) {
                recorder.set(&mut *self.label, index, voxel, value);
            }
        }
    }

    /// Paints along the straight line from `from` to `to` (both included), one stamp per voxel
    /// step, so a fast drag leaves no gaps.
    pub fn line(
        &mut self,
        from: [usize; 3],
        to: [usize; 3],
        offsets: &[[i64; 3]],
        rule: &PaintRule,
        recorder: &mut StepRecorder<L>,
    ) {
        let delta = [0, 1, 2].map(|a| to[a] as i64 - from[a] as i64);
        let steps = delta.iter().map(|d| d.abs()).max().unwrap_or(0).max(1);
        let mut last = None;
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            let point = [0, 1, 2].map(|a| (from[a] as f64 + t * delta[a] as f64).round() as usize);
            if last != Some(point) {
                self.stamp(point, offsets, rule, recorder);
                last = Some(point);
            }
        }
    }
}

#[cfg(test)]
#[path = "brush_tests.rs"]
mod tests;
