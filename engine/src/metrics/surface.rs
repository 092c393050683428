//! Surface distances between two binary masks, as defined by DeepMind's `surface-distance`
//! (Nikolov et al., 2018, <https://github.com/deepmind/surface-distance>).
//!
//! Surface elements ("surfels") live on the grid of voxel corners: corner (i, j, k) sees the
//! 2×2×2 voxels (i−1..=i, j−1..=j, k−1..=k). Its 8-bit neighbourhood code is a border when it is
//! neither 0 nor 255, and its area is the sum of the marching-cubes triangle areas for that code,
//! scaled by the spacing. Each border corner's distance to the other mask's surface is the exact
//! Euclidean distance to the nearest border corner of the other mask. HD95 and the surface Dice
//! (NSD) weight each surfel by its area, exactly as `compute_robust_hausdorff` and
//! `compute_surface_dice_at_tolerance` do.

use super::distance_transform::squared_distance_to_sites;
use super::surfel_table::NEIGHBOUR_CODE_TO_NORMALS;

/// Codes with every voxel inside (or none) are not on the surface.
const FULL_NEIGHBOURHOOD: u8 = 0xFF;

/// Inclusive voxel bounding box: `(min, max)` per axis.
pub type BoundingBox = ([usize; 3], [usize; 3]);

/// The surfels of both masks with their areas and their distances to the other surface, each
/// list sorted by (distance, area) as in `surface-distance`. A mask with no surface gives empty
/// lists for itself and infinite distances for the other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurfaceDistances {
    /// Distance (mm) from each ground-truth surfel to the predicted surface, ascending.
    pub distances_gt_to_pred_mm: Vec<f64>,
    /// Area (mm²) of each ground-truth surfel, in the same order.
    pub surfel_areas_gt_mm2: Vec<f64>,
    /// Distance (mm) from each predicted surfel to the ground-truth surface, ascending.
    pub distances_pred_to_gt_mm: Vec<f64>,
    /// Area (mm²) of each predicted surfel, in the same order.
    pub surfel_areas_pred_mm2: Vec<f64>,
}

/// Area (mm²) of the surface through a 2×2×2 cell, for each of the 256 neighbourhood codes
/// (`create_table_neighbour_code_to_surface_area`).
pub fn surfel_area_table(spacing_mm: [f64; 3]) -> [f64; 256] {
    let [sx, sy, sz] = spacing_mm;
    let mut table = [0.0; 256];
    for (area, normals) in table.iter_mut().zip(NEIGHBOUR_CODE_TO_NORMALS.iter()) {
        *area = normals
            .iter()
            .map(|n| {
                let scaled = [n[0] * sy * sz, n[1] * sx * sz, n[2] * sx * sy];
                scaled.iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .sum();
    }
    table
}

/// Bit of voxel offset (a, b, c) ∈ {0,1}³ in the neighbourhood code: `[[[128, 64], [32, 16]],
/// [[8, 4], [2, 1]]]` indexed by (a, b, c), i.e. the package's `ENCODE_NEIGHBOURHOOD_3D_KERNEL`.
pub fn neighbour_bit(a: usize, b: usize, c: usize) -> u8 {
    1 << (7 - (4 * a + 2 * b + c))
}

/// Inclusive bounding box of the `true` voxels, or `None` when there are none.
pub fn bounding_box(mask: &[bool], shape: [usize; 3]) -> Option<BoundingBox> {
    let [nx, ny, _] = shape;
    let mut found: Option<BoundingBox> = None;
    for (i, _) in mask.iter().enumerate().filter(|(_, inside)| **inside) {
        let p = [i % nx, (i / nx) % ny, i / (nx * ny)];
        let (lo, hi) = found.get_or_insert((p, p));
        for axis in 0..3 {
            lo[axis] = lo[axis].min(p[axis]);
            hi[axis] = hi[axis].max(p[axis]);
        }
    }
    found
}

/// Neighbourhood codes on the corner grid of the box `(min, max)` of a mask: the grid has
/// `max − min + 2` corners per axis and voxels outside the box count as outside the mask.
fn neighbour_codes(mask: &[bool], shape: [usize; 3], (min, max): BoundingBox) -> (Vec<u8>, [usize; 3]) {
    let [nx, ny, _] = shape;
    let corners = [0, 1, 2].map(|a| max[a] - min[a] + 2);
    let [cx, cy, cz] = corners;
    // Padded copy: one zero voxel before and after the box on every axis.
    let padded_shape = corners.map(|c| c + 1);
    let [px, py, _] = padded_shape;
    let mut padded = vec![0u8; padded_shape.iter().product()];
    for z in min[2]..=max[2] {
        for y in min[1]..=max[1] {
            for x in min[0]..=max[0] {
                let source = (z * ny + y) * nx + x;
                let target = ((z - min[2] + 1) * py + (y - min[1] + 1)) * px + (x - min[0] + 1);
                padded[target] = u8::from(mask[source]);
            }
        }
    }
    let mut codes = vec![0u8; cx * cy * cz];
    for k in 0..cz {
        for j in 0..cy {
            for i in 0..cx {
                let mut code = 0u8;
                for (a, b, c) in (0..8).map(|bit| (bit >> 2 & 1, bit >> 1 & 1, bit & 1)) {
                    if padded[((k + c) * py + (j + b)) * px + (i + a)] != 0 {
                        code |= neighbour_bit(a, b, c);
                    }
                }
                codes[(k * cy + j) * cx + i] = code;
            }
        }
    }
    (codes, corners)
}

/// Surfels of two masks and their distances to each other's surface
/// (`compute_surface_distances`). Both masks have `shape` (x fastest) and `spacing_mm`.
pub fn compute_surface_distances(
    ground_truth: &[bool],
    prediction: &[bool],
    shape: [usize; 3],
    spacing_mm: [f64; 3],
) -> SurfaceDistances {
    let union: Vec<bool> = ground_truth
        .iter()
        .zip(prediction)
        .map(|(g, p)| *g || *p)
        .collect();
    let Some(region) = bounding_box(&union, shape) else {
        return SurfaceDistances::default();
    };
    let areas = surfel_area_table(spacing_mm);
    let (codes_gt, corners) = neighbour_codes(ground_truth, shape, region);
    let (codes_pred, _) = neighbour_codes(prediction, shape, region);
    let is_border = |code: &u8| *code != 0 && *code != FULL_NEIGHBOURHOOD;
    let borders_gt: Vec<bool> = codes_gt.iter().map(is_border).collect();
    let borders_pred: Vec<bool> = codes_pred.iter().map(is_border).collect();

    // One distance map at a time keeps peak memory at one f64 per corner.
    let to_pred = squared_distance_to_sites(&borders_pred, corners, spacing_mm);
    let (distances_gt_to_pred_mm, surfel_areas_gt_mm2) =
        sorted_surfels(&borders_gt, &codes_gt, &to_pred, &areas);
    drop(to_pred);
    let to_gt = squared_distance_to_sites(&borders_gt, corners, spacing_mm);
    let (distances_pred_to_gt_mm, surfel_areas_pred_mm2) =
        sorted_surfels(&borders_pred, &codes_pred, &to_gt, &areas);
    SurfaceDistances {
        distances_gt_to_pred_mm,
        surfel_areas_gt_mm2,
        distances_pred_to_gt_mm,
        surfel_areas_pred_mm2,
    }
}

/// (distance, area) of every border corner, sorted by distance then area.
fn sorted_surfels(
    borders: &[bool],
    codes: &[u8],
    squared_distances: &[f64],
    areas: &[f64; 256],
) -> (Vec<f64>, Vec<f64>) {
    let mut surfels: Vec<(f64, f64)> = borders
        .iter()
        .enumerate()
        .filter(|(_, border)| **border)
        .map(|(i, _)| (squared_distances[i].sqrt(), areas[usize::from(codes[i])]))
        .collect();
    surfels.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    surfels.into_iter().unzip()
}

/// The distance below which `percent` % of the surface area lies (`searchsorted` on the
/// normalised cumulative area, as the package does), or ∞ with no surfels.
fn area_weighted_percentile(distances: &[f64], areas: &[f64], percent: f64) -> f64 {
    if distances.is_empty() {
        return f64::INFINITY;
    }
    let total: f64 = areas.iter().sum();
    let target = percent / 100.0;
    let mut cumulative = 0.0;
    for (index, area) in areas.iter().enumerate() {
        cumulative += area;
        if cumulative / total >= target {
            return distances[index];
        }
    }
    distances[distances.len() - 1]
}

impl SurfaceDistances {
    /// Robust Hausdorff distance (mm) at `percent` (`compute_robust_hausdorff`): the larger of
    /// the two directed area-weighted percentiles; ∞ when either surface is missing.
    pub fn robust_hausdorff_mm(&self, percent: f64) -> f64 {
        let gt_to_pred =
            area_weighted_percentile(&self.distances_gt_to_pred_mm, &self.surfel_areas_gt_mm2, percent);
        let pred_to_gt = area_weighted_percentile(
            &self.distances_pred_to_gt_mm,
            &self.surfel_areas_pred_mm2,
            percent,
        );
        gt_to_pred.max(pred_to_gt)
    }

    /// Surface Dice at `tolerance_mm` (`compute_surface_dice_at_tolerance`): the area of both
    /// surfaces within the tolerance of the other, over their total area; NaN with no surfels.
    pub fn surface_dice(&self, tolerance_mm: f64) -> f64 {
        let within = |distances: &[f64], areas: &[f64]| -> f64 {
            distances
                .iter()
                .zip(areas)
                .filter(|(d, _)| **d <= tolerance_mm)
                .map(|(_, a)| a)
                .sum()
        };
        let overlap = within(&self.distances_gt_to_pred_mm, &self.surfel_areas_gt_mm2)
            + within(&self.distances_pred_to_gt_mm, &self.surfel_areas_pred_mm2);
        let total =
            self.surfel_areas_gt_mm2.iter().sum::<f64>() + self.surfel_areas_pred_mm2.iter().sum::<f64>();
        overlap / total
    }
}
