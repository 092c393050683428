//! The row kernels of [`super::fused_ops`] and [`super::fast_math::gelu`] on the CPU backend
//! (burn-flex): its tensors in, its tensors out. burn-flex runs GELU and its backward on one
//! thread with the C library's scalar `erff`, and burn's autodiff writes LayerNorm and RMSNorm
//! out op by op (issue 11's profile); these run in parallel over blocks of rows, vectorised.
//!
//! Every function takes f32 tensors; other dtypes (a bf16 frozen block) are handed back (`Err`)
//! and the caller uses burn's ops.

use super::cpu_kernels::{contiguous, row_len};
use super::{fast_math, fused_ops};
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// A rayon task gets at least this many values.
const VALUES_PER_TASK: usize = 1 << 14;

/// Whether every tensor is f32.
fn all_f32<'a>(tensors: impl IntoIterator<Item = &'a FlexTensor>) -> bool {
    tensors.into_iter().all(|t| t.dtype() == DType::F32)
}

/// A new f32 tensor of `shape` holding `values`.
fn f32_tensor(values: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// [`super::EngineBackend::layer_norm_backward`] of f32 tensors by
/// [`fused_ops::rows::layer_norm_backward`]; `Err` gives other dtypes back.
#[allow(clippy::type_complexity)]
pub fn layer_norm_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    grad: FlexTensor,
    eps: f64,
) -> Result<(FlexTensor, FlexTensor, FlexTensor), Box<(FlexTensor, FlexTensor, FlexTensor)>> {
    if !all_f32([&x, &gamma, &grad]) {
        return Err(Box::new((x, gamma, grad)));
    }
    let shape = x.layout().shape().clone();
    let dim = row_len(&x);
    let (x, gamma, grad) = (contiguous(x), contiguous(gamma), contiguous(grad));
    let (dx, dgamma, dbeta) = fused_ops::rows::layer_norm_backward(
        x.storage::<f32>(),
        gamma.storage::<f32>(),
        grad.storage::<f32>(),
        dim,
        eps,
    );
    Ok((
        f32_tensor(dx, shape),
        f32_tensor(dgamma, [dim].into()),
        f32_tensor(dbeta, [dim].into()),
    ))
}

/// [`super::EngineBackend::rms_norm_node`] of f32 tensors by [`fused_ops::rows::rms_norm`]; `Err`
/// gives other dtypes back.
#[allow(clippy::type_complexity)]
pub fn rms_norm(
    x: FlexTensor,
    weight: Option<FlexTensor>,
    eps: f64,
) -> Result<FlexTensor, Box<(FlexTensor, Option<FlexTensor>)>> {
    if !all_f32(std::iter::once(&x).chain(&weight)) {
        return Err(Box::new((x, weight)));
    }
    let shape = x.layout().shape().clone();
    let dim = row_len(&x);
    let (x, weight) = (contiguous(x), weight.map(contiguous));
    let out = fused_ops::rows::rms_norm(
        x.storage::<f32>(),
        weight.as_ref().map(|w| w.storage::<f32>()),
        dim,
        eps,
    );
    Ok(f32_tensor(out, shape))
}

/// [`super::EngineBackend::rms_norm_backward`] of f32 tensors by
/// [`fused_ops::rows::rms_norm_backward`]; `Err` gives other dtypes back.
#[allow(clippy::type_complexity)]
pub fn rms_norm_backward(
    x: FlexTensor,
    weight: Option<FlexTensor>,
    grad: FlexTensor,
    eps: f64,
) -> Result<(FlexTensor, Option<FlexTensor>), Box<(FlexTensor, Option<FlexTensor>, FlexTensor)>> {
    if !all_f32([&x, &grad].into_iter().chain(&weight)) {
        return Err(Box::new((x, weight, grad)));
    }
    let shape = x.layout().shape().clone();
    let dim = row_len(&x);
    let (x, weight, grad) = (contiguous(x), weight.map(contiguous), contiguous(grad));
    let (dx, dweight) = fused_ops::rows::rms_norm_backward(
        x.storage::<f32>(),
        weight.as_ref().map(|w| w.storage::<f32>()),
        grad.storage::<f32>(),
        dim,
        eps,
    );
    Ok((
        f32_tensor(dx, shape),
        dweight.map(|d| f32_tensor(d, [dim].into())),
    ))
}

/// GELU (exact, erf form) of every value, in parallel; `Err` gives other dtypes back.
pub fn gelu(x: FlexTensor) -> Result<FlexTensor, FlexTensor> {
    if x.dtype() != DType::F32 {
        return Err(x);
    }
    let mut x = contiguous(x);
    x.storage_mut::<f32>()
        .par_chunks_mut(VALUES_PER_TASK)
        .for_each(|chunk| {
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || {
                    for value in chunk.iter_mut() {
                        *value = fast_math::gelu(*value);
                    }
                },
            )
        });
    Ok(x)
}

/// `grad · GELU′(x)` of every value, in parallel; `Err` gives other dtypes or unequal shapes back.
pub fn gelu_backward(x: FlexTensor, grad: FlexTensor) -> Result<FlexTensor, Box<(FlexTensor, FlexTensor)>> {
    if !all_f32([&x, &grad]) || x.layout().shape() != grad.layout().shape() {
        return Err(Box::new((x, grad)));
    }
    let x = contiguous(x);
    let mut grad = contiguous(grad);
    grad.storage_mut::<f32>()
        .par_chunks_mut(VALUES_PER_TASK)
        .zip(x.storage::<f32>().par_chunks(VALUES_PER_TASK))
        .for_each(|(grad, x)| {
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || {
                    for (g, &x) in grad.iter_mut().zip(x) {
                        *g *= fast_math::gelu_derivative(x);
                    }
                },
            )
        });
    Ok(grad)
}

/// `silu(gate) · up` of every value, in parallel; `Err` gives other dtypes or unequal shapes
/// back.
pub fn swiglu(gate: FlexTensor, up: FlexTensor) -> Result<FlexTensor, Box<(FlexTensor, FlexTensor)>> {
    if !all_f32([&gate, &up]) || gate.layout().shape() != up.layout().shape() {
        return Err(Box::new((gate, up)));
    }
    let gate = contiguous(gate);
    let mut up = contiguous(up);
    up.storage_mut::<f32>()
        .par_chunks_mut(VALUES_PER_TASK)
        .zip(gate.storage::<f32>().par_chunks(VALUES_PER_TASK))
        .for_each(|(up, gate)| {
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || {
                    for (u, &a) in up.iter_mut().zip(gate) {
                        *u *= a * fast_math::sigmoid(a);
                    }
                },
            )
        });
    Ok(up)
}

/// The gradients of [`swiglu`] for `grad`: `(grad · up · silu′(gate), grad · silu(gate))`;
/// `Err` gives other dtypes or unequal shapes back.
#[allow(clippy::type_complexity)]
pub fn swiglu_backward(
    gate: FlexTensor,
    up: FlexTensor,
    grad: FlexTensor,
) -> Result<(FlexTensor, FlexTensor), Box<(FlexTensor, FlexTensor, FlexTensor)>> {
    let shape = gate.layout().shape().clone();
    let same = up.layout().shape() == &shape && grad.layout().shape() == &shape;
    if !all_f32([&gate, &up, &grad]) || !same {
        return Err(Box::new((gate, up, grad)));
    }
    let (gate, up, grad) = (contiguous(gate), contiguous(up), contiguous(grad));
    let count = shape.num_elements();
    let mut grad_gate = vec![0.0_f32; count];
    let mut grad_up = vec![0.0_f32; count];
    grad_gate
        .par_chunks_mut(VALUES_PER_TASK)
        .zip(grad_up.par_chunks_mut(VALUES_PER_TASK))
        .zip(gate.storage::<f32>().par_chunks(VALUES_PER_TASK))
        .zip(up.storage::<f32>().par_chunks(VALUES_PER_TASK))
        .zip(grad.storage::<f32>().par_chunks(VALUES_PER_TASK))
        .for_each(|((((grad_gate, grad_up), gate), up), grad)| {
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || {
                    for i in 0..gate.len() {
                        let (a, g) = (gate[i], grad[i]);
                        let s = fast_math::sigmoid(a);
                        grad_up[i] = g * a * s;
                        grad_gate[i] = g * up[i] * s * (1.0 + a * (1.0 - s));
                    }
                },
            )
        });
    Ok((f32_tensor(grad_gate, shape.clone()), f32_tensor(grad_up, shape)))
}
