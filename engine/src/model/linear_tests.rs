//! The linear layers' node ([`super::fused::linear_with`]) and the CPU kernels behind it
//! (cpu_linear.rs): the forward and every gradient against float64 loops (relative 1e-5), under
//! autodiff against burn's own `module::linear` node (1e-5), for contiguous, column-sliced and
//! transposed weights, with and without a bias, with the weight or the input frozen, on one
//! thread and split across threads, and the bf16 fallback.

use super::fused::linear_with;
use super::init;
use super::llama_tests::max_diff;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, module};

type B = Flex;
type A = Autodiff<Flex>;

/// Standard normal values from `seed` (not the backend's generator, which tests running at the
/// same time would reseed).
fn random<Bk: Backend, const D: usize>(dims: [usize; D], seed: u64) -> Tensor<Bk, D> {
    let values = init::normal_values(seed, dims.iter().product(), 1.0);
    Tensor::from_data(TensorData::new(values, dims), &Default::default())
}

fn values<Bk: Backend, const D: usize>(tensor: Tensor<Bk, D>) -> Vec<f32> {
    tensor
        .cast(DType::F32)
        .into_data()
        .to_vec::<f32>()
        .expect("f32 tensor")
}

/// The largest difference relative to the reference's largest magnitude (at least 1).
fn relative_diff(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0.0_f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
    diff / scale
}

/// Row-major `[rows, cols]` f64 values of a tensor with any strides.
fn matrix_f64<Bk: Backend>(tensor: Tensor<Bk, 2>) -> Vec<f64> {
    values(tensor).into_iter().map(f64::from).collect()
}

/// `x · w + b` over rows, in f64.
fn forward_f64(x: &[f64], w: &[f64], b: Option<&[f64]>, [rows, d_in, d_out]: [usize; 3]) -> Vec<f64> {
    let mut out = vec![0.0; rows * d_out];
    for r in 0..rows {
        for o in 0..d_out {
            let dot: f64 = (0..d_in).map(|i| x[r * d_in + i] * w[i * d_out + o]).sum();
            out[r * d_out + o] = dot + b.map_or(0.0, |b| b[o]);
        }
    }
    out
}

/// (dx, dw, db) of `Σ (x·w + b) ⊙ g`, in f64.
fn gradients_f64(x: &[f64], w: &[f64], g: &[f64], [rows, d_in, d_out]: [usize; 3]) -> [Vec<f64>; 3] {
    let mut dx = vec![0.0; rows * d_in];
    let mut dw = vec![0.0; d_in * d_out];
    let mut db = vec![0.0; d_out];
    for r in 0..rows {
        for i in 0..d_in {
            dx[r * d_in + i] = (0..d_out).map(|o| g[r * d_out + o] * w[i * d_out + o]).sum();
            for o in 0..d_out {
                dw[i * d_out + o] += x[r * d_in + i] * g[r * d_out + o];
            }
        }
        for o in 0..d_out {
            db[o] += g[r * d_out + o];
        }
    }
    [dx, dw, db]
}

/// The weights a model hands the node: contiguous, a column slice of a wider weight (the
/// qkv and head cuts) and a transposed view.
fn weights(d_in: usize, d_out: usize, seed: u64) -> Vec<(&'static str, Tensor<A, 2>)> {
    vec![
        ("contiguous", random::<A, 2>([d_in, d_out], seed)),
        (
            "column slice",
            random::<A, 2>([d_in, d_out + 5], seed).slice([0..d_in, 3..3 + d_out]),
        ),
        ("transposed", random::<A, 2>([d_out, d_in], seed).transpose()),
    ]
}

/// Forward and gradients of the node against float64 loops, for a batch of `[batch, tokens,
/// d_in]` inputs.
fn check_against_loops(batch: usize, tokens: usize, d_in: usize, d_out: usize) {
    let rows = batch * tokens;
    for (name, weight) in weights(d_in, d_out, 11) {
        let weight = weight.require_grad();
        let x = random::<A, 3>([batch, tokens, d_in], 12).require_grad();
        let bias = random::<A, 1>([d_out], 13).require_grad();
        let g = random::<A, 3>([batch, tokens, d_out], 14);
        let out = linear_with(x.clone(), weight.clone(), Some(bias.clone()));
        let grads = (out.clone() * g.clone()).sum().backward();

        let x64 = matrix_f64(x.clone().reshape([rows, d_in]));
        let w64 = matrix_f64(weight.clone());
        let b64 = matrix_f64(bias.clone().unsqueeze::<2>());
        let g64 = matrix_f64(g.reshape([rows, d_out]));
        let dims = [rows, d_in, d_out];
        let expected = forward_f64(&x64, &w64, Some(&b64), dims);
        let [dx, dw, db] = gradients_f64(&x64, &w64, &g64, dims);
        let found = [
            ("forward", values(out), expected),
            ("dx", values(x.grad(&grads).expect("x is tracked")), dx),
            ("dw", values(weight.grad(&grads).expect("w is tracked")), dw),
            ("db", values(bias.grad(&grads).expect("b is tracked")), db),
        ];
        for (what, ours, reference) in found {
            let diff = relative_diff(&ours, &reference);
            assert!(diff < 1e-5, "{name} weight, {what}: relative difference {diff}");
        }
    }
}

#[test]
fn small_linear_layers_match_float64_loops() {
    // 2 · 5 · 7 · 4 multiply-adds: one thread.
    check_against_loops(2, 5, 7, 4);
}

#[test]
fn linear_layers_split_across_threads_match_float64_loops() {
    // 3 · 300 · 40 · 50 = 1.8 M multiply-adds, above the threshold where gemm splits the work.
    check_against_loops(3, 300, 40, 50);
}

/// Output and gradients of x, w (when tracked) and b of `Σ linear(x) ⊙ g`.
fn node_results(
    run: impl Fn(Tensor<A, 3>, Tensor<A, 2>, Option<Tensor<A, 1>>) -> Tensor<A, 3>,
    with_bias: bool,
    [x_tracked, weight_tracked]: [bool; 2],
) -> Vec<Option<Vec<f32>>> {
    let track = |t: Tensor<A, 3>, on: bool| if on { t.require_grad() } else { t };
    let x = track(random::<A, 3>([2, 9, 6], 21), x_tracked);
    let weight = random::<A, 2>([6, 5], 22);
    let weight = if weight_tracked {
        weight.require_grad()
    } else {
        weight
    };
    let bias = with_bias.then(|| random::<A, 1>([5], 23).require_grad());
    let g = random::<A, 3>([2, 9, 5], 24);
    let out = run(x.clone(), weight.clone(), bias.clone());
    let grads = (out.clone() * g).sum().backward();
    vec![
        Some(values(out)),
        x.grad(&grads).map(values),
        weight.grad(&grads).map(values),
        bias.and_then(|b| b.grad(&grads)).map(values),
    ]
}

#[test]
fn the_node_equals_burns_linear_under_autodiff_with_frozen_parts_and_without_bias() {
    for with_bias in [true, false] {
        for tracked in [[true, true], [true, false], [false, true]] {
            let ours = node_results(linear_with, with_bias, tracked);
            let burns = node_results(module::linear, with_bias, tracked);
            for (what, (a, b)) in ["output", "dx", "dw", "db"].iter().zip(ours.iter().zip(&burns)) {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        let diff = max_diff(a, b);
                        assert!(
                            diff < 1e-5,
                            "bias {with_bias}, tracked {tracked:?}: {what} differs by {diff}"
                        );
                    }
                    (None, None) => {}
                    _ => panic!(
                        "bias {with_bias}, tracked {tracked:?}: {what} present in one only ({} ours)",
                        a.is_some()
                    ),
                }
            }
        }
    }
}

#[test]
fn bf16_inputs_fall_back_to_burns_linear() {
    let x = random::<B, 3>([2, 4, 6], 31).cast(DType::BF16);
    let weight = random::<B, 2>([6, 3], 32).cast(DType::BF16);
    let bias = random::<B, 1>([3], 33).cast(DType::BF16);
    let ours = linear_with(x.clone(), weight.clone(), Some(bias.clone()));
    assert_eq!(ours.dtype(), DType::BF16);
    let reference = module::linear(x, weight, Some(bias));
    let diff = max_diff(&values(ours), &values(reference));
    assert!(diff == 0.0, "the fallback is burn's own linear: {diff}");
}
