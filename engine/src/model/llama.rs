//! One Llama-architecture decoder layer used as a frozen feature transformer (MedVisionLlama,
//! arXiv 2410.02458; the official code wraps layer 31 of Llama-3.1-8B): RMSNorm → grouped-query
//! attention without RoPE and without a causal mask → residual → RMSNorm → SwiGLU → residual →
//! an optional final RMSNorm whose weight is fixed at 1.
//!
//! Every weight is a constant tensor (frozen: no gradient, never updated); LoRA adapters on
//! chosen projections are the only trainable parts.

use super::attention::EngineBackend;
use super::config::LlmConfig;
use super::init;
use super::lora::{FrozenLinear, LoraAdapter};
use crate::weights::LlamaLayerWeights;
use burn::module::Module;
use burn::tensor::{DType, FloatDType, Tensor, backend::Backend};

/// The frozen Llama block.
#[derive(Module, Debug)]
pub struct LlamaBlock<B: EngineBackend> {
    input_norm: Tensor<B, 1>,
    post_norm: Tensor<B, 1>,
    q: FrozenLinear<B>,
    k: FrozenLinear<B>,
    v: FrozenLinear<B>,
    o: FrozenLinear<B>,
    gate: FrozenLinear<B>,
    up: FrozenLinear<B>,
    down: FrozenLinear<B>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f64,
    final_norm: bool,
    /// The float type the block's weights and activations are in (`None`: the model's); see
    /// [`LlamaBlock::with_compute_dtype`]. Not saved: checkpoints hold no frozen weights' type.
    #[module(skip)]
    compute_dtype: Option<FloatDType>,
}

impl<B: EngineBackend> LlamaBlock<B> {
    /// Builds the block from imported (or random) weights; adapters are added on the projections
    /// named in `config.lora_targets`.
    pub fn new(weights: LlamaLayerWeights, config: &LlmConfig, seed: u64, device: &B::Device) -> Self {
        let (hidden, kv_dim, inter) = (
            weights.hidden,
            weights.kv_heads * weights.head_dim(),
            weights.intermediate,
        );
        let projection = |name: &str, values: Vec<f32>, d_in: usize, d_out: usize| FrozenLinear {
            weight: init::tensor(values, [d_in, d_out], device),
            bias: None,
            adapter: config.lora_targets.iter().any(|t| t == name).then(|| {
                LoraAdapter::new(
                    d_in,
                    d_out,
                    config.lora_rank,
                    config.lora_alpha,
                    init::seed_for(seed, &format!("llm.{name}.lora")),
                    device,
                )
            }),
        };
        let head_dim = weights.head_dim();
        Self {
            input_norm: init::tensor(weights.input_norm, [hidden], device),
            post_norm: init::tensor(weights.post_norm, [hidden], device),
            q: projection("q", weights.q, hidden, hidden),
            k: projection("k", weights.k, hidden, kv_dim),
            v: projection("v", weights.v, hidden, kv_dim),
            o: projection("o", weights.o, hidden, hidden),
            gate: projection("gate", weights.gate, hidden, inter),
            up: projection("up", weights.up, hidden, inter),
            down: projection("down", weights.down, inter, hidden),
            heads: weights.heads,
            kv_heads: weights.kv_heads,
            head_dim,
            eps: weights.rms_eps,
            final_norm: config.final_norm,
            compute_dtype: None,
        }
    }

    /// Number of frozen values.
    pub fn frozen_count(&self) -> usize {
        let norms = self.input_norm.shape().num_elements() + self.post_norm.shape().num_elements();
        norms
            + [
                &self.q, &self.k, &self.v, &self.o, &self.gate, &self.up, &self.down,
            ]
            .iter()
            .map(|p| p.frozen_count())
            .sum::<usize>()
    }

    /// The block, computed in its [`compute_dtype`](Self::with_compute_dtype); the output has the
    /// input's type.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match self.compute_dtype {
            Some(dtype) if DType::from(dtype) != x.dtype() => {
                let outer = x.dtype();
                self.forward_in_compute_dtype(x.cast(dtype)).cast(outer)
            }
            _ => self.forward_in_compute_dtype(x),
        }
    }

    /// Stores the frozen weights (norms and projections) in `dtype` and runs the block in it,
    /// with a cast at its input and output: bf16 halves the block's weights and activations
    /// while everything around it, the LoRA adapters inside it included, stays f32 (trainable
    /// weights, gradients and Adam's state). The backend has to support `dtype`.
    pub fn with_compute_dtype(mut self, dtype: FloatDType) -> Self {
        let cast1 = |t: Tensor<B, 1>| t.cast(dtype);
        self.input_norm = cast1(self.input_norm);
        self.post_norm = cast1(self.post_norm);
        for projection in [
            &mut self.q,
            &mut self.k,
            &mut self.v,
            &mut self.o,
            &mut self.gate,
            &mut self.up,
            &mut self.down,
        ] {
            projection.weight = projection.weight.clone().cast(dtype);
        }
        self.compute_dtype = Some(dtype);
        self
    }

    /// The block's computation, in the type of `x` (which is the weights').
    fn forward_in_compute_dtype(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = rms_norm(x.clone(), Some(self.input_norm.clone()), self.eps);
        let x = x + self.o.forward(self.attention(h));
        let h = rms_norm(x.clone(), Some(self.post_norm.clone()), self.eps);
        let swiglu = super::fused::swiglu(self.gate.forward(h.clone()), self.up.forward(h));
        let x = x + self.down.forward(swiglu);
        if self.final_norm {
            rms_norm(x, None, self.eps)
        } else {
            x
        }
    }

    /// Grouped-query attention, no RoPE, no mask, scale 1/√head_dim.
    ///
    /// # Shapes
    /// - h: `[batch, tokens, hidden]` → `[batch, tokens, heads · head_dim]`
    fn attention(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, tokens, _] = h.dims();
        let split =
            |t: Tensor<B, 3>, heads: usize| t.reshape([batch, tokens, heads, self.head_dim]).swap_dims(1, 2);
        let q = split(self.q.forward(h.clone()), self.heads);
        let k = repeat_kv(
            split(self.k.forward(h.clone()), self.kv_heads),
            self.heads / self.kv_heads,
        );
        let v = repeat_kv(
            split(self.v.forward(h), self.kv_heads),
            self.heads / self.kv_heads,
        );
        // One attention node: the backend's fused kernel forward, a backward that recomputes
        // the scores block by block (attention.rs), so no N² tensor is kept for training.
        let attended = super::attention::attention(q, k, v, 0.0);
        attended
            .swap_dims(1, 2)
            .reshape([batch, tokens, self.heads * self.head_dim])
    }
}

/// Repeats each key/value head `group` times so that query head i uses KV head i / group
/// (Hugging Face's `repeat_kv`).
///
/// # Shapes
/// - x: `[batch, kv_heads, tokens, head_dim]` → `[batch, kv_heads · group, tokens, head_dim]`
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, group: usize) -> Tensor<B, 4> {
    if group == 1 {
        return x;
    }
    let [batch, kv_heads, tokens, head_dim] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([batch, kv_heads, group, tokens, head_dim])
        .reshape([batch, kv_heads * group, tokens, head_dim])
}

/// RMSNorm: `x / √(mean(x²) + eps) · weight` over the last axis, one graph node
/// ([`super::fused::rms_norm`]).
///
/// # Shapes
/// - x: `[batch, tokens, hidden]`, weight `[hidden]`
pub fn rms_norm<B: EngineBackend>(x: Tensor<B, 3>, weight: Option<Tensor<B, 1>>, eps: f64) -> Tensor<B, 3> {
    super::fused::rms_norm(x, weight, eps)
}
