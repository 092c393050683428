//! The derived numbers of a report (per-sample times, throughput, TFLOP/s) and the CPU's peak
//! memory.

use super::memory_estimate;
use super::timing::Timings;
use super::{BenchOptions, BenchReport, TRAIN_FLOPS_PER_FORWARD};
use crate::model::{ModelConfig, model_stats};

/// The derived numbers: times per batch and per sample, throughput and TFLOP/s. Device fields
/// are left for the caller.
pub(super) fn report_from(config: &ModelConfig, options: &BenchOptions, timings: &Timings) -> BenchReport {
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
        step_memory_bytes: None,
        peak_reserved_bytes: None,
        peak_memory_source: String::new(),
        memory_estimate: memory_estimate(config, options.batch, options.dtype.value_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::BenchDtype;

    #[test]
    fn official_code_report_numbers_match_a_hand_computation() {
        // Forward FLOPs of the official-code model, written out: patch embedding and head
        // 2·4096·(512·64 + 64·512); 16 ViT blocks of 2·4096·(64·192 + 64·64 + 64·256 + 256·64)
        // + 4·4096²·64; the Llama layer 2·4096·218,103,808 + 4·4096³; the LoRA mappers
        // 2·2·4096·(64·4096 + 4·(64 + 4096)). Total 2,141,850,697,728.
        let flops = 2_141_850_697_728.0;
        let options = BenchOptions {
            batch: 4,
            dtype: BenchDtype::F32,
            warmup: 0,
            iters: 1,
            cpu_backend: Default::default(),
        };
        let timings = Timings {
            inference_secs: 2.0,
            train_secs: 5.0,
            device_memory: None,
            host_memory: None,
        };
        let report = report_from(&ModelConfig::default(), &options, &timings);
        assert_eq!(report.flops_per_sample, flops);
        assert_eq!(report.tokens, 4096);
        assert_eq!(report.inference_ms, 2000.0);
        assert_eq!(report.inference_ms_per_sample, 500.0);
        assert_eq!(report.train_step_ms_per_sample, 1250.0);
        assert_eq!(report.train_samples_per_s, 0.8);
        // flops / 0.5 s and 3 · flops / 1.25 s.
        assert!((report.inference_tflops - 4.283_701_395_456).abs() < 1e-12);
        assert!((report.train_tflops - 5.140_441_674_547_2).abs() < 1e-12);
    }
}
