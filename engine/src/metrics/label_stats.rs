//! Statistics of each label of a label map over a scan: voxel count, volume in mL and the
//! intensity inside (mean, SD, minimum, maximum), as ITK-SNAP's label statistics and 3D Slicer's
//! Segment Statistics report them.
//!
//! The volume of a voxel is |det| of the affine's 3 × 3 part (mm³, so oblique and sheared grids
//! count right). The SD is the sample SD (n − 1 in the denominator, as ITK's
//! `LabelStatisticsImageFilter`), accumulated with Welford's update in `f64`. Non-finite
//! intensities count towards the voxels and the volume but not the intensity figures; they are
//! reported as `non_finite`.

use super::MetricsError;
use super::case::{AFFINE_TOLERANCE_MM, affine_difference_mm, label_of};
use crate::volume::{Volume, determinant};
use serde::Serialize;

/// The statistics of one label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelStatistics {
    /// The label number (never 0: background is left out).
    pub label: u32,
    /// Voxels holding the label.
    pub voxels: u64,
    /// Their volume in mL (cm³).
    pub volume_ml: f64,
    /// Mean intensity inside; `None` without a finite intensity.
    pub mean: Option<f64>,
    /// Sample SD of the intensity inside (n − 1); `None` below two finite intensities.
    pub sd: Option<f64>,
    /// Lowest intensity inside.
    pub min: Option<f64>,
    /// Highest intensity inside.
    pub max: Option<f64>,
    /// Voxels of the label whose intensity is NaN or infinite (left out of the figures above).
    pub non_finite: u64,
}

/// Running sums of one label.
#[derive(Clone, Copy, Default)]
struct Accumulator {
    voxels: u64,
    finite: u64,
    mean: f64,
    /// Sum of squared deviations from the running mean (Welford).
    m2: f64,
    min: f64,
    max: f64,
}

impl Accumulator {
    fn add(&mut self, value: f32) {
        self.voxels += 1;
        if !value.is_finite() {
            return;
        }
        let value = f64::from(value);
        self.finite += 1;
        if self.finite == 1 {
            (self.min, self.max) = (value, value);
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        let delta = value - self.mean;
        self.mean += delta / self.finite as f64;
        self.m2 += delta * (value - self.mean);
    }
}

/// The statistics of every label present in `label` (background 0 left out, ascending), over
/// channel `channel` of `image`.
///
/// # Errors
/// [`MetricsError::LabelOffImageGrid`] when `label` is not on the image's grid (shape, or
/// affines differing by more than [`AFFINE_TOLERANCE_MM`]), has several channels, or `channel`
/// is past the image's; [`MetricsError::NotALabel`] for a voxel that is not a whole label
/// number.
pub fn label_statistics(
    label: &Volume,
    image: &Volume,
    channel: usize,
) -> Result<Vec<LabelStatistics>, MetricsError> {
    let mismatch = |reason: String| Err(MetricsError::LabelOffImageGrid { reason });
    if channel >= image.channels() {
        return mismatch(format!(
            "the image has {} channel(s), channel {channel} was asked for",
            image.channels()
        ));
    }
    if label.channels() != 1 {
        return mismatch(format!(
            "a label map has one channel, this one has {}",
            label.channels()
        ));
    }
    if label.shape() != image.shape() {
        return mismatch(format!(
            "shapes differ: {:?} (label) vs {:?} (image)",
            label.shape(),
            image.shape()
        ));
    }
    let largest = affine_difference_mm(label.world_from_voxel(), image.world_from_voxel());
    if largest.is_nan() || largest > AFFINE_TOLERANCE_MM {
        return mismatch(format!(
            "voxel-to-world affines differ by up to {largest:.4} mm (limit {AFFINE_TOLERANCE_MM} mm)"
        ));
    }
    let intensities = image.channel(channel);
    let mut accumulators: Vec<Accumulator> = Vec::new();
    for (&value, &intensity) in label.voxels().iter().zip(intensities) {
        let number = label_of(value, "label")? as usize;
        if number == 0 {
            continue;
        }
        if number >= accumulators.len() {
            accumulators.resize(number + 1, Accumulator::default());
        }
        accumulators[number].add(intensity);
    }
    let voxel_ml = determinant(&label.world_from_voxel().linear()).abs() / 1000.0;
    Ok(accumulators
        .iter()
        .enumerate()
        .filter(|(_, a)| a.voxels > 0)
        .map(|(number, a)| LabelStatistics {
            label: number as u32,
            voxels: a.voxels,
            volume_ml: a.voxels as f64 * voxel_ml,
            mean: (a.finite > 0).then_some(a.mean),
            sd: (a.finite > 1).then(|| (a.m2 / (a.finite - 1) as f64).sqrt()),
            min: (a.finite > 0).then_some(a.min),
            max: (a.finite > 0).then_some(a.max),
            non_finite: a.voxels - a.finite,
        })
        .collect())
}

/// The header of [`label_statistics_csv`].
pub const LABEL_STATISTICS_CSV_HEADER: &str =
    "case,layer,label,name,voxels,volume_ml,mean,sd,min,max,non_finite";

/// Label statistics as CSV, one row per case, layer and label; undefined figures are empty.
pub fn label_statistics_csv(
    rows: &[(String, String, &[LabelStatistics])],
    label_names: &std::collections::BTreeMap<u32, String>,
) -> String {
    let mut csv = format!("{LABEL_STATISTICS_CSV_HEADER}\n");
    let figure = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for (case, layer, labels) in rows {
        for label in *labels {
            let name = label_names.get(&label.label).cloned().unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                super::report::csv_field(case),
                super::report::csv_field(layer),
                label.label,
                super::report::csv_field(&name),
                label.voxels,
                label.volume_ml,
                figure(label.mean),
                figure(label.sd),
                figure(label.min),
                figure(label.max),
                label.non_finite
            ));
        }
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::volume::{Affine, Geometry};

    /// A sheared grid: |det| = 0.5 × 2 × 3 = 3 mm³ per voxel whatever the shear.
    fn grid() -> Geometry {
        Geometry {
            shape: [6, 5, 4],
            world_from_voxel: Affine::from_parts(
                [[0.5, 0.2, 0.0], [0.0, 2.0, 0.0], [0.1, 0.0, 3.0]],
                [-10.0, 4.0, 7.5],
            ),
        }
    }

    #[test]
    fn a_box_and_a_voxel_match_their_closed_forms() {
        let geometry = grid();
        // Expanded along the first row: 0.5 (2·3 − 0) − 0.2 (0·3 − 0·0.1) + 0 = 3.
        assert!((determinant(&geometry.world_from_voxel.linear()) - 3.0).abs() < 1e-12);
        let mut image = Volume::from_fn(&geometry, |x, y, z| (x + 10 * y + 100 * z) as f32);
        // One NaN inside label 3.
        let flat = |x: usize, y: usize, z: usize| (z * 5 + y) * 6 + x;
        image.voxels_mut()[flat(5, 3, 0)] = f32::NAN;
        let label = Volume::from_fn(&geometry, |x, y, z| {
            if (1..4).contains(&x) && y < 2 && (2..4).contains(&z) {
                1.0
            } else if x == 5 && (3..5).contains(&y) && z == 0 {
                3.0
            } else {
                0.0
            }
        });
        let stats = label_statistics(&label, &image, 0).expect("same grid");
        assert_eq!(stats.iter().map(|s| s.label).collect::<Vec<_>>(), [1, 3]);
        // Label 1: x ∈ {1, 2, 3}, y ∈ {0, 1}, z ∈ {2, 3}, intensity x + 10 y + 100 z; the three
        // coordinates vary independently over the box, so the variances add.
        let box_stats = &stats[0];
        assert_eq!(box_stats.voxels, 12);
        assert!((box_stats.volume_ml - 12.0 * 3.0 / 1000.0).abs() < 1e-15);
        assert!((box_stats.mean.expect("finite") - (2.0 + 10.0 * 0.5 + 100.0 * 2.5)).abs() < 1e-12);
        let population_variance: f64 = 2.0 / 3.0 + 100.0 * 0.25 + 10_000.0 * 0.25;
        let sample_sd = (population_variance * 12.0 / 11.0).sqrt();
        assert!((box_stats.sd.expect("12 values") - sample_sd).abs() < 1e-9);
        assert_eq!(box_stats.min, Some(201.0));
        assert_eq!(box_stats.max, Some(313.0));
        assert_eq!(box_stats.non_finite, 0);
        // Label 3: (5, 3, 0) is NaN, (5, 4, 0) holds 45.
        let voxel = &stats[1];
        assert_eq!((voxel.voxels, voxel.non_finite), (2, 1));
        assert!((voxel.volume_ml - 0.006).abs() < 1e-15);
        assert_eq!(
            (voxel.mean, voxel.min, voxel.max),
            (Some(45.0), Some(45.0), Some(45.0))
        );
        assert_eq!(voxel.sd, None, "one finite value has no sample SD");
    }

    #[test]
    fn random_labels_match_a_two_pass_brute_force() {
        let geometry = grid();
        let mut rng = Rng::new(17);
        // A large offset makes a one-pass sum of squares lose digits; Welford must not.
        let image = Volume::from_fn(&geometry, |_, _, _| 1.0e6 + rng.uniform() as f32 * 50.0);
        let label = Volume::from_fn(&geometry, |_, _, _| (rng.uniform() * 5.0).floor() as f32);
        let stats = label_statistics(&label, &image, 0).expect("same grid");
        for number in 1..5u32 {
            let inside: Vec<f64> = label
                .voxels()
                .iter()
                .zip(image.voxels())
                .filter(|(l, _)| **l == number as f32)
                .map(|(_, v)| f64::from(*v))
                .collect();
            let found = stats.iter().find(|s| s.label == number);
            if inside.is_empty() {
                assert!(found.is_none());
                continue;
            }
            let found = found.expect("present label listed");
            let n = inside.len() as f64;
            let mean = inside.iter().sum::<f64>() / n;
            let sd = (inside.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert_eq!(found.voxels, inside.len() as u64);
            assert!(
                (found.mean.expect("finite") - mean).abs() < 1e-6,
                "label {number}"
            );
            assert!(
                (found.sd.expect("several") - sd).abs() < 1e-6 * sd.max(1.0),
                "label {number}"
            );
            let min = inside.iter().copied().fold(f64::INFINITY, f64::min);
            let max = inside.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((found.min, found.max), (Some(min), Some(max)));
        }
    }

    #[test]
    fn labels_off_the_image_grid_and_non_labels_are_refused() {
        let geometry = grid();
        let image = Volume::zeros(&geometry);
        let moved = Geometry {
            world_from_voxel: Affine::from_parts(geometry.world_from_voxel.linear(), [-10.0, 4.0, 7.6]),
            ..geometry
        };
        let error = label_statistics(&Volume::zeros(&moved), &image, 0).expect_err("moved 0.1 mm");
        assert!(matches!(error, MetricsError::LabelOffImageGrid { .. }), "{error}");
        assert!(error.to_string().contains("0.1000 mm"), "{error}");
        let smaller = Geometry {
            shape: [6, 5, 3],
            ..geometry
        };
        let error = label_statistics(&Volume::zeros(&smaller), &image, 0).expect_err("shape");
        assert!(error.to_string().contains("[6, 5, 3]"), "{error}");
        assert!(matches!(
            label_statistics(&Volume::zeros(&geometry), &image, 1),
            Err(MetricsError::LabelOffImageGrid { .. })
        ));
        let fraction = Volume::from_fn(&geometry, |x, _, _| if x == 2 { 0.5 } else { 0.0 });
        assert!(matches!(
            label_statistics(&fraction, &image, 0),
            Err(MetricsError::NotALabel { value, .. }) if value == 0.5
        ));
    }

    #[test]
    fn the_csv_has_one_row_per_label_and_leaves_undefined_figures_empty() {
        let one = LabelStatistics {
            label: 2,
            voxels: 1,
            volume_ml: 0.5,
            mean: Some(-3.25),
            sd: None,
            min: Some(-3.25),
            max: Some(-3.25),
            non_finite: 0,
        };
        let names = std::collections::BTreeMap::from([(2, "tumour, core".to_string())]);
        let csv = label_statistics_csv(
            &[("case_1".into(), "prediction".into(), std::slice::from_ref(&one))],
            &names,
        );
        assert_eq!(
            csv,
            format!(
                "{LABEL_STATISTICS_CSV_HEADER}\ncase_1,prediction,2,\"tumour, core\",1,0.5,-3.25,,-3.25,-3.25,0\n"
            )
        );
    }
}
