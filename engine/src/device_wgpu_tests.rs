//! The cubecl path without a GPU: a tiny MedVisionLlama's forward pass, backward pass and one
//! Adam step on the fused wgpu backend (fusion and autotune on), compared with the CPU backend.
//! CI installs Mesa's software Vulkan driver (lavapipe) so that this runs on every CI machine;
//! without any Vulkan adapter it prints why and checks nothing.
//!
//! Tolerances: the two backends sum in different orders (tiled matmuls, fused reductions) in
//! f32, so values agree to rounding, not bit for bit. Logits and the loss: 1e-4 relative to the
//! largest magnitude. Gradients: 1e-3 relative to the largest gradient of the same parameter
//! (they go through the whole network and its softmaxes). Adam's first step moves each value by
//! `-lr · g / (|g| + eps)` (its moments are `(1-β₁)g` and `(1-β₂)g²`, and the bias corrections
//! cancel them): on each backend the move must equal that closed form, computed here from that
//! backend's gradient, to 1e-3 · lr where the gradient is clear of rounding noise.

use super::{DeviceKind, Wgpu, choose_device, detect_wgpu, wgpu_device};
use crate::checkpoint::llm_weights_for;
use crate::model::{LlmConfig, MedVisionLlama, ModelConfig, patchify};
use crate::train::segmentation_loss_tokens;
use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};

const LEARNING_RATE: f64 = 1e-3;
const ADAM_EPSILON: f32 = 1e-5;
const LOGITS_TOLERANCE: f32 = 1e-4;
const GRADIENT_TOLERANCE: f32 = 1e-3;
const STEP_TOLERANCE: f32 = 1e-3;
/// A gradient below this share of its parameter's largest gradient may have its sign decided by
/// rounding, and Adam's first step turns the sign into ±lr: such values are not compared.
const CLEAR_GRADIENT_SHARE: f32 = 1e-2;

/// 16³ input in 4³ patches (64 tokens), one encoder and one decoder ViT block, a Llama block of
/// width 32 with 4 query and 2 KV heads (grouped-query attention), LoRA on q and v. No dropout:
/// the two backends draw different random masks.
fn tiny_config() -> ModelConfig {
    ModelConfig {
        name: "wgpu-tiny".into(),
        image_size: [16, 16, 16],
        patch_size: 4,
        embed_dim: 16,
        encoder_depth: 1,
        decoder_depth: 1,
        num_heads: 2,
        mlp_dim: 32,
        dropout: 0.0,
        llm: LlmConfig {
            hidden: 32,
            heads: 4,
            kv_heads: 2,
            intermediate: 64,
            final_norm: true,
            lora_targets: vec!["q".into(), "v".into()],
            ..LlmConfig::default()
        },
        ..ModelConfig::default()
    }
}

/// Every float parameter's values, in the module's visiting order (the same on both backends).
struct ParamValues<'a, B: AutodiffBackend> {
    grads: Option<&'a GradientsParams>,
    values: Vec<Vec<f32>>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ParamValues<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // A parameter without a gradient (none in this model) is an empty list: positions stay
        // aligned with the parameter values.
        let tensor = match self.grads {
            Some(grads) => grads.get::<B::InnerBackend, D>(param.id),
            None => Some(param.val().inner()),
        };
        let values = tensor.map(|t| t.into_data().to_vec::<f32>().expect("f32 values"));
        self.values.push(values.unwrap_or_default());
    }
}

fn collect<B: crate::model::EngineAutodiffBackend>(
    model: &MedVisionLlama<B>,
    grads: Option<&GradientsParams>,
) -> Vec<Vec<f32>> {
    let mut visitor = ParamValues::<B> {
        grads,
        values: Vec::new(),
        _backend: std::marker::PhantomData,
    };
    model.visit(&mut visitor);
    visitor.values
}

/// What one training step produced on one backend.
struct StepResult {
    logits: Vec<f32>,
    loss: f32,
    gradients: Vec<Vec<f32>>,
    before: Vec<Vec<f32>>,
    after: Vec<Vec<f32>>,
}

fn train_step<B: crate::model::EngineAutodiffBackend>(
    config: &ModelConfig,
    device: &B::Device,
) -> StepResult {
    let weights = llm_weights_for(config).expect("random weights");
    let model = MedVisionLlama::<B>::new(config, weights, device);
    let [x, y, z] = config.image_size;
    let count = x * y * z;
    // Smooth, deterministic input and a blob as target: the same values on both backends.
    let input: Vec<f32> = (0..count).map(|i| ((i as f32) * 0.37).sin()).collect();
    let target: Vec<f32> = (0..count)
        .map(|i| {
            let (xi, yi, zi) = (i % x, (i / x) % y, i / (x * y));
            let centre = |v: usize, n: usize| (v as f32 - n as f32 / 2.0).powi(2);
            f32::from(centre(xi, x) + centre(yi, y) + centre(zi, z) < 25.0)
        })
        .collect();
    let volume =
        |values: Vec<f32>| Tensor::<B, 5>::from_data(TensorData::new(values, [1, 1, z, y, x]), device);
    let patches = patchify(volume(input), config.patch_size);
    let targets = vec![patchify(volume(target), config.patch_size)];

    let logits = model.forward_patches(patches);
    let logits_values = logits[0].clone().into_data().to_vec::<f32>().expect("f32 logits");
    let loss = segmentation_loss_tokens(logits, targets, config.output);
    let loss_value = loss.clone().into_scalar().elem::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let before = collect(&model, None);
    let gradients = collect(&model, Some(&grads));
    let mut optimizer = AdamConfig::new()
        .with_epsilon(ADAM_EPSILON)
        .init::<B, MedVisionLlama<B>>();
    let model = optimizer.step(LEARNING_RATE, model, grads);
    StepResult {
        logits: logits_values,
        loss: loss_value,
        gradients,
        before,
        after: collect(&model, None),
    }
}

fn largest(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn assert_close(name: &str, gpu: &[f32], cpu: &[f32], tolerance: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{name}: sizes differ");
    let scale = largest(cpu).max(f32::MIN_POSITIVE);
    let worst = gpu
        .iter()
        .zip(cpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance * scale,
        "{name}: wgpu and CPU differ by {worst:e} (largest value {scale:e}, tolerance {tolerance:e} of it)"
    );
}

#[test]
fn wgpu_forward_backward_and_adam_step_match_the_cpu_backend() {
    let adapter = match detect_wgpu() {
        Ok(adapter) => adapter,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    eprintln!("wgpu adapter: {}", adapter.describe());
    let choice = choose_device(Some(DeviceKind::Wgpu)).expect("detected above");
    assert_eq!(choice.kind, DeviceKind::Wgpu);

    let config = tiny_config();
    let cpu = train_step::<Autodiff<Flex>>(&config, &Default::default());
    let gpu = train_step::<Autodiff<Wgpu>>(&config, &wgpu_device());

    assert_close("logits", &gpu.logits, &cpu.logits, LOGITS_TOLERANCE);
    assert!(
        (gpu.loss - cpu.loss).abs() <= LOGITS_TOLERANCE * cpu.loss.abs(),
        "loss: wgpu {} vs CPU {}",
        gpu.loss,
        cpu.loss
    );
    assert_eq!(gpu.gradients.len(), cpu.gradients.len());
    assert!(
        !cpu.gradients.is_empty(),
        "no trainable parameter received a gradient"
    );
    assert_eq!(cpu.gradients.len(), cpu.before.len());
    let mut nonzero = 0;
    for (i, (g, c)) in gpu.gradients.iter().zip(&cpu.gradients).enumerate() {
        if largest(c) == 0.0 {
            // LoRA's A matrices: B starts at zero, so A's first gradient is exactly zero.
            assert!(
                largest(g) <= 1e-7,
                "parameter {i}: zero gradient on the CPU, {} on wgpu",
                largest(g)
            );
            continue;
        }
        nonzero += 1;
        assert_close(&format!("gradient of parameter {i}"), g, c, GRADIENT_TOLERANCE);
    }
    assert!(
        nonzero * 2 > cpu.gradients.len(),
        "most gradients are zero: {nonzero} of {}",
        cpu.gradients.len()
    );
    // Adam's first step against its closed form, computed from each backend's own gradient (the
    // gradients were compared above; near |g| ≈ eps the step amplifies their rounding
    // differences), where the gradient is clear of rounding noise.
    let lr = LEARNING_RATE as f32;
    let mut compared = 0usize;
    for (backend, result) in [("wgpu", &gpu), ("CPU", &cpu)] {
        for (i, grad) in result.gradients.iter().enumerate() {
            let clear = CLEAR_GRADIENT_SHARE * largest(grad);
            for (j, g) in grad.iter().enumerate().filter(|(_, g)| g.abs() > clear) {
                let expected = -lr * g / (g.abs() + ADAM_EPSILON);
                let got = result.after[i][j] - result.before[i][j];
                assert!(
                    (got - expected).abs() <= STEP_TOLERANCE * lr,
                    "parameter {i}[{j}]: Adam moved it by {got:e} on {backend}, expected {expected:e}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} values compared");
}
