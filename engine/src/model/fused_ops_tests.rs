//! The LayerNorm, RMSNorm, GELU and SwiGLU nodes of fused_ops.rs checked another way:
//! - the row kernels and the ops fallbacks against central differences of a float64 forward pass
//!   (gradients within 2e-4 relative to the largest);
//! - the nodes under burn's autodiff against the same computation written out with burn's own
//!   ops and autodiff (values 1e-5, gradients 1e-4);
//! - the vectorised GELU against libm's float64 `erf` (3e-7, its derivative 5e-7, times max(1, |x|)).

use super::attention::EngineBackend;
use super::cpu_kernels::tests::values;
use super::fast_math;
use super::fused;
use super::fused_ops::{self, rows};
use super::llama_tests::max_diff;
use burn::backend::{Autodiff, Flex};
use burn::nn::LayerNormConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData, TensorPrimitive, activation};

type B = Flex;
type A = Autodiff<Flex>;

const ROWS: usize = 6;
const DIM: usize = 7;
const EPS: f64 = 1e-5;

/// A float64 forward pass of one row given the parameters.
type RowForward = dyn Fn(&[f64], &[f64]) -> Vec<f64>;

/// LayerNorm of one row in float64.
fn layer_norm_f64(row: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let r = 1.0 / (var + EPS).sqrt();
    row.iter()
        .zip(gamma.iter().zip(beta))
        .map(|(v, (g, b))| (v - mean) * r * g + b)
        .collect()
}

/// RMSNorm of one row in float64.
fn rms_norm_f64(row: &[f64], weight: &[f64]) -> Vec<f64> {
    let n = row.len() as f64;
    let r = 1.0 / (row.iter().map(|v| v * v).sum::<f64>() / n + EPS).sqrt();
    row.iter().zip(weight).map(|(v, w)| v * r * w).collect()
}

/// `Σ upstream · f(x, params)` over every row, in float64.
fn weighted_sum(x: &[f64], params: &[f64], upstream: &[f32], forward: &RowForward) -> f64 {
    x.chunks(DIM)
        .zip(upstream.chunks(DIM))
        .map(|(row, up)| {
            forward(row, params)
                .iter()
                .zip(up)
                .map(|(y, &u)| y * f64::from(u))
                .sum::<f64>()
        })
        .sum()
}

/// Central differences of `weighted_sum` with respect to every input and every parameter.
fn numeric_gradients(
    x: &[f32],
    params: &[f32],
    upstream: &[f32],
    forward: &RowForward,
) -> (Vec<f64>, Vec<f64>) {
    let h = 1e-5;
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let p64: Vec<f64> = params.iter().map(|&v| f64::from(v)).collect();
    let along = |values: &[f64], i: usize, step: f64| {
        let mut moved = values.to_vec();
        moved[i] += step;
        moved
    };
    let dx = (0..x64.len())
        .map(|i| {
            let up = weighted_sum(&along(&x64, i, h), &p64, upstream, forward);
            let down = weighted_sum(&along(&x64, i, -h), &p64, upstream, forward);
            (up - down) / (2.0 * h)
        })
        .collect();
    let dp = (0..p64.len())
        .map(|i| {
            let up = weighted_sum(&x64, &along(&p64, i, h), upstream, forward);
            let down = weighted_sum(&x64, &along(&p64, i, -h), upstream, forward);
            (up - down) / (2.0 * h)
        })
        .collect();
    (dx, dp)
}

/// Asserts `got` within `2e-4 · max|expected|` of `expected`.
fn assert_close(what: &str, got: &[f32], expected: &[f64]) {
    assert_eq!(got.len(), expected.len(), "{what}: length");
    let scale = expected.iter().fold(1e-3_f64, |m, v| m.max(v.abs()));
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (f64::from(g) - e).abs() <= 2e-4 * scale,
            "{what}[{i}]: {g} against {e} (scale {scale})"
        );
    }
}

fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    // Rows with an offset and a spread of their own, so that the mean and the variance matter.
    let x: Vec<f32> = values(ROWS * DIM, -2.0, 2.0, 1)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i / DIM) as f32) + (i / DIM) as f32 - 2.0)
        .collect();
    (
        x,
        values(DIM, 0.5, 1.5, 2),
        values(DIM, -0.5, 0.5, 3),
        values(ROWS * DIM, -1.0, 1.0, 4),
    )
}

#[test]
fn layer_norm_row_kernel_gradients_match_central_differences() {
    let (x, gamma, beta, upstream) = inputs();
    let (dx, dgamma, dbeta) = rows::layer_norm_backward(&x, &gamma, &upstream, DIM, EPS);
    let params: Vec<f32> = gamma.iter().chain(&beta).copied().collect();
    let forward = |row: &[f64], p: &[f64]| layer_norm_f64(row, &p[..DIM], &p[DIM..]);
    let (num_dx, num_dp) = numeric_gradients(&x, &params, &upstream, &forward);
    assert_close("dx", &dx, &num_dx);
    assert_close("dgamma", &dgamma, &num_dp[..DIM]);
    assert_close("dbeta", &dbeta, &num_dp[DIM..]);
}

#[test]
fn rms_norm_row_kernels_match_float64_and_central_differences() {
    let (x, weight, _, upstream) = inputs();
    let forward = |row: &[f64], w: &[f64]| rms_norm_f64(row, w);
    let expected: Vec<f64> = x
        .chunks(DIM)
        .flat_map(|row| {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let w: Vec<f64> = weight.iter().map(|&v| f64::from(v)).collect();
            rms_norm_f64(&row, &w)
        })
        .collect();
    assert_close(
        "rms_norm",
        &rows::rms_norm(&x, Some(&weight), DIM, EPS),
        &expected,
    );
    let (dx, dweight) = rows::rms_norm_backward(&x, Some(&weight), &upstream, DIM, EPS);
    let (num_dx, num_dw) = numeric_gradients(&x, &weight, &upstream, &forward);
    assert_close("dx", &dx, &num_dx);
    assert_close("dweight", &dweight.expect("a weight's gradient"), &num_dw);
    // Without a weight: the weight is 1 and there is no weight gradient.
    let ones = vec![1.0_f32; DIM];
    let (dx, dweight) = rows::rms_norm_backward(&x, None, &upstream, DIM, EPS);
    let (num_dx, _) = numeric_gradients(&x, &ones, &upstream, &forward);
    assert_close("dx without weight", &dx, &num_dx);
    assert!(dweight.is_none());
}

fn tensor<Bk: Backend, const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<Bk, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
}

fn vec_of<Bk: Backend, const D: usize>(tensor: Tensor<Bk, D>) -> Vec<f32> {
    tensor.into_data().to_vec::<f32>().expect("f32 tensor")
}

#[test]
fn the_ops_fallbacks_match_central_differences() {
    let (x, gamma, _, upstream) = inputs();
    let primitive = |v: &[f32], shape: [usize; 2]| tensor::<B, 2>(v, shape).into_primitive().tensor();
    let (dx, dgamma, _) = fused_ops::layer_norm_backward_with_ops::<B>(
        primitive(&x, [ROWS, DIM]),
        tensor::<B, 1>(&gamma, [DIM]).into_primitive().tensor(),
        primitive(&upstream, [ROWS, DIM]),
        EPS,
    );
    let zeros = vec![0.0_f32; DIM];
    let params: Vec<f32> = gamma.iter().chain(&zeros).copied().collect();
    let forward = |row: &[f64], p: &[f64]| layer_norm_f64(row, &p[..DIM], &p[DIM..]);
    let (num_dx, num_dp) = numeric_gradients(&x, &params, &upstream, &forward);
    let float = |t| vec_of(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(t)));
    assert_close("layer norm dx (ops)", &float(dx), &num_dx);
    assert_close(
        "layer norm dgamma (ops)",
        &vec_of(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(dgamma))),
        &num_dp[..DIM],
    );
    let (dx, dw) = fused_ops::rms_norm_backward_with_ops::<B>(
        primitive(&x, [ROWS, DIM]),
        Some(tensor::<B, 1>(&gamma, [DIM]).into_primitive().tensor()),
        primitive(&upstream, [ROWS, DIM]),
        EPS,
    );
    let rms = |row: &[f64], w: &[f64]| rms_norm_f64(row, w);
    let (num_dx, num_dw) = numeric_gradients(&x, &gamma, &upstream, &rms);
    assert_close("rms dx (ops)", &float(dx), &num_dx);
    assert_close(
        "rms dweight (ops)",
        &vec_of(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(
            dw.expect("weight gradient"),
        ))),
        &num_dw,
    );
}

/// A `[2, 5, 24]` input of rows with their own offsets and spreads.
fn random_input(seed: u64) -> Tensor<A, 3> {
    A::seed(&Default::default(), seed);
    let noise = Tensor::<A, 3>::random([2, 5, 24], Distribution::Normal(0.0, 1.0), &Default::default());
    let offsets = Tensor::<A, 3>::random([2, 5, 1], Distribution::Uniform(-3.0, 3.0), &Default::default());
    noise * offsets.clone().abs().add_scalar(0.2) + offsets
}

#[test]
fn the_layer_norm_node_matches_burns_layer_norm_under_autodiff() {
    let device = Default::default();
    let mut norm = LayerNormConfig::new(24).init::<A>(&device);
    norm.gamma = norm
        .gamma
        .map(|_| Tensor::random([24], Distribution::Uniform(0.5, 1.5), &device).require_grad());
    norm.beta = norm
        .beta
        .map(|b| b.map(|_| Tensor::random([24], Distribution::Uniform(-0.5, 0.5), &device).require_grad()));
    let upstream = random_input(7).detach();
    let run = |fused: bool| {
        let x = random_input(3).detach().require_grad();
        let y = match fused {
            true => fused::layer_norm(&norm, x.clone()),
            false => norm.forward(x.clone()),
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let beta = norm.beta.as_ref().expect("bias").val();
        (
            vec_of(y.inner()),
            vec_of(x.grad(&grads).expect("x gradient")),
            vec_of(norm.gamma.val().grad(&grads).expect("gamma gradient")),
            vec_of(beta.grad(&grads).expect("beta gradient")),
        )
    };
    let (fused, written) = (run(true), run(false));
    assert!(
        max_diff(&fused.0, &written.0) < 1e-5,
        "values {}",
        max_diff(&fused.0, &written.0)
    );
    for (what, a, b) in [
        ("x", &fused.1, &written.1),
        ("gamma", &fused.2, &written.2),
        ("beta", &fused.3, &written.3),
    ] {
        assert!(
            max_diff(a, b) < 1e-4,
            "{what} gradient differs by {}",
            max_diff(a, b)
        );
    }
}

#[test]
fn the_rms_norm_node_matches_the_written_out_norm_under_autodiff() {
    let device = Default::default();
    let upstream = random_input(8).detach();
    for with_weight in [true, false] {
        let weight = Tensor::<A, 1>::random([24], Distribution::Uniform(0.5, 1.5), &device).require_grad();
        let run = |fused: bool| {
            let x = random_input(4).detach().require_grad();
            let w = with_weight.then(|| weight.clone());
            let y = match fused {
                true => fused::rms_norm(x.clone(), w, EPS),
                false => {
                    let r = x
                        .clone()
                        .powi_scalar(2)
                        .mean_dim(2)
                        .add_scalar(EPS)
                        .sqrt()
                        .recip();
                    match w {
                        Some(w) => x.clone() * r * w.unsqueeze::<3>(),
                        None => x.clone() * r,
                    }
                }
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let dw = with_weight.then(|| vec_of(weight.grad(&grads).expect("weight gradient")));
            (vec_of(y.inner()), vec_of(x.grad(&grads).expect("x gradient")), dw)
        };
        let (fused, written) = (run(true), run(false));
        assert!(
            max_diff(&fused.0, &written.0) < 1e-5,
            "values (weight {with_weight})"
        );
        assert!(
            max_diff(&fused.1, &written.1) < 1e-4,
            "x gradient (weight {with_weight})"
        );
        if let (Some(a), Some(b)) = (&fused.2, &written.2) {
            assert!(
                max_diff(a, b) < 1e-4,
                "weight gradient differs by {}",
                max_diff(a, b)
            );
        }
    }
}

#[test]
fn the_gelu_node_matches_burns_gelu_under_autodiff() {
    let upstream = random_input(9).detach();
    let run = |fused: bool| {
        let x = random_input(5).detach().require_grad();
        let y = match fused {
            true => fused::gelu(x.clone()),
            false => activation::gelu(x.clone()),
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        (vec_of(y.inner()), vec_of(x.grad(&grads).expect("x gradient")))
    };
    let (fused, written) = (run(true), run(false));
    assert!(
        max_diff(&fused.0, &written.0) < 1e-5,
        "values {}",
        max_diff(&fused.0, &written.0)
    );
    assert!(
        max_diff(&fused.1, &written.1) < 1e-5,
        "gradients {}",
        max_diff(&fused.1, &written.1)
    );
    // Without autodiff, the plain backend's node gives the same values.
    let plain = vec_of(fused::gelu(random_input(5).inner()));
    assert!(max_diff(&plain, &fused.0) == 0.0);
}

/// GELU and its derivative in float64 with libm's `erf`.
fn gelu_f64(x: f64) -> (f64, f64) {
    let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
    let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (x * cdf, cdf + x * density)
}

#[test]
fn the_vectorised_gelu_and_its_derivative_agree_with_libm_erf() {
    // Every 1/1024 from −12 to 12, plus the extremes.
    let points = (-12 * 1024..=12 * 1024)
        .map(|i| i as f32 / 1024.0)
        .chain([1e-30, -1e-30, 0.0, 1e4, -1e4]);
    for x in points {
        let (value, derivative) = gelu_f64(f64::from(x));
        let tolerance = 3e-7 * f64::from(x.abs()).max(1.0);
        let got = f64::from(fast_math::gelu(x));
        assert!(
            (got - value).abs() <= tolerance,
            "gelu({x}) = {got}, float64 {value}"
        );
        let got = f64::from(fast_math::gelu_derivative(x));
        // The polynomial's alternating terms, rounded in f32, cost the derivative a little more.
        let tolerance = 5e-7 * f64::from(x.abs()).max(1.0);
        assert!(
            (got - derivative).abs() <= tolerance,
            "gelu'({x}) = {got}, float64 {derivative}"
        );
    }
    assert!(fast_math::gelu(f32::NAN).is_nan());
    assert!(fast_math::gelu_derivative(f32::NAN).is_nan());
}

/// The backend hooks are what the nodes call: Flex's kernels and the default ops agree.
#[test]
fn flex_hooks_agree_with_the_ops_they_replace() {
    let x = random_input(6).inner();
    let g = random_input(10).inner();
    let prim = |t: Tensor<B, 3>| t.into_primitive().tensor();
    let float = |t| vec_of(Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(t)));
    let kernel = float(<B as EngineBackend>::gelu_grad(prim(x.clone()), prim(g.clone())));
    let ops = float(<B as burn::tensor::ops::ActivationOps<B>>::gelu_backward(
        prim(x.clone()),
        prim(g),
    ));
    assert!(
        max_diff(&kernel, &ops) < 1e-5,
        "gelu backward {}",
        max_diff(&kernel, &ops)
    );
    let kernel = float(<B as EngineBackend>::rms_norm_node(prim(x.clone()), None, EPS));
    let ops = float(fused_ops::rms_norm_with_ops::<B>(prim(x), None, EPS));
    assert!(
        max_diff(&kernel, &ops) < 1e-5,
        "rms norm {}",
        max_diff(&kernel, &ops)
    );
}

#[test]
fn the_swiglu_node_matches_the_written_out_gate_under_autodiff() {
    let upstream = random_input(12).detach();
    let run = |fused: bool| {
        let gate = random_input(13).detach().require_grad();
        let up = random_input(14).detach().require_grad();
        let y = match fused {
            true => fused::swiglu(gate.clone(), up.clone()),
            false => activation::silu(gate.clone()) * up.clone(),
        };
        let grads = (y.clone() * upstream.clone()).sum().backward();
        (
            vec_of(y.inner()),
            vec_of(gate.grad(&grads).expect("gate gradient")),
            vec_of(up.grad(&grads).expect("up gradient")),
        )
    };
    let (fused, written) = (run(true), run(false));
    assert!(
        max_diff(&fused.0, &written.0) < 1e-5,
        "values {}",
        max_diff(&fused.0, &written.0)
    );
    assert!(
        max_diff(&fused.1, &written.1) < 1e-5,
        "gate gradient {}",
        max_diff(&fused.1, &written.1)
    );
    assert!(
        max_diff(&fused.2, &written.2) < 1e-5,
        "up gradient {}",
        max_diff(&fused.2, &written.2)
    );
}

/// SwiGLU's gradients, the CPU kernel and the ops fallback, against central differences of a
/// float64 `silu(a)·b`.
#[test]
fn swiglu_gradients_match_central_differences() {
    let (gate, up, _, upstream) = inputs();
    let up: Vec<f32> = up.iter().cycle().take(gate.len()).copied().collect();
    let silu = |a: f64| a / (1.0 + (-a).exp());
    let h = 1e-5;
    let expected_gate: Vec<f64> = (0..gate.len())
        .map(|i| {
            let (a, b, u) = (f64::from(gate[i]), f64::from(up[i]), f64::from(upstream[i]));
            u * b * (silu(a + h) - silu(a - h)) / (2.0 * h)
        })
        .collect();
    let expected_up: Vec<f64> = (0..gate.len())
        .map(|i| f64::from(upstream[i]) * silu(f64::from(gate[i])))
        .collect();
    let prim = |v: &[f32]| tensor::<B, 2>(v, [ROWS, DIM]).into_primitive().tensor();
    let float = |t| vec_of(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(t)));
    let (kernel_gate, kernel_up) = <B as EngineBackend>::swiglu_grad(prim(&gate), prim(&up), prim(&upstream));
    let (ops_gate, ops_up) =
        fused_ops::swiglu_backward_with_ops::<B>(prim(&gate), prim(&up), prim(&upstream));
    assert_close(
        "swiglu gate gradient (kernel)",
        &float(kernel_gate),
        &expected_gate,
    );
    assert_close("swiglu up gradient (kernel)", &float(kernel_up), &expected_up);
    assert_close("swiglu gate gradient (ops)", &float(ops_gate), &expected_gate);
    assert_close("swiglu up gradient (ops)", &float(ops_up), &expected_up);
}
