//! Model configuration: one configurable network whose presets are the official code's model,
//! the paper's description, ViT-Baseline and a CPU demo (DESIGN.md §3). Read from TOML.
//!
//! Plain serde structs rather than burn's `#[derive(Config)]`: presets are hand-written TOML
//! files with defaults and comments, and serde's `#[serde(default)]` reads them directly.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// ViT with VD1 → frozen LLM block → VD2 between its encoder and decoder blocks.
    Medvisionllama,
    /// The same ViT without VD1, LLM and VD2.
    VitBaseline,
    /// The ViT-MLP ablation (paper §4.4.1): MedVisionLlama with a trainable MLP
    /// (`llm.hidden → llm.intermediate → llm.hidden`, GELU) in place of the frozen block.
    VitMlp,
}

/// Where the learned position embedding is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PosEmbedPlace {
    /// To the patch embeddings, before the encoder (the paper's text).
    Input,
    /// After VD2, before the decoder blocks (the official code).
    AfterVd2,
}

/// How VD1/VD2 map between the ViT width and the LLM width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MapperKind {
    /// loralib-style: frozen random base weight, trainable bias and rank-r A/B.
    Lora,
    /// A plain trainable linear layer (the paper's ablation).
    Linear,
}

/// Output activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    /// One channel per output, sigmoid (the official code: all foreground labels merged).
    Sigmoid,
    /// Softmax over `out_channels` classes (background included).
    Softmax,
}

/// Which pre-trained language-model block sits between VD1 and VD2 (paper §4.4.2 swaps the
/// Llama block for BioGPT, BioBERT and ClinicalBERT blocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LlmArchitecture {
    /// A Llama decoder layer: RMSNorm, grouped-query attention, SwiGLU (`model_type` llama or
    /// mistral).
    #[default]
    Llama,
    /// A GPT-2-style decoder layer as in BioGPT: pre-LayerNorm, attention and a GELU MLP, all
    /// with biases (`model_type` biogpt).
    Biogpt,
    /// A BERT encoder layer as in BioBERT and ClinicalBERT: post-LayerNorm, attention and a
    /// GELU MLP, all with biases (`model_type` bert).
    Bert,
}

impl LlmArchitecture {
    /// The name used in presets and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Biogpt => "biogpt",
            Self::Bert => "bert",
        }
    }

    /// Hugging Face `model_type`s whose layers have this architecture's structure and names.
    pub fn model_types(self) -> &'static [&'static str] {
        match self {
            Self::Llama => &["llama", "mistral"],
            Self::Biogpt => &["biogpt"],
            Self::Bert => &["bert"],
        }
    }

    /// The architecture a `model_type` belongs to, if any.
    pub fn from_model_type(model_type: &str) -> Option<Self> {
        [Self::Llama, Self::Biogpt, Self::Bert]
            .into_iter()
            .find(|a| a.model_types().contains(&model_type))
    }

    /// Projections of this block that can carry LoRA adapters.
    pub fn projections(self) -> &'static [&'static str] {
        match self {
            Self::Llama => &LLM_PROJECTIONS,
            // fc1 / intermediate.dense is "up", fc2 / output.dense is "down".
            Self::Biogpt | Self::Bert => &LAYER_NORM_BLOCK_PROJECTIONS,
        }
    }
}

/// The frozen language-model block between VD1 and VD2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Which block: llama (default), biogpt or bert. With a checkpoint folder, its
    /// config.json's `model_type` must belong to it.
    pub architecture: LlmArchitecture,
    /// Hidden size (4096 for Llama-3.1-8B).
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention); must equal `heads` for biogpt and bert.
    pub kv_heads: usize,
    /// Intermediate size of the MLP (SwiGLU for llama, GELU for biogpt and bert).
    pub intermediate: usize,
    /// RMSNorm epsilon (llama).
    pub rms_eps: f64,
    /// LayerNorm epsilon (biogpt, bert; their config.json's `layer_norm_eps`).
    pub layer_norm_eps: f64,
    /// Apply a final normalisation with weight fixed at 1 (and bias 0) after the block, as the
    /// official code does: RMSNorm for llama, LayerNorm for biogpt and bert.
    pub final_norm: bool,
    /// Layer index to import from a checkpoint.
    pub layer: usize,
    /// Hugging Face checkpoint folder; `None` means random frozen weights.
    pub checkpoint: Option<PathBuf>,
    /// Projections inside the block that get trainable LoRA adapters: any of q, k, v, o, gate,
    /// up, down. Empty in the official code.
    pub lora_targets: Vec<String>,
    /// Rank of those adapters.
    pub lora_rank: usize,
    /// Alpha of those adapters (scaling = alpha / rank).
    pub lora_alpha: f64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            architecture: LlmArchitecture::Llama,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            intermediate: 14336,
            rms_eps: 1e-5,
            layer_norm_eps: 1e-12,
            final_norm: true,
            layer: 31,
            checkpoint: None,
            lora_targets: Vec::new(),
            lora_rank: 8,
            lora_alpha: 16.0,
        }
    }
}

impl LlmConfig {
    /// Dimension of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads.max(1)
    }
}

/// The whole network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Preset name, shown in reports.
    pub name: String,
    /// MedVisionLlama or ViT-Baseline.
    pub kind: ModelKind,
    /// Input grid (x, y, z) in voxels.
    pub image_size: [usize; 3],
    /// Cubic patch edge in voxels.
    pub patch_size: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Output activation.
    pub output: OutputKind,
    /// ViT width.
    pub embed_dim: usize,
    /// ViT blocks before VD1 (V_E). Official code: 0.
    pub encoder_depth: usize,
    /// ViT blocks after VD2 (V_D). Official code: 16.
    pub decoder_depth: usize,
    /// Attention heads of the ViT blocks.
    pub num_heads: usize,
    /// Hidden width of the ViT MLPs.
    pub mlp_dim: usize,
    /// Dropout in the ViT blocks (attention weights and MLP).
    pub dropout: f64,
    /// Where the position embedding is added.
    pub pos_embed: PosEmbedPlace,
    /// VD1/VD2 kind.
    pub mapper: MapperKind,
    /// LoRA rank of VD1/VD2.
    pub mapper_rank: usize,
    /// LoRA alpha of VD1/VD2.
    pub mapper_alpha: f64,
    /// `x = llm(x) + x` around the LLM block.
    pub llm_residual: bool,
    /// The LLM block.
    pub llm: LlmConfig,
    /// Seed of every random initialisation, the frozen weights included: the frozen random
    /// weights are regenerated from it instead of being stored in checkpoints.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            name: "official-code".into(),
            kind: ModelKind::Medvisionllama,
            image_size: [128, 128, 128],
            patch_size: 8,
            in_channels: 1,
            out_channels: 1,
            output: OutputKind::Sigmoid,
            embed_dim: 64,
            encoder_depth: 0,
            decoder_depth: 16,
            num_heads: 4,
            mlp_dim: 256,
            dropout: 0.2,
            pos_embed: PosEmbedPlace::AfterVd2,
            mapper: MapperKind::Lora,
            mapper_rank: 4,
            mapper_alpha: 1.0,
            llm_residual: true,
            llm: LlmConfig::default(),
            seed: 0,
        }
    }
}

/// A configuration that cannot be built, or a preset file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read model config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is malformed.
    #[error("{}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Values that contradict each other.
    #[error("invalid model config: {0}")]
    Invalid(String),
}

/// The file layout of a preset: `[model]` (and later `[training]`) tables.
#[derive(Deserialize)]
struct PresetFile {
    model: ModelConfig,
}

/// Projections of a Llama block that can carry LoRA adapters.
pub const LLM_PROJECTIONS: [&str; 7] = ["q", "k", "v", "o", "gate", "up", "down"];
/// Projections of a BioGPT or BERT block that can carry LoRA adapters (up: fc1 /
/// intermediate.dense, down: fc2 / output.dense).
pub const LAYER_NORM_BLOCK_PROJECTIONS: [&str; 6] = ["q", "k", "v", "o", "up", "down"];

impl ModelConfig {
    /// Reads the `[model]` table of a TOML preset.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates the `[model]` table of a preset's text; `path` only names the source
    /// in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let preset: PresetFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        // Name the preset in the message: "which file" is half of what to fix.
        preset.model.validate().map_err(|e| match e {
            ConfigError::Invalid(problem) => ConfigError::Parse {
                path: path.to_path_buf(),
                reason: format!("invalid model config: {problem}"),
            },
            other => other,
        })?;
        Ok(preset.model)
    }

    /// Checks that the sizes are within bounds and the memory budget
    /// ([`ModelConfig::check_sizes`]) and fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_sizes(crate::memory::budget())?;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.patch_size == 0
            || self
                .image_size
                .iter()
                .any(|n| *n == 0 || !n.is_multiple_of(self.patch_size))
        {
            return invalid(format!(
                "image_size {:?} must be a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return invalid(format!(
                "embed_dim {} must be divisible by num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 {
            return invalid("in_channels and out_channels must be at least 1".into());
        }
        if self.output == OutputKind::Softmax && self.out_channels < 2 {
            return invalid("softmax output needs out_channels ≥ 2 (background and foreground)".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if self.kind == ModelKind::Medvisionllama {
            let llm = &self.llm;
            if llm.architecture != LlmArchitecture::Llama && llm.kv_heads != llm.heads {
                return invalid(format!(
                    "llm.kv_heads {} must equal llm.heads {} for a {} block (no grouped-query attention)",
                    llm.kv_heads,
                    llm.heads,
                    llm.architecture.name()
                ));
            }
            if llm.heads == 0
                || llm.kv_heads == 0
                || !llm.hidden.is_multiple_of(llm.heads)
                || !llm.heads.is_multiple_of(llm.kv_heads)
            {
                return invalid(format!(
                    "LLM hidden {} / heads {} / kv_heads {}: hidden must divide by heads and heads by kv_heads",
                    llm.hidden, llm.heads, llm.kv_heads
                ));
            }
            let projections = llm.architecture.projections();
            if let Some(bad) = llm
                .lora_targets
                .iter()
                .find(|t| !projections.contains(&t.as_str()))
            {
                return invalid(format!(
                    "llm.lora_targets: {bad:?} is not one of {projections:?} (a {} block)",
                    llm.architecture.name()
                ));
            }
        }
        if self.has_bridge() && self.mapper == MapperKind::Lora && self.mapper_rank == 0 {
            return invalid("mapper_rank must be at least 1 for LoRA mappers".into());
        }
        Ok(())
    }

    /// Tokens per sample: (image / patch)³.
    pub fn tokens(&self) -> usize {
        self.image_size.iter().map(|n| n / self.patch_size).product()
    }

    /// Tokens along x, y, z.
    pub fn token_grid(&self) -> [usize; 3] {
        self.image_size.map(|n| n / self.patch_size)
    }

    /// Voxels per patch times input channels: the patch-embedding input width.
    pub fn patch_features(&self) -> usize {
        self.patch_size.pow(3) * self.in_channels
    }

    /// What every report prints in place of the frozen weights' source for a network without
    /// a frozen block (`None` for MedVisionLlama, whose reports name its weights).
    pub fn no_frozen_block_label(&self) -> Option<&'static str> {
        match self.kind {
            ModelKind::Medvisionllama => None,
            ModelKind::VitBaseline => Some("none (ViT-Baseline)"),
            ModelKind::VitMlp => Some("none (ViT-MLP: a trainable MLP in its place)"),
        }
    }

    /// The "LLM weights" line of every report: the frozen weights' source, or what the network
    /// has instead of a frozen block.
    pub fn llm_weights_source(&self, weights: Option<&crate::weights::FrozenBlockWeights>) -> String {
        match (weights, self.no_frozen_block_label()) {
            (Some(weights), _) => weights.source().to_string(),
            (None, Some(label)) => label.to_string(),
            (None, None) => crate::weights::RANDOM_WEIGHTS.to_string(),
        }
    }

    /// Whether this network has the VD1 → frozen LLM block → VD2 bridge.
    pub fn has_llm(&self) -> bool {
        self.kind == ModelKind::Medvisionllama
    }

    /// Whether this network has VD1 and VD2 (around the frozen block or ViT-MLP's MLP).
    pub fn has_bridge(&self) -> bool {
        matches!(self.kind, ModelKind::Medvisionllama | ModelKind::VitMlp)
    }
}
