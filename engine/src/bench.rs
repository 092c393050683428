//! Benchmark of one model preset on one device (DESIGN.md §8): inference forward time, training
//! step time (forward, BCE + soft-Dice loss, backward, Adam over the trainable parameters), peak
//! memory and achieved TFLOP/s, reported under the same JSON keys as the PyTorch reference in
//! `engine/benches/reference/bench.py`, so that both can be compared on the same GPU.
//!
//! FLOPs are the closed form of [`model_stats`] (matrix products only); a training step is
//! counted as 3× a forward pass (forward + backward ≈ 2× forward), the usual convention.

use crate::checkpoint::{adopt_llm_dims, llm_weights_for};
use crate::device::{DeviceKind, choose_device};
use crate::model::{ConfigError, MedVisionLlama, ModelConfig, model_stats};
use crate::weights::{LlamaLayerWeights, RANDOM_WEIGHTS, WeightsError, load_llama_layer};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor, TensorPrimitive, activation};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Learning rate of the benchmarked Adam steps (its value does not change the cost).
const LEARNING_RATE: f64 = 1e-4;
/// Smoothing term of the soft Dice loss.
const DICE_SMOOTH: f64 = 1.0;
/// Probability of a foreground voxel in the random target.
const TARGET_FOREGROUND: f64 = 0.3;
/// A training step costs about three forward passes (forward, then backward ≈ 2× forward).
pub const TRAIN_FLOPS_PER_FORWARD: f64 = 3.0;

/// Floating-point type of the weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchDtype {
    /// 32-bit floats everywhere.
    F32,
    /// bfloat16 weights and activations (CUDA: `Cuda<bf16>`; CPU: burn-flex's bf16 tensors).
    Bf16,
}

impl BenchDtype {
    /// Parses `f32` or `bf16`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("{other:?}: the dtype is f32 or bf16")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchOptions {
    /// Samples per batch.
    pub batch: usize,
    /// Weight and activation type.
    pub dtype: BenchDtype,
    /// Untimed iterations first (CUDA compiles and autotunes kernels during these).
    pub warmup: usize,
    /// Timed iterations; the median is reported.
    pub iters: usize,
}

/// The benchmark's result; `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// "cpu" or "cuda".
    pub device: String,
    /// Why that device ("CUDA: driver …", "CPU: requested").
    pub device_detail: String,
    /// Preset name.
    pub preset: String,
    /// Samples per batch.
    pub batch: usize,
    /// "f32" or "bf16".
    pub dtype: BenchDtype,
    /// Tokens per sample.
    pub tokens: usize,
    /// Closed-form FLOPs of one forward pass of one sample.
    pub flops_per_sample: f64,
    /// Values the optimiser updates.
    pub trainable_params: usize,
    /// Frozen values.
    pub frozen_params: usize,
    /// "random (no checkpoint)", "DIR layer L" or "none (ViT-Baseline)".
    pub llm_weights: String,
    /// Untimed iterations.
    pub warmup: usize,
    /// Timed iterations.
    pub iters: usize,
    /// Median time of one inference forward of a whole batch.
    pub inference_ms: f64,
    /// `inference_ms / batch`.
    pub inference_ms_per_sample: f64,
    /// Median time of one training step of a whole batch.
    pub train_step_ms: f64,
    /// `train_step_ms / batch`.
    pub train_step_ms_per_sample: f64,
    /// Training throughput.
    pub train_samples_per_s: f64,
    /// `flops_per_sample / inference time per sample`, in TFLOP/s.
    pub inference_tflops: f64,
    /// `3 · flops_per_sample / train time per sample`, in TFLOP/s.
    pub train_tflops: f64,
    /// CUDA: the largest bytes in use by burn's memory pool, sampled after the forward pass,
    /// the backward pass and the optimiser step (comparable to PyTorch's
    /// `max_memory_allocated`, but a lower bound: transient buffers inside a pass are not seen).
    /// CPU: the process's peak resident set (VmHWM), model construction included.
    pub peak_memory_bytes: Option<u64>,
    /// CUDA only: the largest pool reservation seen (comparable to `max_memory_reserved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_reserved_bytes: Option<u64>,
    /// How `peak_memory_bytes` was measured.
    pub peak_memory_source: String,
}

/// What can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The preset cannot be read or is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The LLM checkpoint cannot be read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The requested device is not usable here.
    #[error("{0}")]
    Device(String),
    /// The options make no sense or this backend cannot run them.
    #[error("{0}")]
    Options(String),
    /// The backend failed while running.
    #[error("{0}")]
    Backend(String),
}

/// A preset ready to benchmark: its config (widths adopted from the checkpoint, if any) and the
/// LLM weights.
pub struct BenchModel {
    /// The config.
    pub config: ModelConfig,
    /// The LLM layer (`None` for ViT-Baseline).
    pub weights: Option<LlamaLayerWeights>,
    /// Where the LLM weights came from, for the report.
    pub llm_weights: String,
}

impl BenchModel {
    /// Reads a preset; `llm` (a Hugging Face folder) and `layer` override the preset's LLM.
    /// Without a checkpoint the LLM block is random and frozen.
    pub fn load(preset: &Path, llm: Option<PathBuf>, layer: Option<usize>) -> Result<Self, BenchError> {
        let mut config = ModelConfig::from_file(preset)?;
        if let Some(dir) = llm {
            config.llm.checkpoint = Some(dir);
        }
        if let Some(layer) = layer {
            config.llm.layer = layer;
        }
        Self::from_config(config)
    }

    /// Loads the weights a config asks for.
    pub fn from_config(mut config: ModelConfig) -> Result<Self, BenchError> {
        let weights = match (&config.llm.checkpoint, config.has_llm()) {
            (Some(dir), true) => Some(load_llama_layer(dir, config.llm.layer)?),
            _ => llm_weights_for(&config)?,
        };
        if let Some(weights) = &weights {
            adopt_llm_dims(&mut config, weights);
        }
        let llm_weights = match (&config.llm.checkpoint, config.has_llm()) {
            (_, false) => "none (ViT-Baseline)".to_string(),
            (Some(dir), true) => format!("{} layer {}", dir.display(), config.llm.layer),
            (None, true) => RANDOM_WEIGHTS.to_string(),
        };
        Ok(Self {
            config,
            weights,
            llm_weights,
        })
    }
}

/// Median seconds of the timed inference and training iterations, and memory samples.
#[derive(Debug, Clone, Default, PartialEq)]
struct Timings {
    inference_secs: f64,
    train_secs: f64,
    /// Largest (bytes in use, bytes reserved) seen on the device, when the backend reports it.
    device_memory: Option<(u64, u64)>,
}

/// Reads the device's memory pool: (bytes in use, bytes reserved), if the backend can say.
type MemoryProbe<'a, D> = &'a dyn Fn(&D) -> Option<(u64, u64)>;

/// Runs the benchmark on `device` (detected first: asking for CUDA without a driver is an
/// error, not a crash).
pub fn run_bench(
    model: BenchModel,
    device: DeviceKind,
    options: &BenchOptions,
) -> Result<BenchReport, BenchError> {
    if options.batch == 0 || options.iters == 0 {
        return Err(BenchError::Options(
            "--batch and --iters must be at least 1".into(),
        ));
    }
    let choice = choose_device(Some(device)).map_err(BenchError::Device)?;
    let BenchModel {
        config,
        weights,
        llm_weights,
    } = model;
    let (timings, source) = match (choice.kind, options.dtype) {
        (DeviceKind::Cpu, dtype) => {
            use burn::backend::{Autodiff, Flex};
            let device = burn::backend::flex::FlexDevice;
            if dtype == BenchDtype::Bf16 {
                burn::tensor::set_default_dtypes::<Flex>(
                    &device,
                    burn::tensor::DType::BF16,
                    burn::tensor::DType::I32,
                )
                .map_err(|e| {
                    BenchError::Options(format!(
                        "bf16 on the CPU backend is not available in this process ({e}); use --dtype f32"
                    ))
                })?;
            }
            let timings = bench_on::<Autodiff<Flex>>(device, &config, weights, options, &|_| None)?;
            (
                timings,
                "process peak resident set (VmHWM), model construction included",
            )
        }
        (DeviceKind::Cuda, BenchDtype::F32) => (
            catch_backend_panic(|| {
                bench_on::<burn::backend::Autodiff<burn::backend::Cuda>>(
                    Default::default(),
                    &config,
                    weights,
                    options,
                    &|device| {
                        pool_usage::<burn::backend::Cuda>(device, |tensor| {
                            let usage = tensor.client.memory_usage().ok()?;
                            Some((usage.bytes_in_use, usage.bytes_reserved))
                        })
                    },
                )
            })?,
            CUDA_MEMORY_SOURCE,
        ),
        (DeviceKind::Cuda, BenchDtype::Bf16) => {
            type CudaBf16 = burn::backend::Cuda<burn::tensor::bf16>;
            (
                catch_backend_panic(|| {
                    bench_on::<burn::backend::Autodiff<CudaBf16>>(
                        Default::default(),
                        &config,
                        weights,
                        options,
                        &|device| {
                            pool_usage::<CudaBf16>(device, |tensor| {
                                let usage = tensor.client.memory_usage().ok()?;
                                Some((usage.bytes_in_use, usage.bytes_reserved))
                            })
                        },
                    )
                })?,
                CUDA_MEMORY_SOURCE,
            )
        }
    };
    let (peak_memory_bytes, peak_reserved_bytes) = match timings.device_memory {
        Some((in_use, reserved)) => (Some(in_use), Some(reserved)),
        None => (peak_resident_bytes(), None),
    };
    let stats = model_stats(&config);
    let mut report = report_from(&config, options, &timings);
    report.device = match choice.kind {
        DeviceKind::Cpu => "cpu".into(),
        DeviceKind::Cuda => "cuda".into(),
    };
    report.device_detail = choice.reason;
    report.trainable_params = stats.trainable_params;
    report.frozen_params = stats.frozen_params;
    report.llm_weights = llm_weights;
    report.peak_memory_bytes = peak_memory_bytes;
    report.peak_reserved_bytes = peak_reserved_bytes;
    report.peak_memory_source = source.into();
    Ok(report)
}

const CUDA_MEMORY_SOURCE: &str =
    "burn/cubecl memory pool, sampled after forward, backward and optimiser step";

/// The memory pool usage of the device, read through a tensor's compute client (burn 0.21 does
/// not expose cubecl's `memory_usage` on the backend itself).
fn pool_usage<B: Backend>(
    device: &B::Device,
    usage: impl Fn(B::FloatTensorPrimitive) -> Option<(u64, u64)>,
) -> Option<(u64, u64)> {
    match Tensor::<B, 1>::zeros([1], device).into_primitive() {
        TensorPrimitive::Float(tensor) => usage(tensor),
        TensorPrimitive::QFloat(_) => None,
    }
}

/// Turns a panic inside the CUDA backend (driver or toolkit problems burn does not report as
/// errors) into an error with a hint.
fn catch_backend_panic<T>(run: impl FnOnce() -> Result<T, BenchError>) -> Result<T, BenchError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(BenchError::Backend(format!(
            "the CUDA backend failed: {message}; check the NVIDIA driver, the CUDA toolkit (NVRTC, headers) and CUDA_PATH (docs/GPU.md)"
        )))
    })
}

/// Builds the model on `B` and times inference and training steps.
fn bench_on<B: AutodiffBackend>(
    device: B::Device,
    config: &ModelConfig,
    weights: Option<LlamaLayerWeights>,
    options: &BenchOptions,
    memory: MemoryProbe<'_, B::Device>,
) -> Result<Timings, BenchError> {
    let model = MedVisionLlama::<B>::new(config, weights, &device);
    let [x, y, z] = config.image_size;
    let input = Tensor::<B, 5>::random(
        [options.batch, config.in_channels, z, y, x],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let target = Tensor::<B, 5>::random(
        [options.batch, config.out_channels, z, y, x],
        Distribution::Bernoulli(TARGET_FOREGROUND),
        &device,
    );
    let sync = |device: &B::Device| {
        B::sync(device)
            .map_err(|e| BenchError::Backend(format!("the device failed to finish its work: {e:?}")))
    };
    let mut peak = PeakMemory::default();

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
        let logits = inner.forward(inner_input);
        peak.sample(memory(&device));
        drop(logits);
        median(&mut times)
    };

    // Training: forward, loss, backward, Adam over the parameters (frozen weights are constants).
    let mut optimizer = AdamConfig::new().init::<B, MedVisionLlama<B>>();
    let mut model = model;
    let mut times = Vec::with_capacity(options.iters);
    // The last iteration is untimed and instrumented: reading the pool synchronises the device.
    for i in 0..options.warmup + options.iters + 1 {
        let instrumented = i == options.warmup + options.iters;
        let started = Instant::now();
        let loss = segmentation_loss(model.forward(input.clone()), target.clone());
        if instrumented {
            peak.sample(memory(&device));
        }
        let gradients = GradientsParams::from_grads(loss.backward(), &model);
        if instrumented {
            peak.sample(memory(&device));
        }
        model = optimizer.step(LEARNING_RATE, model, gradients);
        sync(&device)?;
        if instrumented {
            peak.sample(memory(&device));
        } else if i >= options.warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(Timings {
        inference_secs,
        train_secs: median(&mut times),
        device_memory: peak.value,
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

/// Binary cross-entropy on logits (the numerically stable form
/// `max(x, 0) − x·y + log(1 + e^−|x|)`) plus soft Dice on the sigmoid, over every voxel.
///
/// # Shapes
/// - logits, target: `[batch, channels, z, y, x]` → `[1]`
fn segmentation_loss<B: Backend>(logits: Tensor<B, 5>, target: Tensor<B, 5>) -> Tensor<B, 1> {
    let bce = (logits.clone().clamp_min(0.0) - logits.clone() * target.clone()
        + logits.clone().abs().neg().exp().log1p())
    .mean();
    let probabilities = activation::sigmoid(logits);
    let intersection = (probabilities.clone() * target.clone()).sum();
    let total = probabilities.sum() + target.sum();
    let dice = intersection
        .mul_scalar(2.0)
        .add_scalar(DICE_SMOOTH)
        .div(total.add_scalar(DICE_SMOOTH));
    bce + dice.neg().add_scalar(1.0)
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

/// The derived numbers: times per batch and per sample, throughput and TFLOP/s. Device fields
/// are left for the caller.
fn report_from(config: &ModelConfig, options: &BenchOptions, timings: &Timings) -> BenchReport {
    let stats = model_stats(config);
    let batch = options.batch as f64;
    let inference_per_sample = timings.inference_secs / batch;
    let train_per_sample = timings.train_secs / batch;
    let tflops = |flops: f64, secs: f64| if secs > 0.0 { flops / secs / 1e12 } else { 0.0 };
    BenchReport {
        device: String::new(),
        device_detail: String::new(),
        preset: config.name.clone(),
        batch: options.batch,
        dtype: options.dtype,
        tokens: stats.tokens,
        flops_per_sample: stats.flops_per_sample,
        trainable_params: stats.trainable_params,
        frozen_params: stats.frozen_params,
        llm_weights: String::new(),
        warmup: options.warmup,
        iters: options.iters,
        inference_ms: timings.inference_secs * 1e3,
        inference_ms_per_sample: inference_per_sample * 1e3,
        train_step_ms: timings.train_secs * 1e3,
        train_step_ms_per_sample: train_per_sample * 1e3,
        train_samples_per_s: if timings.train_secs > 0.0 {
            batch / timings.train_secs
        } else {
            0.0
        },
        inference_tflops: tflops(stats.flops_per_sample, inference_per_sample),
        train_tflops: tflops(TRAIN_FLOPS_PER_FORWARD * stats.flops_per_sample, train_per_sample),
        peak_memory_bytes: None,
        peak_reserved_bytes: None,
        peak_memory_source: String::new(),
    }
}

/// The process's peak resident set in bytes (Linux `VmHWM`); `None` elsewhere.
fn peak_resident_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_vm_hwm(&status))
}

/// Reads `VmHWM:   123 kB` from a `/proc/<pid>/status` text.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}
