//! Parameter and FLOP counts computed from the configuration alone (closed forms), so `mvl
//! model` can describe the paper-size model without allocating its 218 M frozen weights. Tests
//! check these formulas against the parameters of built networks.

use super::config::{LlmArchitecture, MapperKind, ModelConfig, ModelKind};
use serde::Serialize;

/// What `mvl model` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    /// Values the optimiser updates.
    pub trainable_params: usize,
    /// Frozen values (the LLM block and the LoRA mappers' base weights).
    pub frozen_params: usize,
    /// Tokens per sample.
    pub tokens: usize,
    /// Multiply-adds × 2 of one forward pass of one sample (matrix products only).
    pub flops_per_sample: f64,
    /// Of which the LLM block (projections and attention).
    pub llm_flops_per_sample: f64,
}

/// Parameters of a linear layer with bias.
fn linear(d_in: usize, d_out: usize) -> usize {
    d_in * d_out + d_out
}

/// Counts for a configuration; `llm` dims are the config's (an imported checkpoint overrides them
/// before this is called).
pub fn model_stats(config: &ModelConfig) -> ModelStats {
    let (d, m, n) = (config.embed_dim, config.mlp_dim, config.tokens());
    let patch_in = config.patch_features();
    let patch_out = config.patch_size.pow(3) * config.out_channels;
    let layer_norm = 2 * d;
    let block_params = 2 * layer_norm + linear(d, 3 * d) + linear(d, d) + linear(d, m) + linear(m, d);
    let blocks = config.encoder_depth + config.decoder_depth;
    let mut trainable = linear(patch_in, d) + n * d + blocks * block_params + linear(d, patch_out);
    let nf = n as f64;
    // 2 FLOPs per multiply-add; attention: QKᵀ and AV, each 2·n²·width.
    let block_flops = 2.0 * nf * (d * 3 * d + d * d + d * m + m * d) as f64 + 4.0 * nf * nf * d as f64;
    let mut flops = 2.0 * nf * (patch_in * d + d * patch_out) as f64 + blocks as f64 * block_flops;
    let mut frozen = 0;
    let mut llm_flops = 0.0;
    if config.has_llm() {
        let llm = &config.llm;
        let (h, i) = (llm.hidden, llm.intermediate);
        let kv = llm.kv_heads * llm.head_dim();
        let llama_shapes = [
            ("q", h, h),
            ("k", h, kv),
            ("v", h, kv),
            ("o", h, h),
            ("gate", h, i),
            ("up", h, i),
            ("down", i, h),
        ];
        // BioGPT and BERT: no gate; every projection has a bias, both norms a weight and a bias.
        let layer_norm_shapes = [
            ("q", h, h),
            ("k", h, h),
            ("v", h, h),
            ("o", h, h),
            ("up", h, i),
            ("down", i, h),
        ];
        let (shapes, norms_and_biases): (&[(&str, usize, usize)], usize) = match llm.architecture {
            LlmArchitecture::Llama => (&llama_shapes, 2 * h),
            LlmArchitecture::Biogpt | LlmArchitecture::Bert => (&layer_norm_shapes, 5 * h + i + 4 * h),
        };
        frozen += norms_and_biases + shapes.iter().map(|(_, a, b)| a * b).sum::<usize>();
        for &(name, a, b) in shapes {
            llm_flops += 2.0 * nf * (a * b) as f64;
            if llm.lora_targets.iter().any(|t| t == name) {
                trainable += llm.lora_rank * (a + b);
                llm_flops += 2.0 * nf * (llm.lora_rank * (a + b)) as f64;
            }
        }
        llm_flops += 4.0 * nf * nf * h as f64;
        flops += llm_flops;
    }
    if config.kind == ModelKind::VitMlp {
        let (h, i) = (config.llm.hidden, config.llm.intermediate);
        trainable += linear(h, i) + linear(i, h);
        flops += 2.0 * nf * (2 * h * i) as f64;
    }
    if config.has_bridge() {
        let h = config.llm.hidden;
        match config.mapper {
            MapperKind::Lora => {
                let r = config.mapper_rank;
                frozen += 2 * d * h;
                trainable += (h + r * (d + h)) + (d + r * (h + d));
                flops += 2.0 * 2.0 * nf * (d * h + r * (d + h)) as f64;
            }
            MapperKind::Linear => {
                trainable += linear(d, h) + linear(h, d);
                flops += 2.0 * 2.0 * nf * (d * h) as f64;
            }
        }
    }
    ModelStats {
        trainable_params: trainable,
        frozen_params: frozen,
        tokens: n,
        flops_per_sample: flops,
        llm_flops_per_sample: llm_flops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_code_counts_match_the_official_model() {
        // The official code's model: 1,165,440 trainable parameters (sum of its modules, see
        // DESIGN.md §3) and one Llama-3.1-8B layer: 4·4096² (q, o) + 2·4096·1024 (k, v)
        // + 3·4096·14336 (SwiGLU) + 2·4096 (norms) = 218,112,000 — plus the mappers' frozen
        // base weights 2·64·4096 = 524,288.
        let stats = model_stats(&ModelConfig::default());
        assert_eq!(stats.trainable_params, 1_165_440);
        assert_eq!(stats.frozen_params, 218_112_000 + 524_288);
        assert_eq!(stats.tokens, 4096);
        // DESIGN.md §3: ≈ 2·218 M·4096 ≈ 1.79 TFLOP of projections plus 4·4096²·4096 ≈ 0.27
        // TFLOP of attention in the LLM block.
        let projections = 2.0 * 218_103_808.0 * 4096.0;
        let attention = 4.0 * 4096f64.powi(3);
        assert!((stats.llm_flops_per_sample - (projections + attention)).abs() < 1.0);
        assert!((stats.llm_flops_per_sample / 1e12 - 2.06).abs() < 0.01);
    }

    fn preset(relative: &str) -> ModelConfig {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs")
            .join(relative);
        ModelConfig::from_file(&path).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    /// The ablation presets are what their names say: ViT-Depth as large as the paper preset
    /// (trainable + frozen), LoRA ranks in increasing order of size, linear mappers without LoRA.
    #[test]
    fn ablation_presets_match_what_they_ablate() {
        let paper = model_stats(&preset("paper.toml"));
        let depth = preset("ablations/vit-depth.toml");
        let depth_stats = model_stats(&depth);
        assert_eq!(depth.kind, super::super::config::ModelKind::VitBaseline);
        assert_eq!(depth_stats.frozen_params, 0);
        let paper_total = (paper.trainable_params + paper.frozen_params) as f64;
        let ratio = depth_stats.trainable_params as f64 / paper_total;
        assert!(
            (ratio - 1.0).abs() < 0.01,
            "ViT-Depth {} vs {paper_total}",
            depth_stats.trainable_params
        );
        // ViT-MLP (§4.4.1): everything trainable, as large as the paper preset too.
        let mlp = preset("ablations/vit-mlp.toml");
        let mlp_stats = model_stats(&mlp);
        assert_eq!(mlp.kind, ModelKind::VitMlp);
        assert_eq!(mlp_stats.frozen_params, 0);
        let ratio = mlp_stats.trainable_params as f64 / paper_total;
        assert!(
            (ratio - 1.0).abs() < 0.01,
            "ViT-MLP {} vs {paper_total}",
            mlp_stats.trainable_params
        );
        let ranks = [2usize, 4, 8, 16].map(|r| {
            let config = preset(&format!("ablations/lora-rank-{r}.toml"));
            assert_eq!(config.llm.lora_rank, r);
            model_stats(&config).trainable_params
        });
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        // Rank 8 is the paper preset itself.
        assert_eq!(ranks[2], paper.trainable_params);
        let linear = preset("ablations/linear-mappers.toml");
        assert_eq!(linear.mapper, MapperKind::Linear);
        assert!(linear.llm.lora_targets.is_empty());
        assert!(
            model_stats(&linear).trainable_params > paper.trainable_params,
            "linear mappers train more"
        );
    }

    /// The §4.4.2 presets freeze one whole layer of the model they name: BioGPT's (hidden 1024,
    /// MLP 4096) has 12,596,224 values and a BERT-base layer 7,087,872 (the published per-layer
    /// sizes: 4·(h² + h) attention, h·i + i and i·h + h MLP, 4·h LayerNorm), plus the LoRA
    /// mappers' frozen base weights 2·64·h.
    #[test]
    fn block_swap_presets_freeze_one_layer_of_the_named_model() {
        let biogpt = preset("ablations/biogpt-block.toml");
        assert_eq!(biogpt.llm.architecture, LlmArchitecture::Biogpt);
        assert_eq!(model_stats(&biogpt).frozen_params, 12_596_224 + 2 * 64 * 1024);
        let bert = preset("ablations/bert-block.toml");
        assert_eq!(bert.llm.architecture, LlmArchitecture::Bert);
        assert_eq!(model_stats(&bert).frozen_params, 7_087_872 + 2 * 64 * 768);
        // Trainable parts are the official code's apart from the mappers' widths.
        let official = model_stats(&ModelConfig::default());
        let mapper_trainable = |h: usize| (h + 4 * (64 + h)) + (64 + 4 * (h + 64));
        assert_eq!(
            model_stats(&bert).trainable_params + mapper_trainable(4096),
            official.trainable_params + mapper_trainable(768)
        );
    }
}
