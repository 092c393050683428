//! Intensity normalisation by modality (DESIGN.md §4): CT is clipped to the 0.5–99.5 percentiles
//! of the foreground then z-scored; MRI is z-scored over its non-zero voxels.

/// How an image channel's intensities are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Modality {
    /// Hounsfield units: clip to foreground percentiles, then z-score.
    Ct,
    /// Arbitrary units: z-score over non-zero voxels.
    Mri,
}

impl Modality {
    /// The modality for a dataset.json name ("CT" → CT; everything else is normalised like MRI).
    pub fn from_name(name: &str) -> Self {
        if name.trim().eq_ignore_ascii_case("ct") {
            Modality::Ct
        } else {
            Modality::Mri
        }
    }
}

/// Lower and upper percentiles used to clip CT intensities.
const CT_CLIP_PERCENTILES: (f64, f64) = (0.5, 99.5);
/// Below this standard deviation an image is treated as constant (only centred, not scaled).
const MIN_STD: f64 = 1e-8;

/// The `q`-th percentile (0–100) of `values`, linearly interpolated between order statistics as
/// numpy's default `np.percentile`. NaN for an empty slice.
pub fn percentile(values: &[f32], q: f64) -> f64 {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let (_, low_value, _) = sorted.select_nth_unstable_by(low, f32::total_cmp);
    let low_value = f64::from(*low_value);
    if high == low {
        return low_value;
    }
    // After selecting `low`, the next order statistic is the minimum of the upper part.
    let high_value = sorted[low + 1..].iter().copied().fold(f32::INFINITY, f32::min);
    low_value + (f64::from(high_value) - low_value) * (rank - low as f64)
}

fn mean_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (sum, count) = values.clone().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if count == 0 {
        return (0.0, 1.0);
    }
    let mean = sum / count as f64;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / count as f64;
    (mean, var.sqrt())
}

/// How CT intensities are normalised (nnU-Net's approach): clip to the 0.5th and 99.5th
/// percentiles of the foreground, subtract its clipped mean, divide by its clipped standard
/// deviation. Computed once from the training cases of a run and stored in its checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CtStatistics {
    /// 0.5th foreground percentile.
    pub clip_low: f64,
    /// 99.5th foreground percentile.
    pub clip_high: f64,
    /// Mean of the clipped foreground.
    pub mean: f64,
    /// Standard deviation of the clipped foreground.
    pub std: f64,
}

impl CtStatistics {
    /// The statistics of a sample of foreground intensities (non-finite values are ignored);
    /// `None` when the sample has no finite value.
    pub fn from_sample(values: &[f32]) -> Option<Self> {
        let clip_low = percentile(values, CT_CLIP_PERCENTILES.0);
        let clip_high = percentile(values, CT_CLIP_PERCENTILES.1);
        if !clip_low.is_finite() || !clip_high.is_finite() {
            return None;
        }
        let clipped = values
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| f64::from(*v).clamp(clip_low, clip_high));
        let (mean, std) = mean_std(clipped);
        Some(Self {
            clip_low,
            clip_high,
            mean,
            std,
        })
    }

    /// Normalises `values` in place: clip, centre, scale (a constant image is only centred).
    pub fn apply(&self, values: &mut [f32]) {
        let scale = if self.std > MIN_STD { 1.0 / self.std } else { 1.0 };
        for v in values.iter_mut() {
            *v = ((f64::from(*v).clamp(self.clip_low, self.clip_high) - self.mean) * scale) as f32;
        }
    }
}

/// MRI: z-score using the mean and standard deviation of the non-zero voxels; zero voxels
/// (outside the head or body) stay zero.
pub fn normalize_mri(values: &mut [f32]) {
    let (mean, std) = mean_std(values.iter().filter(|v| **v != 0.0).map(|v| f64::from(*v)));
    let scale = if std > MIN_STD { 1.0 / std } else { 1.0 };
    for v in values.iter_mut() {
        if *v != 0.0 {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
    }
}

/// Sets every non-finite voxel (NaN, ±∞) to the smallest finite value of `values` — the
/// background of CT (air) and MRI (zero) alike — or to 0 when no value is finite. Returns how
/// many were replaced. Done before resampling, so one NaN cannot spread through interpolation.
pub fn replace_non_finite(values: &mut [f32]) -> usize {
    let minimum = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    let fill = if minimum.is_finite() { minimum } else { 0.0 };
    let mut replaced = 0;
    for v in values.iter_mut().filter(|v| !v.is_finite()) {
        *v = fill;
        replaced += 1;
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear_interpolation() {
        // np.percentile([1, 2, 3, 4, 10], q) for q = 0, 25, 50, 90, 100 is 1, 2, 3, 7.6, 10.
        let values = [10.0, 2.0, 4.0, 1.0, 3.0];
        for (q, want) in [(0.0, 1.0), (25.0, 2.0), (50.0, 3.0), (90.0, 7.6), (100.0, 10.0)] {
            assert!((percentile(&values, q) - want).abs() < 1e-9, "q={q}");
        }
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn mri_z_score_has_zero_mean_unit_std_over_nonzero_voxels() {
        let mut values: Vec<f32> = (0..1000)
            .map(|i| if i % 4 == 0 { 0.0 } else { (i % 97) as f32 + 5.0 })
            .collect();
        normalize_mri(&mut values);
        let nonzero: Vec<f64> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 != 0)
            .map(|(_, v)| f64::from(*v))
            .collect();
        let (mean, std) = mean_std(nonzero.iter().copied());
        assert!(mean.abs() < 1e-5 && (std - 1.0).abs() < 1e-5, "{mean} {std}");
        assert!(values.iter().step_by(4).all(|v| *v == 0.0));
    }

    #[test]
    fn ct_clips_outliers_to_foreground_percentiles() {
        // Foreground 0..=999 (and a NaN, ignored); an outlier outside it is clipped to the
        // foreground's 99.5th percentile, 994.005 (np.percentile(np.arange(1000), 99.5)).
        let mut foreground: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        foreground.push(f32::NAN);
        let stats = CtStatistics::from_sample(&foreground).expect("finite values");
        assert!((stats.clip_low - 4.995).abs() < 1e-9 && (stats.clip_high - 994.005).abs() < 1e-9);
        let clipped: Vec<f64> = (0..1000).map(|i| f64::from(i).clamp(4.995, 994.005)).collect();
        let mean = clipped.iter().sum::<f64>() / 1000.0;
        let std = (clipped.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 1000.0).sqrt();
        assert!((stats.mean - mean).abs() < 1e-9 && (stats.std - std).abs() < 1e-9);
        let mut values = vec![30000.0, 500.0, -1000.0];
        stats.apply(&mut values);
        let expected = [(994.005 - mean) / std, (500.0 - mean) / std, (4.995 - mean) / std];
        for (got, want) in values.iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
        }
        assert!(CtStatistics::from_sample(&[f32::NAN]).is_none());
    }
}
