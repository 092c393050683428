//! `--dtype bf16`: the frozen Llama block in bfloat16 against the same block in f32, on the CPU
//! backend (burn-flex computes bf16 tensors).
//!
//! Tolerance: bf16 keeps 8 significant bits, so each weight and activation is rounded by up to
//! 2⁻⁹ ≈ 0.2 % of its value; through the block's norms, projections, softmax and SwiGLU the
//! output's relative error (Frobenius norm of the difference over that of the f32 output) stays
//! near 1 %, and we allow 3 %. The logits of the whole network see that error through the
//! mapper VD2 and the decoder: 3 % of their own norm too. The difference must not be zero either
//! (the block really ran in bf16).

use super::network_tests::tiny_config;
use super::*;
use crate::checkpoint::llm_weights_for;
use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, FloatDType, Tensor, TensorData};

type B = Flex;
const RELATIVE_TOLERANCE: f32 = 3e-2;

fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| x * x).sum::<f32>().sqrt();
    norm(&mut ours.iter().zip(reference).map(|(a, b)| a - b)) / norm(&mut reference.iter().copied())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.cast(FloatDType::F32).into_data().to_vec::<f32>().expect("f32")
}

fn input(config: &ModelConfig) -> Tensor<B, 5> {
    let [x, y, z] = config.image_size;
    let values: Vec<f32> = (0..x * y * z).map(|i| ((i as f32) * 0.61).sin()).collect();
    Tensor::from_data(TensorData::new(values, [1, 1, z, y, x]), &Default::default())
}

fn config_with_lora() -> ModelConfig {
    let mut config = tiny_config();
    // LoRA inside the block: the adapters stay f32 while the block computes in bf16.
    config.llm.lora_targets = vec!["q".into(), "v".into()];
    config
}

#[test]
fn bf16_llama_block_output_is_within_3_percent_of_f32() {
    let config = config_with_lora();
    let device = Default::default();
    let weights = crate::weights::LlamaLayerWeights::random(&config.llm, config.seed);
    let block = LlamaBlock::<B>::new(weights, &config.llm, config.seed, &device);
    let x = Tensor::<B, 3>::from_data(
        TensorData::new(
            (0..64 * config.llm.hidden)
                .map(|i| ((i as f32) * 0.13).cos())
                .collect(),
            [1, 64, config.llm.hidden],
        ),
        &device,
    );
    let f32_out = block.forward(x.clone());
    let bf16_block = block.with_compute_dtype(FloatDType::BF16);
    let bf16_out = bf16_block.forward(x);
    assert_eq!(bf16_out.dtype(), DType::F32, "the output keeps the input's type");
    let error = relative_error(&values(bf16_out), &values(f32_out));
    assert!(
        error > 0.0,
        "bf16 gave exactly the f32 result: the block did not run in bf16"
    );
    assert!(error < RELATIVE_TOLERANCE, "relative error {error}");
}

/// The dtypes of every trainable parameter.
struct ParamDtypes(Vec<DType>);

impl<AB: burn::tensor::backend::Backend> ModuleVisitor<AB> for ParamDtypes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        self.0.push(param.val().dtype());
    }
}

#[test]
fn bf16_frozen_block_keeps_trainables_and_gradients_f32_and_logits_close() {
    let config = config_with_lora();
    let device = Default::default();
    let weights = llm_weights_for(&config).expect("random");
    let f32_model = MedVisionLlama::<B>::new(&config, weights.clone(), &device);
    let bf16_model =
        MedVisionLlama::<B>::new(&config, weights.clone(), &device).with_frozen_dtype(FloatDType::BF16);
    let (f32_logits, bf16_logits) = (
        f32_model.forward(input(&config)),
        bf16_model.forward(input(&config)),
    );
    assert_eq!(bf16_logits.dtype(), DType::F32);
    let error = relative_error(&values(bf16_logits), &values(f32_logits));
    assert!(
        error > 0.0 && error < RELATIVE_TOLERANCE,
        "logits: relative error {error}"
    );

    // Training: every parameter and its gradient stay f32, and the gradients are close.
    type A = Autodiff<Flex>;
    let gradients = |model: MedVisionLlama<A>| {
        let mut dtypes = ParamDtypes(Vec::new());
        model.visit(&mut dtypes);
        assert!(
            !dtypes.0.is_empty() && dtypes.0.iter().all(|d| *d == DType::F32),
            "{:?}",
            dtypes.0
        );
        let x = Tensor::<A, 5>::from_inner(input(&config));
        let loss = model.forward(x).powi_scalar(2).mean();
        let grads = loss.backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &model);
        let mut all = Vec::new();
        struct Collect<'a>(&'a burn::optim::GradientsParams, &'a mut Vec<f32>);
        impl<AB: burn::tensor::backend::AutodiffBackend> ModuleVisitor<AB> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
                if let Some(grad) = self.0.get::<AB::InnerBackend, D>(param.id) {
                    assert_eq!(grad.dtype(), DType::F32, "a gradient is not f32");
                    self.1.extend(grad.into_data().to_vec::<f32>().expect("f32"));
                }
            }
        }
        model.visit(&mut Collect(&grads, &mut all));
        all
    };
    let f32_grads = gradients(MedVisionLlama::<A>::new(&config, weights.clone(), &device));
    let bf16_grads =
        gradients(MedVisionLlama::<A>::new(&config, weights, &device).with_frozen_dtype(FloatDType::BF16));
    assert_eq!(f32_grads.len(), bf16_grads.len());
    let error = relative_error(&bf16_grads, &f32_grads);
    assert!(
        error > 0.0 && error < RELATIVE_TOLERANCE,
        "gradients: relative error {error}"
    );
}
