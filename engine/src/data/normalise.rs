//! Intensity normalisation by modality (DESIGN.md §4), per run: CT with statistics of the run's
//! training foreground only (never a validation or test case), everything else z-scored per
//! image over its non-zero voxels. The statistics travel in the checkpoint so prediction uses
//! exactly what training used.

use crate::volume::{CtStatistics, Modality, Volume, normalize_mri};

/// Foreground intensities sampled per training case for the CT statistics.
pub const CT_SAMPLES_PER_CASE: usize = 20_000;

/// CT statistics of each channel from `(image, label)` pairs on the same grid (the run's
/// training cases): an evenly strided sample of at most [`CT_SAMPLES_PER_CASE`] foreground
/// (label > 0) voxels per case. `None` for channels whose modality is not CT. Without any
/// foreground the first image's voxels stand in.
pub fn training_ct_statistics<'a>(
    cases: impl Iterator<Item = (&'a Volume, &'a Volume)> + Clone,
    modalities: &[String],
) -> Vec<Option<CtStatistics>> {
    modalities
        .iter()
        .enumerate()
        .map(|(channel, modality)| {
            if Modality::from_name(modality) != Modality::Ct {
                return None;
            }
            let mut sample = Vec::new();
            for (image, label) in cases.clone() {
                let values = image.channel(channel.min(image.channels().saturating_sub(1)));
                let foreground: Vec<usize> = label
                    .voxels()
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0.0)
                    .map(|(i, _)| i)
                    .collect();
                let stride = (foreground.len() / CT_SAMPLES_PER_CASE).max(1);
                sample.extend(foreground.iter().step_by(stride).filter_map(|i| values.get(*i)));
            }
            if sample.is_empty() {
                let (image, _) = cases.clone().next()?;
                sample = image
                    .channel(channel.min(image.channels().saturating_sub(1)))
                    .to_vec();
            }
            CtStatistics::from_sample(&sample)
        })
        .collect()
}

/// Normalises each channel in place: CT with the given statistics (clip, z-score), everything
/// else (and CT without statistics) z-scored over its non-zero voxels.
pub fn normalise_channels(
    volume: &mut Volume,
    modalities: &[String],
    ct_statistics: &[Option<CtStatistics>],
) {
    let len = volume.channel_len();
    for (position, modality) in modalities.iter().enumerate().take(volume.channels()) {
        let values = &mut volume.voxels_mut()[position * len..(position + 1) * len];
        match (
            Modality::from_name(modality),
            ct_statistics.get(position).copied().flatten(),
        ) {
            (Modality::Ct, Some(stats)) => stats.apply(values),
            _ => normalize_mri(values),
        }
    }
}

/// CT statistics from one scan alone (for models without training statistics): the body, taken
/// as voxels above -500 HU (every voxel when none is).
pub fn single_scan_ct_statistics(values: &[f32]) -> Option<CtStatistics> {
    const BODY_HU: f32 = -500.0;
    let body: Vec<f32> = values.iter().copied().filter(|v| *v > BODY_HU).collect();
    CtStatistics::from_sample(if body.is_empty() { values } else { &body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Affine;

    fn volume(values: Vec<f32>) -> Volume {
        Volume::new([values.len(), 1, 1], 1, values, Affine::identity()).expect("shape")
    }

    /// The statistics come from the training foreground only: a closed-form check on two
    /// training cases, unchanged by an extreme case that is not passed in (validation/test).
    #[test]
    fn ct_statistics_are_those_of_the_training_foreground() {
        let image_a = volume(vec![-1000.0, 10.0, 20.0, 30.0]);
        let label_a = volume(vec![0.0, 1.0, 1.0, 2.0]);
        let image_b = volume(vec![40.0, -1000.0, 50.0, 60.0]);
        let label_b = volume(vec![1.0, 0.0, 1.0, 0.0]);
        let training = [(&image_a, &label_a), (&image_b, &label_b)];
        let ct = ["CT".to_string()];
        let stats = training_ct_statistics(training.iter().copied(), &ct)[0].expect("CT");
        // Foreground 10, 20, 30, 40, 50: np.percentile(.., 0.5) = 10.2, (.., 99.5) = 49.8.
        assert!((stats.clip_low - 10.2).abs() < 1e-6 && (stats.clip_high - 49.8).abs() < 1e-6);
        let clipped = [10.2, 20.0, 30.0, 40.0, 49.8];
        let mean = clipped.iter().sum::<f64>() / 5.0;
        let std = (clipped.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
        assert!((stats.mean - mean).abs() < 1e-6 && (stats.std - std).abs() < 1e-6);
        let mri = ["T2".to_string()];
        assert_eq!(training_ct_statistics(training.iter().copied(), &mri), vec![None]);
    }

    #[test]
    fn channels_are_normalised_by_their_modality() {
        let stats = CtStatistics {
            clip_low: 0.0,
            clip_high: 100.0,
            mean: 50.0,
            std: 25.0,
        };
        let mut two =
            Volume::new([2, 1, 1], 2, vec![-500.0, 75.0, 0.0, 4.0], Affine::identity()).expect("shape");
        normalise_channels(&mut two, &["CT".into(), "MRI".into()], &[Some(stats), None]);
        // CT: clip to [0, 100], (v − 50) / 25; MRI: the zero stays, the one non-zero is centred.
        assert_eq!(two.voxels(), &[-2.0, 1.0, 0.0, 0.0]);
    }
}
