//! LoRA linear layers (Hu et al. 2021; loralib): a frozen base weight W plus a trainable
//! low-rank update, computed as `xW + s·(xA)B` — W + s·AB is never materialised, so a 4096-wide
//! layer costs r·(in + out) extra values, not in·out.

use super::attention::EngineBackend;
use super::fused::linear_with as linear;
use super::init;
use burn::module::{Module, Param};
use burn::tensor::{Tensor, backend::Backend};

/// The trainable low-rank pair: A is `[in, r]` (Kaiming-uniform), B is `[r, out]` (zeros), so a
/// fresh adapter changes nothing.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// Down-projection `[in, r]`.
    pub a: Param<Tensor<B, 2>>,
    /// Up-projection `[r, out]`.
    pub b: Param<Tensor<B, 2>>,
    /// alpha / r.
    pub scaling: f64,
}

impl<B: Backend> LoraAdapter<B> {
    /// The float type of its weights.
    pub fn dtype(&self) -> burn::tensor::DType {
        self.a.val().dtype()
    }

    /// A fresh adapter.
    pub fn new(d_in: usize, d_out: usize, rank: usize, alpha: f64, seed: u64, device: &B::Device) -> Self {
        let bound = init::torch_linear_bound(d_in);
        Self {
            a: init::param(
                init::uniform_values(seed, d_in * rank, bound),
                [d_in, rank],
                device,
            ),
            b: init::param(vec![0.0; rank * d_out], [rank, d_out], device),
            scaling: alpha / rank as f64,
        }
    }

    /// Trainable values.
    pub fn param_count(&self) -> usize {
        self.a.val().shape().num_elements() + self.b.val().shape().num_elements()
    }
}

impl<B: EngineBackend> LoraAdapter<B> {
    /// `s·(xA)B`.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, in]` → `[batch, tokens, out]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        linear(linear(x, self.a.val(), None), self.b.val(), None).mul_scalar(self.scaling)
    }
}

/// A linear layer with a frozen weight, an optional trainable bias and an optional adapter.
/// The frozen weight is a constant tensor, not a `Param`: it has no gradient, is never seen by
/// the optimiser and is not written into checkpoints.
#[derive(Module, Debug)]
pub struct FrozenLinear<B: Backend> {
    /// Frozen weight `[in, out]`.
    pub weight: Tensor<B, 2>,
    /// Trainable bias `[out]`, if any.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Trainable low-rank update, if any.
    pub adapter: Option<LoraAdapter<B>>,
}

impl<B: EngineBackend> FrozenLinear<B> {
    /// `xW + s·(xA)B + bias`.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, in]` → `[batch, tokens, out]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let base = linear(
            x.clone(),
            self.weight.clone(),
            self.bias.as_ref().map(|b| b.val()),
        );
        match &self.adapter {
            // The adapter is trainable and stays f32 when the frozen weight is bf16
            // (`LlamaBlock::with_compute_dtype`): it computes in its own type.
            Some(adapter) => {
                let (outer, own) = (x.dtype(), adapter.dtype());
                if outer == own {
                    base + adapter.forward(x)
                } else {
                    base + adapter.forward(x.cast(own)).cast(outer)
                }
            }
            None => base,
        }
    }
}

impl<B: Backend> FrozenLinear<B> {
    /// Frozen values.
    pub fn frozen_count(&self) -> usize {
        self.weight.shape().num_elements()
    }
}

/// loralib's `Linear(in, out, r, alpha)`: base weight and bias from PyTorch's default init (the
/// weight then frozen), A Kaiming-uniform, B zeros.
pub fn lora_mapper<B: Backend>(
    d_in: usize,
    d_out: usize,
    rank: usize,
    alpha: f64,
    seed: u64,
    device: &B::Device,
) -> FrozenLinear<B> {
    let bound = init::torch_linear_bound(d_in);
    FrozenLinear {
        weight: init::tensor(
            init::uniform_values(seed, d_in * d_out, bound),
            [d_in, d_out],
            device,
        ),
        bias: Some(init::param(
            init::uniform_values(seed ^ 1, d_out, bound),
            [d_out],
            device,
        )),
        adapter: Some(LoraAdapter::new(d_in, d_out, rank, alpha, seed ^ 2, device)),
    }
}
