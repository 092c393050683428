//! The Llama block against a plain-loop implementation of the same maths, written here
//! independently (no tensors, f64 accumulation).

use super::*;
use crate::weights::LlamaLayerWeights;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};

type B = Flex;

/// Reference: the Llama decoder layer with loops over tokens, heads and features.
pub(crate) fn reference_llama(w: &LlamaLayerWeights, x: &[f32], tokens: usize, final_norm: bool) -> Vec<f32> {
    let (h, hd, heads, kvh, inter) = (w.hidden, w.head_dim(), w.heads, w.kv_heads, w.intermediate);
    let kv = kvh * hd;
    let rms = |v: &[f64], weight: Option<&[f32]>| -> Vec<f64> {
        let mean = v.iter().map(|a| a * a).sum::<f64>() / v.len() as f64;
        let s = 1.0 / (mean + w.rms_eps).sqrt();
        v.iter()
            .enumerate()
            .map(|(i, a)| a * s * weight.map_or(1.0, |w| f64::from(w[i])))
            .collect()
    };
    // [in, out] weights: out[j] = Σ_i x[i] · W[i·out + j]
    let matvec = |v: &[f64], weight: &[f32], d_out: usize| -> Vec<f64> {
        (0..d_out)
            .map(|j| {
                v.iter()
                    .enumerate()
                    .map(|(i, a)| a * f64::from(weight[i * d_out + j]))
                    .sum()
            })
            .collect()
    };
    let x: Vec<Vec<f64>> = (0..tokens)
        .map(|t| x[t * h..(t + 1) * h].iter().map(|v| f64::from(*v)).collect())
        .collect();
    let normed: Vec<Vec<f64>> = x.iter().map(|v| rms(v, Some(&w.input_norm))).collect();
    let q: Vec<Vec<f64>> = normed.iter().map(|v| matvec(v, &w.q, h)).collect();
    let k: Vec<Vec<f64>> = normed.iter().map(|v| matvec(v, &w.k, kv)).collect();
    let v: Vec<Vec<f64>> = normed.iter().map(|v| matvec(v, &w.v, kv)).collect();
    let mut attended = vec![vec![0.0; h]; tokens];
    for head in 0..heads {
        let kv_head = head / (heads / kvh);
        for t in 0..tokens {
            let scores: Vec<f64> = (0..tokens)
                .map(|s| {
                    (0..hd)
                        .map(|d| q[t][head * hd + d] * k[s][kv_head * hd + d])
                        .sum::<f64>()
                        / (hd as f64).sqrt()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = exp.iter().sum();
            for d in 0..hd {
                attended[t][head * hd + d] =
                    (0..tokens).map(|s| exp[s] / total * v[s][kv_head * hd + d]).sum();
            }
        }
    }
    let mut out = Vec::with_capacity(tokens * h);
    for t in 0..tokens {
        let o = matvec(&attended[t], &w.o, h);
        let x1: Vec<f64> = x[t].iter().zip(&o).map(|(a, b)| a + b).collect();
        let n2 = rms(&x1, Some(&w.post_norm));
        let gate = matvec(&n2, &w.gate, inter);
        let up = matvec(&n2, &w.up, inter);
        let swiglu: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let down = matvec(&swiglu, &w.down, h);
        let x2: Vec<f64> = x1.iter().zip(&down).map(|(a, b)| a + b).collect();
        let x2 = if final_norm { rms(&x2, None) } else { x2 };
        out.extend(x2.iter().map(|v| *v as f32));
    }
    out
}

pub(crate) fn tiny_llm_config() -> LlmConfig {
    LlmConfig {
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        intermediate: 96,
        final_norm: true,
        ..LlmConfig::default()
    }
}

/// Random weights with non-trivial norms, so that the norm weights are really exercised.
pub(crate) fn tiny_weights(seed: u64) -> LlamaLayerWeights {
    let mut w = LlamaLayerWeights::random(&tiny_llm_config(), seed);
    let scale = |n: usize, s: u64| {
        init::uniform_values(s, n, 0.5)
            .into_iter()
            .map(|v| 1.0 + v)
            .collect::<Vec<_>>()
    };
    w.input_norm = scale(w.hidden, seed + 7);
    w.post_norm = scale(w.hidden, seed + 8);
    // Larger projections than the 0.02 init so attention is far from uniform.
    for m in [&mut w.q, &mut w.k] {
        m.iter_mut().for_each(|v| *v *= 20.0);
    }
    w
}

fn run_block(block: &LlamaBlock<B>, x: &[f32], tokens: usize, hidden: usize) -> Vec<f32> {
    let device = Default::default();
    let input = Tensor::<B, 3>::from_data(TensorData::new(x.to_vec(), [1, tokens, hidden]), &device);
    block.forward(input).into_data().to_vec::<f32>().expect("f32")
}

/// Largest absolute difference.
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn llama_block_matches_plain_loop_reference() {
    let weights = tiny_weights(3);
    let tokens = 10;
    let x = init::normal_values(99, tokens * 64, 1.0);
    let expected = reference_llama(&weights, &x, tokens, true);
    let block = LlamaBlock::<B>::new(weights, &tiny_llm_config(), 0, &Default::default());
    let got = run_block(&block, &x, tokens, 64);
    // f32 tensors against f64 loops over 64–96-wide sums: 1e-4 absolute on O(1) outputs.
    assert!(
        max_diff(&got, &expected) < 1e-4,
        "max diff {}",
        max_diff(&got, &expected)
    );
}

#[test]
fn rope_row_permutation_of_q_and_k_does_not_change_the_output() {
    // Hugging Face permutes q_proj/k_proj rows within each head for its rotary layout
    // (interleaved ↔ half-split). Without RoPE, permuting the q and k features of every head
    // identically leaves all q·k products, hence the block output, unchanged.
    let weights = tiny_weights(5);
    let (hd, out_q, out_k) = (
        weights.head_dim(),
        weights.hidden,
        weights.kv_heads * weights.head_dim(),
    );
    // HF's permute: feature 2i → i, 2i+1 → hd/2 + i, within each head.
    let permutation: Vec<usize> = (0..hd)
        .map(|d| if d % 2 == 0 { d / 2 } else { hd / 2 + d / 2 })
        .collect();
    let permute = |m: &[f32], d_out: usize| {
        let mut out = m.to_vec();
        for row in 0..weights.hidden {
            for col in 0..d_out {
                let (head, d) = (col / hd, col % hd);
                out[row * d_out + head * hd + permutation[d]] = m[row * d_out + col];
            }
        }
        out
    };
    let mut permuted = weights.clone();
    permuted.q = permute(&weights.q, out_q);
    permuted.k = permute(&weights.k, out_k);
    assert_ne!(permuted.q, weights.q);
    let x = init::normal_values(1, 6 * 64, 1.0);
    let device = Default::default();
    let a = run_block(
        &LlamaBlock::<B>::new(weights, &tiny_llm_config(), 0, &device),
        &x,
        6,
        64,
    );
    let b = run_block(
        &LlamaBlock::<B>::new(permuted, &tiny_llm_config(), 0, &device),
        &x,
        6,
        64,
    );
    assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
}
