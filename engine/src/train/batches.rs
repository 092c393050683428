//! Batches prepared ahead: a scoped thread augments the next batches of an epoch and cuts them
//! into the network's token layout while the current step runs, so the step never waits for
//! data preparation.

use super::samples::{Sample, augment, target_values};
use crate::model::ModelConfig;
use crate::model::patches::{patchify_values, split_channels};
use crate::rng::Rng;
use crate::volume::Volume;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// How many prepared batches may wait for the trainer.
const BATCHES_AHEAD: usize = 2;

/// One batch in token space as flat host values, ready for `Tensor::from_data`.
pub struct HostBatch {
    /// Patches `[batch, tokens, in_channels · patch³]`, flattened.
    pub patches: Vec<f32>,
    /// One target per output channel, each `[batch, tokens, patch³]`, flattened.
    pub targets: Vec<Vec<f32>>,
    /// Samples in the batch.
    pub size: usize,
}

/// Cuts images (and, when given, their labels' targets) into the network's token layout.
pub fn host_batch<'a>(
    items: impl Iterator<Item = (&'a Volume, Option<&'a Volume>)>,
    config: &ModelConfig,
) -> HostBatch {
    let [nx, ny, nz] = config.image_size;
    let (patch, channels) = (config.patch_size, config.out_channels);
    let mut batch = HostBatch {
        patches: Vec::new(),
        targets: vec![Vec::new(); channels],
        size: 0,
    };
    for (image, label) in items {
        batch.patches.extend(patchify_values(
            image.voxels(),
            config.in_channels,
            [nz, ny, nx],
            patch,
        ));
        if let Some(label) = label {
            let target = target_values(label, config.output, channels);
            let cut = patchify_values(&target, channels, [nz, ny, nx], patch);
            for (c, part) in split_channels(&cut, channels, patch.pow(3))
                .into_iter()
                .enumerate()
            {
                batch.targets[c].extend(part);
            }
        }
        batch.size += 1;
    }
    batch
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
        // The resampling inside `augment` and `host_batch` is written with rayon; run on the
        // shared pool, its tasks interleave with the training step's parallel kernels and hold
        // them up. On a pool of its own (this thread's one helper) it stays beside them.
        let own_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "batches".into())
            .build();
        let prepare = || prepare_batches(&sender, samples, &order, batch_size, config, augment_seed);
        match own_pool {
            Ok(pool) => pool.install(prepare),
            Err(_) => prepare(),
        }
    });
    receiver
}

/// Augments and cuts the batches of `order` and sends them until the receiver is gone.
fn prepare_batches(
    sender: &SyncSender<HostBatch>,
    samples: &[Sample],
    order: &[usize],
    batch_size: usize,
    config: &ModelConfig,
    augment_seed: Option<u64>,
) {
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
        let batch = host_batch(prepared.iter().map(|(image, label)| (image, Some(label))), config);
        if sender.send(batch).is_err() {
            return; // the trainer stopped listening
        }
    }
}
