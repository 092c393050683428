//! Pre-LN Vision Transformer blocks (Dosovitskiy et al. 2021) as the official MedVisionLlama
//! code uses them: `x + MHA(LN(x))`, then `x + MLP(LN(x))` with an exact-GELU MLP and dropout.
//! Attention is the memory-bounded op of `attention.rs`, or written out when the weights of a
//! head are captured for display.

use super::attention::{self, EngineBackend};
use super::dropout::Dropout;
use super::init;
use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Tensor, activation, backend::Backend};

/// A trainable linear layer with PyTorch's default initialisation, deterministic per seed.
pub fn torch_linear<B: Backend>(d_in: usize, d_out: usize, seed: u64, device: &B::Device) -> Linear<B> {
    let bound = init::torch_linear_bound(d_in);
    Linear {
        weight: init::param(
            init::uniform_values(seed, d_in * d_out, bound),
            [d_in, d_out],
            device,
        ),
        bias: Some(init::param(
            init::uniform_values(seed ^ 1, d_out, bound),
            [d_out],
            device,
        )),
    }
}

/// One ViT block.
#[derive(Module, Debug)]
pub struct VitBlock<B: EngineBackend> {
    norm1: LayerNorm<B>,
    qkv: Linear<B>,
    proj: Linear<B>,
    norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    dropout: Dropout,
    heads: usize,
}

impl<B: EngineBackend> VitBlock<B> {
    /// A block of width `dim` with `heads` heads and an MLP of width `mlp_dim`.
    pub fn new(
        dim: usize,
        heads: usize,
        mlp_dim: usize,
        dropout: f64,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        Self {
            norm1: LayerNormConfig::new(dim).init(device),
            qkv: torch_linear(dim, 3 * dim, seed ^ 0x11, device),
            proj: torch_linear(dim, dim, seed ^ 0x22, device),
            norm2: LayerNormConfig::new(dim).init(device),
            fc1: torch_linear(dim, mlp_dim, seed ^ 0x33, device),
            fc2: torch_linear(mlp_dim, dim, seed ^ 0x44, device),
            dropout: Dropout::new(dropout),
            heads,
        }
    }

    /// The block with its dropout sampling at inference (`on`, Monte-Carlo dropout) or not.
    pub fn sampling_dropout(mut self, on: bool) -> Self {
        self.dropout.at_inference = on;
        self
    }

    /// The block; also returns the attention weights of head `capture_head` when asked.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, dim]` → `[batch, tokens, dim]`
    /// - captured weights: `[batch, tokens (query), tokens (key)]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        capture_head: Option<usize>,
    ) -> (Tensor<B, 3>, Option<Tensor<B, 3>>) {
        let [batch, tokens, dim] = x.dims();
        let head_dim = dim / self.heads;
        let qkv = self
            .qkv
            .forward(self.norm1.forward(x.clone()))
            .reshape([batch, tokens, 3, self.heads, head_dim])
            .permute([2, 0, 3, 1, 4]); // [3, batch, heads, tokens, head_dim]
        let take = |i: usize| {
            qkv.clone()
                .slice([i..i + 1, 0..batch, 0..self.heads, 0..tokens, 0..head_dim])
                .squeeze_dim::<4>(0)
        };
        let (q, k, v) = (take(0), take(1), take(2));
        // Without a head to capture: one attention node whose backward recomputes the scores
        // block by block (no N² tensor kept), the backend's fused kernel in inference.
        if capture_head.is_none() {
            let attended = attention::attention(q, k, v, self.dropout.rate_now::<B>(&x.device()))
                .swap_dims(1, 2)
                .reshape([batch, tokens, dim]);
            return (self.mlp(x + self.proj.forward(attended)), None);
        }
        let scores = q
            .mul_scalar(1.0 / (head_dim as f64).sqrt())
            .matmul(k.swap_dims(2, 3));
        let weights = activation::softmax(scores, 3);
        let captured = capture_head.map(|h| {
            let h = h.min(self.heads - 1);
            weights
                .clone()
                .slice([0..batch, h..h + 1, 0..tokens, 0..tokens])
                .squeeze_dim::<3>(1)
        });
        let attended = self
            .dropout
            .forward(weights)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, tokens, dim]);
        (self.mlp(x + self.proj.forward(attended)), captured)
    }

    /// The MLP half: `x + MLP(LN(x))`.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, dim]` → `[batch, tokens, dim]`
    fn mlp(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = self
            .dropout
            .forward(activation::gelu(self.fc1.forward(self.norm2.forward(x.clone()))));
        x + self.dropout.forward(self.fc2.forward(hidden))
    }
}
