//! Validation during training: Dice of the thresholded (sigmoid) or arg-max (softmax) prediction
//! against the label on the model grid, per foreground class, in batches.

use super::batches::host_batch;
use super::samples::{Sample, target_values};
use crate::model::{MedVisionLlama, ModelConfig, OutputKind};
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// Samples per validation forward pass.
pub const VALIDATION_BATCH: usize = 4;

/// Mean Dice over the samples of each foreground class (label 1, 2, …; one entry for a merged
/// sigmoid output). A case where a class is absent from both label and prediction counts 1.
pub fn validation_dice_per_class<B: Backend>(
    model: &MedVisionLlama<B>,
    samples: &[Sample],
    config: &ModelConfig,
    device: &B::Device,
) -> Vec<f64> {
    let classes = foreground_classes(config);
    let mut sums = vec![0.0; classes];
    if samples.is_empty() {
        return sums;
    }
    let [nx, ny, nz] = config.image_size;
    for chunk in samples.chunks(VALIDATION_BATCH) {
        let batch = host_batch(chunk.iter().map(|s| (s.image.voxels(), Vec::new())));
        let input = Tensor::<B, 5>::from_data(
            TensorData::new(batch.images, [batch.size, config.in_channels, nz, ny, nx]),
            device,
        );
        let probabilities = model.probabilities(model.forward(input));
        let values = probabilities.into_data().to_vec::<f32>().unwrap_or_default();
        let per_sample = values.len() / chunk.len().max(1);
        for (index, sample) in chunk.iter().enumerate() {
            let prediction = &values[index * per_sample..(index + 1) * per_sample];
            for (class, dice) in case_dice(prediction, sample, config).into_iter().enumerate() {
                sums[class] += dice;
            }
        }
    }
    sums.iter().map(|s| s / samples.len() as f64).collect()
}

/// How many foreground classes the output scores.
pub fn foreground_classes(config: &ModelConfig) -> usize {
    match config.output {
        OutputKind::Sigmoid => config.out_channels,
        OutputKind::Softmax => config.out_channels - 1,
    }
}

/// Dice per foreground class of one case; `prediction` is `[channels, voxels]`.
fn case_dice(prediction: &[f32], sample: &Sample, config: &ModelConfig) -> Vec<f64> {
    let len = sample.label.voxels().len();
    let channels = config.out_channels;
    let target = target_values(&sample.label, config.output, channels);
    let predicted_class = |i: usize| -> Vec<bool> {
        match config.output {
            OutputKind::Sigmoid => (0..channels).map(|c| prediction[c * len + i] > 0.5).collect(),
            OutputKind::Softmax => {
                let best = (0..channels)
                    .max_by(|a, b| prediction[a * len + i].total_cmp(&prediction[b * len + i]))
                    .unwrap_or(0);
                (1..channels).map(|c| c == best).collect()
            }
        }
    };
    let offset = usize::from(config.output == OutputKind::Softmax);
    let classes = foreground_classes(config);
    let (mut both, mut predicted, mut truth) = (
        vec![0usize; classes],
        vec![0usize; classes],
        vec![0usize; classes],
    );
    for i in 0..len {
        let p = predicted_class(i);
        for class in 0..classes {
            let t = target[(class + offset) * len + i] > 0.5;
            both[class] += usize::from(p[class] && t);
            predicted[class] += usize::from(p[class]);
            truth[class] += usize::from(t);
        }
    }
    (0..classes)
        .map(|c| {
            if predicted[c] + truth[c] == 0 {
                1.0
            } else {
                2.0 * both[c] as f64 / (predicted[c] + truth[c]) as f64
            }
        })
        .collect()
}
