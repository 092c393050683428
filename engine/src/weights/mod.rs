//! Import of one Llama-architecture layer from a Hugging Face checkpoint folder: `config.json`
//! plus `model.safetensors`, or `model.safetensors.index.json` plus shards. Only the tensors of
//! the requested layer are read (a seek per tensor), and bf16/f16/f32 become f32.
//!
//! Hugging Face stores the rows of q_proj and k_proj permuted for its rotary-embedding layout.
//! MedVisionLlama removes RoPE, and the same permutation applied to the q and k features of a
//! head leaves every q·k dot product unchanged, so the weights are used as stored (a test in
//! `model::llama_tests` demonstrates the invariance).

mod frozen_block;
mod layer_norm_block;
mod safetensors;

pub use frozen_block::{BlockDims, FrozenBlockWeights, load_frozen_block, read_block_config};
pub use layer_norm_block::{HfLayerNormConfig, LayerNormBlockWeights, parse_layer_norm_config};
pub use safetensors::{SafetensorsFile, TensorInfo, parse_header as parse_safetensors_header};

use crate::model::LlmConfig;
use std::path::{Path, PathBuf};

/// Everything that can go wrong importing LLM weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file is missing or unreadable.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// config.json does not describe a Llama-like model.
    #[error("{}: not a Llama-architecture checkpoint: {reason}", path.display())]
    NotLlama {
        /// The config file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// config.json names a model this reader does not support, or another architecture than
    /// the preset asks for.
    #[error("{}: {reason}", path.display())]
    Unsupported {
        /// The config file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The layer index is out of range or its tensors are absent.
    #[error("{}: {reason}", dir.display())]
    MissingLayer {
        /// The checkpoint folder.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A tensor has the wrong shape or type.
    #[error("{}: tensor {name}: {reason}", path.display())]
    BadTensor {
        /// The file holding it.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The weights of one Llama decoder layer, as f32, linear weights in `[in, out]` layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaLayerWeights {
    /// Hidden size.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// SwiGLU width.
    pub intermediate: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f64,
    /// Where they came from: "random (no checkpoint)" or "DIR layer L".
    pub source: String,
    /// input_layernorm.weight `[hidden]`.
    pub input_norm: Vec<f32>,
    /// post_attention_layernorm.weight `[hidden]`.
    pub post_norm: Vec<f32>,
    /// q_proj `[hidden, hidden]`.
    pub q: Vec<f32>,
    /// k_proj `[hidden, kv_heads·head_dim]`.
    pub k: Vec<f32>,
    /// v_proj `[hidden, kv_heads·head_dim]`.
    pub v: Vec<f32>,
    /// o_proj `[hidden, hidden]`.
    pub o: Vec<f32>,
    /// gate_proj `[hidden, intermediate]`.
    pub gate: Vec<f32>,
    /// up_proj `[hidden, intermediate]`.
    pub up: Vec<f32>,
    /// down_proj `[intermediate, hidden]`.
    pub down: Vec<f32>,
}

/// What every report says when no checkpoint was given.
pub const RANDOM_WEIGHTS: &str = "random (no checkpoint)";
/// Standard deviation of random Llama weights (Hugging Face's `initializer_range`).
const RANDOM_INIT_STD: f64 = 0.02;

impl LlamaLayerWeights {
    /// A fingerprint of the frozen weights (FNV-1a over the dimensions and every value's bits),
    /// stored in checkpoints so a different layer, file or seed is refused on load.
    pub fn fingerprint(&self) -> String {
        let mut hash = Fnv1a::new();
        for dim in [self.hidden, self.heads, self.kv_heads, self.intermediate] {
            hash.eat(&(dim as u64).to_le_bytes());
        }
        hash.eat(&self.rms_eps.to_le_bytes());
        for tensor in self.tensors() {
            hash.eat(&(tensor.len() as u64).to_le_bytes());
            for value in tensor.iter() {
                hash.eat(&value.to_bits().to_le_bytes());
            }
        }
        hash.finish()
    }

    /// Dimension of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Frozen random weights for `config`, deterministic per seed (norm weights 1).
    pub fn random(config: &LlmConfig, seed: u64) -> Self {
        let (h, kv, i) = (
            config.hidden,
            config.kv_heads * config.head_dim(),
            config.intermediate,
        );
        let normal = |name: &str, n: usize| {
            crate::model::init::normal_values(crate::model::init::seed_for(seed, name), n, RANDOM_INIT_STD)
        };
        Self {
            hidden: h,
            heads: config.heads,
            kv_heads: config.kv_heads,
            intermediate: i,
            rms_eps: config.rms_eps,
            source: RANDOM_WEIGHTS.into(),
            input_norm: vec![1.0; h],
            post_norm: vec![1.0; h],
            q: normal("llm.q", h * h),
            k: normal("llm.k", h * kv),
            v: normal("llm.v", h * kv),
            o: normal("llm.o", h * h),
            gate: normal("llm.gate", h * i),
            up: normal("llm.up", h * i),
            down: normal("llm.down", i * h),
        }
    }

    /// Every weight tensor, in a fixed order.
    fn tensors(&self) -> [&Vec<f32>; 9] {
        [
            &self.input_norm,
            &self.post_norm,
            &self.q,
            &self.k,
            &self.v,
            &self.o,
            &self.gate,
            &self.up,
            &self.down,
        ]
    }

    /// Number of values.
    pub fn count(&self) -> usize {
        self.tensors().iter().map(|v| v.len()).sum()
    }
}

/// FNV-1a (64 bit) over bytes: the frozen weights' fingerprint.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET)
    }

    fn eat(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> String {
        format!("fnv1a64:{:016x}", self.0)
    }
}

/// The dimensions config.json gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HfLlamaConfig {
    /// hidden_size.
    pub hidden: usize,
    /// num_attention_heads.
    pub heads: usize,
    /// num_key_value_heads (defaults to heads).
    pub kv_heads: usize,
    /// intermediate_size.
    pub intermediate: usize,
    /// rms_norm_eps.
    pub rms_eps: f64,
    /// num_hidden_layers.
    pub layers: usize,
}

/// Model types whose decoder layers have Llama's structure and tensor names.
const LLAMA_LIKE: [&str; 2] = ["llama", "mistral"];

/// Most decoder layers a config.json may claim (Llama 3.1 405B has 126).
pub const MAX_LAYERS: usize = 4096;

/// Reads and checks config.json.
pub fn read_hf_config(dir: &Path) -> Result<HfLlamaConfig, WeightsError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WeightsError::File {
        path: path.clone(),
        reason: format!("{e}; a Hugging Face checkpoint folder holds config.json and *.safetensors"),
    })?;
    parse_hf_config(&text, &path)
}

/// Parses and checks the text of a config.json (`path` only names it in messages): a
/// Llama-like model type, dimensions that divide, and every size within bounds and the memory
/// budget before anything is allocated from it.
pub fn parse_hf_config(text: &str, path: &Path) -> Result<HfLlamaConfig, WeightsError> {
    let not_llama = |reason: String| WeightsError::NotLlama {
        path: path.to_path_buf(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| not_llama(format!("invalid JSON: {e}")))?;
    let model_type = json.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    if !LLAMA_LIKE.contains(&model_type) {
        return Err(not_llama(format!(
            "model_type is {model_type:?}; supported: {LLAMA_LIKE:?}"
        )));
    }
    if let Some(act) = json.get("hidden_act").and_then(|v| v.as_str())
        && act != "silu"
    {
        return Err(not_llama(format!(
            "hidden_act is {act:?}; a Llama block uses silu"
        )));
    }
    // Each size is bounded as it is read, so no later arithmetic on them can overflow.
    let bounded = |key: &str, value: u64, limit: usize| {
        usize::try_from(value)
            .ok()
            .filter(|v| (1..=limit).contains(v))
            .ok_or_else(|| not_llama(format!("{key} is {value}; it must be between 1 and {limit}")))
    };
    let number = |key: &str, limit: usize| {
        let value = json
            .get(key)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| not_llama(format!("missing integer {key:?}")))?;
        bounded(key, value, limit)
    };
    let hidden = number("hidden_size", crate::model::MAX_WIDTH)?;
    let heads = number("num_attention_heads", hidden)?;
    let kv_heads = match json.get("num_key_value_heads").and_then(|v| v.as_u64()) {
        Some(value) => bounded("num_key_value_heads", value, heads)?,
        None => heads,
    };
    let config = HfLlamaConfig {
        hidden,
        heads,
        kv_heads,
        intermediate: number("intermediate_size", crate::model::MAX_INTERMEDIATE)?,
        rms_eps: json.get("rms_norm_eps").and_then(|v| v.as_f64()).unwrap_or(1e-5),
        layers: number("num_hidden_layers", MAX_LAYERS)?,
    };
    if !config.hidden.is_multiple_of(config.heads) || !config.heads.is_multiple_of(config.kv_heads) {
        return Err(not_llama(format!(
            "hidden_size {} / heads {} / kv_heads {} do not divide",
            config.hidden, config.heads, config.kv_heads
        )));
    }
    let (h, i) = (config.hidden as u64, config.intermediate as u64);
    let kv = config.kv_heads as u64 * (h / config.heads as u64);
    // One layer as f32: q and o (h²), k and v (h·kv), gate, up and down (h·i), two norms.
    let layer_bytes = 4 * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h);
    crate::memory::budget()
        .check(layer_bytes, &format!("one decoder layer of {}", path.display()))
        .map_err(not_llama)?;
    Ok(config)
}

/// Finds the safetensors file holding each tensor: the index's weight_map, or the single file.
fn tensor_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, WeightsError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| WeightsError::File {
            path: index.clone(),
            reason: e.to_string(),
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| WeightsError::File {
            path: index.clone(),
            reason: format!("invalid JSON: {e}"),
        })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| WeightsError::File {
                path: index.clone(),
                reason: "no \"weight_map\" object".into(),
            })?;
        return Ok(map
            .iter()
            .filter_map(|(name, file)| file.as_str().map(|f| (name.clone(), dir.join(f))))
            .collect());
    }
    let single = dir.join("model.safetensors");
    if !single.is_file() {
        return Err(WeightsError::File {
            path: single,
            reason: "neither model.safetensors nor model.safetensors.index.json is here".into(),
        });
    }
    let file = SafetensorsFile::open(&single)?;
    Ok(file.names().into_iter().map(|n| (n, single.clone())).collect())
}

/// Reads layer `layer` of a Llama-architecture checkpoint folder.
pub fn load_llama_layer(dir: &Path, layer: usize) -> Result<LlamaLayerWeights, WeightsError> {
    let config = read_hf_config(dir)?;
    if layer >= config.layers {
        return Err(WeightsError::MissingLayer {
            dir: dir.to_path_buf(),
            reason: format!(
                "layer {layer} asked for, but the model has {} layers (0–{})",
                config.layers,
                config.layers.saturating_sub(1)
            ),
        });
    }
    let files = tensor_files(dir)?;
    let (h, i) = (config.hidden, config.intermediate);
    let kv = config.kv_heads * (h / config.heads);
    let mut opened: Vec<(PathBuf, SafetensorsFile)> = Vec::new();
    let mut read = |suffix: &str, rows: usize, cols: usize| -> Result<Vec<f32>, WeightsError> {
        let name = format!("model.layers.{layer}.{suffix}");
        let path = files
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| WeightsError::MissingLayer {
                dir: dir.to_path_buf(),
                reason: format!("tensor {name} is not in the checkpoint"),
            })?;
        if !opened.iter().any(|(p, _)| *p == path) {
            opened.push((path.clone(), SafetensorsFile::open(&path)?));
        }
        let file = opened
            .iter_mut()
            .find(|(p, _)| *p == path)
            .map(|(_, f)| f)
            .ok_or_else(|| WeightsError::File {
                path: path.clone(),
                reason: "opened file vanished".into(),
            })?;
        let expected: Vec<usize> = if cols == 0 { vec![rows] } else { vec![rows, cols] };
        let values = file.read_f32(&name, &expected)?;
        // Hugging Face linear weights are [out, in]; ours are [in, out].
        Ok(if cols == 0 {
            values
        } else {
            transpose(&values, rows, cols)
        })
    };
    Ok(LlamaLayerWeights {
        hidden: h,
        heads: config.heads,
        kv_heads: config.kv_heads,
        intermediate: i,
        rms_eps: config.rms_eps,
        source: format!("{} layer {layer}", dir.display()),
        input_norm: read("input_layernorm.weight", h, 0)?,
        post_norm: read("post_attention_layernorm.weight", h, 0)?,
        q: read("self_attn.q_proj.weight", h, h)?,
        k: read("self_attn.k_proj.weight", kv, h)?,
        v: read("self_attn.v_proj.weight", kv, h)?,
        o: read("self_attn.o_proj.weight", h, h)?,
        gate: read("mlp.gate_proj.weight", i, h)?,
        up: read("mlp.up_proj.weight", i, h)?,
        down: read("mlp.down_proj.weight", h, i)?,
    })
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests;
