//! The timed loops: inference forwards and training steps on one backend, with memory samples
//! taken on an extra, untimed, instrumented step.

use super::{BenchError, BenchOptions, LEARNING_RATE, TARGET_FOREGROUND};
use crate::model::EngineAutodiffBackend;
use crate::model::{MedVisionLlama, ModelConfig, patchify};
use crate::train::guard::clip_gradient_norm;
use crate::train::segmentation_loss_tokens;
use crate::weights::FrozenBlockWeights;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;

/// The gradient clipping of the training loop (its cost is part of a step).
const GRAD_CLIP_NORM: f64 = 1.0;

/// Median seconds of the timed inference and training iterations, and memory samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Timings {
    pub(super) inference_secs: f64,
    pub(super) train_secs: f64,
    /// Largest (bytes in use, bytes reserved) seen on the device, when the backend reports it.
    pub(super) device_memory: Option<(u64, u64)>,
    /// The process's peak resident set during the instrumented steps, and how far it rose above
    /// the resident set just before each (the most of the two steps), when the peak can be
    /// restarted (Linux).
    pub(super) host_memory: Option<(u64, u64)>,
}

/// The process's peak resident set over the instrumented steps: each step restarts the peak
/// and records how far it rose.
#[derive(Default)]
struct HostPeak {
    value: Option<(u64, u64)>,
    baseline: Option<u64>,
}

impl HostPeak {
    fn start(&mut self) {
        self.baseline = super::resident::restart_peak_resident();
    }

    fn stop(&mut self) {
        if let (Some(baseline), Some(peak)) = (self.baseline.take(), super::resident::peak_resident_bytes()) {
            let (a, b) = self.value.unwrap_or((0, 0));
            self.value = Some((a.max(peak), b.max(peak.saturating_sub(baseline))));
        }
    }
}

/// Reads the device's memory pool: (bytes in use, bytes reserved), if the backend can say.
pub(super) type MemoryProbe<'a, D> = &'a dyn Fn(&D) -> Option<(u64, u64)>;

/// Builds the model on `B` and times inference and training steps.
pub(super) fn bench_on<B: EngineAutodiffBackend>(
    device: B::Device,
    config: &ModelConfig,
    weights: Option<FrozenBlockWeights>,
    options: &BenchOptions,
    memory: MemoryProbe<'_, B::Device>,
) -> Result<Timings, BenchError> {
    let model = options
        .dtype
        .apply(MedVisionLlama::<B>::new(config, weights, &device), &device)
        .map_err(BenchError::Options)?;
    let [x, y, z] = config.image_size;
    let input = Tensor::<B, 5>::random(
        [options.batch, config.in_channels, z, y, x],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    // Training runs in token space as the real loop does (its data thread cuts the patches):
    // patches in, one logits tensor per channel out, the loss against targets in that layout.
    let patches = patchify(input.clone(), config.patch_size);
    let targets: Vec<Tensor<B, 3>> = (0..config.out_channels)
        .map(|_| {
            Tensor::<B, 3>::random(
                [options.batch, config.tokens(), config.patch_size.pow(3)],
                Distribution::Bernoulli(TARGET_FOREGROUND),
                &device,
            )
        })
        .collect();
    let sync = |device: &B::Device| {
        B::sync(device)
            .map_err(|e| BenchError::Backend(format!("the device failed to finish its work: {e:?}")))
    };
    let mut peak = PeakMemory::default();
    let mut host = HostPeak::default();

    // Inference: the non-autodiff model (dropout off), no graph kept.
    let inference_secs = {
        let inner = model.valid();
        let inner_input = input.clone().inner();
        let mut times = Vec::with_capacity(options.iters);
        for i in 0..options.warmup + options.iters {
            let started = Instant::now();
            let logits = inner.forward(inner_input.clone());
            sync(&device)?;
            if i >= options.warmup {
                times.push(started.elapsed().as_secs_f64());
            }
            drop(logits);
        }
        host.start();
        let logits = inner.forward(inner_input);
        peak.sample(memory(&device));
        drop(logits);
        host.stop();
        median(&mut times)
    };

    // Training: forward, loss, backward, Adam over the parameters (frozen weights are constants).
    let mut optimizer = AdamConfig::new().init::<B, MedVisionLlama<B>>();
    let mut model = model;
    let mut times = Vec::with_capacity(options.iters);
    // The last iteration is untimed and instrumented: reading the pool synchronises the device.
    for i in 0..options.warmup + options.iters + 1 {
        let instrumented = i == options.warmup + options.iters;
        if instrumented {
            host.start();
        }
        let started = Instant::now();
        let loss = segmentation_loss_tokens(
            model.forward_patches(patches.clone()),
            targets.clone(),
            config.output,
        );
        if instrumented {
            peak.sample(memory(&device));
        }
        let mut gradients = GradientsParams::from_grads(loss.backward(), &model);
        clip_gradient_norm::<B, _>(&model, &mut gradients, GRAD_CLIP_NORM);
        if instrumented {
            peak.sample(memory(&device));
        }
        model = optimizer.step(LEARNING_RATE, model, gradients);
        sync(&device)?;
        if instrumented {
            peak.sample(memory(&device));
            host.stop();
        } else if i >= options.warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(Timings {
        inference_secs,
        train_secs: median(&mut times),
        device_memory: peak.value,
        host_memory: host.value,
    })
}

/// Largest (in use, reserved) pair seen, each maximised separately.
#[derive(Default)]
struct PeakMemory {
    value: Option<(u64, u64)>,
}

impl PeakMemory {
    fn sample(&mut self, sample: Option<(u64, u64)>) {
        if let Some((in_use, reserved)) = sample {
            let (a, b) = self.value.unwrap_or((0, 0));
            self.value = Some((a.max(in_use), b.max(reserved)));
        }
    }
}

/// Median of the samples (the mean of the middle two for an even count); 0 when empty.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_samples() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn peak_memory_keeps_each_maximum_and_ignores_missing_samples() {
        let mut peak = PeakMemory::default();
        peak.sample(None);
        assert_eq!(peak.value, None);
        peak.sample(Some((10, 100)));
        peak.sample(Some((30, 90)));
        peak.sample(None);
        assert_eq!(peak.value, Some((30, 100)));
    }
}
