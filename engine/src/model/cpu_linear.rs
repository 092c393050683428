//! The linear layers on the CPU backend (burn-flex): `x · W + b` and its gradients, each product
//! one call of the `gemm` crate over all rows at once.
//!
//! burn 0.21's default `linear` (burn-flex has none of its own) broadcasts the weight to
//! `[1, d_in, d_out]` and runs a batched product per sample (one thread per sample, or one thread
//! in all at batch 1 below burn-flex's size threshold), allocates every output zero-filled and
//! adds the bias as a separate broadcast pass; its weight gradient is a `[batch, d_in, d_out]`
//! product summed over the batch afterwards, and the bias gradient two serial sums (issue 11's
//! profile). Here the rows of every sample form one `[rows, d_in]` matrix, the output buffer is
//! written once (bias rows first, then the product added onto them), `dW = xᵀ·dY` is one product
//! over all rows, and `db` sums row blocks in parallel and adds the partial sums in a fixed order
//! (the same result on every run).
//!
//! Every function takes f32 tensors; other dtypes (a bf16 frozen block) are handed back (`Err`)
//! and the caller uses burn's ops.

use super::cpu_kernels::{contiguous, row_len};
use burn::tensor::{DType, Shape, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Products of at least this many multiply-adds (`m · n · k`) are split across the compute
/// threads by gemm; smaller ones run on the calling thread (a task costs a few microseconds).
const PARALLEL_MULTIPLY_ADDS: usize = 1 << 18;

/// A rayon task of the bias fill and the bias gradient gets at least this many values.
const VALUES_PER_TASK: usize = 1 << 14;

/// The gradients of the input, the weight and the bias (see [`super::fused_ops::LinearGrads`]).
type Grads = (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>);

/// A matrix inside a tensor's buffer: element (r, c) is `data[offset + r·row_stride +
/// c·col_stride]`, every such index checked to lie inside `data` when the view is made.
#[derive(Clone, Copy)]
struct MatrixView<'a> {
    data: &'a [f32],
    offset: usize,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> MatrixView<'a> {
    /// The view, or None when a stride is negative or an element would lie outside `data`.
    fn new(
        data: &'a [f32],
        offset: usize,
        [rows, cols]: [usize; 2],
        [row_stride, col_stride]: [isize; 2],
    ) -> Option<Self> {
        if row_stride < 0 || col_stride < 0 || rows == 0 || cols == 0 {
            return None;
        }
        let last = offset
            .checked_add((rows - 1).checked_mul(row_stride as usize)?)?
            .checked_add((cols - 1).checked_mul(col_stride as usize)?)?;
        (last < data.len()).then_some(Self {
            data,
            offset,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A contiguous `[rows, cols]` buffer.
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Option<Self> {
        Self::new(data, 0, [rows, cols], [cols as isize, 1])
    }

    /// A two-axis tensor as it lies in its buffer (any non-negative strides).
    fn of_matrix(tensor: &'a FlexTensor) -> Option<Self> {
        let layout = tensor.layout();
        let shape = layout.shape();
        let strides = layout.strides();
        if shape.num_dims() != 2 {
            return None;
        }
        Self::new(
            tensor.storage::<f32>(),
            layout.start_offset(),
            [shape[0], shape[1]],
            [strides[0], strides[1]],
        )
    }

    /// The transpose, without moving anything.
    fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `lhs · rhs` as a new row-major buffer, added onto `initial` when given (which must hold
/// `lhs.rows · rhs.cols` values).
fn product(lhs: MatrixView, rhs: MatrixView, initial: Option<Vec<f32>>) -> Vec<f32> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(k, rhs.rows, "a product of [{m}, {k}] and [{}, {n}]", rhs.rows);
    let parallelism = match m.saturating_mul(n).saturating_mul(k) >= PARALLEL_MULTIPLY_ADDS {
        true => gemm::Parallelism::Rayon(0),
        false => gemm::Parallelism::None,
    };
    let read_dst = initial.is_some();
    let mut out = initial.unwrap_or_else(|| Vec::with_capacity(m * n));
    assert!(out.capacity() >= m * n && (!read_dst || out.len() == m * n));
    #[allow(unsafe_code)]
    // SAFETY: both views were checked at construction to address only elements inside their
    // buffers (non-negative strides, last element in bounds), and neither buffer is written
    // while the product runs. `out` has room for m·n values at row stride n, column stride 1;
    // gemm reads them only when `read_dst` (then all m·n are initialised, asserted above) and
    // writes every one of them, so all m·n are initialised when the length is set. gemm's
    // threads run inside this call and do not outlive the borrows.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(m * n);
    }
    out
}

/// `rows` copies of `bias`, one after another, written in parallel.
fn bias_rows(bias: &[f32], rows: usize) -> Vec<f32> {
    let cols = bias.len();
    let mut out = Vec::with_capacity(rows * cols);
    let rows_per_task = (VALUES_PER_TASK / cols.max(1)).max(1);
    out.spare_capacity_mut()[..rows * cols]
        .par_chunks_mut(rows_per_task * cols)
        .for_each(|chunk| {
            for row in chunk.chunks_exact_mut(cols) {
                for (slot, value) in row.iter_mut().zip(bias) {
                    *slot = MaybeUninit::new(*value);
                }
            }
        });
    #[allow(unsafe_code)]
    // SAFETY: the loop above wrote every one of the first rows·cols slots (the chunks cover
    // them and every chunk is a whole number of rows of `cols` values).
    unsafe {
        out.set_len(rows * cols);
    }
    out
}

/// The sum of every column of a row-major `[rows, cols]` buffer: row blocks in parallel, their
/// partial sums added in order.
fn column_sums(values: &[f32], cols: usize) -> Vec<f32> {
    let rows_per_task = (VALUES_PER_TASK / cols.max(1)).max(1);
    let partials: Vec<Vec<f32>> = values
        .par_chunks(rows_per_task * cols)
        .map(|block| {
            let mut sums = vec![0.0_f32; cols];
            for row in block.chunks_exact(cols) {
                for (sum, value) in sums.iter_mut().zip(row) {
                    *sum += value;
                }
            }
            sums
        })
        .collect();
    let mut total = vec![0.0_f32; cols];
    for partial in partials {
        for (sum, value) in total.iter_mut().zip(partial) {
            *sum += value;
        }
    }
    total
}

/// The tensor itself when [`MatrixView::of_matrix`] can address it in place, else a contiguous
/// copy (a weight with a negative stride).
fn viewable(tensor: FlexTensor) -> FlexTensor {
    match MatrixView::of_matrix(&tensor) {
        Some(_) => tensor,
        None => contiguous(tensor),
    }
}

/// A new f32 tensor of `shape` holding `values`.
fn f32_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The shape of `x` with its last axis replaced by `last`.
fn with_last_axis(x: &Shape, last: usize) -> Shape {
    let mut dims: Vec<usize> = x.iter().copied().collect();
    if let Some(end) = dims.last_mut() {
        *end = last;
    }
    Shape::from(dims)
}

/// Whether a linear layer of these tensors can run here: f32 throughout, a 2-axis weight whose
/// first axis is x's last, a bias as long as the weight's second axis, no empty axis.
fn supported(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>) -> bool {
    let weight_shape = weight.layout().shape();
    let f32s = x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias.is_none_or(|b| b.dtype() == DType::F32);
    f32s && x.layout().shape().num_dims() >= 2
        && x.layout().num_elements() > 0
        && weight_shape.num_dims() == 2
        && weight_shape[0] == row_len(x)
        && weight_shape[1] > 0
        && bias.is_none_or(|b| b.layout().num_elements() == weight_shape[1])
}

/// `x · weight + bias` over x's last axis.
///
/// # Shapes
/// - x: `[..., d_in]`, weight `[d_in, d_out]`, bias `[d_out]` → `[..., d_out]`
#[allow(clippy::type_complexity)]
pub fn linear(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> Result<FlexTensor, Box<(FlexTensor, FlexTensor, Option<FlexTensor>)>> {
    if !supported(&x, &weight, bias.as_ref()) {
        return Err(Box::new((x, weight, bias)));
    }
    let d_in = row_len(&x);
    let out_shape = with_last_axis(x.layout().shape(), weight.layout().shape()[1]);
    let x = contiguous(x);
    let rows = x.layout().num_elements() / d_in;
    let (weight, bias) = (viewable(weight), bias.map(contiguous));
    let (Some(lhs), Some(rhs)) = (
        MatrixView::row_major(x.storage::<f32>(), rows, d_in),
        MatrixView::of_matrix(&weight),
    ) else {
        return Err(Box::new((x, weight, bias)));
    };
    let initial = bias.as_ref().map(|b| bias_rows(b.storage::<f32>(), rows));
    Ok(f32_tensor(product(lhs, rhs, initial), out_shape))
}

/// The gradients of [`linear`] for the gradient `grad` of its output: `dx = grad · weightᵀ` when
/// `weight` is given, `dW = xᵀ · grad` when `x` is given, `db` (the column sums of `grad`) when
/// `bias_grad`.
///
/// # Shapes
/// - x: `[..., d_in]`, weight `[d_in, d_out]`, grad `[..., d_out]` → (`[..., d_in]`, `[d_in, d_out]`, `[d_out]`)
#[allow(clippy::type_complexity)]
pub fn linear_backward(
    x: Option<FlexTensor>,
    weight: Option<FlexTensor>,
    grad: FlexTensor,
    bias_grad: bool,
) -> Result<Grads, Box<(Option<FlexTensor>, Option<FlexTensor>, FlexTensor)>> {
    let d_out = row_len(&grad);
    let f32s = grad.dtype() == DType::F32
        && x.as_ref().is_none_or(|x| x.dtype() == DType::F32)
        && weight.as_ref().is_none_or(|w| w.dtype() == DType::F32);
    let shapes_agree = weight.as_ref().is_none_or(|w| {
        let shape = w.layout().shape();
        shape.num_dims() == 2 && shape[1] == d_out && shape[0] > 0
    }) && x.as_ref().is_none_or(|x| {
        x.layout().num_elements() / row_len(x).max(1) == grad.layout().num_elements() / d_out.max(1)
    });
    if !f32s || !shapes_agree || d_out == 0 || grad.layout().num_elements() == 0 {
        return Err(Box::new((x, weight, grad)));
    }
    let weight = weight.map(viewable);
    if weight
        .as_ref()
        .is_some_and(|w| MatrixView::of_matrix(w).is_none())
    {
        return Err(Box::new((x, weight, grad)));
    }
    let grad_shape = grad.layout().shape().clone();
    let grad = contiguous(grad);
    let rows = grad.layout().num_elements() / d_out;
    let Some(grad_view) = MatrixView::row_major(grad.storage::<f32>(), rows, d_out) else {
        return Err(Box::new((x, weight, grad)));
    };
    // The views below exist: the weight's was checked above, x and grad are contiguous with
    // `rows` rows (shapes checked above).
    let grad_x = weight.as_ref().and_then(|weight| {
        let weight_t = MatrixView::of_matrix(weight)?.transposed();
        let d_in = weight_t.cols;
        Some(f32_tensor(
            product(grad_view, weight_t, None),
            with_last_axis(&grad_shape, d_in),
        ))
    });
    let grad_weight = x.map(contiguous).and_then(|x| {
        let d_in = row_len(&x);
        let x_t = MatrixView::row_major(x.storage::<f32>(), rows, d_in)?.transposed();
        Some(f32_tensor(
            product(x_t, grad_view, None),
            Shape::from(vec![d_in, d_out]),
        ))
    });
    let grad_bias = bias_grad.then(|| {
        f32_tensor(
            column_sums(grad.storage::<f32>(), d_out),
            Shape::from(vec![d_out]),
        )
    });
    Ok((grad_x, grad_weight, grad_bias))
}
