//! Attention's row kernels on the CPU backend (burn-flex), where burn's own are slow.
//!
//! burn-flex 0.21 computes the softmax one row after another on one thread and its `exp` is the
//! C library's scalar `expf` (9 % of a demo-cpu training step, and its fused attention runs every
//! (batch, head) pair on one thread: issue 11's profile). Here the two element-wise steps of
//! [`super::attention`] run in parallel over blocks of rows (rayon, burn-flex's own thread pool),
//! vectorised for the CPU they run on (pulp picks AVX-512, AVX2 or SSE at run time), with `exp`
//! as a branch-free polynomial ([`exp`]) that the compiler vectorises:
//! - [`softmax_rows`]: `softmax(scale · s)` of every row;
//! - [`grad_scores_rows`]: the softmax backward `P ⊙ (dP − D)` with one `D` per row.
//!
//! Both work on f32 tensors; other dtypes (a bf16 frozen block) are handed back (`Err`) and the
//! caller uses burn's ops.

use super::fast_math::exp;
use super::fused_loss::{self, LossSpec};
use super::patches;
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// A rayon task gets whole rows, at least this many values (≈ 64 KiB of f32).
const VALUES_PER_TASK: usize = 1 << 14;

/// Lanes of the partial maxima and sums: a fixed-size array of accumulators is what lets the
/// compiler vectorise a float reduction (one running value would fix the order of the additions).
const LANES: usize = 16;

/// The largest value of `row` ignoring NaN (−∞ for an empty row): a NaN still makes its row NaN,
/// through its `exp` in the sum.
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane = if value > *lane { value } else { *lane };
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &value in lanes.iter().chain(tail) {
        max = if value > max { value } else { max };
    }
    max
}

/// The sum of `row`, in `LANES` partial sums.
#[inline(always)]
fn row_sum(row: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane += value;
        }
    }
    lanes.iter().chain(tail).sum()
}

/// `row ← softmax(scale · row)` (NaN in, NaN row out).
#[inline(always)]
fn softmax_row(row: &mut [f32], scale: f32) {
    // scale > 0, so the row maximum of scale · s is scale · max(s).
    let shift = scale * row_max(row);
    for value in row.iter_mut() {
        *value = exp(scale * *value - shift);
    }
    let inverse = 1.0 / row_sum(row);
    for value in row.iter_mut() {
        *value *= inverse;
    }
}

/// `grad ← weights ⊙ (grad − row_dot)` for one row.
#[inline(always)]
fn grad_scores_row(weights: &[f32], grad: &mut [f32], row_dot: f32) {
    for (g, &w) in grad.iter_mut().zip(weights) {
        *g = w * (*g - row_dot);
    }
}

/// Rows per rayon task for rows of `row_len` values.
fn rows_per_task(row_len: usize) -> usize {
    (VALUES_PER_TASK / row_len.max(1)).max(1)
}

/// `softmax(scale · s)` over the last axis of every row of `values` (rows of `row_len`).
///
/// # Panics
/// If `values.len()` is not a multiple of `row_len`, or `scale` is not positive.
pub fn softmax_rows_slice(values: &mut [f32], row_len: usize, scale: f32) {
    assert!(
        row_len > 0 && values.len().is_multiple_of(row_len),
        "softmax_rows: rows of {row_len} in {}",
        values.len()
    );
    assert!(scale > 0.0, "softmax_rows: scale {scale} must be positive");
    let task = rows_per_task(row_len) * row_len;
    values.par_chunks_mut(task).for_each(|chunk| {
        pulp::Arch::new().dispatch(
            #[inline(always)]
            || {
                for row in chunk.chunks_exact_mut(row_len) {
                    softmax_row(row, scale);
                }
            },
        )
    });
}

/// `grad ← weights ⊙ (grad − row_dot[row])` for every row of `row_len` values.
///
/// # Panics
/// If the lengths disagree.
pub fn grad_scores_rows_slice(weights: &[f32], grad: &mut [f32], row_dot: &[f32], row_len: usize) {
    assert!(
        row_len > 0 && grad.len() == weights.len() && grad.len() == row_dot.len() * row_len,
        "grad_scores_rows: {} weights, {} gradients, {} rows of {row_len}",
        weights.len(),
        grad.len(),
        row_dot.len()
    );
    let rows = rows_per_task(row_len);
    grad.par_chunks_mut(rows * row_len)
        .zip(weights.par_chunks(rows * row_len))
        .zip(row_dot.par_chunks(rows))
        .for_each(|((grad, weights), row_dot)| {
            pulp::Arch::new().dispatch(
                #[inline(always)]
                || {
                    for ((g, w), &d) in grad
                        .chunks_exact_mut(row_len)
                        .zip(weights.chunks_exact(row_len))
                        .zip(row_dot)
                    {
                        grad_scores_row(w, g, d);
                    }
                },
            )
        });
}

/// The tensor as one contiguous buffer starting at 0, not shared with `tensor`'s old handle (so
/// that writing to it copies nothing when the buffer had no other owner).
pub(super) fn contiguous(tensor: FlexTensor) -> FlexTensor {
    let out = tensor.to_contiguous();
    drop(tensor);
    out
}

/// The length of the last axis.
pub(super) fn row_len(tensor: &FlexTensor) -> usize {
    let shape = tensor.layout().shape();
    match shape.num_dims() {
        0 => 1,
        dims => shape[dims - 1],
    }
}

/// `softmax(scale · scores)` over the last axis; `Err` gives the scores back when they are not
/// f32.
pub fn softmax_rows(scores: FlexTensor, scale: f32) -> Result<FlexTensor, FlexTensor> {
    if scores.dtype() != DType::F32 {
        return Err(scores);
    }
    let row_len = row_len(&scores);
    let mut scores = contiguous(scores);
    softmax_rows_slice(scores.storage_mut::<f32>(), row_len, scale);
    Ok(scores)
}

/// `weights ⊙ (grad_weights − row_dot)`, `row_dot` one value per row; `Err` gives the inputs
/// back when they are not all f32.
pub fn grad_scores_rows(
    weights: FlexTensor,
    grad_weights: FlexTensor,
    row_dot: FlexTensor,
) -> Result<FlexTensor, Box<(FlexTensor, FlexTensor, FlexTensor)>> {
    let all_f32 = [&weights, &grad_weights, &row_dot]
        .iter()
        .all(|t| t.dtype() == DType::F32);
    if !all_f32 {
        return Err(Box::new((weights, grad_weights, row_dot)));
    }
    let row_len = row_len(&weights);
    let weights = contiguous(weights);
    let row_dot = contiguous(row_dot);
    let mut grad = contiguous(grad_weights);
    grad_scores_rows_slice(
        weights.storage::<f32>(),
        grad.storage_mut::<f32>(),
        row_dot.storage::<f32>(),
        row_len,
    );
    Ok(grad)
}

/// [`super::patchify`] of an f32 volume by [`patches::patchify_batch_values`]; `Err` gives other
/// dtypes back.
pub fn patchify(x: FlexTensor, patch: usize) -> Result<FlexTensor, FlexTensor> {
    let shape = x.layout().shape().clone();
    if x.dtype() != DType::F32 || shape.num_dims() != 5 || patch == 0 {
        return Err(x);
    }
    let (batch, channels, zyx) = (shape[0], shape[1], [shape[2], shape[3], shape[4]]);
    let x = contiguous(x);
    let values = patches::patchify_batch_values(x.storage::<f32>(), batch, channels, zyx, patch);
    let tokens = zyx.iter().map(|n| n / patch).product::<usize>();
    let token_len = channels * patch.pow(3);
    Ok(FlexTensor::from_data(TensorData::new(
        values,
        [batch, tokens, token_len],
    )))
}

/// [`super::unpatchify`] of f32 tokens by [`patches::unpatchify_values`]; `Err` gives other
/// dtypes back.
pub fn unpatchify(
    tokens: FlexTensor,
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> Result<FlexTensor, FlexTensor> {
    if tokens.dtype() != DType::F32 || patch == 0 {
        return Err(tokens);
    }
    let tokens = contiguous(tokens);
    let values = patches::unpatchify_values(tokens.storage::<f32>(), batch, channels, grid, patch);
    let shape = [batch, channels, grid[0] * patch, grid[1] * patch, grid[2] * patch];
    Ok(FlexTensor::from_data(TensorData::new(values, shape)))
}

/// [`super::EngineBackend::fused_segmentation_loss`] of f32 `[batch, tokens, patch³]` logits and
/// targets by [`fused_loss::segmentation_loss`]: the loss `[1]` and, when asked for, the
/// gradients. `Err` gives inputs of another dtype or unequal shapes back.
#[allow(clippy::type_complexity)]
pub fn segmentation_loss(
    logits: Vec<FlexTensor>,
    targets: Vec<FlexTensor>,
    spec: LossSpec,
) -> Result<(FlexTensor, Option<Vec<FlexTensor>>), (Vec<FlexTensor>, Vec<FlexTensor>)> {
    let Some(shape) = logits.first().map(|l| l.layout().shape().clone()) else {
        return Err((logits, targets));
    };
    let usable = shape.num_dims() == 3
        && shape[0] > 0
        && logits.len() == targets.len()
        && logits
            .iter()
            .chain(&targets)
            .all(|t| t.dtype() == DType::F32 && *t.layout().shape() == shape);
    if !usable {
        return Err((logits, targets));
    }
    let logits: Vec<FlexTensor> = logits.into_iter().map(contiguous).collect();
    let targets: Vec<FlexTensor> = targets.into_iter().map(contiguous).collect();
    let logit_values: Vec<&[f32]> = logits.iter().map(|l| l.storage::<f32>()).collect();
    let target_values: Vec<&[f32]> = targets.iter().map(|t| t.storage::<f32>()).collect();
    let result = fused_loss::segmentation_loss(&logit_values, &target_values, shape[0], spec);
    let loss = FlexTensor::from_data(TensorData::new(vec![result.loss as f32], [1]));
    let gradients = result.gradients.map(|gradients| {
        gradients
            .into_iter()
            .map(|g| FlexTensor::from_data(TensorData::new(g, shape.clone())))
            .collect()
    });
    Ok((loss, gradients))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in `[lo, hi)` (a 64-bit LCG), so the tests need no RNG crate.
    pub(crate) fn values(count: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    #[test]
    fn softmax_rows_agree_with_a_float64_softmax() {
        // Rows longer and shorter than a rayon task, and a row length no SIMD width divides.
        for (rows, row_len, scale) in [(3, 5, 1.0_f32), (70, 512, 0.125), (2_000, 37, 0.7)] {
            let input = values(rows * row_len, -20.0, 20.0, row_len as u64);
            let mut out = input.clone();
            softmax_rows_slice(&mut out, row_len, scale);
            for (row_in, row_out) in input.chunks(row_len).zip(out.chunks(row_len)) {
                let max = row_in
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64 * scale as f64));
                let e: Vec<f64> = row_in
                    .iter()
                    .map(|&v| (v as f64 * scale as f64 - max).exp())
                    .collect();
                let sum: f64 = e.iter().sum();
                for (want, &got) in e.iter().map(|v| v / sum).zip(row_out) {
                    assert!(
                        (got as f64 - want).abs() <= 1e-6 * want.max(1e-3),
                        "softmax {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_nan_score_makes_its_row_nan_and_leaves_the_others() {
        let mut rows = vec![0.0, 1.0, f32::NAN, 2.0, 3.0, 4.0];
        softmax_rows_slice(&mut rows, 3, 1.0);
        assert!(rows[..3].iter().all(|v| v.is_nan()));
        assert!((rows[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn grad_scores_rows_agree_with_the_written_out_product() {
        let (rows, row_len) = (1_000, 41);
        let weights = values(rows * row_len, 0.0, 1.0, 1);
        let grad_in = values(rows * row_len, -2.0, 2.0, 2);
        let row_dot = values(rows, -1.0, 1.0, 3);
        let mut grad = grad_in.clone();
        grad_scores_rows_slice(&weights, &mut grad, &row_dot, row_len);
        for (i, &got) in grad.iter().enumerate() {
            let want = weights[i] as f64 * (grad_in[i] as f64 - row_dot[i / row_len] as f64);
            assert!((got as f64 - want).abs() <= 1e-6, "element {i}: {got} vs {want}");
        }
    }
}
