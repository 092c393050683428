//! The model's calls of the fused ops ([`super::fused_ops`]): linear layers, LayerNorm, RMSNorm,
//! the exact GELU and SwiGLU's gate, each one node of the autodiff graph, on any [`EngineBackend`].

use super::attention::EngineBackend;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

fn primitive<B: EngineBackend, const D: usize>(tensor: Tensor<B, D>) -> FloatTensor<B> {
    tensor.into_primitive().tensor()
}

/// `x · weight + bias` over the last axis (burn's `module::linear`) as one graph node
/// ([`EngineBackend::linear_node`]).
///
/// # Shapes
/// - x: `[..., d_in]`, weight `[d_in, d_out]`, bias `[d_out]` → `[..., d_out]`
pub fn linear_with<B: EngineBackend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    if D == 1 {
        // As burn's `linear`: a vector is one row.
        return linear_with(x.unsqueeze::<2>(), weight, bias).squeeze_dim(0);
    }
    Tensor::from_primitive(TensorPrimitive::Float(B::linear_node(
        primitive(x),
        primitive(weight),
        bias.map(primitive),
    )))
}

/// `layer.forward(x)` as one graph node.
///
/// # Shapes
/// - x: `[..., d_in]` → `[..., d_out]`
pub fn linear<B: EngineBackend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    linear_with(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

/// The epsilon of burn's `LayerNormConfig` default, which the ViT blocks' LayerNorms are built
/// with (burn keeps a LayerNorm's epsilon private).
pub const VIT_LAYER_NORM_EPS: f64 = 1e-5;

/// `norm.forward(x)` as one graph node (its epsilon must be [`VIT_LAYER_NORM_EPS`]); a LayerNorm
/// without a bias runs burn's own forward.
///
/// # Shapes
/// - x: `[..., dim]` → `[..., dim]`
pub fn layer_norm<B: EngineBackend, const D: usize>(norm: &LayerNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let Some(beta) = norm.beta.as_ref() else {
        return norm.forward(x);
    };
    Tensor::from_primitive(TensorPrimitive::Float(B::layer_norm_node(
        primitive(x),
        primitive(norm.gamma.val()),
        primitive(beta.val()),
        VIT_LAYER_NORM_EPS,
    )))
}

/// RMSNorm, `x / √(mean(x²) + eps) · weight` over the last axis, as one graph node.
///
/// # Shapes
/// - x: `[..., dim]`, weight `[dim]` → `[..., dim]`
pub fn rms_norm<B: EngineBackend, const D: usize>(
    x: Tensor<B, D>,
    weight: Option<Tensor<B, 1>>,
    eps: f64,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::rms_norm_node(
        primitive(x),
        weight.map(primitive),
        eps,
    )))
}

/// The exact (erf) GELU as one graph node ([`EngineBackend::gelu_node`]).
pub fn gelu<B: EngineBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::gelu_node(primitive(x))))
}

/// SwiGLU's gate `silu(gate) · up` as one graph node ([`EngineBackend::swiglu_node`]).
pub fn swiglu<B: EngineBackend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::swiglu_node(
        primitive(gate),
        primitive(up),
    )))
}
