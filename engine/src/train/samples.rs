//! Training samples in memory (model grid), their targets, and augmentation applied identically
//! to image and label (batches are cut into tokens by `batches.rs`).

use crate::data::PreprocessedTask;
use crate::model::OutputKind;
use crate::rng::Rng;
use crate::volume::{Affine, Geometry, Interpolation, Volume, resample};

/// One case ready for the network.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Case id.
    pub id: String,
    /// Image on the model grid (as cached; the run normalises it after loading).
    pub image: Volume,
    /// Label values on the model grid.
    pub label: Volume,
}

/// Loads cases of a preprocessed task by id (those without labels are an error).
pub fn load_samples(task: &PreprocessedTask, ids: &[String]) -> Result<Vec<Sample>, String> {
    ids.iter()
        .map(|id| {
            let case = task
                .cases
                .iter()
                .find(|c| &c.id == id)
                .ok_or_else(|| format!("case {id} is not in the preprocessed task"))?;
            let (image, label) = task.load(case).map_err(|e| e.to_string())?;
            let label = label.ok_or_else(|| format!("case {id} has no label"))?;
            Ok(Sample {
                id: id.clone(),
                image,
                label,
            })
        })
        .collect()
}

/// The network's target for a label volume: merged foreground (sigmoid, 1 channel), one channel
/// per foreground class (sigmoid, several), or one-hot classes (softmax).
pub fn target_values(label: &Volume, output: OutputKind, channels: usize) -> Vec<f32> {
    let values = label.voxels();
    let len = values.len();
    let mut target = vec![0f32; len * channels];
    for (i, v) in values.iter().enumerate() {
        let class = v.round().max(0.0) as usize;
        match (output, channels) {
            (OutputKind::Sigmoid, 1) => target[i] = f32::from(u8::from(class > 0)),
            (OutputKind::Sigmoid, _) => {
                if class > 0 && class <= channels {
                    target[(class - 1) * len + i] = 1.0;
                }
            }
            (OutputKind::Softmax, _) => target[class.min(channels - 1) * len + i] = 1.0,
        }
    }
    target
}

/// The fraction of voxels in each output channel's target over `samples` (the class prior the
/// output bias starts from): background first for softmax, each foreground channel for sigmoid.
pub fn class_fractions(samples: &[Sample], output: OutputKind, channels: usize) -> Vec<f64> {
    let mut counts = vec![0f64; channels];
    let mut voxels = 0usize;
    for sample in samples {
        let target = target_values(&sample.label, output, channels);
        let len = sample.label.voxels().len();
        for (channel, count) in counts.iter_mut().enumerate() {
            *count += target[channel * len..(channel + 1) * len]
                .iter()
                .map(|v| f64::from(*v))
                .sum::<f64>();
        }
        voxels += len;
    }
    counts.iter().map(|c| c / voxels.max(1) as f64).collect()
}

/// Largest in-plane rotation of the augmentation, in degrees.
const MAX_ROTATION_DEGREES: f64 = 10.0;
/// Intensity scale and shift ranges.
const INTENSITY_SCALE: (f64, f64) = (0.9, 1.1);
const INTENSITY_SHIFT: (f64, f64) = (-0.1, 0.1);

/// Augments one sample: flips along each axis (p = ½), a rotation about the z axis (p = ½) —
/// both applied to image and label with the same parameters (trilinear for the image, nearest
/// for the label) — and an intensity scale and shift of the image.
pub fn augment(sample: &Sample, rng: &mut Rng) -> (Volume, Volume) {
    let flips = [rng.uniform() < 0.5, rng.uniform() < 0.5, rng.uniform() < 0.5];
    let rotate = rng.uniform() < 0.5;
    let angle = rng
        .range(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES)
        .to_radians();
    let scale = rng.range(INTENSITY_SCALE.0, INTENSITY_SCALE.1) as f32;
    let shift = rng.range(INTENSITY_SHIFT.0, INTENSITY_SHIFT.1) as f32;
    let [nx, ny, nz] = sample.image.shape();
    // Index-space transform old_from_new: flips, then a rotation about the grid centre.
    let centre = [
        (nx as f64 - 1.0) / 2.0,
        (ny as f64 - 1.0) / 2.0,
        (nz as f64 - 1.0) / 2.0,
    ];
    let (s, c) = if rotate {
        (angle.sin(), angle.cos())
    } else {
        (0.0, 1.0)
    };
    let sign: [f64; 3] = flips.map(|f| if f { -1.0 } else { 1.0 });
    let linear = [
        [c * sign[0], -s * sign[1], 0.0],
        [s * sign[0], c * sign[1], 0.0],
        [0.0, 0.0, sign[2]],
    ];
    let mut translation = [0.0; 3];
    for row in 0..3 {
        translation[row] = centre[row] - (0..3).map(|col| linear[row][col] * centre[col]).sum::<f64>();
    }
    let old_from_new = Affine::from_parts(linear, translation);
    let grid = sample.image.geometry();
    let moved = Geometry {
        shape: grid.shape,
        world_from_voxel: grid.world_from_voxel.then_after(&old_from_new),
    };
    let rebase =
        |v: Volume| match Volume::new(grid.shape, v.channels(), v.into_voxels(), grid.world_from_voxel) {
            Ok(v) => v,
            Err(_) => unreachable!("same shape"),
        };
    let edge = sample.image.stats().min as f32;
    let mut image = rebase(resample(&sample.image, &moved, Interpolation::Linear, edge));
    let label = rebase(resample(&sample.label, &moved, Interpolation::Nearest, 0.0));
    for v in image.voxels_mut() {
        *v = *v * scale + shift;
    }
    (image, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let geometry = Geometry {
            shape: [12, 10, 8],
            world_from_voxel: Affine::from_diagonal([2.0, 2.0, 3.0]),
        };
        let label = Volume::from_fn(&geometry, |x, y, z| {
            if (3..7).contains(&x) && (2..5).contains(&y) && z > 2 {
                2.0
            } else {
                0.0
            }
        });
        // The image encodes the label exactly (10 · label), so any misalignment shows.
        let image = Volume::from_fn(&geometry, |x, y, z| 10.0 * label.at(x, y, z));
        Sample {
            id: "a".into(),
            image,
            label,
        }
    }

    #[test]
    fn augmentation_moves_image_and_label_together() {
        let sample = sample();
        for seed in 0..20 {
            let (image, label) = augment(&sample, &mut Rng::new(seed));
            assert_eq!(image.shape(), label.shape());
            // Where the label says 2 the image must be high, and where it says 0, low
            // (after the intensity change and at most partial-volume blending at edges).
            let mut agree = 0;
            for (i, l) in image.voxels().iter().zip(label.voxels()) {
                if (*l == 2.0) == (*i > 5.0) {
                    agree += 1;
                }
            }
            assert!(
                agree as f64 > 0.93 * label.voxels().len() as f64,
                "seed {seed}: {agree}"
            );
            assert!(
                label.voxels().iter().all(|v| *v == 0.0 || *v == 2.0),
                "nearest keeps label values"
            );
        }
    }

    #[test]
    fn class_fractions_count_voxels_per_class() {
        // The sample's 12·10·8 = 960 voxels hold a 4·3·5 = 60-voxel block of label 2.
        let samples = [sample()];
        let softmax = class_fractions(&samples, OutputKind::Softmax, 3);
        let want = [900.0 / 960.0, 0.0, 60.0 / 960.0];
        for (got, want) in softmax.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{softmax:?}");
        }
        let merged = class_fractions(&samples, OutputKind::Sigmoid, 1);
        assert!((merged[0] - 60.0 / 960.0).abs() < 1e-12);
    }

    #[test]
    fn targets_follow_the_output_kind() {
        let label = Volume::from_fn(
            &Geometry {
                shape: [3, 1, 1],
                world_from_voxel: Affine::identity(),
            },
            |x, _, _| x as f32,
        );
        assert_eq!(target_values(&label, OutputKind::Sigmoid, 1), vec![0.0, 1.0, 1.0]);
        assert_eq!(
            target_values(&label, OutputKind::Sigmoid, 2),
            vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(
            target_values(&label, OutputKind::Softmax, 3),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        );
    }
}
