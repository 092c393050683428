//! Validation during training: Dice of each foreground class of the decoded prediction against
//! the label on the model grid, in batches, by the same rules as `mvl eval` (outputs decoded by
//! [`decode_labels`], both-empty cases left out of a class's mean).

use super::batches::host_batch;
use super::samples::Sample;
use crate::infer::{OutputScale, decode_labels, label_scheme};
use crate::metrics::{dice_per_label, mean_per_label};
use crate::model::EngineBackend;
use crate::model::{MedVisionLlama, ModelConfig};
use burn::tensor::{Tensor, TensorData};

/// Samples per validation forward pass.
pub const VALIDATION_BATCH: usize = 4;

/// Mean Dice over the samples of each foreground class of the model's label scheme (one
/// entry, the merged foreground, for a single sigmoid channel), and the mean over classes. A
/// case where a class is absent from both label and prediction is left out of that class's
/// mean; a class absent from every case is NaN and left out of the overall mean.
pub fn validation_dice_per_class<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    samples: &[Sample],
    config: &ModelConfig,
    device: &B::Device,
) -> (Vec<f64>, f64) {
    let scheme = label_scheme(config);
    let tokens = config.tokens();
    let mut per_case = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(VALIDATION_BATCH) {
        let batch = host_batch(chunk.iter().map(|s| (&s.image, Some(&s.label))), config);
        let patches = Tensor::<B, 3>::from_data(
            TensorData::new(batch.patches, [batch.size, tokens, config.patch_features()]),
            device,
        );
        // Logits in token space: decoding needs no normalisation, and Dice does not depend on
        // the voxel order.
        let logits: Vec<Vec<f32>> = model
            .forward_patches(patches)
            .into_iter()
            .map(|l| l.into_data().to_vec::<f32>().unwrap_or_default())
            .collect();
        let per_sample = logits.first().map_or(0, Vec::len) / chunk.len().max(1);
        for index in 0..chunk.len() {
            let range = index * per_sample..(index + 1) * per_sample;
            let prediction: Vec<&[f32]> = logits.iter().map(|l| &l[range.clone()]).collect();
            // The targets are the label as 0/1 probabilities per channel: decoding them gives
            // back the label (merged for a single sigmoid channel).
            let target: Vec<&[f32]> = batch.targets.iter().map(|t| &t[range.clone()]).collect();
            let predicted = decode_labels(&prediction, config.output, OutputScale::Logits);
            let truth = decode_labels(&target, config.output, OutputScale::Probabilities);
            per_case.push(dice_per_label(&predicted, &truth, &scheme));
        }
    }
    mean_per_label(&per_case, scheme.labels().len())
}
