//! The memory-bounded attention against attention written out with burn's own autodiff: same
//! outputs (1e-5), same gradients (1e-4), in one block and in many, with and without dropout,
//! with the weights kept from the forward pass and recomputed;
//! the dropout mask against its statistics and against itself in another blocking.

use super::attention::{
    DropoutMask, EngineBackend, SCORE_BLOCK_ELEMENTS, attention, attention_backward, attention_in_blocks,
    dropout_mask,
};
use super::init;
use super::llama_tests::max_diff;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive, activation};

type B = Flex;
type A = Autodiff<Flex>;

/// Non-square on purpose: 2 samples, 3 heads, 37 queries, 29 keys, head width 8.
const DIMS_Q: [usize; 4] = [2, 3, 37, 8];
const DIMS_KV: [usize; 4] = [2, 3, 29, 8];

/// Standard normal values from `seed` (not the backend's generator, which tests running at the
/// same time would reseed).
fn random<Bk: Backend>(dims: [usize; 4], seed: u64) -> Tensor<Bk, 4> {
    let values = init::normal_values(seed, dims.iter().product(), 1.0);
    Tensor::from_data(TensorData::new(values, dims), &Default::default())
}

fn values<Bk: Backend>(tensor: Tensor<Bk, 4>) -> Vec<f32> {
    tensor.into_data().to_vec::<f32>().expect("f32 tensor")
}

/// `softmax(q kᵀ / √d) ⊙ mask · v`, every op through burn's autodiff.
fn written_out<Bk: Backend>(
    q: Tensor<Bk, 4>,
    k: Tensor<Bk, 4>,
    v: Tensor<Bk, 4>,
    mask: Option<Tensor<Bk, 4>>,
) -> Tensor<Bk, 4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    let weights = activation::softmax(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale), 3);
    match mask {
        Some(mask) => (weights * mask).matmul(v),
        None => weights.matmul(v),
    }
}

fn seed_tensor<Bk: Backend>(seed: i64) -> DropoutMask<Bk> {
    DropoutMask {
        keep: 0.8,
        seed: Tensor::<Bk, 1, Int>::from_ints([seed], &Default::default()).into_primitive(),
    }
}

/// Gradients of `Σ out ⊙ weights` with respect to q, k and v for the attention `run`.
fn gradients(run: impl Fn(Tensor<A, 4>, Tensor<A, 4>, Tensor<A, 4>) -> Tensor<A, 4>) -> [Vec<f32>; 3] {
    let q = random::<A>(DIMS_Q, 1).require_grad();
    let k = random::<A>(DIMS_KV, 2).require_grad();
    let v = random::<A>(DIMS_KV, 3).require_grad();
    let weights = random::<A>(DIMS_Q, 4);
    let loss = (run(q.clone(), k.clone(), v.clone()) * weights).sum();
    let grads = loss.backward();
    [q, k, v].map(|t| values(t.grad(&grads).expect("input takes part in the loss")))
}

#[test]
fn fused_inference_equals_written_out_attention() {
    let (q, k, v) = (
        random::<B>(DIMS_Q, 1),
        random::<B>(DIMS_KV, 2),
        random::<B>(DIMS_KV, 3),
    );
    let ours = values(attention(q.clone(), k.clone(), v.clone(), 0.0));
    let reference = values(written_out(q, k, v, None));
    assert!(
        max_diff(&ours, &reference) < 1e-5,
        "{}",
        max_diff(&ours, &reference)
    );
}

/// On the CPU this attention fits one block, so the node keeps its weights from the forward
/// pass ([`EngineBackend::KEEPS_SMALL_ATTENTION_WEIGHTS`]).
#[test]
fn attention_node_keeping_its_weights_equals_autodiff_of_written_out_attention() {
    let ours = gradients(|q, k, v| attention(q, k, v, 0.0));
    let reference = gradients(|q, k, v| written_out(q, k, v, None));
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(ours.iter().zip(&reference)) {
        assert!(max_diff(a, b) < 1e-4, "d{name}: {}", max_diff(a, b));
    }
}

/// 2049 × 2049 scores are just over one block of [`SCORE_BLOCK_ELEMENTS`]: the node keeps no
/// weights and its backward recomputes them in two blocks of rows.
#[test]
fn attention_node_over_one_block_recomputes_and_equals_autodiff_of_written_out_attention() {
    let tokens = 2049;
    assert!(tokens * tokens > SCORE_BLOCK_ELEMENTS && 2048 * 2048 <= SCORE_BLOCK_ELEMENTS);
    let dims = [1, 1, tokens, 4];
    let run = |attend: &dyn Fn(Tensor<A, 4>, Tensor<A, 4>, Tensor<A, 4>) -> Tensor<A, 4>| {
        let (q, k, v) = (
            random::<A>(dims, 1).require_grad(),
            random::<A>(dims, 2).require_grad(),
            random::<A>(dims, 3).require_grad(),
        );
        let loss = (attend(q.clone(), k.clone(), v.clone()) * random::<A>(dims, 4)).sum();
        let grads = loss.backward();
        [q, k, v].map(|t| values(t.grad(&grads).expect("input takes part in the loss")))
    };
    let ours = run(&|q, k, v| attention(q, k, v, 0.0));
    let reference = run(&|q, k, v| written_out(q, k, v, None));
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(ours.iter().zip(&reference)) {
        assert!(max_diff(a, b) < 1e-4, "d{name}: {}", max_diff(a, b));
    }
}

#[test]
fn backward_in_blocks_of_a_few_rows_equals_autodiff_with_and_without_dropout() {
    for dropout in [None, Some(seed_tensor::<A>(4321))] {
        let mask = dropout
            .as_ref()
            .map(|d| dropout_mask::<A>(d, [2, 3, 37, 29], 0..37, &Default::default()));
        let reference = gradients(|q, k, v| written_out(q, k, v, mask.clone()));
        // The same gradients from the block function on the plain backend, 5 rows at a time
        // (37 is not a multiple: the last block is short).
        let (q, k, v) = (
            random::<B>(DIMS_Q, 1),
            random::<B>(DIMS_KV, 2),
            random::<B>(DIMS_KV, 3),
        );
        let grad_out = random::<B>(DIMS_Q, 4);
        let inner_dropout = dropout.as_ref().map(|d| DropoutMask::<B> {
            keep: d.keep,
            seed: d.seed.clone(),
        });
        let output = attention_in_blocks(q.clone(), k.clone(), v.clone(), inner_dropout.as_ref(), 5);
        let forward_reference = written_out(
            q.clone(),
            k.clone(),
            v.clone(),
            inner_dropout
                .as_ref()
                .map(|d| dropout_mask::<B>(d, [2, 3, 37, 29], 0..37, &Default::default())),
        );
        assert!(max_diff(&values(output.clone()), &values(forward_reference)) < 1e-5);
        let (dq, dk, dv) = attention_backward(q, k, v, output, grad_out, inner_dropout.as_ref(), 5, None);
        for (name, (a, b)) in ["q", "k", "v"]
            .iter()
            .zip([values(dq), values(dk), values(dv)].iter().zip(&reference))
        {
            assert!(
                max_diff(a, b) < 1e-4,
                "dropout {}: d{name}: {}",
                dropout.is_some(),
                max_diff(a, b)
            );
        }
    }
}

#[test]
fn dropout_node_under_autodiff_equals_autodiff_of_the_masked_formula() {
    let dropout = seed_tensor::<A>(77);
    let mask = dropout_mask::<A>(&dropout, [2, 3, 37, 29], 0..37, &Default::default());
    let ours = gradients(|q, k, v| {
        Tensor::from_primitive(TensorPrimitive::Float(A::scaled_dot_product_attention(
            q.into_primitive().tensor(),
            k.into_primitive().tensor(),
            v.into_primitive().tensor(),
            Some(dropout.clone()),
        )))
    });
    let reference = gradients(|q, k, v| written_out(q, k, v, Some(mask.clone())));
    for (name, (a, b)) in ["q", "k", "v"].iter().zip(ours.iter().zip(&reference)) {
        assert!(max_diff(a, b) < 1e-4, "d{name}: {}", max_diff(a, b));
    }
}

#[test]
fn dropout_mask_is_the_same_in_any_blocking_and_has_the_right_statistics() {
    let dims = [2, 4, 300, 500];
    let device = Default::default();
    let dropout = seed_tensor::<B>(9);
    let whole = values(dropout_mask::<B>(&dropout, dims, 0..300, &device));
    let blocks: Vec<Tensor<B, 4>> = [0..7, 7..150, 150..300]
        .into_iter()
        .map(|rows| dropout_mask::<B>(&dropout, dims, rows, &device))
        .collect();
    assert_eq!(whole, values(Tensor::cat(blocks, 2)));

    let scale = (1.0 / dropout.keep) as f32;
    assert!(whole.iter().all(|&m| m == 0.0 || (m - scale).abs() < 1e-6));
    let kept: Vec<bool> = whole.iter().map(|&m| m > 0.0).collect();
    let n = kept.len() as f64;
    let fraction = kept.iter().filter(|&&k| k).count() as f64 / n;
    // Binomial standard deviation √(p(1−p)/n) ≈ 3.3e-4 for n = 1.2 M; allow 5 σ.
    let sigma = (0.8 * 0.2 / n).sqrt();
    assert!((fraction - 0.8).abs() < 5.0 * sigma, "kept fraction {fraction}");
    // Neighbours along keys and along queries agree as often as independent draws would:
    // p² + (1−p)² = 0.68.
    for stride in [1, 500] {
        let pairs = kept.len() - stride;
        let same = (0..pairs).filter(|&i| kept[i] == kept[i + stride]).count() as f64 / pairs as f64;
        assert!((same - 0.68).abs() < 0.005, "stride {stride}: {same}");
    }
    // Another seed, another mask; another (batch, head) plane, another pattern.
    let other = values(dropout_mask::<B>(&seed_tensor::<B>(10), dims, 0..300, &device));
    let differ = whole.iter().zip(&other).filter(|(a, b)| a != b).count() as f64 / n;
    assert!((differ - 0.32).abs() < 0.005, "seeds 9 and 10 differ in {differ}");
    let plane = 300 * 500;
    let differ = (0..plane).filter(|&i| kept[i] != kept[i + plane]).count() as f64 / plane as f64;
    assert!((differ - 0.32).abs() < 0.01, "planes 0 and 1 differ in {differ}");
}
