//! `mvl bench`: inference and training-step time, peak memory and achieved TFLOP/s of a preset
//! on one device, as text or as the JSON object the PyTorch reference also prints
//! (`engine/benches/reference/bench.py`).

use super::output::Output;
use crate::bench::{
    BenchDtype, BenchModel, BenchOptions, BenchReport, CpuBackend, MemoryEstimate, memory_estimate, run_bench,
};
use crate::device::DeviceKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `mvl bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A preset, e.g. configs/demo-cpu.toml.
    #[arg(long)]
    config: PathBuf,
    /// cpu, cuda or wgpu.
    #[arg(long, value_parser = crate::device::parse_device, required_unless_present = "estimate")]
    device: Option<DeviceKind>,
    /// Samples per batch.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// f32 or bf16.
    #[arg(long, default_value = "f32", value_parser = BenchDtype::parse)]
    dtype: BenchDtype,
    /// Hugging Face checkpoint folder of the LLM (default: the preset's, else random frozen weights).
    #[arg(long)]
    llm: Option<PathBuf>,
    /// LLM layer index to import.
    #[arg(long)]
    layer: Option<usize>,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Which of burn's CPU backends runs `--device cpu`: flex (what training uses), ndarray
    /// (OpenBLAS) or candle; the last two need an mvl built with `--features cpu-alternatives`.
    #[arg(long, default_value = "flex", value_parser = CpuBackend::parse)]
    cpu_backend: CpuBackend,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Only print the closed-form estimate of a training step's GPU memory for this preset,
    /// batch and dtype (nothing is run; no device needed).
    #[arg(long)]
    estimate: bool,
}

/// `mvl bench`.
pub fn bench(output: &mut Output, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let model = BenchModel::load(&args.config, args.llm, args.layer)?;
    if args.estimate {
        let estimate = memory_estimate(&model.config, args.batch, args.dtype.value_bytes());
        if args.json {
            output.json(&estimate)?;
        } else {
            estimate_report(output, &model.config.name, &estimate);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(device) = args.device else {
        anyhow::bail!("mvl bench needs --device cpu, cuda or wgpu (or --estimate)");
    };
    let options = BenchOptions {
        batch: args.batch,
        dtype: args.dtype,
        warmup: args.warmup,
        iters: args.iters,
        cpu_backend: args.cpu_backend,
    };
    let report = run_bench(model, device, &options)?;
    if args.json {
        output.json(&report)?;
    } else {
        text_report(output, &report);
    }
    Ok(ExitCode::SUCCESS)
}

fn text_report(output: &mut Output, report: &BenchReport) {
    output.line(format!(
        "preset        {} ({} tokens, batch {}, {})",
        report.preset,
        report.tokens,
        report.batch,
        report.dtype.as_str()
    ));
    output.line(format!("device        {}", report.device_detail));
    output.line(format!("LLM weights   {}", report.llm_weights));
    output.line(format!(
        "iterations    {} warm-up, {} timed (median)",
        report.warmup, report.iters
    ));
    output.line(format!(
        "inference     {:.2} ms/sample  {:.4} TFLOP/s",
        report.inference_ms_per_sample, report.inference_tflops
    ));
    output.line(format!(
        "train step    {:.2} ms/sample  {:.4} TFLOP/s  {:.2} samples/s",
        report.train_step_ms_per_sample, report.train_tflops, report.train_samples_per_s
    ));
    output.line(format!(
        "FLOPs/sample  {:.4e} forward (a train step counts 3×)",
        report.flops_per_sample
    ));
    let memory = report
        .peak_memory_bytes
        .map_or_else(|| "unknown".to_string(), |b| format!("{:.1} MiB", b as f64 / MIB));
    output.line(format!("peak memory   {memory} ({})", report.peak_memory_source));
    if let Some(step) = report.step_memory_bytes {
        output.line(format!(
            "step memory   {:.1} MiB above what was resident before the step",
            step as f64 / MIB
        ));
    }
    if let Some(reserved) = report.peak_reserved_bytes {
        output.line(format!("reserved      {:.1} MiB", reserved as f64 / MIB));
    }
    estimate_report(output, &report.preset, &report.memory_estimate);
}

/// The closed-form memory estimate, one line per term.
fn estimate_report(output: &mut Output, preset: &str, estimate: &MemoryEstimate) {
    let gib = |bytes: u64| bytes as f64 / GIB;
    let frozen = if estimate.frozen_value_bytes == 2 {
        "bf16"
    } else {
        "f32"
    };
    output.line(format!(
        "GPU memory estimate for a training step of {preset} at batch {} (frozen block in {frozen}; closed form, docs/GPU.md):",
        estimate.batch
    ));
    output.line(format!(
        "  frozen weights              {:>8.2} GiB",
        gib(estimate.frozen_weights_bytes)
    ));
    output.line(format!(
        "  trainables, gradients, Adam {:>8.2} GiB",
        gib(estimate.trainable_state_bytes)
    ));
    output.line(format!(
        "  activations (∝ N)           {:>8.2} GiB",
        gib(estimate.activations_linear_bytes)
    ));
    output.line(format!(
        "  attention kept (∝ N²)       {:>8.2} GiB written out, {:.3} GiB memory-bounded",
        gib(estimate.attention_quadratic_bytes),
        gib(estimate.attention_bounded_bytes)
    ));
    output.line(format!(
        "  total                       {:>8.2} GiB memory-bounded attention, {:.2} GiB written out",
        gib(estimate.total_bounded_bytes),
        gib(estimate.total_written_out_bytes)
    ));
}

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

#[cfg(test)]
mod tests {
    use super::super::{Output, run};
    use std::cell::RefCell;
    use std::io::Write;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Buffer(Rc<RefCell<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Smaller than demo-cpu: 16³ in 4³ patches (64 tokens), one ViT block, a width-32 LLM.
    const TINY_PRESET: &str = r#"
[model]
name = "bench-tiny"
kind = "medvisionllama"
image_size = [16, 16, 16]
patch_size = 4
embed_dim = 16
decoder_depth = 1
num_heads = 2
mlp_dim = 32
dropout = 0.1

[model.llm]
hidden = 32
heads = 4
kv_heads = 2
intermediate = 64
layer = 0
"#;

    fn mvl(args: &[&str]) -> (std::process::ExitCode, String) {
        let buffer = Buffer::default();
        let mut output = Output::to_writer(Box::new(buffer.clone()));
        let mut argv = vec!["mvl", "bench"];
        argv.extend_from_slice(args);
        let code = run(argv, &mut output);
        let text = String::from_utf8(buffer.0.borrow().clone()).unwrap_or_default();
        (code, text)
    }

    #[test]
    fn json_report_has_positive_times_and_consistent_tflops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let preset = dir.path().join("tiny.toml");
        std::fs::write(&preset, TINY_PRESET).expect("write preset");
        let preset = preset.to_string_lossy().to_string();
        let (code, text) = mvl(&[
            "--config", &preset, "--device", "cpu", "--batch", "2", "--warmup", "1", "--iters", "2", "--json",
        ]);
        assert_eq!(code, std::process::ExitCode::SUCCESS, "{text}");
        let report: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        let number = |key: &str| {
            report[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} missing or not a number in {text}"))
        };
        for key in [
            "inference_ms",
            "inference_ms_per_sample",
            "train_step_ms",
            "train_step_ms_per_sample",
            "train_samples_per_s",
            "inference_tflops",
            "train_tflops",
            "peak_memory_bytes",
            "flops_per_sample",
        ] {
            assert!(number(key) > 0.0, "{key} = {} is not positive", number(key));
        }
        assert_eq!(report["device"], "cpu");
        assert_eq!(report["preset"], "bench-tiny");
        assert_eq!(report["batch"], 2);
        assert_eq!(report["dtype"], "f32");
        assert_eq!(report["tokens"], 64);
        assert_eq!(report["llm_weights"], "random (no checkpoint)");

        // Recomputed by hand from the forward FLOPs of this preset (closed form, written out):
        // patch embedding 64→16 and head 16→64: 2·64·(64·16 + 16·64); one ViT block
        // 2·64·(16·48 + 16·16 + 16·32 + 32·16) + 4·64²·16; LLM projections
        // 2·64·(2·32·32 + 2·32·16 + 3·32·64) + attention 4·64²·32; LoRA mappers
        // 2·2·64·(16·32 + 4·(16 + 32)).
        let expected_flops = 2.0 * 64.0 * (64.0 * 16.0 + 16.0 * 64.0)
            + 2.0 * 64.0 * (16.0 * 48.0 + 16.0 * 16.0 + 16.0 * 32.0 + 32.0 * 16.0)
            + 4.0 * 64.0 * 64.0 * 16.0
            + 2.0 * 64.0 * (2.0 * 32.0 * 32.0 + 2.0 * 32.0 * 16.0 + 3.0 * 32.0 * 64.0)
            + 4.0 * 64.0 * 64.0 * 32.0
            + 2.0 * 2.0 * 64.0 * (16.0 * 32.0 + 4.0 * (16.0 + 32.0));
        assert!((number("flops_per_sample") - expected_flops).abs() < 0.5);

        let relative = |a: f64, b: f64| (a - b).abs() / b.abs();
        let flops = number("flops_per_sample");
        let inference = flops / (number("inference_ms_per_sample") * 1e-3) / 1e12;
        assert!(relative(number("inference_tflops"), inference) < 1e-9);
        let train = 3.0 * flops / (number("train_step_ms_per_sample") * 1e-3) / 1e12;
        assert!(relative(number("train_tflops"), train) < 1e-9);
        assert!(relative(number("inference_ms"), 2.0 * number("inference_ms_per_sample")) < 1e-9);
        assert!(relative(number("train_samples_per_s"), 2e3 / number("train_step_ms")) < 1e-9);
    }

    #[test]
    fn cuda_without_a_driver_is_a_clear_error_not_a_crash() {
        if crate::device::detect_cuda().is_ok() {
            return; // a GPU machine: nothing to check here
        }
        let (code, _) = mvl(&[
            "--config",
            "../configs/demo-cpu.toml",
            "--device",
            "cuda",
            "--iters",
            "1",
        ]);
        assert_eq!(code, std::process::ExitCode::FAILURE);
        let error = crate::bench::run_bench(
            crate::bench::BenchModel::load(std::path::Path::new("../configs/demo-cpu.toml"), None, None)
                .expect("demo-cpu preset"),
            crate::device::DeviceKind::Cuda,
            &crate::bench::BenchOptions {
                batch: 1,
                dtype: crate::bench::BenchDtype::F32,
                warmup: 0,
                iters: 1,
                cpu_backend: Default::default(),
            },
        )
        .expect_err("no CUDA here");
        assert!(error.to_string().contains("--device cuda asked for"), "{error}");
    }
}
