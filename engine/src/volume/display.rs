//! What a viewer needs to know about a scan before showing it, worked out once for the app and
//! the CLI alike: whether it is CT, where its label is (the centroid the crosshair starts on),
//! and the automatic display window from intensity percentiles.

use super::Volume;
use super::intensity::percentile;

/// Hounsfield data reaches air at about −1000; MRI intensities are never that negative.
pub const CT_AIR_THRESHOLD: f64 = -500.0;

/// Whether a scan looks like CT: its smallest finite intensity reaches below air's threshold.
pub fn looks_like_ct(image: &Volume) -> bool {
    image.stats().min < CT_AIR_THRESHOLD
}

/// The voxel nearest the mean position of the labelled voxels (value ≥ 0.5) of `voxels`
/// (x fastest, of `shape`), or `None` when nothing is labelled.
pub fn label_centroid(voxels: &[f32], shape: [usize; 3]) -> Option<[usize; 3]> {
    let [nx, ny, _] = shape;
    if nx == 0 || ny == 0 {
        return None;
    }
    let mut sum = [0.0f64; 3];
    let mut count = 0usize;
    for (index, _) in voxels.iter().enumerate().filter(|(_, v)| **v >= 0.5) {
        sum[0] += (index % nx) as f64;
        sum[1] += (index / nx % ny) as f64;
        sum[2] += (index / (nx * ny)) as f64;
        count += 1;
    }
    (count > 0).then(|| sum.map(|s| (s / count as f64).round() as usize))
}

/// A display window: intensities `level ± width / 2` map from black to white.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisplayWindow {
    /// Width of the intensity range shown (at least [`MIN_WINDOW_WIDTH`]).
    pub width: f32,
    /// Centre of the intensity range shown.
    pub level: f32,
}

/// Narrowest window (avoids dividing by zero).
pub const MIN_WINDOW_WIDTH: f32 = 1e-3;
/// Percentiles bounding the automatic window.
pub const AUTO_WINDOW_PERCENTILES: (f64, f64) = (1.0, 99.0);
/// At most this many voxels are sampled for the automatic window (a 512³ scan would be slow).
pub const AUTO_WINDOW_SAMPLES: usize = 1 << 20;

/// The window spanning the 1st to 99th percentile of `values` (sampled evenly when large);
/// width 1 around 0 when there is no finite value.
pub fn percentile_window(values: &[f32]) -> DisplayWindow {
    let step = values.len().div_ceil(AUTO_WINDOW_SAMPLES).max(1);
    let sample: Vec<f32> = values.iter().step_by(step).copied().collect();
    let low = percentile(&sample, AUTO_WINDOW_PERCENTILES.0);
    let high = percentile(&sample, AUTO_WINDOW_PERCENTILES.1);
    if !low.is_finite() || !high.is_finite() {
        return DisplayWindow {
            width: 1.0,
            level: 0.0,
        };
    }
    DisplayWindow {
        width: ((high - low) as f32).max(MIN_WINDOW_WIDTH),
        level: ((high + low) / 2.0) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Affine, Geometry};

    #[test]
    fn centroid_is_the_mean_labelled_position_rounded() {
        let shape = [4, 3, 2];
        let mut voxels = vec![0.0; 24];
        // Voxels (1, 0, 0), (3, 2, 1) and (2, 1, 1): mean (2, 1, 2/3) → (2, 1, 1).
        for [x, y, z] in [[1, 0, 0], [3, 2, 1], [2, 1, 1]] {
            voxels[(z * 3 + y) * 4 + x] = 1.0;
        }
        voxels[0] = 0.49; // below half: background
        assert_eq!(label_centroid(&voxels, shape), Some([2, 1, 1]));
        assert_eq!(label_centroid(&[0.0; 24], shape), None);
    }

    #[test]
    fn ct_is_told_by_air_and_the_window_spans_the_percentiles() {
        let geometry = Geometry {
            shape: [10, 1, 1],
            world_from_voxel: Affine::identity(),
        };
        let ct = Volume::from_fn(&geometry, |x, _, _| if x == 0 { -1000.0 } else { 40.0 });
        let mri = Volume::from_fn(&geometry, |x, _, _| x as f32 * 10.0);
        assert!(looks_like_ct(&ct));
        assert!(!looks_like_ct(&mri));
        // 0..=100: the 1st percentile is 1 and the 99th 99 (numpy's linear rule).
        let values: Vec<f32> = (0..=100).map(|v| v as f32).collect();
        let window = percentile_window(&values);
        assert!((window.width - 98.0).abs() < 1e-4, "{window:?}");
        assert!((window.level - 50.0).abs() < 1e-4, "{window:?}");
        assert_eq!(
            percentile_window(&[f32::NAN]),
            DisplayWindow {
                width: 1.0,
                level: 0.0
            }
        );
    }
}
