//! Validation during training: Dice of the thresholded (sigmoid) or arg-max (softmax) prediction
//! against the label on the model grid, per foreground class, in batches.

use super::batches::host_batch;
use super::samples::Sample;
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
    let tokens = config.tokens();
    for chunk in samples.chunks(VALIDATION_BATCH) {
        let batch = host_batch(chunk.iter().map(|s| (&s.image, Some(&s.label))), config);
        let patches = Tensor::<B, 3>::from_data(
            TensorData::new(batch.patches, [batch.size, tokens, config.patch_features()]),
            device,
        );
        // Logits in token space: the arg-max (softmax) and logit > 0 (sigmoid, p > 0.5) need no
        // normalisation, and Dice does not depend on the voxel order.
        let logits: Vec<Vec<f32>> = model
            .forward_patches(patches)
            .into_iter()
            .map(|l| l.into_data().to_vec::<f32>().unwrap_or_default())
            .collect();
        let per_sample = logits.first().map_or(0, Vec::len) / chunk.len().max(1);
        for index in 0..chunk.len() {
            let range = index * per_sample..(index + 1) * per_sample;
            let prediction: Vec<&[f32]> = logits.iter().map(|l| &l[range.clone()]).collect();
            let target: Vec<&[f32]> = batch.targets.iter().map(|t| &t[range.clone()]).collect();
            for (class, dice) in case_dice(&prediction, &target, config.output)
                .into_iter()
                .enumerate()
            {
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

/// Dice per foreground class of one case from per-channel logits and targets in the same
/// voxel order.
fn case_dice(logits: &[&[f32]], target: &[&[f32]], output: OutputKind) -> Vec<f64> {
    let channels = logits.len();
    let len = logits.first().map_or(0, |l| l.len());
    let offset = usize::from(output == OutputKind::Softmax);
    let classes = channels - offset;
    let (mut both, mut predicted, mut truth) = (
        vec![0usize; classes],
        vec![0usize; classes],
        vec![0usize; classes],
    );
    for i in 0..len {
        let best = (0..channels)
            .max_by(|a, b| logits[*a][i].total_cmp(&logits[*b][i]))
            .unwrap_or(0);
        for class in 0..classes {
            let channel = class + offset;
            let p = match output {
                OutputKind::Sigmoid => logits[channel][i] > 0.0,
                OutputKind::Softmax => best == channel,
            };
            let t = target[channel][i] > 0.5;
            both[class] += usize::from(p && t);
            predicted[class] += usize::from(p);
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
