//! "Fill between slices": shape-based interpolation of a label between the slices a user drew,
//! as ITK-SNAP and 3D Slicer do it. For each label and each pair of consecutive labelled slices
//! along an axis, the two masks become signed distance maps (in mm, negative inside), the maps
//! are blended linearly for every slice between, and the blend's negative part is the new mask.
//!
//! This numerical code would belong in `engine` (STYLE habit 1); it lives here until the engine
//! grows a label-editing module, because the engine is being reworked by someone else right now.

use crate::annotation::brush::PaintRule;
use crate::annotation::undo::StepRecorder;
use std::collections::BTreeMap;

/// Squared Euclidean distance transform along one line of samples `spacing` apart
/// (Felzenszwalb & Huttenlocher's lower envelope of parabolas). `f` holds 0 at sites and
/// infinity elsewhere (or any finite squared distance from an earlier pass).
fn squared_distance_1d(f: &[f64], spacing: f64, out: &mut [f64]) {
    let mut sites: Vec<usize> = Vec::new();
    let mut starts: Vec<f64> = Vec::new();
    for (q, value) in f.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        let xq = q as f64 * spacing;
        while let (Some(&p), Some(&start)) = (sites.last(), starts.last()) {
            let xp = p as f64 * spacing;
            let crossing = ((value + xq * xq) - (f[p] + xp * xp)) / (2.0 * (xq - xp));
            if crossing <= start {
                sites.pop();
                starts.pop();
            } else {
                sites.push(q);
                starts.push(crossing);
                break;
            }
        }
        if sites.is_empty() {
            sites.push(q);
            starts.push(f64::NEG_INFINITY);
        }
    }
    if sites.is_empty() {
        out.fill(f64::INFINITY);
        return;
    }
    let mut j = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        let x = i as f64 * spacing;
        while j + 1 < sites.len() && starts[j + 1] < x {
            j += 1;
        }
        let xs = sites[j] as f64 * spacing;
        *slot = (x - xs) * (x - xs) + f[sites[j]];
    }
}

/// Squared distance in mm² from every pixel of a `[columns, rows]` image (columns fastest) to the
/// nearest pixel where `mask == target`; infinity when there is none.
pub fn squared_distance_2d(
    mask: &[bool],
    [columns, rows]: [usize; 2],
    spacing_mm: [f64; 2],
    target: bool,
) -> Vec<f64> {
    let mut field: Vec<f64> = mask
        .iter()
        .map(|m| if *m == target { 0.0 } else { f64::INFINITY })
        .collect();
    let mut line = vec![0.0; columns.max(rows)];
    let mut out = vec![0.0; columns.max(rows)];
    for row in 0..rows {
        let range = row * columns..(row + 1) * columns;
        line[..columns].copy_from_slice(&field[range.clone()]);
        squared_distance_1d(&line[..columns], spacing_mm[0], &mut out[..columns]);
        field[range].copy_from_slice(&out[..columns]);
    }
    for column in 0..columns {
        for row in 0..rows {
            line[row] = field[row * columns + column];
        }
        squared_distance_1d(&line[..rows], spacing_mm[1], &mut out[..rows]);
        for row in 0..rows {
            field[row * columns + column] = out[row];
        }
    }
    field
}

/// Signed distance in mm: distance to the mask for pixels outside it, minus the distance to the
/// outside for pixels in it. The zero level lies half-way between inside and outside pixels.
pub fn signed_distance_2d(mask: &[bool], size: [usize; 2], spacing_mm: [f64; 2]) -> Vec<f64> {
    let to_inside = squared_distance_2d(mask, size, spacing_mm, true);
    let to_outside = squared_distance_2d(mask, size, spacing_mm, false);
    to_inside
        .iter()
        .zip(&to_outside)
        .map(|(a, b)| a.sqrt() - b.sqrt())
        .collect()
}

/// How slices along one axis sit in a flat `[z][y][x]` volume.
struct SliceLayout {
    /// Slices along the axis.
    count: usize,
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
            count: shape[normal],
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
}

/// Fills the unlabelled slices between labelled ones along axis `normal` (0 = x, 1 = y, 2 = z),
/// for every label present, by blending signed distance maps. `rule` decides which voxels may
/// change (its value is replaced by each label in turn). Returns how many voxels were filled.
pub fn fill_between_slices(
    label: &mut [f32],
    image: &[f32],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    normal: usize,
    rule: &PaintRule,
    recorder: &mut StepRecorder,
) -> usize {
    let layout = SliceLayout::new(shape, normal);
    let [columns, rows] = layout.size;
    if label.len() != shape.iter().product::<usize>() || image.len() != label.len() {
        return 0;
    }
    // Which slices hold each label.
    let mut slices_of: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for slice in 0..layout.count {
        let mut present = std::collections::BTreeSet::new();
        for row in 0..rows {
            for column in 0..columns {
                let value = label[layout.voxel(slice, column, row).0];
                if value >= 0.5 {
                    present.insert(value.round() as u32);
                }
            }
        }
        for value in present {
            slices_of.entry(value).or_default().push(slice);
        }
    }
    let plane_spacing = [spacing_mm[layout.in_plane[0]], spacing_mm[layout.in_plane[1]]];
    let before = recorder.len();
    for (value, slices) in slices_of {
        let mask_of = |label: &[f32], slice: usize| -> Vec<bool> {
            let mut mask = Vec::with_capacity(columns * rows);
            for row in 0..rows {
                for column in 0..columns {
                    mask.push(label[layout.voxel(slice, column, row).0].round() == value as f32);
                }
            }
            mask
        };
        let rule = PaintRule {
            value: value as f32,
            selected_label: value as f32,
            ..*rule
        };
        let mut lower: Option<(usize, Vec<f64>)> = None;
        for pair in slices.windows(2) {
            let [a, b] = [pair[0], pair[1]];
            if b - a < 2 {
                lower = None;
                continue;
            }
            let sdf_a = match lower.take() {
                Some((slice, sdf)) if slice == a => sdf,
                _ => signed_distance_2d(&mask_of(label, a), layout.size, plane_spacing),
            };
            let sdf_b = signed_distance_2d(&mask_of(label, b), layout.size, plane_spacing);
            for slice in a + 1..b {
                let t = (slice - a) as f64 / (b - a) as f64;
                for row in 0..rows {
                    for column in 0..columns {
                        let pixel = row * columns + column;
                        if (1.0 - t) * sdf_a[pixel] + t * sdf_b[pixel] > 0.0 {
                            continue;
                        }
                        let (index, voxel) = layout.voxel(slice, column, row);
                        if rule.allows(label[index], image[index]) {
                            recorder.set(label, index, voxel, rule.value);
                        }
                    }
                }
            }
            lower = Some((b, sdf_b));
        }
    }
    recorder.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::brush::PaintOver;

    #[test]
    fn distance_transform_matches_brute_force() {
        let size = [13, 9];
        let spacing = [0.7, 1.9];
        let mask: Vec<bool> = (0..117).map(|i| (i * 37 + i / 5) % 11 == 0).collect();
        let fast = squared_distance_2d(&mask, size, spacing, true);
        for (pixel, distance) in fast.iter().enumerate() {
            let (c, r) = (pixel % 13, pixel / 13);
            let brute = (0..117)
                .filter(|i| mask[*i])
                .map(|i| {
                    let dc = (i % 13) as f64 - c as f64;
                    let dr = (i / 13) as f64 - r as f64;
                    (dc * spacing[0]).powi(2) + (dr * spacing[1]).powi(2)
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                (distance - brute).abs() < 1e-9,
                "pixel {pixel}: {distance} vs {brute}"
            );
        }
        assert!(
            squared_distance_2d(&[false; 4], [2, 2], [1.0, 1.0], true)
                .iter()
                .all(|d| d.is_infinite())
        );
    }

    const FILL: PaintRule = PaintRule {
        value: 1.0,
        selected_label: 1.0,
        paint_over: PaintOver::Background,
        intensity_range: None,
    };

    #[test]
    fn two_discs_interpolate_to_discs_of_intermediate_radius() {
        let shape = [41, 31, 7];
        let spacing = [0.8, 1.2, 3.0];
        let centre_mm = [20.0 * 0.8, 15.0 * 1.2];
        let radius_at = |z: usize| 4.0 + 6.0 * z as f64 / 6.0; // 4 mm at z = 0, 10 mm at z = 6
        let distance = |x: usize, y: usize| {
            ((x as f64 * spacing[0] - centre_mm[0]).powi(2) + (y as f64 * spacing[1] - centre_mm[1]).powi(2))
                .sqrt()
        };
        let count: usize = shape.iter().product();
        let mut label = vec![0.0f32; count];
        for z in [0, 6] {
            for y in 0..31 {
                for x in 0..41 {
                    if distance(x, y) <= radius_at(z) {
                        label[(z * 31 + y) * 41 + x] = 1.0;
                    }
                }
            }
        }
        let image = vec![0.0; count];
        let mut recorder = StepRecorder::default();
        let filled = fill_between_slices(&mut label, &image, shape, spacing, 2, &FILL, &mut recorder);
        assert!(filled > 0);
        // Within one voxel (the larger in-plane spacing) of the disc of interpolated radius.
        let tolerance = 1.2;
        for z in 1..6 {
            let radius = radius_at(z);
            for y in 0..31 {
                for x in 0..41 {
                    let value = label[(z * 31 + y) * 41 + x];
                    let d = distance(x, y);
                    if d < radius - tolerance {
                        assert_eq!(value, 1.0, "z {z}: ({x}, {y}) at {d:.2} mm < {radius} mm");
                    }
                    if d > radius + tolerance {
                        assert_eq!(value, 0.0, "z {z}: ({x}, {y}) at {d:.2} mm > {radius} mm");
                    }
                }
            }
        }
        assert!(recorder.finish("fill").is_some());
    }

    #[test]
    fn each_label_interpolates_on_its_own_and_protected_voxels_stay() {
        // Along x: label 1 squares on x = 0 and x = 4, label 2 squares on x = 0 and x = 2, and a
        // voxel of label 3 between them that the background-only rule must keep.
        let shape = [5, 6, 6];
        let mut label = vec![0.0f32; 180];
        let at = |x: usize, y: usize, z: usize| (z * 6 + y) * 5 + x;
        for (x, value, ys) in [(0, 1.0, 0..3), (4, 1.0, 0..3), (0, 2.0, 4..6), (2, 2.0, 4..6)] {
            for y in ys.clone() {
                for z in 0..3 {
                    label[at(x, y, z)] = value;
                }
            }
        }
        label[at(2, 1, 1)] = 3.0;
        let image = vec![0.0; 180];
        let mut recorder = StepRecorder::default();
        fill_between_slices(&mut label, &image, shape, [1.0; 3], 0, &FILL, &mut recorder);
        for x in 1..4 {
            for y in 0..3 {
                for z in 0..3 {
                    let expected = if (x, y, z) == (2, 1, 1) { 3.0 } else { 1.0 };
                    assert_eq!(label[at(x, y, z)], expected, "({x}, {y}, {z})");
                }
            }
        }
        assert!((0..2).all(|z| label[at(1, 5, z)] == 2.0));
        // Label 2 ends at x = 2: nothing beyond it.
        assert!((0..3).all(|z| label[at(3, 5, z)] == 0.0));
    }
}
