//! Pre-LN Vision Transformer blocks (Dosovitskiy et al. 2021) as the official MedVisionLlama
//! code uses them: `x + MHA(LN(x))`, then `x + MLP(LN(x))` with an exact-GELU MLP and dropout.
//! Attention is the memory-bounded op of `attention.rs`, or written out when the weights of a
//! head are captured for display.

use super::attention::{self, EngineBackend};
use super::dropout::Dropout;
use super::fused;
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
        // q, k and v each through its own third of the qkv weight (columns `[q | k | v]`, as
        // `nn.MultiheadAttention`'s in_proj): slicing the small weight rather than the
        // activations keeps their backward from zero-filling and adding three activation-sized
        // tensors.
        let normed = fused::layer_norm(&self.norm1, x.clone());
        let weight = self.qkv.weight.val();
        let bias = self.qkv.bias.as_ref().map(|b| b.val());
        let take = |i: usize| {
            let columns = i * dim..(i + 1) * dim;
            let w = weight.clone().slice([0..dim, columns.clone()]);
            let b = bias.clone().map(|b| b.slice([columns]));
            fused::linear_with(normed.clone(), w, b)
                .reshape([batch, tokens, self.heads, head_dim])
                .swap_dims(1, 2) // [batch, heads, tokens, head_dim]
        };
        let (q, k, v) = (take(0), take(1), take(2));
        // Without a head to capture: one attention node whose backward recomputes the scores
        // block by block (no N² tensor kept), the backend's fused kernel in inference.
        if capture_head.is_none() {
            let attended = attention::attention(q, k, v, self.dropout.rate_now::<B>(&x.device()))
                .swap_dims(1, 2)
                .reshape([batch, tokens, dim]);
            return (self.mlp(x + fused::linear(&self.proj, attended)), None);
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
        (self.mlp(x + fused::linear(&self.proj, attended)), captured)
    }

    /// The MLP half: `x + MLP(LN(x))`.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, dim]` → `[batch, tokens, dim]`
    fn mlp(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = self.dropout.forward(fused::gelu(fused::linear(
            &self.fc1,
            fused::layer_norm(&self.norm2, x.clone()),
        )));
        x + self.dropout.forward(fused::linear(&self.fc2, hidden))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::llama_tests::max_diff;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type A = Autodiff<Flex>;

    /// The block written with burn's own modules and ops only: one qkv product cut by a
    /// permute, burn's LayerNorm, softmax and GELU (the block before issue 11's kernels).
    fn written_out(block: &VitBlock<A>, x: Tensor<A, 3>) -> Tensor<A, 3> {
        let [batch, tokens, dim] = x.dims();
        let head_dim = dim / block.heads;
        let qkv = block
            .qkv
            .forward(block.norm1.forward(x.clone()))
            .reshape([batch, tokens, 3, block.heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let take = |i: usize| {
            qkv.clone()
                .slice([i..i + 1, 0..batch, 0..block.heads, 0..tokens, 0..head_dim])
                .squeeze_dim::<4>(0)
        };
        let (q, k, v) = (take(0), take(1), take(2));
        let weights = activation::softmax(
            q.mul_scalar(1.0 / (head_dim as f64).sqrt())
                .matmul(k.swap_dims(2, 3)),
            3,
        );
        let attended = weights.matmul(v).swap_dims(1, 2).reshape([batch, tokens, dim]);
        let x = x + block.proj.forward(attended);
        let hidden = activation::gelu(block.fc1.forward(block.norm2.forward(x.clone())));
        x + block.fc2.forward(hidden)
    }

    fn values(tensor: Tensor<Flex, 3>) -> Vec<f32> {
        tensor.into_data().to_vec::<f32>().expect("f32")
    }

    /// Both attention paths of the block (the memory-bounded node and the captured, written-out
    /// one) give the written-out block's output (1e-5) and gradients (input, qkv weight and
    /// bias, both LayerNorms' weights: 1e-4).
    #[test]
    fn the_block_matches_the_block_written_with_burns_ops() {
        let device = Default::default();
        A::seed(&device, 11);
        let block = VitBlock::<A>::new(24, 3, 40, 0.0, 5, &device);
        let x = Tensor::<A, 3>::random([2, 9, 24], Distribution::Normal(0.5, 2.0), &device).require_grad();
        let upstream = Tensor::<A, 3>::random([2, 9, 24], Distribution::Normal(0.0, 1.0), &device);
        let run = |which: u8| {
            let y = match which {
                0 => written_out(&block, x.clone()),
                1 => block.forward(x.clone(), None).0,
                _ => block.forward(x.clone(), Some(1)).0,
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let bias = block.qkv.bias.as_ref().expect("qkv bias").val();
            let grad1 = |t: Tensor<A, 1>| {
                t.grad(&grads)
                    .expect("gradient")
                    .into_data()
                    .to_vec::<f32>()
                    .expect("f32")
            };
            let grad2 = |t: Tensor<A, 2>| {
                t.grad(&grads)
                    .expect("gradient")
                    .into_data()
                    .to_vec::<f32>()
                    .expect("f32")
            };
            (
                values(y.inner()),
                values(x.grad(&grads).expect("input gradient")),
                [
                    grad2(block.qkv.weight.val()),
                    grad1(bias),
                    grad1(block.norm1.gamma.val()),
                    grad1(block.norm2.gamma.val()),
                ],
            )
        };
        let reference = run(0);
        for which in [1, 2] {
            let got = run(which);
            assert!(
                max_diff(&got.0, &reference.0) < 1e-5,
                "output ({which}): {}",
                max_diff(&got.0, &reference.0)
            );
            assert!(max_diff(&got.1, &reference.1) < 1e-4, "input gradient ({which})");
            for (i, (a, b)) in got.2.iter().zip(&reference.2).enumerate() {
                assert!(
                    max_diff(a, b) < 1e-4,
                    "parameter gradient {i} ({which}): {}",
                    max_diff(a, b)
                );
            }
        }
    }
}
