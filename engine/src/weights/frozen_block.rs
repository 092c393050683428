//! The frozen language-model block's weights whatever its architecture (Llama, BioGPT, BERT):
//! reading a folder's config.json for the architecture the preset names, loading one layer,
//! random weights when no folder is given, and the fingerprint checkpoints store.

use super::layer_norm_block::{LayerNormBlockWeights, load_layer_norm_layer, parse_layer_norm_config};
use super::{LlamaLayerWeights, WeightsError, load_llama_layer, parse_hf_config};
use crate::model::{LlmArchitecture, LlmConfig};
use std::path::Path;

/// One frozen layer of any supported architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum FrozenBlockWeights {
    /// A Llama decoder layer.
    Llama(LlamaLayerWeights),
    /// A BioGPT (pre-LayerNorm) or BERT (post-LayerNorm) layer.
    LayerNorm(LayerNormBlockWeights),
}

impl From<LlamaLayerWeights> for FrozenBlockWeights {
    fn from(weights: LlamaLayerWeights) -> Self {
        Self::Llama(weights)
    }
}

impl From<LayerNormBlockWeights> for FrozenBlockWeights {
    fn from(weights: LayerNormBlockWeights) -> Self {
        Self::LayerNorm(weights)
    }
}

impl FrozenBlockWeights {
    /// Frozen random weights of the architecture `config` names, deterministic per seed.
    pub fn random(config: &LlmConfig, seed: u64) -> Self {
        match config.architecture {
            LlmArchitecture::Llama => Self::Llama(LlamaLayerWeights::random(config, seed)),
            LlmArchitecture::Biogpt | LlmArchitecture::Bert => {
                Self::LayerNorm(LayerNormBlockWeights::random(config, seed))
            }
        }
    }

    /// The architecture.
    pub fn architecture(&self) -> LlmArchitecture {
        match self {
            Self::Llama(_) => LlmArchitecture::Llama,
            Self::LayerNorm(w) => w.architecture,
        }
    }

    /// "random (no checkpoint)" or "DIR layer L".
    pub fn source(&self) -> &str {
        match self {
            Self::Llama(w) => &w.source,
            Self::LayerNorm(w) => &w.source,
        }
    }

    /// Hidden size: the width VD1 maps to and VD2 from.
    pub fn hidden(&self) -> usize {
        match self {
            Self::Llama(w) => w.hidden,
            Self::LayerNorm(w) => w.hidden,
        }
    }

    /// A fingerprint of the frozen weights stored in checkpoints (FNV-1a). A Llama layer's is
    /// [`LlamaLayerWeights::fingerprint`], as before other architectures existed, so older
    /// checkpoints still match; the others also hash their architecture's name.
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Llama(w) => w.fingerprint(),
            Self::LayerNorm(w) => {
                let mut hash = super::Fnv1a::new();
                hash.eat(w.architecture.name().as_bytes());
                for dim in [w.hidden, w.heads, w.intermediate] {
                    hash.eat(&(dim as u64).to_le_bytes());
                }
                hash.eat(&w.eps.to_le_bytes());
                for tensor in w.tensors() {
                    hash.eat(&(tensor.len() as u64).to_le_bytes());
                    for value in tensor.iter() {
                        hash.eat(&value.to_bits().to_le_bytes());
                    }
                }
                hash.finish()
            }
        }
    }

    /// Number of frozen values.
    pub fn count(&self) -> usize {
        match self {
            Self::Llama(w) => w.count(),
            Self::LayerNorm(w) => w.tensors().iter().map(|t| t.len()).sum(),
        }
    }
}

/// The dimensions a checkpoint folder's config.json gives, whatever the architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDims {
    /// The architecture (agrees with the preset's).
    pub architecture: LlmArchitecture,
    /// hidden_size.
    pub hidden: usize,
    /// num_attention_heads.
    pub heads: usize,
    /// num_key_value_heads (= heads for BioGPT and BERT).
    pub kv_heads: usize,
    /// intermediate_size.
    pub intermediate: usize,
    /// rms_norm_eps (Llama) or layer_norm_eps (BioGPT, BERT).
    pub eps: f64,
    /// num_hidden_layers.
    pub layers: usize,
}

/// Reads `dir/config.json` and checks that its `model_type` belongs to `architecture`: a
/// folder of another architecture is refused with the preset setting that reads it.
pub fn read_block_config(dir: &Path, architecture: LlmArchitecture) -> Result<BlockDims, WeightsError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WeightsError::File {
        path: path.clone(),
        reason: format!("{e}; a Hugging Face checkpoint folder holds config.json and *.safetensors"),
    })?;
    let unsupported = |reason: String| WeightsError::Unsupported {
        path: path.clone(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| unsupported(format!("invalid JSON: {e}")))?;
    let model_type = json.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    match LlmArchitecture::from_model_type(model_type) {
        None => {
            return Err(unsupported(format!(
                "model_type is {model_type:?}, which no frozen block reads; supported: llama and mistral (architecture = \"llama\"), biogpt (architecture = \"biogpt\"), bert (architecture = \"bert\")"
            )));
        }
        Some(found) if found != architecture => {
            return Err(unsupported(format!(
                "model_type {model_type:?} is a {} model, but the preset's [model.llm] architecture is {:?}; set architecture = {:?} there",
                found.name(),
                architecture.name(),
                found.name()
            )));
        }
        Some(_) => {}
    }
    Ok(match architecture {
        LlmArchitecture::Llama => {
            let c = parse_hf_config(&text, &path)?;
            BlockDims {
                architecture,
                hidden: c.hidden,
                heads: c.heads,
                kv_heads: c.kv_heads,
                intermediate: c.intermediate,
                eps: c.rms_eps,
                layers: c.layers,
            }
        }
        LlmArchitecture::Biogpt | LlmArchitecture::Bert => {
            let c = parse_layer_norm_config(&json, &path, architecture)?;
            BlockDims {
                architecture,
                hidden: c.hidden,
                heads: c.heads,
                kv_heads: c.heads,
                intermediate: c.intermediate,
                eps: c.eps,
                layers: c.layers,
            }
        }
    })
}

/// Reads layer `layer` of the `architecture` checkpoint in `dir`.
pub fn load_frozen_block(
    dir: &Path,
    architecture: LlmArchitecture,
    layer: usize,
) -> Result<FrozenBlockWeights, WeightsError> {
    let dims = read_block_config(dir, architecture)?;
    if layer >= dims.layers {
        return Err(WeightsError::MissingLayer {
            dir: dir.to_path_buf(),
            reason: format!(
                "layer {layer} asked for, but the model has {} layers (0–{}); set [model.llm] layer or --layer",
                dims.layers,
                dims.layers.saturating_sub(1)
            ),
        });
    }
    match architecture {
        LlmArchitecture::Llama => load_llama_layer(dir, layer).map(FrozenBlockWeights::Llama),
        LlmArchitecture::Biogpt | LlmArchitecture::Bert => {
            let config = super::HfLayerNormConfig {
                hidden: dims.hidden,
                heads: dims.heads,
                intermediate: dims.intermediate,
                eps: dims.eps,
                layers: dims.layers,
            };
            load_layer_norm_layer(dir, architecture, &config, layer).map(FrozenBlockWeights::LayerNorm)
        }
    }
}
