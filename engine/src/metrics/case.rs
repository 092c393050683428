//! Per-class metrics of one case: a predicted and a ground-truth label volume on the same grid.
//!
//! One parallel pass over the voxels counts, per label, the predicted, true and overlapping
//! voxels and the bounding box of both masks. Surface distances are then computed on that box
//! only (plus the one-corner margin the surfel grid needs), which keeps 512×512×300 volumes fast.

use super::MetricsError;
use super::surface::compute_surface_distances;
use crate::volume::{Affine, Volume};
use rayon::prelude::*;

/// Percentile of the robust Hausdorff distance.
pub const HAUSDORFF_PERCENT: f64 = 95.0;
/// Default NSD tolerance (mm).
pub const DEFAULT_TOLERANCE_MM: f64 = 1.0;
/// Largest label value accepted (labels index a table).
pub const MAX_LABEL: u32 = u16::MAX as u32;
/// Affines may differ by this much (mm, per matrix entry) and still be the same grid.
pub const AFFINE_TOLERANCE_MM: f64 = 1e-3;

/// The six metrics of one class. `None` means undefined (see [`ClassMetrics::both_empty`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassMetrics {
    /// The label value.
    pub label: u32,
    /// 2|P∩G| / (|P|+|G|).
    pub dice: Option<f64>,
    /// |P∩G| / |P∪G|.
    pub jaccard: Option<f64>,
    /// TP / (TP+FN); undefined when the ground truth is empty.
    pub sensitivity: Option<f64>,
    /// TN / (TN+FP); undefined when the ground truth fills the image.
    pub specificity: Option<f64>,
    /// 95th-percentile Hausdorff distance (mm); the image diagonal when one mask is empty.
    pub hd95_mm: Option<f64>,
    /// Normalised surface distance (surface Dice) at the tolerance; 0 when one mask is empty.
    pub nsd: Option<f64>,
    /// Both masks are empty: Dice, Jaccard, HD95 and NSD are undefined and left out of means.
    pub both_empty: bool,
    /// Voxels of this label in the prediction.
    pub prediction_voxels: u64,
    /// Voxels of this label in the ground truth.
    pub ground_truth_voxels: u64,
}

/// Metrics of every label present in either volume (label 0, background, excluded).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseMetrics {
    /// NSD tolerance used (mm).
    pub tolerance_mm: f64,
    /// Image diagonal (mm): the HD95 given when one mask is empty.
    pub diagonal_mm: f64,
    /// One entry per label, ascending.
    pub classes: Vec<ClassMetrics>,
}

/// Counts and extent of one label.
#[derive(Debug, Clone, Copy)]
struct Tally {
    prediction: u64,
    ground_truth: u64,
    overlap: u64,
    min: [usize; 3],
    max: [usize; 3],
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            prediction: 0,
            ground_truth: 0,
            overlap: 0,
            min: [usize::MAX; 3],
            max: [0; 3],
        }
    }
}

impl Tally {
    fn include(&mut self, p: [usize; 3]) {
        for ((lo, hi), v) in self.min.iter_mut().zip(&mut self.max).zip(p) {
            *lo = (*lo).min(v);
            *hi = (*hi).max(v);
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.prediction += other.prediction;
        self.ground_truth += other.ground_truth;
        self.overlap += other.overlap;
        if other.prediction + other.ground_truth > 0 {
            self.include(other.min);
            self.include(other.max);
        }
    }
}

/// The label a voxel value stands for, or an error naming the value and the volume.
pub(crate) fn label_of(value: f32, volume: &'static str) -> Result<u32, MetricsError> {
    let whole = value.round();
    if !value.is_finite() || value < 0.0 || whole != value || whole > MAX_LABEL as f32 {
        return Err(MetricsError::NotALabel { volume, value });
    }
    Ok(whole as u32)
}

/// The largest difference between two affines' rotation-scale and translation entries (mm);
/// NaN when either holds one.
pub(crate) fn affine_difference_mm(a: &Affine, b: &Affine) -> f64 {
    let (a, b) = (a.0, b.0);
    (0..3)
        .flat_map(|r| (0..4).map(move |c| (r, c)))
        .map(|(r, c)| (a[r][c] - b[r][c]).abs())
        .fold(0.0, |largest, d| {
            if d.is_nan() || largest.is_nan() {
                f64::NAN
            } else {
                largest.max(d)
            }
        })
}

/// Refuses volumes that are not on the same grid: different shapes, more than one channel, or
/// affines differing by more than [`AFFINE_TOLERANCE_MM`].
pub fn check_same_grid(prediction: &Volume, ground_truth: &Volume) -> Result<(), MetricsError> {
    let mismatch = |reason: String| Err(MetricsError::GridMismatch { reason });
    if prediction.channels() != 1 || ground_truth.channels() != 1 {
        return mismatch(format!(
            "label volumes must have one channel, got {} (prediction) and {} (ground truth)",
            prediction.channels(),
            ground_truth.channels()
        ));
    }
    if prediction.shape() != ground_truth.shape() {
        return mismatch(format!(
            "shapes differ: {:?} (prediction) vs {:?} (ground truth)",
            prediction.shape(),
            ground_truth.shape()
        ));
    }
    let largest = affine_difference_mm(prediction.world_from_voxel(), ground_truth.world_from_voxel());
    if largest.is_nan() || largest > AFFINE_TOLERANCE_MM {
        return mismatch(format!(
            "voxel-to-world affines differ by up to {largest:.4} mm (limit {AFFINE_TOLERANCE_MM} mm); resample the prediction onto the ground truth's grid"
        ));
    }
    Ok(())
}

/// Counts per label in one pass (parallel over z slices).
fn tally_labels(prediction: &Volume, ground_truth: &Volume) -> Result<Vec<Tally>, MetricsError> {
    let [nx, ny, _] = prediction.shape();
    let plane = nx * ny;
    prediction
        .voxels()
        .par_chunks(plane.max(1))
        .zip(ground_truth.voxels().par_chunks(plane.max(1)))
        .enumerate()
        .map(|(z, (predicted, truth))| {
            let mut tallies: Vec<Tally> = Vec::new();
            for (i, (p, g)) in predicted.iter().zip(truth).enumerate() {
                let (p, g) = (label_of(*p, "prediction")?, label_of(*g, "ground truth")?);
                if p == 0 && g == 0 {
                    continue;
                }
                let needed = p.max(g) as usize + 1;
                if tallies.len() < needed {
                    tallies.resize(needed, Tally::default());
                }
                let position = [i % nx, i / nx, z];
                for label in [p, g] {
                    if label != 0 {
                        tallies[label as usize].include(position);
                    }
                }
                tallies[p as usize].prediction += 1;
                tallies[g as usize].ground_truth += 1;
                if p == g {
                    tallies[p as usize].overlap += 1;
                }
            }
            Ok(tallies)
        })
        .try_reduce(Vec::new, |mut a, b| {
            if a.len() < b.len() {
                a.resize(b.len(), Tally::default());
            }
            for (into, from) in a.iter_mut().zip(&b) {
                into.merge(from);
            }
            Ok(a)
        })
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Dice, Jaccard, sensitivity, specificity, HD95 and NSD for every label in either volume.
pub fn case_metrics(
    prediction: &Volume,
    ground_truth: &Volume,
    tolerance_mm: f64,
) -> Result<CaseMetrics, MetricsError> {
    check_same_grid(prediction, ground_truth)?;
    if !tolerance_mm.is_finite() || tolerance_mm < 0.0 {
        return Err(MetricsError::InvalidTolerance(tolerance_mm));
    }
    let shape = prediction.shape();
    let spacing_mm = ground_truth.spacing_mm();
    let diagonal_mm = (0..3)
        .map(|a| (shape[a] as f64 * spacing_mm[a]).powi(2))
        .sum::<f64>()
        .sqrt();
    let total = prediction.channel_len() as u64;
    let tallies = tally_labels(prediction, ground_truth)?;
    let classes = tallies
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, t)| t.prediction + t.ground_truth > 0)
        .map(|(label, tally)| {
            let label = label as u32;
            let (tp, fp, fn_) = (
                tally.overlap,
                tally.prediction - tally.overlap,
                tally.ground_truth - tally.overlap,
            );
            let tn = total - tp - fp - fn_;
            let (hd95_mm, nsd) = if tally.prediction == 0 || tally.ground_truth == 0 {
                (Some(diagonal_mm), Some(0.0))
            } else {
                let surfaces = class_surfaces(prediction, ground_truth, label, tally, spacing_mm);
                (
                    Some(surfaces.robust_hausdorff_mm(HAUSDORFF_PERCENT)),
                    Some(surfaces.surface_dice(tolerance_mm)),
                )
            };
            ClassMetrics {
                label,
                dice: super::dice_from_counts(tp, tally.prediction, tally.ground_truth),
                jaccard: ratio(tp, tp + fp + fn_),
                sensitivity: ratio(tp, tp + fn_),
                specificity: ratio(tn, tn + fp),
                hd95_mm,
                nsd,
                both_empty: false,
                prediction_voxels: tally.prediction,
                ground_truth_voxels: tally.ground_truth,
            }
        })
        .collect();
    Ok(CaseMetrics {
        tolerance_mm,
        diagonal_mm,
        classes,
    })
}

/// Surface distances of one label, computed on the label's bounding box only.
fn class_surfaces(
    prediction: &Volume,
    ground_truth: &Volume,
    label: u32,
    tally: &Tally,
    spacing_mm: [f64; 3],
) -> super::SurfaceDistances {
    let (min, max) = (tally.min, tally.max);
    let crop = [0, 1, 2].map(|a| max[a] - min[a] + 1);
    let mut gt_mask = Vec::with_capacity(crop.iter().product());
    let mut pred_mask = Vec::with_capacity(crop.iter().product());
    let value = label as f32;
    for z in min[2]..=max[2] {
        for y in min[1]..=max[1] {
            let start = prediction.index(min[0], y, z);
            let end = start + crop[0];
            pred_mask.extend(prediction.voxels()[start..end].iter().map(|v| *v == value));
            gt_mask.extend(ground_truth.voxels()[start..end].iter().map(|v| *v == value));
        }
    }
    compute_surface_distances(&gt_mask, &pred_mask, crop, spacing_mm)
}

/// Metrics of a label absent from both volumes (e.g. a class the model never predicts on a
/// case without it): Dice, Jaccard, sensitivity, HD95 and NSD undefined, specificity 1.
pub fn both_empty_class(label: u32) -> ClassMetrics {
    ClassMetrics {
        label,
        dice: None,
        jaccard: None,
        sensitivity: None,
        specificity: Some(1.0),
        hd95_mm: None,
        nsd: None,
        both_empty: true,
        prediction_voxels: 0,
        ground_truth_voxels: 0,
    }
}
