//! LayerNorm (Ba et al. 2016), RMSNorm (Zhang & Sennrich 2019), the exact GELU and SwiGLU's gate
//! (Shazeer 2020), each one node of the autodiff graph with its own backward pass.
//!
//! burn 0.21's autodiff has no node for the norms: `LayerNorm::forward` under autodiff runs
//! burn's default decomposition (mean, subtract, square, mean, add, square root, divide, multiply,
//! add: nine nodes and nine backward ops), and the Llama block's RMSNorm and `silu(gate)·up` are
//! written out the same way; its GELU node calls burn-flex's GELU backward, which runs on one
//! thread with the C library's scalar `erff`. On the CPU backend every one of those ops is a
//! separate pass over memory on one thread (issue 11's profile). Here the forward pass is one
//! pass (burn-flex's own parallel `layer_norm`, or a kernel of `cpu_rows`), the node saves only
//! its inputs, and the backward pass recomputes what it needs: with `x̂ = (x − μ)·r`,
//! `r = 1/√(var + ε)`, `g = dy·γ`,
//!
//! - LayerNorm: `dx = r·(g − mean(g) − x̂·mean(g·x̂))`, `dγ = Σ dy·x̂`, `dβ = Σ dy`;
//! - RMSNorm (`y = x·r·w`, `r = 1/√(mean(x²) + ε)`): `dx = r·(g − x·r²·mean(g·x))`,
//!   `dw = Σ dy·x·r`, with `g = dy·w` (`g = dy` without a weight);
//! - GELU `x·Φ(x)`: `dx = dy·(Φ(x) + x·φ(x))`;
//! - SwiGLU `a·σ(a)·b`: `da = dy·b·σ(a)(1 + a(1 − σ(a)))`, `db = dy·a·σ(a)`.
//!
//! This file holds the formulas: for backends without kernels of their own, with burn's ops (the
//! `*_with_ops` functions), and as plain f32 row loops ([`rows`]) that burn-flex runs in parallel,
//! vectorised (`cpu_rows`). The graph nodes are in `autodiff_nodes.rs`, the model's calls in
//! [`super::fused`].

use burn::tensor::TensorMetadata;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// The gradients of a LayerNorm: input, weight (γ) and bias (β).
pub type LayerNormGrads<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The gradients of an RMSNorm: input and weight (None without a weight).
pub type RmsNormGrads<B> = (FloatTensor<B>, Option<FloatTensor<B>>);

/// The gradients of a linear layer `x · W + b`: the input's (shaped like the input), the
/// weight's (`[d_in, d_out]`) and the bias's (`[d_out]`), each only where asked for.
pub type LinearGrads<B> = (
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
    Option<FloatTensor<B>>,
);

fn float<B: Backend, const D: usize>(tensor: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(tensor))
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> FloatTensor<B> {
    tensor.into_primitive().tensor()
}

/// `silu(gate) · up` with burn's ops.
pub fn swiglu_with_ops<B: Backend>(gate: FloatTensor<B>, up: FloatTensor<B>) -> FloatTensor<B> {
    let shape = gate.shape();
    let (gate, up) = (as_rows::<B>(gate), as_rows::<B>(up));
    B::float_reshape(primitive(burn::tensor::activation::silu(gate) * up), shape)
}

/// The gradients of `silu(gate) · up` with burn's ops: `grad · up · σ(a)(1 + a(1 − σ(a)))` and
/// `grad · a·σ(a)`, `a` the gate.
pub fn swiglu_backward_with_ops<B: Backend>(
    gate: FloatTensor<B>,
    up: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let shape = gate.shape();
    let (gate, up, grad) = (as_rows::<B>(gate), as_rows::<B>(up), as_rows::<B>(grad));
    let sigmoid = burn::tensor::activation::sigmoid(gate.clone());
    let silu = gate.clone() * sigmoid.clone();
    let slope = sigmoid.clone() * (gate * (sigmoid.neg().add_scalar(1.0))).add_scalar(1.0);
    let grad_gate = grad.clone() * up * slope;
    let grad_up = grad * silu;
    (
        B::float_reshape(primitive(grad_gate), shape.clone()),
        B::float_reshape(primitive(grad_up), shape),
    )
}

/// The tensor as `[rows, dim]` (rows: every axis but the last).
fn as_rows<B: Backend>(tensor: FloatTensor<B>) -> Tensor<B, 2> {
    let shape = tensor.shape();
    let dim = shape[shape.num_dims() - 1];
    let rows = shape.num_elements() / dim.max(1);
    Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(B::float_reshape(
        tensor,
        burn::tensor::Shape::new([rows * dim]),
    )))
    .reshape([rows, dim])
}

/// `(x̂, r)` of every row: the normalised rows and `1/√(var + ε)` as `[rows, 1]`.
fn normalised_rows<B: Backend>(x: Tensor<B, 2>, eps: f64) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let centred = x.clone() - x.mean_dim(1);
    let inverse = centred
        .clone()
        .powi_scalar(2)
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    (centred * inverse.clone(), inverse)
}

/// The LayerNorm backward with burn's ops.
///
/// # Shapes
/// - x, grad: `[..., dim]`; gamma `[dim]` → (`[..., dim]`, `[dim]`, `[dim]`)
pub fn layer_norm_backward_with_ops<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    grad: FloatTensor<B>,
    eps: f64,
) -> LayerNormGrads<B> {
    let shape = x.shape();
    let x = as_rows::<B>(x);
    let dy = as_rows::<B>(grad);
    let gamma = float::<B, 1>(gamma).unsqueeze::<2>();
    let (normalised, inverse) = normalised_rows(x, eps);
    let g = dy.clone() * gamma;
    let mean_g = g.clone().mean_dim(1);
    let mean_gx = (g.clone() * normalised.clone()).mean_dim(1);
    let dx = (g - mean_g - normalised.clone() * mean_gx) * inverse;
    let dgamma = (dy.clone() * normalised).sum_dim(0).squeeze_dim::<1>(0);
    let dbeta = dy.sum_dim(0).squeeze_dim::<1>(0);
    (
        B::float_reshape(primitive(dx), shape),
        primitive(dgamma),
        primitive(dbeta),
    )
}

/// `r` of every row of `x`: `1/√(mean(x²) + ε)` as `[rows, 1]`.
fn rms_inverse<B: Backend>(x: Tensor<B, 2>, eps: f64) -> Tensor<B, 2> {
    x.powi_scalar(2).mean_dim(1).add_scalar(eps).sqrt().recip()
}

/// RMSNorm with burn's ops: `x / √(mean(x²) + ε) · weight` over the last axis.
///
/// # Shapes
/// - x: `[..., dim]`; weight `[dim]` → `[..., dim]`
pub fn rms_norm_with_ops<B: Backend>(
    x: FloatTensor<B>,
    weight: Option<FloatTensor<B>>,
    eps: f64,
) -> FloatTensor<B> {
    let shape = x.shape();
    let x = as_rows::<B>(x);
    let normed = x.clone() * rms_inverse(x, eps);
    let out = match weight {
        Some(w) => normed * float::<B, 1>(w).unsqueeze::<2>(),
        None => normed,
    };
    B::float_reshape(primitive(out), shape)
}

/// The RMSNorm backward with burn's ops.
///
/// # Shapes
/// - x, grad: `[..., dim]`; weight `[dim]` → (`[..., dim]`, `[dim]` when there is a weight)
pub fn rms_norm_backward_with_ops<B: Backend>(
    x: FloatTensor<B>,
    weight: Option<FloatTensor<B>>,
    grad: FloatTensor<B>,
    eps: f64,
) -> RmsNormGrads<B> {
    let shape = x.shape();
    let x = as_rows::<B>(x);
    let dy = as_rows::<B>(grad);
    let inverse = rms_inverse(x.clone(), eps);
    let dweight = weight.is_some().then(|| {
        primitive(
            (dy.clone() * x.clone() * inverse.clone())
                .sum_dim(0)
                .squeeze_dim::<1>(0),
        )
    });
    let g = match weight {
        Some(w) => dy * float::<B, 1>(w).unsqueeze::<2>(),
        None => dy,
    };
    let mean_gx = (g.clone() * x.clone()).mean_dim(1);
    let dx = (g - x * inverse.clone().powi_scalar(2) * mean_gx) * inverse;
    (B::float_reshape(primitive(dx), shape), dweight)
}

/// [`super::EngineBackend::linear_backward`] with the backend's own `linear_*_backward` ops.
pub fn linear_backward_with_ops<B: Backend>(
    x: Option<FloatTensor<B>>,
    weight: Option<FloatTensor<B>>,
    grad: FloatTensor<B>,
    bias_grad: bool,
) -> LinearGrads<B> {
    let grad_x = weight.map(|w| B::linear_x_backward(w, grad.clone()));
    let grad_weight = x.map(|x| B::linear_weight_backward(x, grad.clone()));
    (
        grad_x,
        grad_weight,
        bias_grad.then(|| B::linear_bias_backward(grad)),
    )
}

/// Row kernels of the CPU backend, on plain f32 slices.
pub mod rows {
    use rayon::prelude::*;

    /// A rayon task gets whole rows, at least this many values.
    const VALUES_PER_TASK: usize = 1 << 14;

    fn rows_per_task(dim: usize) -> usize {
        (VALUES_PER_TASK / dim.max(1)).max(1)
    }

    /// Mean and `1/√(var + ε)` of one row, accumulated in f64.
    #[inline(always)]
    fn mean_and_inverse(row: &[f32], eps: f64) -> (f32, f32) {
        let n = row.len() as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        (mean as f32, (1.0 / (var + eps).sqrt()) as f32)
    }

    /// `1/√(mean(x²) + ε)` of one row, accumulated in f64.
    #[inline(always)]
    fn rms_inverse(row: &[f32], eps: f64) -> f32 {
        let n = row.len() as f64;
        let mean_square = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n;
        (1.0 / (mean_square + eps).sqrt()) as f32
    }

    /// Adds task-wise partial sums of `dim` values into one vector.
    fn sum_partials(partials: Vec<Vec<f32>>, dim: usize) -> Vec<f32> {
        let mut total = vec![0.0_f32; dim];
        for partial in partials {
            for (t, p) in total.iter_mut().zip(partial) {
                *t += p;
            }
        }
        total
    }

    fn check(x: &[f32], grad: &[f32], weight: Option<&[f32]>, dim: usize) {
        assert!(
            dim > 0 && x.len().is_multiple_of(dim) && grad.len() == x.len(),
            "norm backward: rows of {dim}, {} inputs, {} gradients",
            x.len(),
            grad.len()
        );
        if let Some(weight) = weight {
            assert_eq!(
                weight.len(),
                dim,
                "norm: a weight of {} for rows of {dim}",
                weight.len()
            );
        }
    }

    /// The LayerNorm backward of rows of `dim` values: `dx` (a new buffer), `dγ` and `dβ`.
    ///
    /// # Panics
    /// If the lengths disagree.
    pub fn layer_norm_backward(
        x: &[f32],
        gamma: &[f32],
        grad: &[f32],
        dim: usize,
        eps: f64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        check(x, grad, Some(gamma), dim);
        let mut dx = vec![0.0_f32; x.len()];
        let task = rows_per_task(dim) * dim;
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(task)
            .zip(x.par_chunks(task))
            .zip(grad.par_chunks(task))
            .map(|((dx, x), dy)| {
                let mut dgamma = vec![0.0_f32; dim];
                let mut dbeta = vec![0.0_f32; dim];
                let inv_n = 1.0 / dim as f32;
                for ((dx, x), dy) in dx
                    .chunks_exact_mut(dim)
                    .zip(x.chunks_exact(dim))
                    .zip(dy.chunks_exact(dim))
                {
                    let (mean, r) = mean_and_inverse(x, eps);
                    let (mut sum_g, mut sum_gx) = (0.0_f32, 0.0_f32);
                    for j in 0..dim {
                        let normalised = (x[j] - mean) * r;
                        let g = dy[j] * gamma[j];
                        sum_g += g;
                        sum_gx += g * normalised;
                        dgamma[j] += dy[j] * normalised;
                        dbeta[j] += dy[j];
                    }
                    let (mean_g, mean_gx) = (sum_g * inv_n, sum_gx * inv_n);
                    for j in 0..dim {
                        let normalised = (x[j] - mean) * r;
                        dx[j] = r * (dy[j] * gamma[j] - mean_g - normalised * mean_gx);
                    }
                }
                (dgamma, dbeta)
            })
            .collect();
        let (dgamma, dbeta): (Vec<Vec<f32>>, Vec<Vec<f32>>) = partials.into_iter().unzip();
        (dx, sum_partials(dgamma, dim), sum_partials(dbeta, dim))
    }

    /// RMSNorm of rows of `dim` values: `x·r·w` (`x·r` without a weight).
    ///
    /// # Panics
    /// If the lengths disagree.
    pub fn rms_norm(x: &[f32], weight: Option<&[f32]>, dim: usize, eps: f64) -> Vec<f32> {
        check(x, x, weight, dim);
        let mut out = vec![0.0_f32; x.len()];
        let task = rows_per_task(dim) * dim;
        out.par_chunks_mut(task)
            .zip(x.par_chunks(task))
            .for_each(|(out, x)| {
                for (out, x) in out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                    let r = rms_inverse(x, eps);
                    match weight {
                        Some(w) => {
                            for ((o, &v), &w) in out.iter_mut().zip(x).zip(w) {
                                *o = v * r * w;
                            }
                        }
                        None => {
                            for (o, &v) in out.iter_mut().zip(x) {
                                *o = v * r;
                            }
                        }
                    }
                }
            });
        out
    }

    /// The RMSNorm backward of rows of `dim` values: `dx` and `dw` (None without a weight).
    ///
    /// # Panics
    /// If the lengths disagree.
    pub fn rms_norm_backward(
        x: &[f32],
        weight: Option<&[f32]>,
        grad: &[f32],
        dim: usize,
        eps: f64,
    ) -> (Vec<f32>, Option<Vec<f32>>) {
        check(x, grad, weight, dim);
        let mut dx = vec![0.0_f32; x.len()];
        let task = rows_per_task(dim) * dim;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(task)
            .zip(x.par_chunks(task))
            .zip(grad.par_chunks(task))
            .map(|((dx, x), dy)| {
                let mut dweight = vec![0.0_f32; dim];
                let inv_n = 1.0 / dim as f32;
                for ((dx, x), dy) in dx
                    .chunks_exact_mut(dim)
                    .zip(x.chunks_exact(dim))
                    .zip(dy.chunks_exact(dim))
                {
                    let r = rms_inverse(x, eps);
                    let w = |j: usize| weight.map_or(1.0, |w| w[j]);
                    let mut sum_gx = 0.0_f32;
                    for j in 0..dim {
                        sum_gx += dy[j] * w(j) * x[j];
                        dweight[j] += dy[j] * x[j] * r;
                    }
                    let c = r * r * sum_gx * inv_n;
                    for j in 0..dim {
                        dx[j] = r * (dy[j] * w(j) - x[j] * c);
                    }
                }
                dweight
            })
            .collect();
        (dx, weight.map(|_| sum_partials(partials, dim)))
    }
}
