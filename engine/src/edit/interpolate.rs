//! "Fill between slices": shape-based interpolation of one label between the slices a user drew
//! it on, as ITK-SNAP and 3D Slicer do it. For each pair of consecutive drawn slices along an
//! axis, the two masks become signed distance maps (in mm, negative inside, from the metrics'
//! exact distance transform), the maps are blended linearly for every slice between, and the
//! blend's non-positive part is the new mask.
//!
//! Only the active label changes, and only between slices it was drawn on: labels loaded from a
//! file, other labels and slices never drawn on are left alone, so two separate lesions of one
//! label are not bridged unless the user drew both in the same series of slices.

use super::EditError;
use super::brush::PaintRule;
use super::label::{LabelValue, LabelVoxels};
use super::undo::StepRecorder;
use crate::metrics::squared_distance_to_sites;

/// Signed distance in mm of every pixel of a `[columns, rows]` image (columns fastest) to the
/// boundary of `mask`: the distance to the mask outside it, minus the distance to the outside
/// within it. All `+∞` when the mask is empty, all `−∞` when it is full.
pub fn signed_distance_2d(mask: &[bool], [columns, rows]: [usize; 2], spacing_mm: [f64; 2]) -> Vec<f64> {
    let shape = [columns, rows, 1];
    let spacing = [spacing_mm[0], spacing_mm[1], 1.0];
    let outside: Vec<bool> = mask.iter().map(|m| !m).collect();
    let to_inside = squared_distance_to_sites(mask, shape, spacing);
    let to_outside = squared_distance_to_sites(&outside, shape, spacing);
    to_inside
        .iter()
        .zip(&to_outside)
        .map(|(a, b)| a.sqrt() - b.sqrt())
        .collect()
}

/// How slices along one axis sit in a flat volume (x fastest).
struct SliceLayout {
    /// Pixels per slice, `[columns, rows]` (the two other axes, lower axis first).
    size: [usize; 2],
    /// In-plane axes, lower first.
    in_plane: [usize; 2],
    strides: [usize; 3],
    normal: usize,
}

impl SliceLayout {
    fn new(shape: [usize; 3], normal: usize) -> Self {
        let in_plane = match normal {
            0 => [1, 2],
            1 => [0, 2],
            _ => [0, 1],
        };
        Self {
            size: [shape[in_plane[0]], shape[in_plane[1]]],
            in_plane,
            strides: [1, shape[0], shape[0] * shape[1]],
            normal,
        }
    }

    /// Flat index and voxel of pixel `[column, row]` of `slice`.
    fn voxel(&self, slice: usize, column: usize, row: usize) -> (usize, [usize; 3]) {
        let mut voxel = [0; 3];
        voxel[self.normal] = slice;
        voxel[self.in_plane[0]] = column;
        voxel[self.in_plane[1]] = row;
        let index = voxel[0] * self.strides[0] + voxel[1] * self.strides[1] + voxel[2] * self.strides[2];
        (index, voxel)
    }

    /// The mask of label `value` on `slice`, `[columns, rows]` with columns fastest.
    fn mask<L: LabelValue>(&self, label: &dyn LabelVoxels<L>, slice: usize, value: u32) -> Vec<bool> {
        let [columns, rows] = self.size;
        let mut mask = Vec::with_capacity(columns * rows);
        for row in 0..rows {
            for column in 0..columns {
                let index = self.voxel(slice, column, row).0;
                mask.push(label.voxel(index).is_some_and(|v| v.label() == value));
            }
        }
        mask
    }
}

/// Fills label `rule.value` on the slices between consecutive `drawn_slices` along axis `normal`
/// (0 = x, 1 = y, 2 = z) by blending signed distance maps; `rule` also decides which voxels may
/// change. Drawn slices that no longer hold the label are skipped. Returns how many voxels were
/// filled. `stop` is asked before each filled slice; when it says so the fill ends with
/// [`EditError::Cancelled`], having changed only what `recorder` holds (undo it, or drop the copy).
///
/// # Errors
/// [`EditError::ShapeMismatch`] when `label` or `image` does not fit `shape`;
/// [`EditError::NothingToFill`] when fewer than two drawn slices hold the label, or none of them
/// has an unlabelled slice between it and the next; [`EditError::Cancelled`] when `stop` said so.
#[allow(clippy::too_many_arguments)] // one call site per caller; a struct would only rename them
pub fn fill_between_slices<L: LabelValue>(
    label: &mut dyn LabelVoxels<L>,
    image: &[f32],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    normal: usize,
    drawn_slices: &[usize],
    rule: &PaintRule,
    recorder: &mut StepRecorder<L>,
    stop: &dyn Fn() -> bool,
) -> Result<usize, EditError> {
    let expected: usize = shape.iter().product();
    if label.voxel_count() != expected || image.len() != expected || normal > 2 {
        return Err(EditError::ShapeMismatch {
            label: label.voxel_count(),
            image: image.len(),
            shape,
            expected,
        });
    }
    let layout = SliceLayout::new(shape, normal);
    let [columns, rows] = layout.size;
    let value = rule.value;
    let mut slices: Vec<usize> = drawn_slices
        .iter()
        .copied()
        .filter(|s| *s < shape[normal])
        .collect();
    slices.sort_unstable();
    slices.dedup();
    slices.retain(|s| layout.mask(&*label, *s, value).contains(&true));
    let gaps = slices.windows(2).filter(|pair| pair[1] - pair[0] >= 2).count();
    if gaps == 0 {
        return Err(EditError::NothingToFill {
            label: value,
            drawn: slices.len(),
            plural: if slices.len() == 1 { "slice" } else { "slices" },
        });
    }
    let plane_spacing = [spacing_mm[layout.in_plane[0]], spacing_mm[layout.in_plane[1]]];
    let written = L::from_label(value);
    let before = recorder.len();
    let mut lower: Option<(usize, Vec<f64>)> = None;
    for pair in slices.windows(2) {
        let [a, b] = [pair[0], pair[1]];
        let sdf_a = match lower.take() {
            Some((slice, sdf)) if slice == a => sdf,
            _ => signed_distance_2d(&layout.mask(&*label, a, value), layout.size, plane_spacing),
        };
        let sdf_b = signed_distance_2d(&layout.mask(&*label, b, value), layout.size, plane_spacing);
        for slice in a + 1..b {
            if stop() {
                return Err(EditError::Cancelled);
            }
            let t = (slice - a) as f64 / (b - a) as f64;
            for row in 0..rows {
                for column in 0..columns {
                    let pixel = row * columns + column;
                    // NaN (a full slice blended with an empty one) is outside.
                    let blend = (1.0 - t) * sdf_a[pixel] + t * sdf_b[pixel];
                    if blend.is_nan() || blend > 0.0 {
                        continue;
                    }
                    let (index, voxel) = layout.voxel(slice, column, row);
                    let current = label.voxel(index).unwrap_or_default();
                    if rule.allows(current, image[index]) {
                        recorder.set(&mut *label, index, voxel, written);
                    }
                }
            }
        }
        lower = Some((b, sdf_b));
    }
    Ok(recorder.len() - before)
}

#[cfg(test)]
#[path = "interpolate_tests.rs"]
mod tests;
