//! Upper bounds on every size a model config gives, checked before anything is allocated from
//! it: a preset or a checkpoint's `config.toml` is a file a user (or a corrupt download) can put
//! any number in, and `embed_dim = 10000000000` must be refused with a message, not attempted.
//!
//! The bounds are generous (several times the largest published MedVisionLlama and Llama 3.1
//! 405B sizes); what actually limits a model is its parameter count, checked against the memory
//! budget ([`crate::memory::budget`]).

use super::{ConfigError, ModelConfig};
use crate::memory::Budget;

/// Largest model grid edge in voxels (preprocessing has the same limit).
pub const MAX_IMAGE_EDGE: usize = 1024;
/// Most tokens per sample: attention scores grow with its square.
pub const MAX_TOKENS: usize = 1 << 16;
/// Largest ViT width, MLP width and LLM hidden size.
pub const MAX_WIDTH: usize = 1 << 16;
/// Largest LLM intermediate (SwiGLU) size.
pub const MAX_INTERMEDIATE: usize = 1 << 18;
/// Most ViT blocks before or after the LLM.
pub const MAX_DEPTH: usize = 256;
/// Most input or output channels.
pub const MAX_CHANNELS: usize = 256;
/// Bytes per stored parameter (f32).
const PARAMETER_BYTES: u128 = 4;

impl ModelConfig {
    /// Refuses any size beyond the bounds above, then a parameter count whose f32 storage
    /// exceeds `budget`. Called by [`ModelConfig::validate`] with the budget in force.
    pub fn check_sizes(&self, budget: Budget) -> Result<(), ConfigError> {
        let llm = &self.llm;
        let bounds: [(&str, usize, usize); 14] = [
            ("image_size[0]", self.image_size[0], MAX_IMAGE_EDGE),
            ("image_size[1]", self.image_size[1], MAX_IMAGE_EDGE),
            ("image_size[2]", self.image_size[2], MAX_IMAGE_EDGE),
            ("patch_size", self.patch_size, MAX_IMAGE_EDGE),
            ("in_channels", self.in_channels, MAX_CHANNELS),
            ("out_channels", self.out_channels, MAX_CHANNELS),
            ("embed_dim", self.embed_dim, MAX_WIDTH),
            ("mlp_dim", self.mlp_dim, MAX_WIDTH),
            ("num_heads", self.num_heads, self.embed_dim.max(1)),
            ("encoder_depth", self.encoder_depth, MAX_DEPTH),
            ("decoder_depth", self.decoder_depth, MAX_DEPTH),
            ("mapper_rank", self.mapper_rank, MAX_WIDTH),
            ("llm.hidden", llm.hidden, MAX_WIDTH),
            ("llm.intermediate", llm.intermediate, MAX_INTERMEDIATE),
        ];
        let more: [(&str, usize, usize); 3] = [
            ("llm.heads", llm.heads, llm.hidden.max(1)),
            ("llm.kv_heads", llm.kv_heads, llm.heads.max(1)),
            ("llm.lora_rank", llm.lora_rank, MAX_WIDTH),
        ];
        for (name, value, limit) in bounds.into_iter().chain(more) {
            if value > limit {
                return Err(ConfigError::Invalid(format!(
                    "{name} is {value}, more than the limit of {limit}; the config is corrupt or asks for a model this program does not build"
                )));
            }
        }
        if self.patch_size > 0 {
            let tokens = self
                .image_size
                .iter()
                .map(|n| n / self.patch_size)
                .product::<usize>();
            if tokens > MAX_TOKENS {
                return Err(ConfigError::Invalid(format!(
                    "image_size {:?} / patch_size {} gives {tokens} tokens per sample, more than {MAX_TOKENS}; use a larger patch or a smaller grid",
                    self.image_size, self.patch_size
                )));
            }
        }
        // One sample on the model grid, every input channel: what preprocessing and prediction
        // allocate from these sizes.
        let grid_bytes = self.image_size.iter().map(|n| *n as u128).product::<u128>()
            * self.in_channels as u128
            * PARAMETER_BYTES;
        budget
            .check(
                u64::try_from(grid_bytes).unwrap_or(u64::MAX),
                &format!(
                    "one {:?} × {} channel sample on the model grid",
                    self.image_size, self.in_channels
                ),
            )
            .map_err(ConfigError::Invalid)?;
        let bytes = self.parameter_estimate() * PARAMETER_BYTES;
        budget
            .check(
                u64::try_from(bytes).unwrap_or(u64::MAX),
                &format!("model {:?}'s parameters", self.name),
            )
            .map_err(ConfigError::Invalid)
    }

    /// An upper estimate of the parameter count (frozen included), in u128 so that no bounded
    /// config overflows: the dominant matrices of the ViT blocks, the patch embedding and head,
    /// the position embedding and, with an LLM, one Llama layer and its mappers.
    fn parameter_estimate(&self) -> u128 {
        let w = |n: usize| n as u128;
        let (e, m) = (w(self.embed_dim), w(self.mlp_dim));
        let patch = w(self.patch_size).pow(3);
        let tokens = self
            .image_size
            .iter()
            .map(|n| w(*n) / w(self.patch_size.max(1)))
            .product::<u128>();
        let blocks = w(self.encoder_depth) + w(self.decoder_depth);
        let mut count = blocks * (4 * e * e + 2 * e * m)
            + patch * (w(self.in_channels) + w(self.out_channels)) * e
            + tokens * e;
        // ViT-MLP's MLP (2·h·i) is smaller than this bound.
        if self.has_bridge() {
            let llm = &self.llm;
            let (h, i) = (w(llm.hidden), w(llm.intermediate));
            let kv = w(llm.kv_heads) * (h / w(llm.heads.max(1)));
            count += 2 * h * h + 2 * h * kv + 3 * h * i + 2 * e * h;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(config: &ModelConfig, budget: Budget) -> String {
        config
            .check_sizes(budget)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_shipped_default_fits_a_modest_budget() {
        // The official-code default with a Llama-3.1-8B layer: 4096² · 2 + 4096 · 1024 · 2 +
        // 4096 · 14336 · 3 ≈ 218 M parameters (0.9 GB) for the layer, well under 2 GiB in all.
        assert!(ModelConfig::default().check_sizes(Budget::fixed(2 << 30)).is_ok());
    }

    #[test]
    fn absurd_sizes_are_refused_with_the_field_and_limit() {
        let huge = Budget::fixed(u64::MAX);
        let config = ModelConfig {
            embed_dim: 10_000_000_000,
            ..ModelConfig::default()
        };
        let message = refusal(&config, huge);
        assert!(
            message.contains("embed_dim is 10000000000, more than the limit of 65536"),
            "{message}"
        );
        let mut config = ModelConfig::default();
        config.llm.intermediate = usize::MAX;
        assert!(refusal(&config, huge).contains("llm.intermediate"));
        let config = ModelConfig {
            image_size: [1024, 1024, 1024],
            patch_size: 2,
            ..ModelConfig::default()
        };
        assert!(refusal(&config, huge).contains("134217728 tokens"));
    }

    #[test]
    fn a_model_larger_than_the_budget_is_refused() {
        // Largest hidden and intermediate sizes: 2·2^32 + 2·2^32/4·… far beyond 1 GiB.
        let mut config = ModelConfig::default();
        config.llm.hidden = MAX_WIDTH;
        config.llm.heads = 64;
        config.llm.kv_heads = 8;
        config.llm.intermediate = MAX_INTERMEDIATE;
        let message = refusal(&config, Budget::fixed(1 << 30));
        assert!(message.contains("parameters needs"), "{message}");
        assert!(message.contains("budget of 1.0 GiB"), "{message}");
        // 1024³ voxels × 64 channels × 4 bytes = 256 GiB for one input sample.
        let config = ModelConfig {
            image_size: [1024, 1024, 1024],
            patch_size: 32,
            in_channels: 64,
            ..ModelConfig::default()
        };
        let message = refusal(&config, Budget::fixed(1 << 30));
        assert!(
            message.contains("channel sample on the model grid needs 256.0 GiB"),
            "{message}"
        );
    }
}
