//! Benchmark of one model preset on one device (DESIGN.md §8): inference forward time, training
//! step time (forward, the training loss, backward, Adam over the trainable parameters), peak
//! memory and achieved TFLOP/s, reported under the same JSON keys as the PyTorch reference in
//! `engine/benches/reference/bench.py`, so that both can be compared on the same GPU.
//!
//! FLOPs are the closed form of [`crate::model::model_stats`] (matrix products only); a training step is
//! counted as 3× a forward pass (forward + backward ≈ 2× forward), the usual convention.

use crate::checkpoint::{adopt_llm_dims, llm_weights_for};
use crate::device::{Cpu, Cuda, DeviceKind, Wgpu, choose_device, wgpu_device};
use crate::model::{ConfigError, ModelConfig};
use crate::weights::{FrozenBlockWeights, WeightsError};
use burn::backend::Autodiff;
use burn::cubecl::cuda::CudaRuntime;
use burn::cubecl::wgpu::WgpuRuntime;
use report::report_from;
use resident::peak_resident_bytes;
use serde::Serialize;
use std::path::{Path, PathBuf};
use timing::bench_on;

mod estimate;
mod report;
mod resident;
mod timing;

pub use estimate::{MemoryEstimate, memory_estimate};

/// Learning rate of the benchmarked Adam steps (its value does not change the cost).
const LEARNING_RATE: f64 = 1e-4;
/// Probability of a foreground voxel in the random target.
const TARGET_FOREGROUND: f64 = 0.3;
/// A training step costs about three forward passes (forward, then backward ≈ 2× forward).
pub const TRAIN_FLOPS_PER_FORWARD: f64 = 3.0;

/// The precision of the frozen Llama block (the bench's `--dtype`).
pub use crate::device::Precision as BenchDtype;

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
    /// Which of burn's CPU backends runs `--device cpu`.
    pub cpu_backend: CpuBackend,
}

/// burn 0.21's CPU backends, compared by `mvl bench --cpu-backend` (issue 11). Only burn-flex is
/// built by default; the others need the engine's `cpu-alternatives` feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuBackend {
    /// burn-flex with the engine's own row kernels: what training and inference use.
    #[default]
    Flex,
    /// burn-ndarray, matrix products through the system's OpenBLAS.
    NdArray,
    /// burn-candle (candle-core's CPU kernels, gemm for matrix products).
    Candle,
}

impl CpuBackend {
    /// `flex`, `ndarray` or `candle`.
    ///
    /// # Errors
    /// Any other text.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "flex" => Ok(Self::Flex),
            "ndarray" => Ok(Self::NdArray),
            "candle" => Ok(Self::Candle),
            other => Err(format!(
                "unknown CPU backend {other:?}: use flex, ndarray or candle"
            )),
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Candle => "candle",
        }
    }
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
    /// GPU: the largest bytes in use by burn's memory pool, sampled after the forward pass,
    /// the backward pass and the optimiser step (comparable to PyTorch's
    /// `max_memory_allocated`, but a lower bound: transient buffers inside a pass are not seen).
    /// CPU: the process's peak resident set (VmHWM) during one instrumented inference forward
    /// and one training step (the peak is restarted before each, Linux); where it cannot be
    /// restarted, the peak since the process started, model construction included.
    pub peak_memory_bytes: Option<u64>,
    /// CPU: how far the resident set rose during the instrumented inference forward or training
    /// step above what was resident just before it (activations, gradients, temporaries: the
    /// memory a step needs on top of the model and its inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_memory_bytes: Option<u64>,
    /// CUDA only: the largest pool reservation seen (comparable to `max_memory_reserved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_reserved_bytes: Option<u64>,
    /// How `peak_memory_bytes` was measured.
    pub peak_memory_source: String,
    /// The closed-form estimate of a training step's memory on a GPU for this preset, batch and
    /// dtype ([`memory_estimate`]).
    pub memory_estimate: MemoryEstimate,
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
    pub weights: Option<FrozenBlockWeights>,
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
        let weights = llm_weights_for(&config)?;
        if let Some(weights) = &weights {
            adopt_llm_dims(&mut config, weights);
        }
        let llm_weights = config.llm_weights_source(weights.as_ref());
        Ok(Self {
            config,
            weights,
            llm_weights,
        })
    }
}

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
    let choice = choose_device(Some(device)).map_err(|missing| {
        BenchError::Device(format!(
            "{missing}; run with --device cpu, or see docs/GPU.md for what CUDA needs"
        ))
    })?;
    let BenchModel {
        config,
        weights,
        llm_weights,
    } = model;
    let (timings, source) = match choice.kind {
        DeviceKind::Cpu => {
            let timings = bench_on_cpu(&config, weights, options)?;
            let source = if timings.host_memory.is_some() {
                "process peak resident set (VmHWM), restarted before one inference forward and one training step"
            } else {
                "process peak resident set (VmHWM) since start, model construction included"
            };
            (timings, source)
        }
        DeviceKind::Cuda => (
            guarded(DeviceKind::Cuda, || {
                bench_on::<Autodiff<Cuda>>(Default::default(), &config, weights, options, &|device| {
                    pool_usage::<CudaRuntime>(device)
                })
            })?,
            GPU_MEMORY_SOURCE,
        ),
        DeviceKind::Wgpu => (
            guarded(DeviceKind::Wgpu, || {
                bench_on::<Autodiff<Wgpu>>(wgpu_device(), &config, weights, options, &|device| {
                    pool_usage::<WgpuRuntime>(device)
                })
            })?,
            GPU_MEMORY_SOURCE,
        ),
    };
    let (peak_memory_bytes, step_memory_bytes, peak_reserved_bytes) =
        match (timings.device_memory, timings.host_memory) {
            (Some((in_use, reserved)), _) => (Some(in_use), None, Some(reserved)),
            (None, Some((peak, step))) => (Some(peak), Some(step), None),
            (None, None) => (peak_resident_bytes(), None, None),
        };
    let mut report = report_from(&config, options, &timings);
    report.device = choice.kind.name().into();
    report.device_detail = match (choice.kind, options.cpu_backend) {
        (DeviceKind::Cpu, CpuBackend::Flex) | (DeviceKind::Cuda | DeviceKind::Wgpu, _) => choice.reason,
        (DeviceKind::Cpu, other) => format!("{}; backend burn-{}", choice.reason, other.name()),
    };
    report.llm_weights = llm_weights;
    report.peak_memory_bytes = peak_memory_bytes;
    report.step_memory_bytes = step_memory_bytes;
    report.peak_reserved_bytes = peak_reserved_bytes;
    report.peak_memory_source = source.into();
    Ok(report)
}

/// The CPU benchmark on the backend `options` names.
fn bench_on_cpu(
    config: &ModelConfig,
    weights: Option<FrozenBlockWeights>,
    options: &BenchOptions,
) -> Result<timing::Timings, BenchError> {
    match options.cpu_backend {
        CpuBackend::Flex => {
            bench_on::<Autodiff<Cpu>>(Default::default(), config, weights, options, &|_| None)
        }
        #[cfg(feature = "cpu-alternatives")]
        CpuBackend::NdArray => bench_on::<Autodiff<burn_ndarray::NdArray<f32>>>(
            Default::default(),
            config,
            weights,
            options,
            &|_| None,
        ),
        // burn 0.21 marks burn-candle deprecated; it is measured here because issue 11 asks for it.
        #[cfg(feature = "cpu-alternatives")]
        #[allow(deprecated)]
        CpuBackend::Candle => bench_on::<Autodiff<burn_candle::Candle<f32>>>(
            Default::default(),
            config,
            weights,
            options,
            &|_| None,
        ),
        #[cfg(not(feature = "cpu-alternatives"))]
        other => Err(BenchError::Options(format!(
            "this mvl was built without burn-{}: build it with `cargo build --release -p engine \\
             --features cpu-alternatives` (burn-ndarray links Debian's libopenblas-dev)",
            other.name()
        ))),
    }
}

const GPU_MEMORY_SOURCE: &str = "burn/cubecl memory pool, sampled after forward, backward and optimiser step";

/// The device's memory pool: (bytes in use, bytes reserved). The fused backends share the
/// device's compute client with the cubecl runtime underneath, so the runtime's client reads
/// the same pool burn allocates from.
fn pool_usage<R: burn::cubecl::Runtime>(device: &R::Device) -> Option<(u64, u64)> {
    let usage = R::client(device).memory_usage().ok()?;
    Some((usage.bytes_in_use, usage.bytes_reserved))
}

/// Runs a GPU benchmark, turning a panic inside the backend (out of memory, driver or toolkit
/// problems burn does not report as errors) into an error with a hint.
fn guarded<T>(kind: DeviceKind, run: impl FnOnce() -> Result<T, BenchError>) -> Result<T, BenchError> {
    crate::device::guard(kind, run).map_err(|fault| BenchError::Backend(fault.to_string()))?
}
