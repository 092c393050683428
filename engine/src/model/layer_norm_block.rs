//! A frozen BioGPT or BERT layer in place of the Llama block (MedVisionLlama, arXiv
//! 2410.02458, §4.4.2: "MedVis – BioGPT / BioBERT / ClinicalBERT"). Reference implementations:
//! Hugging Face transformers' `BioGptDecoderLayer` (GPT-2-style, pre-LayerNorm) and `BertLayer`
//! (post-LayerNorm):
//! - biogpt: `x + o(attn(LN₁(x)))`, then `x + fc2(gelu(fc1(LN₂(x))))`;
//! - bert: `LN₁(x + o(attn(x)))`, then `LN₂(x + down(gelu(up(x))))`;
//!
//! then an optional final LayerNorm with weight 1 and bias 0 (`llm.final_norm`, the official
//! code's wrapper, as for Llama). Attention is multi-head with scale 1/√head_dim and, like the
//! Llama block, no mask: BioGPT's causal mask is dropped, so every image token sees every other
//! (BERT never had one). GELU is exact (erf), as `hidden_act = "gelu"` means in transformers.
//!
//! Every weight and bias is a constant tensor (frozen); LoRA adapters on the projections named in
//! `llm.lora_targets` (q, k, v, o, up = fc1, down = fc2) are the only trainable parts.

use super::attention::EngineBackend;
use super::config::{LlmArchitecture, LlmConfig};
use super::init;
use super::lora::{FrozenLinear, LoraAdapter};
use crate::weights::LayerNormBlockWeights;
use burn::module::Module;
use burn::tensor::{DType, FloatDType, Tensor, activation, backend::Backend};

/// A frozen linear layer with a frozen bias (and an optional trainable adapter).
#[derive(Module, Debug)]
pub struct BiasedLinear<B: Backend> {
    linear: FrozenLinear<B>,
    bias: Tensor<B, 1>,
}

impl<B: EngineBackend> BiasedLinear<B> {
    /// # Shapes
    /// - x: `[batch, tokens, in]` → `[batch, tokens, out]`
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.linear.forward(x) + self.bias.clone().unsqueeze::<3>()
    }
}

impl<B: Backend> BiasedLinear<B> {
    fn frozen_count(&self) -> usize {
        self.linear.frozen_count() + self.bias.shape().num_elements()
    }

    fn cast(mut self, dtype: FloatDType) -> Self {
        self.linear.weight = self.linear.weight.clone().cast(dtype);
        self.bias = self.bias.cast(dtype);
        self
    }
}

/// A LayerNorm's frozen weight and bias.
#[derive(Module, Debug)]
pub struct FrozenLayerNorm<B: Backend> {
    weight: Tensor<B, 1>,
    bias: Tensor<B, 1>,
}

impl<B: Backend> FrozenLayerNorm<B> {
    fn forward(&self, x: Tensor<B, 3>, eps: f64) -> Tensor<B, 3> {
        layer_norm(x, eps) * self.weight.clone().unsqueeze::<3>() + self.bias.clone().unsqueeze::<3>()
    }

    fn cast(self, dtype: FloatDType) -> Self {
        Self {
            weight: self.weight.cast(dtype),
            bias: self.bias.cast(dtype),
        }
    }
}

/// The frozen BioGPT or BERT block.
#[derive(Module, Debug)]
pub struct LayerNormBlock<B: EngineBackend> {
    q: BiasedLinear<B>,
    k: BiasedLinear<B>,
    v: BiasedLinear<B>,
    o: BiasedLinear<B>,
    attention_norm: FrozenLayerNorm<B>,
    up: BiasedLinear<B>,
    down: BiasedLinear<B>,
    mlp_norm: FrozenLayerNorm<B>,
    heads: usize,
    head_dim: usize,
    eps: f64,
    /// LayerNorms after the residuals (BERT) instead of before the sublayers (BioGPT).
    post_norm: bool,
    final_norm: bool,
    /// The float type the block runs in (`None`: the model's); not saved.
    #[module(skip)]
    compute_dtype: Option<FloatDType>,
}

impl<B: EngineBackend> LayerNormBlock<B> {
    /// Builds the block from imported (or random) weights; adapters are added on the projections
    /// named in `config.lora_targets`.
    pub fn new(weights: LayerNormBlockWeights, config: &LlmConfig, seed: u64, device: &B::Device) -> Self {
        let (hidden, inter) = (weights.hidden, weights.intermediate);
        let projection = |name: &str, (w, b): (Vec<f32>, Vec<f32>), d_in: usize, d_out: usize| BiasedLinear {
            linear: FrozenLinear {
                weight: init::tensor(w, [d_in, d_out], device),
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
            },
            bias: init::tensor(b, [d_out], device),
        };
        let norm = |(w, b): (Vec<f32>, Vec<f32>)| FrozenLayerNorm {
            weight: init::tensor(w, [hidden], device),
            bias: init::tensor(b, [hidden], device),
        };
        let head_dim = weights.head_dim();
        Self {
            q: projection("q", weights.q, hidden, hidden),
            k: projection("k", weights.k, hidden, hidden),
            v: projection("v", weights.v, hidden, hidden),
            o: projection("o", weights.o, hidden, hidden),
            attention_norm: norm(weights.attention_norm),
            up: projection("up", weights.up, hidden, inter),
            down: projection("down", weights.down, inter, hidden),
            mlp_norm: norm(weights.mlp_norm),
            heads: weights.heads,
            head_dim,
            eps: weights.eps,
            post_norm: weights.architecture == LlmArchitecture::Bert,
            final_norm: config.final_norm,
            compute_dtype: None,
        }
    }

    /// Number of frozen values (weights, biases, LayerNorms).
    pub fn frozen_count(&self) -> usize {
        let norms = 2
            * (self.attention_norm.weight.shape().num_elements()
                + self.mlp_norm.weight.shape().num_elements());
        norms
            + [&self.q, &self.k, &self.v, &self.o, &self.up, &self.down]
                .iter()
                .map(|p| p.frozen_count())
                .sum::<usize>()
    }

    /// Stores the frozen weights in `dtype` and runs the block in it (see
    /// `LlamaBlock::with_compute_dtype`); adapters stay f32.
    pub fn with_compute_dtype(self, dtype: FloatDType) -> Self {
        Self {
            q: self.q.cast(dtype),
            k: self.k.cast(dtype),
            v: self.v.cast(dtype),
            o: self.o.cast(dtype),
            attention_norm: self.attention_norm.cast(dtype),
            up: self.up.cast(dtype),
            down: self.down.cast(dtype),
            mlp_norm: self.mlp_norm.cast(dtype),
            compute_dtype: Some(dtype),
            ..self
        }
    }

    /// The block; the output has the input's type.
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

    fn forward_in_compute_dtype(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let mlp = |h: Tensor<B, 3>| self.down.forward(activation::gelu(self.up.forward(h)));
        let x = if self.post_norm {
            let x = self
                .attention_norm
                .forward(x.clone() + self.attention(x), self.eps);
            self.mlp_norm.forward(x.clone() + mlp(x), self.eps)
        } else {
            let x = x.clone() + self.attention(self.attention_norm.forward(x, self.eps));
            x.clone() + mlp(self.mlp_norm.forward(x, self.eps))
        };
        if self.final_norm {
            layer_norm(x, self.eps)
        } else {
            x
        }
    }

    /// Multi-head attention, no mask, scale 1/√head_dim, then the output projection.
    ///
    /// # Shapes
    /// - h: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`
    fn attention(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, tokens, _] = h.dims();
        let split = |t: Tensor<B, 3>| {
            t.reshape([batch, tokens, self.heads, self.head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.q.forward(h.clone()));
        let k = split(self.k.forward(h.clone()));
        let v = split(self.v.forward(h));
        let attended = super::attention::attention(q, k, v, 0.0)
            .swap_dims(1, 2)
            .reshape([batch, tokens, self.heads * self.head_dim]);
        self.o.forward(attended)
    }
}

/// LayerNorm without weight and bias: `(x − mean) / √(var + eps)` over the last axis, the
/// biased variance as PyTorch's `layer_norm` uses.
///
/// # Shapes
/// - x: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`
pub fn layer_norm<B: Backend>(x: Tensor<B, 3>, eps: f64) -> Tensor<B, 3> {
    let centred = x.clone() - x.mean_dim(2);
    let variance = centred.clone().powi_scalar(2).mean_dim(2);
    centred * variance.add_scalar(eps).sqrt().recip()
}
