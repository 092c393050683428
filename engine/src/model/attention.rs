//! Scaled dot-product attention whose backward pass keeps O(N) memory per head.
//!
//! `softmax(q kᵀ / √d) v` without a mask, as both the Llama block (grouped-query heads repeated
//! to the query count, no RoPE) and the ViT blocks use it. Written out under burn's autodiff, every
//! attention keeps its `[batch, heads, N, N]` scores and weights for backward: for the paper-size
//! model (4096 tokens, 32 Llama heads, 16 ViT blocks) that is tens of GiB per sample (issue 13).
//!
//! Here attention is one node of the autodiff graph (the backend-extension pattern of burn's
//! custom-kernel guide): its forward is the backend's fused kernel (burn-flex: flash attention
//! tiled over keys; CUDA: the fused kernel autotune picks) and it saves only q, k, v and the
//! output. Its backward recomputes the scores one block of query rows at a time (FlashAttention's
//! recomputation, Dao et al. 2022, with the row-wise identity `Σⱼ Pᵢⱼ dPᵢⱼ = Σₖ dOᵢₖ Oᵢₖ`), so no
//! `N × N` tensor outlives a block of at most [`SCORE_BLOCK_ELEMENTS`] values.
//! On the CPU an attention whose weights fit in one such block keeps them from the forward pass
//! instead (the same bound, no recomputed `q kᵀ` and softmax:
//! [`EngineBackend::KEEPS_SMALL_ATTENTION_WEIGHTS`]).
//!
//! Attention dropout (the official code's `nn.MultiheadAttention(dropout=0.2)`) is a mask drawn
//! from a counter-based hash of (seed, batch·head, query, key): the forward and the backward pass
//! regenerate the same mask block by block from one seed drawn from the backend's generator, so
//! the mask is never stored either.

use super::fused_loss::LossSpec;
use super::fused_ops::{self, LayerNormGrads, LinearGrads, RmsNormGrads};
use super::{cpu_kernels, cpu_linear, cpu_rows, patches};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ActivationOps, AttentionModuleOptions, FloatTensor, IntTensor, ModuleOps};
use burn::tensor::{Distribution, ElementConversion, Int, Tensor, TensorPrimitive, activation};
use std::ops::Range;

/// At most this many score values (`batch · heads · rows · keys`) exist at once in the
/// backward pass and in the dropout forward: 2²² f32 values are 16 MiB per temporary.
pub const SCORE_BLOCK_ELEMENTS: usize = 1 << 22;

/// The hash works on 15-bit halves so that every product stays below 2³¹ on any integer type.
const HALF_BITS: i64 = 15;
const HALF_MASK: i64 = (1 << HALF_BITS) - 1;
/// Multipliers of the mixing rounds (odd, below 2¹⁵).
const ROUND_MULTIPLIERS: [i64; 4] = [20011, 16963, 25117, 30011];
/// Keys added per round so that the rounds differ even for a zero seed.
const ROUND_KEYS: [i64; 4] = [0x1B3D, 0x2A5F, 0x3C71, 0x4E93];

/// Attention dropout as the backend sees it: the keep probability and the mask's seed.
#[derive(Debug, Clone)]
pub struct DropoutMask<B: Backend> {
    /// Probability that a weight is kept (1 − dropout); kept weights are scaled by 1/keep.
    pub keep: f64,
    /// A one-element integer tensor in `[0, 2¹⁵)`.
    pub seed: IntTensor<B>,
}

/// A backend that runs the model: burn's `Backend` plus the memory-bounded attention.
///
/// The default methods are right for any backend without autodiff; burn's `Autodiff` overrides
/// them with one graph node (autodiff_nodes.rs) and the block-recomputing backward.
pub trait EngineBackend: Backend {
    /// Whether training keeps the weights of an attention small enough for one block
    /// ([`fits_one_block`]) instead of recomputing them in backward: on the CPU the recomputed
    /// `q kᵀ` product and softmax cost more than the memory; GPU backends keep their fused
    /// forward kernel and recompute.
    const KEEPS_SMALL_ATTENTION_WEIGHTS: bool = false;

    /// `softmax(q kᵀ / √d) v`, with attention dropout when `dropout` is given.
    ///
    /// # Shapes
    /// - q: `[batch, heads, queries, head_dim]`, k and v: `[batch, heads, keys, head_dim]`
    /// - output: `[batch, heads, queries, head_dim]`
    fn scaled_dot_product_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        dropout: Option<DropoutMask<Self>>,
    ) -> FloatTensor<Self> {
        match dropout {
            None => Self::attention(q, k, v, None, None, AttentionModuleOptions::default()),
            Some(dropout) => {
                let (q, k, v) = (float::<Self>(q), float::<Self>(k), float::<Self>(v));
                let rows = block_rows_of(&q, &k);
                attention_in_blocks(q, k, v, Some(&dropout), rows)
                    .into_primitive()
                    .tensor()
            }
        }
    }

    /// The attention weights `softmax(scale · scores)` over the last axis.
    ///
    /// # Shapes
    /// - scores: `[batch, heads, rows, keys]` → the same
    fn attention_softmax(scores: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        softmax_with_ops::<Self>(scores, scale)
    }

    /// The softmax backward `weights ⊙ (grad_weights − row_dot)`.
    ///
    /// # Shapes
    /// - weights, grad_weights: `[batch, heads, rows, keys]`; row_dot: `[batch, heads, rows, 1]`
    /// - returns `[batch, heads, rows, keys]`
    fn attention_grad_scores(
        weights: FloatTensor<Self>,
        grad_weights: FloatTensor<Self>,
        row_dot: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        grad_scores_with_ops::<Self>(weights, grad_weights, row_dot)
    }

    /// [`super::patchify`]: a volume cut into raster-ordered, channel-first patches.
    ///
    /// # Shapes
    /// - x: `[batch, channels, z, y, x]` → `[batch, tokens, channels · patch³]`
    fn patchify(x: FloatTensor<Self>, patch: usize) -> FloatTensor<Self> {
        patches::patchify_primitive::<Self>(x, patch)
    }

    /// [`super::unpatchify`]: the inverse of [`EngineBackend::patchify`].
    ///
    /// # Shapes
    /// - tokens: `[batch, tokens, channels · patch³]` → `[batch, channels, z, y, x]`
    fn unpatchify(
        tokens: FloatTensor<Self>,
        batch: usize,
        channels: usize,
        grid: [usize; 3],
        patch: usize,
    ) -> FloatTensor<Self> {
        patches::unpatchify_primitive::<Self>(tokens, batch, channels, grid, patch)
    }

    /// A linear layer, `x · weight + bias` over the last axis (burn's `linear`); one graph node
    /// under autodiff, whose backward is [`EngineBackend::linear_backward`].
    ///
    /// # Shapes
    /// - x: `[..., d_in]`, weight `[d_in, d_out]`, bias `[d_out]` → `[..., d_out]`
    fn linear_node(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, weight, bias)
    }

    /// The gradients of [`EngineBackend::linear_node`] for the gradient `grad` of its output:
    /// the input's when `weight` is given, the weight's when `x` is given, the bias's when
    /// `bias_grad`.
    ///
    /// # Shapes
    /// - x: `[..., d_in]`, weight `[d_in, d_out]`, grad `[..., d_out]` → (`[..., d_in]`, `[d_in, d_out]`, `[d_out]`)
    fn linear_backward(
        x: Option<FloatTensor<Self>>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        bias_grad: bool,
    ) -> LinearGrads<Self> {
        fused_ops::linear_backward_with_ops::<Self>(x, weight, grad, bias_grad)
    }

    /// LayerNorm over the last axis with weight `gamma` and bias `beta`; one graph node under
    /// autodiff, whose backward is [`EngineBackend::layer_norm_backward`] (fused_ops.rs).
    ///
    /// # Shapes
    /// - x: `[..., dim]`, gamma and beta `[dim]` → `[..., dim]`
    fn layer_norm_node(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm(x, gamma, Some(beta), eps)
    }

    /// The gradients of [`EngineBackend::layer_norm_node`] for the gradient `grad` of its output.
    ///
    /// # Shapes
    /// - x, grad: `[..., dim]`, gamma `[dim]` → (`[..., dim]`, `[dim]`, `[dim]`)
    fn layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> LayerNormGrads<Self> {
        fused_ops::layer_norm_backward_with_ops::<Self>(x, gamma, grad, eps)
    }

    /// RMSNorm over the last axis, `x / √(mean(x²) + eps) · weight`; one graph node under
    /// autodiff, whose backward is [`EngineBackend::rms_norm_backward`].
    ///
    /// # Shapes
    /// - x: `[..., dim]`, weight `[dim]` → `[..., dim]`
    fn rms_norm_node(x: FloatTensor<Self>, weight: Option<FloatTensor<Self>>, eps: f64) -> FloatTensor<Self> {
        fused_ops::rms_norm_with_ops::<Self>(x, weight, eps)
    }

    /// The gradients of [`EngineBackend::rms_norm_node`] for the gradient `grad` of its output
    /// (the weight's only when there is one).
    ///
    /// # Shapes
    /// - x, grad: `[..., dim]`, weight `[dim]` → (`[..., dim]`, `[dim]`)
    fn rms_norm_backward(
        x: FloatTensor<Self>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> RmsNormGrads<Self> {
        fused_ops::rms_norm_backward_with_ops::<Self>(x, weight, grad, eps)
    }

    /// The exact (erf) GELU; one graph node under autodiff whose backward is
    /// [`EngineBackend::gelu_grad`] (burn's own GELU node calls the backend's `gelu_backward`,
    /// which a backend extension cannot replace).
    fn gelu_node(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// `grad · GELU′(x)`.
    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }

    /// SwiGLU's gate, `silu(gate) · up` with `silu(a) = a·σ(a)`; one graph node under autodiff
    /// whose backward is [`EngineBackend::swiglu_grad`].
    ///
    /// # Shapes
    /// - gate, up: the same shape → that shape
    fn swiglu_node(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        fused_ops::swiglu_with_ops::<Self>(gate, up)
    }

    /// The gradients of [`EngineBackend::swiglu_node`] with respect to `gate` and `up`.
    fn swiglu_grad(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        fused_ops::swiglu_backward_with_ops::<Self>(gate, up, grad)
    }

    /// The training loss of [`crate::train::segmentation_loss_tokens_with`] in one fused kernel
    /// (and its gradient when `spec.gradient`; under autodiff the gradient is attached to the
    /// logits instead), where the backend has one; `Err` gives the inputs back and the caller
    /// writes the loss out with burn's ops.
    ///
    /// # Shapes
    /// - logits, targets: channels × `[batch, tokens, patch³]` → loss `[1]`
    fn fused_segmentation_loss(
        logits: Vec<FloatTensor<Self>>,
        targets: Vec<FloatTensor<Self>>,
        spec: LossSpec,
    ) -> Result<FusedLoss<Self>, LossInputs<Self>> {
        let _ = spec;
        Err((logits, targets))
    }
}

/// The value of a fused loss, `[1]`, and the gradient of every channel's logits when asked for.
#[derive(Debug)]
pub struct FusedLoss<B: Backend> {
    /// The loss, `[1]`.
    pub loss: FloatTensor<B>,
    /// ∂loss/∂logits per channel, shaped like the logits (None when not asked for, and always
    /// None under autodiff, where the gradient is in the graph).
    pub gradients: Option<Vec<FloatTensor<B>>>,
}

/// A loss's logits and targets, handed back when a backend has no fused kernel for them.
pub type LossInputs<B> = (Vec<FloatTensor<B>>, Vec<FloatTensor<B>>);

/// [`EngineBackend::attention_softmax`] with burn's ops.
fn softmax_with_ops<B: Backend>(scores: FloatTensor<B>, scale: f64) -> FloatTensor<B> {
    activation::softmax(float::<B>(scores).mul_scalar(scale), 3)
        .into_primitive()
        .tensor()
}

/// [`EngineBackend::attention_grad_scores`] with burn's ops.
fn grad_scores_with_ops<B: Backend>(
    weights: FloatTensor<B>,
    grad_weights: FloatTensor<B>,
    row_dot: FloatTensor<B>,
) -> FloatTensor<B> {
    (float::<B>(weights) * (float::<B>(grad_weights) - float::<B>(row_dot)))
        .into_primitive()
        .tensor()
}

/// A training backend: autodiff over an [`EngineBackend`], itself an [`EngineBackend`].
pub trait EngineAutodiffBackend:
    EngineBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: EngineBackend>
{
}

impl<B> EngineAutodiffBackend for B where
    B: EngineBackend + burn::tensor::backend::AutodiffBackend<InnerBackend: EngineBackend>
{
}

/// On the CPU, burn-flex's fused attention runs each (batch, head) pair on one thread with the C
/// library's scalar `exp`; attention in blocks of rows with burn-flex's parallel matrix products
/// and the parallel, vectorised row kernels of [`cpu_kernels`] is faster (issue 11) and as
/// memory-bounded.
impl EngineBackend for burn::backend::Flex {
    const KEEPS_SMALL_ATTENTION_WEIGHTS: bool = true;

    fn scaled_dot_product_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        dropout: Option<DropoutMask<Self>>,
    ) -> FloatTensor<Self> {
        let (q, k, v) = (float::<Self>(q), float::<Self>(k), float::<Self>(v));
        let rows = block_rows_of(&q, &k);
        attention_in_blocks(q, k, v, dropout.as_ref(), rows)
            .into_primitive()
            .tensor()
    }

    fn attention_softmax(scores: FloatTensor<Self>, scale: f64) -> FloatTensor<Self> {
        cpu_kernels::softmax_rows(scores, scale as f32)
            .unwrap_or_else(|scores| softmax_with_ops::<Self>(scores, scale))
    }

    fn attention_grad_scores(
        weights: FloatTensor<Self>,
        grad_weights: FloatTensor<Self>,
        row_dot: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        cpu_kernels::grad_scores_rows(weights, grad_weights, row_dot).unwrap_or_else(|inputs| {
            let (w, g, d) = *inputs;
            grad_scores_with_ops::<Self>(w, g, d)
        })
    }

    fn linear_node(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        cpu_linear::linear(x, weight, bias).unwrap_or_else(|inputs| {
            let (x, weight, bias) = *inputs;
            <Self as ModuleOps<Self>>::linear(x, weight, bias)
        })
    }

    fn linear_backward(
        x: Option<FloatTensor<Self>>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        bias_grad: bool,
    ) -> LinearGrads<Self> {
        cpu_linear::linear_backward(x, weight, grad, bias_grad).unwrap_or_else(|inputs| {
            let (x, weight, grad) = *inputs;
            fused_ops::linear_backward_with_ops::<Self>(x, weight, grad, bias_grad)
        })
    }

    fn layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> LayerNormGrads<Self> {
        cpu_rows::layer_norm_backward(x, gamma, grad, eps).unwrap_or_else(|inputs| {
            let (x, gamma, grad) = *inputs;
            fused_ops::layer_norm_backward_with_ops::<Self>(x, gamma, grad, eps)
        })
    }

    fn swiglu_node(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        cpu_rows::swiglu(gate, up).unwrap_or_else(|inputs| {
            let (gate, up) = *inputs;
            fused_ops::swiglu_with_ops::<Self>(gate, up)
        })
    }

    fn swiglu_grad(
        gate: FloatTensor<Self>,
        up: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        cpu_rows::swiglu_backward(gate, up, grad).unwrap_or_else(|inputs| {
            let (gate, up, grad) = *inputs;
            fused_ops::swiglu_backward_with_ops::<Self>(gate, up, grad)
        })
    }

    fn gelu_node(x: FloatTensor<Self>) -> FloatTensor<Self> {
        cpu_rows::gelu(x).unwrap_or_else(Self::gelu)
    }

    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        cpu_rows::gelu_backward(x, grad).unwrap_or_else(|inputs| {
            let (x, grad) = *inputs;
            Self::gelu_backward(x, grad)
        })
    }

    fn rms_norm_node(x: FloatTensor<Self>, weight: Option<FloatTensor<Self>>, eps: f64) -> FloatTensor<Self> {
        cpu_rows::rms_norm(x, weight, eps).unwrap_or_else(|inputs| {
            let (x, weight) = *inputs;
            fused_ops::rms_norm_with_ops::<Self>(x, weight, eps)
        })
    }

    fn rms_norm_backward(
        x: FloatTensor<Self>,
        weight: Option<FloatTensor<Self>>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> RmsNormGrads<Self> {
        cpu_rows::rms_norm_backward(x, weight, grad, eps).unwrap_or_else(|inputs| {
            let (x, weight, grad) = *inputs;
            fused_ops::rms_norm_backward_with_ops::<Self>(x, weight, grad, eps)
        })
    }

    fn patchify(x: FloatTensor<Self>, patch: usize) -> FloatTensor<Self> {
        cpu_kernels::patchify(x, patch).unwrap_or_else(|x| patches::patchify_primitive::<Self>(x, patch))
    }

    fn unpatchify(
        tokens: FloatTensor<Self>,
        batch: usize,
        channels: usize,
        grid: [usize; 3],
        patch: usize,
    ) -> FloatTensor<Self> {
        cpu_kernels::unpatchify(tokens, batch, channels, grid, patch).unwrap_or_else(|tokens| {
            patches::unpatchify_primitive::<Self>(tokens, batch, channels, grid, patch)
        })
    }

    fn fused_segmentation_loss(
        logits: Vec<FloatTensor<Self>>,
        targets: Vec<FloatTensor<Self>>,
        spec: LossSpec,
    ) -> Result<FusedLoss<Self>, LossInputs<Self>> {
        cpu_kernels::segmentation_loss(logits, targets, spec)
            .map(|(loss, gradients)| FusedLoss { loss, gradients })
    }
}
impl EngineBackend for burn::backend::Cuda {}
impl EngineBackend for burn::backend::Wgpu {}
/// Only for `mvl bench --cpu-backend ndarray|candle`: burn's own operations throughout.
#[cfg(feature = "cpu-alternatives")]
impl EngineBackend for burn_ndarray::NdArray<f32> {}
#[cfg(feature = "cpu-alternatives")]
#[allow(deprecated)]
impl EngineBackend for burn_candle::Candle<f32> {}

/// An integer scalar in the backend's integer type.
fn int<B: Backend>(value: i64) -> B::IntElem {
    value.elem()
}

/// Wraps a float primitive as a 4-D tensor.
pub(super) fn float<B: Backend>(primitive: FloatTensor<B>) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// Query rows per block so that `batch · heads · rows · keys` stays within
/// [`SCORE_BLOCK_ELEMENTS`] (at least one row).
pub fn rows_per_block(batch: usize, heads: usize, queries: usize, keys: usize) -> usize {
    (SCORE_BLOCK_ELEMENTS / (batch * heads * keys).max(1)).clamp(1, queries.max(1))
}

/// [`rows_per_block`] for attention of `q` over `k`.
pub(super) fn block_rows_of<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>) -> usize {
    let [batch, heads, queries, _] = q.dims();
    rows_per_block(batch, heads, queries, k.dims()[2])
}

/// The attention weights `softmax(q kᵀ / √d)` of query rows `rows`.
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k_t: `[batch, heads, head_dim, keys]`
/// - returns `[batch, heads, rows, keys]`
fn weights_of_rows<B: EngineBackend>(
    q: &Tensor<B, 4>,
    k_t: &Tensor<B, 4>,
    rows: Range<usize>,
) -> Tensor<B, 4> {
    let [batch, heads, _, head_dim] = q.dims();
    let scale = 1.0 / (head_dim as f64).sqrt();
    let q_rows = q.clone().slice([0..batch, 0..heads, rows, 0..head_dim]);
    let scores = q_rows.matmul(k_t.clone());
    float(B::attention_softmax(scores.into_primitive().tensor(), scale))
}

/// Attention written out `block_rows` query rows at a time (the forward pass with dropout).
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k and v: `[batch, heads, keys, head_dim]`
/// - output: `[batch, heads, queries, head_dim]`
pub fn attention_in_blocks<B: EngineBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    dropout: Option<&DropoutMask<B>>,
    block_rows: usize,
) -> Tensor<B, 4> {
    let [batch, heads, queries, _] = q.dims();
    let keys = k.dims()[2];
    let step = block_rows.max(1);
    let k_t = k.swap_dims(2, 3);
    let blocks = (0..queries)
        .step_by(step)
        .map(|start| {
            let rows = start..(start + step).min(queries);
            rows_output(&q, &k_t, &v, dropout, [batch, heads, queries, keys], rows).0
        })
        .collect();
    Tensor::cat(blocks, 2)
}

/// The output of query rows `rows` and their weights before dropout.
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k_t: `[batch, heads, head_dim, keys]`, v:
///   `[batch, heads, keys, head_dim]`; `dims` = `[batch, heads, queries, keys]`
/// - returns (`[batch, heads, rows, head_dim]`, `[batch, heads, rows, keys]`)
fn rows_output<B: EngineBackend>(
    q: &Tensor<B, 4>,
    k_t: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    dropout: Option<&DropoutMask<B>>,
    dims: [usize; 4],
    rows: Range<usize>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let weights = weights_of_rows(q, k_t, rows.clone());
    let used = match dropout {
        Some(d) => {
            // The mask is built in the default float type; the weights may be bf16.
            let mask = dropout_mask::<B>(d, dims, rows, &q.device());
            let dtype = weights.dtype();
            weights.clone() * mask.cast(dtype)
        }
        None => weights.clone(),
    };
    (used.matmul(v.clone()), weights)
}

/// Whether attention of `q` over `k` is small enough that its weights (before dropout) fit in
/// one block of [`SCORE_BLOCK_ELEMENTS`]: then keeping them for the backward pass costs no
/// more memory than recomputing them would hold at once.
pub(super) fn fits_one_block<B: Backend>(q: &Tensor<B, 4>, k: &Tensor<B, 4>) -> bool {
    block_rows_of(q, k) >= q.dims()[2]
}

/// Attention in one block, with its weights before dropout (what [`attention_backward`] takes
/// as `kept_weights`).
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k and v: `[batch, heads, keys, head_dim]`
/// - returns (`[batch, heads, queries, head_dim]`, `[batch, heads, queries, keys]`)
pub fn attention_keeping_weights<B: EngineBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    dropout: Option<&DropoutMask<B>>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, heads, queries, _] = q.dims();
    let keys = k.dims()[2];
    rows_output(
        &q,
        &k.swap_dims(2, 3),
        &v,
        dropout,
        [batch, heads, queries, keys],
        0..queries,
    )
}

/// Gradients of attention with respect to q, k and v, recomputing the weights `block_rows`
/// query rows at a time.
///
/// With `P = softmax(S)`, `S = q kᵀ s`, `O = (P ⊙ M) v` (M the dropout mask scaled by 1/keep,
/// all ones without dropout): `dv = (P ⊙ M)ᵀ dO`, `dP = (dO vᵀ) ⊙ M`,
/// `dS = P ⊙ (dP − D)` with `D = rowsum(dO ⊙ O)`, `dq = dS k s`, `dk = dSᵀ q s`.
///
/// `kept_weights`, the weights of all query rows when the forward pass kept them
/// ([`attention_keeping_weights`]), replace the recomputation: one block of all rows.
///
/// # Shapes
/// - q, output, grad_output: `[batch, heads, queries, head_dim]`; k, v: `[batch, heads, keys, head_dim]`
/// - kept_weights: `[batch, heads, queries, keys]`
/// - returns (dq, dk, dv) shaped like (q, k, v)
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<B: EngineBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    output: Tensor<B, 4>,
    grad_output: Tensor<B, 4>,
    dropout: Option<&DropoutMask<B>>,
    block_rows: usize,
    kept_weights: Option<Tensor<B, 4>>,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let [batch, heads, queries, head_dim] = q.dims();
    let keys = k.dims()[2];
    let scale = 1.0 / (head_dim as f64).sqrt();
    let step = match kept_weights {
        Some(_) => queries.max(1),
        None => block_rows.max(1),
    };
    let mut kept_weights = kept_weights;
    let row_dot = (grad_output.clone() * output).sum_dim(3); // D: [batch, heads, queries, 1]
    let k_t = k.clone().swap_dims(2, 3);
    let v_t = v.clone().swap_dims(2, 3);
    // zeros_like keeps the inputs' dtype (the frozen block may run in bf16).
    let mut grad_k = k.zeros_like();
    let mut grad_v = v.zeros_like();
    let mut grad_q_blocks = Vec::new();
    for start in (0..queries).step_by(step) {
        let rows = start..(start + step).min(queries);
        let weights = match kept_weights.take() {
            Some(weights) => weights,
            None => weights_of_rows(&q, &k_t, rows.clone()),
        };
        let mask = dropout.map(|d| {
            dropout_mask::<B>(d, [batch, heads, queries, keys], rows.clone(), &q.device()).cast(q.dtype())
        });
        let grad_out_rows = grad_output
            .clone()
            .slice([0..batch, 0..heads, rows.clone(), 0..head_dim]);
        let q_rows = q.clone().slice([0..batch, 0..heads, rows.clone(), 0..head_dim]);
        let d_rows = row_dot.clone().slice([0..batch, 0..heads, rows, 0..1]);
        let used = match &mask {
            Some(mask) => weights.clone() * mask.clone(),
            None => weights.clone(),
        };
        grad_v = grad_v + used.swap_dims(2, 3).matmul(grad_out_rows.clone());
        let grad_weights = match mask {
            Some(mask) => grad_out_rows.matmul(v_t.clone()) * mask,
            None => grad_out_rows.matmul(v_t.clone()),
        };
        let grad_scores = float::<B>(B::attention_grad_scores(
            weights.into_primitive().tensor(),
            grad_weights.into_primitive().tensor(),
            d_rows.into_primitive().tensor(),
        ));
        grad_q_blocks.push(grad_scores.clone().matmul(k.clone()).mul_scalar(scale));
        grad_k = grad_k + grad_scores.swap_dims(2, 3).matmul(q_rows).mul_scalar(scale);
    }
    (Tensor::cat(grad_q_blocks, 2), grad_k, grad_v)
}

/// The dropout mask of query rows `rows`: `1/keep` where a weight is kept, 0 where it is dropped.
///
/// Element (b, h, i, j) is kept when a 4-round Feistel hash of its index within the (b, h) plane,
/// `i · keys + j`, keyed by the seed and by `b · heads + h`, falls below `keep · 2¹⁵`. The same
/// seed gives the same mask in any blocking, on any backend.
///
/// # Shapes
/// - `dims` = `[batch, heads, queries, keys]` of the whole attention; returns `[batch, heads, rows, keys]`
pub fn dropout_mask<B: Backend>(
    dropout: &DropoutMask<B>,
    dims: [usize; 4],
    rows: Range<usize>,
    device: &B::Device,
) -> Tensor<B, 4> {
    let [batch, heads, _, keys] = dims;
    let row_count = rows.end - rows.start;
    let plane = (row_count * keys) as i64;
    let total = batch as i64 * heads as i64 * plane;
    let local = Tensor::<B, 1, Int>::arange(0..total, device);
    // Index within the (b, h) plane and the plane's number b · heads + h.
    let plane_number = local.clone().div_scalar(plane);
    let in_plane = local
        .sub(plane_number.clone().mul_scalar(plane))
        .add_scalar(rows.start as i64 * keys as i64);
    let seed: Tensor<B, 1, Int> = Tensor::from_primitive(dropout.seed.clone());
    let mut left = in_plane.clone().bitwise_and_scalar(int::<B>(HALF_MASK));
    let mut right = in_plane
        .bitwise_right_shift_scalar(int::<B>(HALF_BITS))
        .bitwise_and_scalar(int::<B>(HALF_MASK));
    let key = (plane_number.bitwise_and_scalar(int::<B>(HALF_MASK)) + seed.clone())
        .bitwise_and_scalar(int::<B>(HALF_MASK));
    for (multiplier, round_key) in ROUND_MULTIPLIERS.iter().zip(ROUND_KEYS) {
        let mixed = (right.clone().mul_scalar(*multiplier) + key.clone())
            .add_scalar(round_key)
            .bitwise_and_scalar(int::<B>(HALF_MASK));
        let mixed = mixed
            .clone()
            .bitwise_xor(mixed.bitwise_right_shift_scalar(int::<B>(7)));
        let next_right = left.bitwise_xor(mixed).bitwise_and_scalar(int::<B>(HALF_MASK));
        left = right;
        right = next_right;
    }
    let threshold = (dropout.keep * (1 << HALF_BITS) as f64).round() as i64;
    right
        .lower_elem(threshold)
        .float()
        .mul_scalar(1.0 / dropout.keep)
        .reshape([batch, heads, row_count, keys])
}

/// Attention for the model's blocks: the memory-bounded node under autodiff, the backend's fused
/// kernel otherwise. Dropout with probability `dropout` applies whenever it is above 0: the caller
/// passes 0 at inference unless it samples on purpose (see [`super::Dropout::rate_now`]).
///
/// # Shapes
/// - q: `[batch, heads, queries, head_dim]`, k and v: `[batch, heads, keys, head_dim]`
/// - output: `[batch, heads, queries, head_dim]`
pub fn attention<B: EngineBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    dropout: f64,
) -> Tensor<B, 4> {
    let device = q.device();
    let dropout = (dropout > 0.0).then(|| DropoutMask::<B> {
        keep: 1.0 - dropout,
        seed: Tensor::<B, 1, Int>::random([1], Distribution::Uniform(0.0, (1 << HALF_BITS) as f64), &device)
            .into_primitive(),
    });
    Tensor::from_primitive(TensorPrimitive::Float(B::scaled_dot_product_attention(
        q.into_primitive().tensor(),
        k.into_primitive().tensor(),
        v.into_primitive().tensor(),
        dropout,
    )))
}
