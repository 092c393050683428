//! Closed-form estimate of the GPU memory one training step needs: weights, the optimiser's
//! state, and the activations autodiff keeps for the backward pass, with and without the
//! attention terms that grow with N² (tokens squared). It is what `mvl bench` prints beside the
//! measured peak, and what docs/GPU.md tabulates for the official-code preset at batch 4.
//!
//! Accounting (per sample, `a` bytes per activation value, N tokens), counting the tensors the
//! backward pass of each operation reads:
//! - ViT block (width d, MLP width m): LayerNorm input and output twice (4d), q, k, v (3d), the
//!   attention output (d), the MLP's hidden before and after GELU (2m); with dropout a mask per
//!   dropped tensor (attention projection d, MLP hidden m, MLP output d). Written-out attention
//!   also keeps, per head, the N×N softmax output, plus with dropout its mask and the dropped
//!   weights: 1 or 3 N² values per head.
//! - Llama block (hidden h, KV width k, intermediate i): RMSNorm input and output twice (4h),
//!   q (h), k and v (2k) and their copies repeated to every query head (2h), the attention
//!   output (h), gate and up (2i), SiLU(gate) and the SwiGLU product (2i); written-out attention
//!   keeps the scores and the softmax output per head (2 N² values).
//! - Mappers VD1/VD2: their inputs and outputs (2d + 2h); patch embedding, head and loss: the
//!   patches, the embedding, the logits and the targets.
//! - ViT-MLP's trainable MLP in place of the Llama block (f32): its hidden before and after
//!   GELU (2i).
//!
//! A memory-bounded attention keeps only q, k, v, the output (counted above) and one value per
//! token and head (the softmax's log-sum-exp). Transient buffers inside one operation (a GEMM's
//! workspace, one N² gradient during the backward pass of written-out attention) are not counted,
//! nor the CUDA context (≈ 0.5 GiB): the measured peak is higher than the estimate by about that.
//! On the CPU backend an attention whose weights fit in one block of scores also keeps those
//! weights (at most 16 MiB each, `model::attention::SCORE_BLOCK_ELEMENTS`); GPU backends do not.

use crate::model::{ModelConfig, ModelKind, model_stats};
use serde::Serialize;

/// Bytes of an f32 value: trainable weights, gradients and Adam's moments are always f32.
const F32_BYTES: u64 = 4;
/// A trainable value costs itself, its gradient and Adam's two moments.
const TRAINABLE_COPIES: u64 = 4;

/// The estimate for one configuration, batch and precision of the frozen block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryEstimate {
    /// Samples per batch.
    pub batch: usize,
    /// Bytes per value of the frozen Llama block's weights and activations (4 for f32, 2 for
    /// bf16).
    pub frozen_value_bytes: u64,
    /// Frozen weights (the Llama block and the mappers' base weights).
    pub frozen_weights_bytes: u64,
    /// Trainable weights, their gradients and Adam's two moments (f32).
    pub trainable_state_bytes: u64,
    /// Activations kept for backward that grow with N (the whole batch).
    pub activations_linear_bytes: u64,
    /// Activations kept for backward by written-out attention that grow with N² (the batch).
    pub attention_quadratic_bytes: u64,
    /// The memory-bounded attention's extra (log-sum-exp per token and head, the batch).
    pub attention_bounded_bytes: u64,
    /// Weights + optimiser state + linear activations + the memory-bounded attention's extra.
    pub total_bounded_bytes: u64,
    /// Weights + optimiser state + linear activations + the written-out attention's N² terms.
    pub total_written_out_bytes: u64,
}

/// The estimate for `config` at `batch`, the frozen block's weights and activations taking
/// `frozen_value_bytes` each (everything outside the block is f32).
pub fn memory_estimate(config: &ModelConfig, batch: usize, frozen_value_bytes: u64) -> MemoryEstimate {
    let stats = model_stats(config);
    let n = config.tokens() as u64;
    let (d, m) = (config.embed_dim as u64, config.mlp_dim as u64);
    let vit_blocks = (config.encoder_depth + config.decoder_depth) as u64;
    let vit_heads = config.num_heads as u64;
    let dropout = config.dropout > 0.0;

    let vit_linear_per_token = 4 * d + 3 * d + d + 2 * m + if dropout { 2 * d + m } else { 0 };
    let vit_quadratic_per_head = if dropout { 3 } else { 1 };
    let patch_in = config.patch_features() as u64;
    let patch_out = (config.patch_size.pow(3) * config.out_channels) as u64;
    // Patches in, the embedding, logits and targets (the loss reads both).
    let ends_per_token = patch_in + d + 2 * patch_out;

    let mut linear_f32 = n * (vit_blocks * vit_linear_per_token + ends_per_token);
    let quadratic_f32 = vit_blocks * vit_heads * vit_quadratic_per_head * n * n;
    let bounded_f32 = vit_blocks * vit_heads * n;
    let (mut linear_frozen, mut quadratic_frozen, mut bounded_frozen) = (0, 0, 0);
    if config.has_llm() {
        let llm = &config.llm;
        let (h, i) = (llm.hidden as u64, llm.intermediate as u64);
        let kv = (llm.kv_heads * llm.head_dim()) as u64;
        let repeated = if llm.heads == llm.kv_heads { 0 } else { 2 * h };
        linear_frozen = n * (4 * h + h + 2 * kv + repeated + h + 4 * i);
        quadratic_frozen = 2 * llm.heads as u64 * n * n;
        bounded_frozen = llm.heads as u64 * n;
    }
    if config.has_bridge() {
        // The mappers sit at the block's border: f32. The rank-r LoRA intermediates are left
        // out (r ≤ 16 values per token).
        linear_f32 += n * (2 * d + 2 * config.llm.hidden as u64);
    }
    if config.kind == ModelKind::VitMlp {
        // ViT-MLP's trainable MLP between the mappers (f32): its hidden before and after GELU;
        // its input and output are the mappers' (counted above).
        linear_f32 += n * 2 * config.llm.intermediate as u64;
    }
    let batch64 = batch as u64;
    let per_batch = |f32_values: u64, frozen_values: u64| {
        batch64 * (f32_values * F32_BYTES + frozen_values * frozen_value_bytes)
    };
    let frozen_weights_bytes = stats.frozen_params as u64 * frozen_value_bytes;
    let trainable_state_bytes = stats.trainable_params as u64 * TRAINABLE_COPIES * F32_BYTES;
    let activations_linear_bytes = per_batch(linear_f32, linear_frozen);
    let attention_quadratic_bytes = per_batch(quadratic_f32, quadratic_frozen);
    let attention_bounded_bytes = per_batch(bounded_f32, bounded_frozen);
    let fixed = frozen_weights_bytes + trainable_state_bytes + activations_linear_bytes;
    MemoryEstimate {
        batch,
        frozen_value_bytes,
        frozen_weights_bytes,
        trainable_state_bytes,
        activations_linear_bytes,
        attention_quadratic_bytes,
        attention_bounded_bytes,
        total_bounded_bytes: fixed + attention_bounded_bytes,
        total_written_out_bytes: fixed + attention_quadratic_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_code_at_batch_4_matches_a_hand_count() {
        // Written out for N = 4096, d = 64, m = 256, 16 ViT blocks of 4 heads with dropout,
        // h = 4096, k = 1024, i = 14336, 32 heads, 512-value patches in and out:
        // ViT per token 16·(8·64 + 2·256 + 2·64 + 256) = 22,528; ends 512 + 64 + 2·512 = 1,600;
        // mappers 2·64 + 2·4096 = 8,320 → 32,448 f32 values per token.
        // Llama per token 4·4096 + 4096 + 2·1024 + 2·4096 + 4096 + 4·14336 = 92,160.
        // N² terms: ViT 16·4·3 = 192 per N², Llama 2·32 = 64 per N².
        let n: u64 = 4096;
        let f32_linear = 32_448 * n * 4;
        let llama_linear = 92_160 * n;
        let estimate = memory_estimate(&ModelConfig::default(), 4, 4);
        assert_eq!(
            estimate.activations_linear_bytes,
            4 * (f32_linear + llama_linear * 4)
        );
        assert_eq!(estimate.attention_quadratic_bytes, 4 * (192 + 64) * n * n * 4);
        assert_eq!(estimate.attention_bounded_bytes, 4 * (16 * 4 + 32) * n * 4);
        assert_eq!(estimate.frozen_weights_bytes, (218_112_000 + 524_288) * 4);
        assert_eq!(estimate.trainable_state_bytes, 1_165_440 * 16);
        // In round numbers: 9.07 GB with memory-bounded attention, 77.8 GB written out.
        let gb = |b: u64| b as f64 / 1e9;
        assert!(
            (gb(estimate.total_bounded_bytes) - 9.066).abs() < 0.001,
            "{estimate:?}"
        );
        assert!(
            (gb(estimate.total_written_out_bytes) - 77.779).abs() < 0.001,
            "{estimate:?}"
        );

        // bf16 halves the frozen block's weights and activations, nothing else.
        let bf16 = memory_estimate(&ModelConfig::default(), 4, 2);
        assert_eq!(bf16.frozen_weights_bytes * 2, estimate.frozen_weights_bytes);
        assert_eq!(bf16.trainable_state_bytes, estimate.trainable_state_bytes);
        assert_eq!(
            estimate.activations_linear_bytes - bf16.activations_linear_bytes,
            4 * llama_linear * 2
        );
    }

    #[test]
    fn vit_mlp_counts_its_mappers_and_mlp_and_no_llama_block() {
        // The official-code preset with ViT-MLP's trainable MLP (4096 → 14336 → 4096) in place
        // of the Llama block, by hand: per token the ViT 22,528, the ends 1,600, the mappers
        // 2·64 + 2·4096 = 8,320 and the MLP's hidden before and after GELU 2·14336 = 28,672
        // → 61,120 f32 values; N² terms only the ViT's 192; frozen only the mappers' base
        // weights 2·64·4096.
        let config = ModelConfig {
            kind: ModelKind::VitMlp,
            ..ModelConfig::default()
        };
        let n: u64 = 4096;
        let estimate = memory_estimate(&config, 4, 4);
        assert_eq!(estimate.activations_linear_bytes, 4 * 61_120 * n * 4);
        assert_eq!(estimate.attention_quadratic_bytes, 4 * 192 * n * n * 4);
        assert_eq!(estimate.attention_bounded_bytes, 4 * 16 * 4 * n * 4);
        assert_eq!(estimate.frozen_weights_bytes, 524_288 * 4);
    }

    #[test]
    fn memory_grows_linearly_with_the_batch_apart_from_the_weights() {
        let config = ModelConfig::default();
        let one = memory_estimate(&config, 1, 4);
        let four = memory_estimate(&config, 4, 4);
        assert_eq!(four.activations_linear_bytes, 4 * one.activations_linear_bytes);
        assert_eq!(four.attention_quadratic_bytes, 4 * one.attention_quadratic_bytes);
        assert_eq!(four.frozen_weights_bytes, one.frozen_weights_bytes);
    }
}
