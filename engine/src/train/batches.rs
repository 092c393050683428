//! Batches prepared ahead: a scoped thread augments and stacks the next batches of an epoch
//! while the current step runs, so the step never waits for data preparation.

use super::samples::{Sample, augment, target_values};
use crate::model::ModelConfig;
use crate::rng::Rng;
use std::sync::mpsc::{Receiver, sync_channel};

/// How many prepared batches may wait for the trainer.
const BATCHES_AHEAD: usize = 2;

/// One batch as flat host values, ready for `Tensor::from_data`.
pub struct HostBatch {
    /// Images `[batch, in_channels, z, y, x]`, flattened.
    pub images: Vec<f32>,
    /// Targets `[batch, out_channels, z, y, x]`, flattened.
    pub targets: Vec<f32>,
    /// Samples in the batch.
    pub size: usize,
}

/// Stacks images and targets of the given samples.
pub fn host_batch<'a>(items: impl Iterator<Item = (&'a [f32], Vec<f32>)>) -> HostBatch {
    let (mut images, mut targets, mut size) = (Vec::new(), Vec::new(), 0);
    for (image, target) in items {
        images.extend_from_slice(image);
        targets.extend(target);
        size += 1;
    }
    HostBatch {
        images,
        targets,
        size,
    }
}

/// Starts preparing the batches of one epoch (`order` cut into `batch_size` chunks) on a thread
/// of `scope`. The receiver yields them in order; dropping it stops the thread.
pub fn prefetch<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    samples: &'scope [Sample],
    order: Vec<usize>,
    batch_size: usize,
    config: &'scope ModelConfig,
    augment_seed: Option<u64>,
) -> Receiver<HostBatch> {
    let (sender, receiver) = sync_channel(BATCHES_AHEAD);
    scope.spawn(move || {
        let mut rng = augment_seed.map(Rng::new);
        for chunk in order.chunks(batch_size.max(1)) {
            let prepared: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let sample = &samples[*i];
                    match rng.as_mut() {
                        Some(rng) => augment(sample, rng),
                        None => (sample.image.clone(), sample.label.clone()),
                    }
                })
                .collect();
            let batch = host_batch(prepared.iter().map(|(image, label)| {
                (
                    image.voxels(),
                    target_values(label, config.output, config.out_channels),
                )
            }));
            if sender.send(batch).is_err() {
                return; // the trainer stopped listening
            }
        }
    });
    receiver
}
