//! Import of one BioGPT (GPT-2-style, pre-LayerNorm) or BERT (post-LayerNorm) layer from a
//! Hugging Face checkpoint folder, for the paper's §4.4.2 swap of the frozen Llama block
//! (BioGPT, BioBERT, ClinicalBERT). Both layers hold the same tensors — q, k, v, output
//! projections, a GELU MLP, two LayerNorms, every one with a bias — and differ only in where the
//! LayerNorms sit, so one weights type serves both.
//!
//! Tensor names (`N` the layer; the model-level prefix is optional, so a bare `BioGptModel` or
//! `BertModel` export reads too):
//! - BioGPT: `biogpt.layers.N.self_attn.{q,k,v,out}_proj`, `self_attn_layer_norm`, `fc1`, `fc2`,
//!   `final_layer_norm`.
//! - BERT: `bert.encoder.layer.N.attention.self.{query,key,value}`, `attention.output.dense`,
//!   `attention.output.LayerNorm`, `intermediate.dense`, `output.dense`, `output.LayerNorm`
//!   (`gamma`/`beta` accepted for LayerNorm weight/bias, as old TensorFlow conversions name them).

use super::{RANDOM_INIT_STD, RANDOM_WEIGHTS, SafetensorsFile, WeightsError, tensor_files, transpose};
use crate::model::{LlmArchitecture, LlmConfig};
use std::path::{Path, PathBuf};

/// The weights of one BioGPT or BERT layer, as f32, linear weights in `[in, out]` layout.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNormBlockWeights {
    /// Biogpt (pre-LayerNorm) or Bert (post-LayerNorm).
    pub architecture: LlmArchitecture,
    /// Hidden size.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP width.
    pub intermediate: usize,
    /// LayerNorm epsilon.
    pub eps: f64,
    /// Where they came from: "random (no checkpoint)" or "DIR layer L".
    pub source: String,
    /// Query, key, value and output projections `[hidden, hidden]` with their biases `[hidden]`.
    pub q: (Vec<f32>, Vec<f32>),
    /// Key projection and bias.
    pub k: (Vec<f32>, Vec<f32>),
    /// Value projection and bias.
    pub v: (Vec<f32>, Vec<f32>),
    /// Attention output projection and bias.
    pub o: (Vec<f32>, Vec<f32>),
    /// LayerNorm around attention (BioGPT: before it; BERT: after its residual), weight and bias.
    pub attention_norm: (Vec<f32>, Vec<f32>),
    /// fc1 / intermediate.dense `[hidden, intermediate]` and bias `[intermediate]`.
    pub up: (Vec<f32>, Vec<f32>),
    /// fc2 / output.dense `[intermediate, hidden]` and bias `[hidden]`.
    pub down: (Vec<f32>, Vec<f32>),
    /// LayerNorm around the MLP, weight and bias.
    pub mlp_norm: (Vec<f32>, Vec<f32>),
}

/// The dimensions a BioGPT or BERT config.json gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HfLayerNormConfig {
    /// hidden_size.
    pub hidden: usize,
    /// num_attention_heads.
    pub heads: usize,
    /// intermediate_size.
    pub intermediate: usize,
    /// layer_norm_eps (default 1e-12, both models' default).
    pub eps: f64,
    /// num_hidden_layers.
    pub layers: usize,
}

impl LayerNormBlockWeights {
    /// Frozen random weights for `config`, deterministic per seed: Hugging Face's init (weights
    /// N(0, 0.02), biases 0, LayerNorm weight 1 and bias 0).
    pub fn random(config: &LlmConfig, seed: u64) -> Self {
        let (h, i) = (config.hidden, config.intermediate);
        let normal = |name: &str, n: usize| {
            crate::model::init::normal_values(crate::model::init::seed_for(seed, name), n, RANDOM_INIT_STD)
        };
        Self {
            architecture: config.architecture,
            hidden: h,
            heads: config.heads,
            intermediate: i,
            eps: config.layer_norm_eps,
            source: RANDOM_WEIGHTS.into(),
            q: (normal("llm.q", h * h), vec![0.0; h]),
            k: (normal("llm.k", h * h), vec![0.0; h]),
            v: (normal("llm.v", h * h), vec![0.0; h]),
            o: (normal("llm.o", h * h), vec![0.0; h]),
            attention_norm: (vec![1.0; h], vec![0.0; h]),
            up: (normal("llm.up", h * i), vec![0.0; i]),
            down: (normal("llm.down", i * h), vec![0.0; h]),
            mlp_norm: (vec![1.0; h], vec![0.0; h]),
        }
    }

    /// Every tensor, in a fixed order.
    pub(super) fn tensors(&self) -> [&Vec<f32>; 16] {
        let pairs = [
            &self.q,
            &self.k,
            &self.v,
            &self.o,
            &self.attention_norm,
            &self.up,
            &self.down,
            &self.mlp_norm,
        ];
        let mut out = [&self.q.0; 16];
        for (n, pair) in pairs.iter().enumerate() {
            out[2 * n] = &pair.0;
            out[2 * n + 1] = &pair.1;
        }
        out
    }

    /// Dimension of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads.max(1)
    }
}

/// Parses and checks a BioGPT or BERT config.json (`path` only names it in messages): the
/// model type, GELU, dimensions that divide, sizes within bounds and the memory budget.
pub fn parse_layer_norm_config(
    json: &serde_json::Value,
    path: &Path,
    architecture: LlmArchitecture,
) -> Result<HfLayerNormConfig, WeightsError> {
    let bad = |reason: String| WeightsError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(act) = json.get("hidden_act").and_then(|v| v.as_str())
        && act != "gelu"
    {
        return Err(bad(format!(
            "hidden_act is {act:?}; a {} block is read with exact (erf) GELU, \"gelu\"",
            architecture.name()
        )));
    }
    let number = |key: &str, limit: usize| {
        let value = json
            .get(key)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad(format!("missing integer {key:?}")))?;
        usize::try_from(value)
            .ok()
            .filter(|v| (1..=limit).contains(v))
            .ok_or_else(|| bad(format!("{key} is {value}; it must be between 1 and {limit}")))
    };
    let hidden = number("hidden_size", crate::model::MAX_WIDTH)?;
    let config = HfLayerNormConfig {
        hidden,
        heads: number("num_attention_heads", hidden)?,
        intermediate: number("intermediate_size", crate::model::MAX_INTERMEDIATE)?,
        eps: json
            .get("layer_norm_eps")
            .and_then(|v| v.as_f64())
            .unwrap_or(1e-12),
        layers: number("num_hidden_layers", super::MAX_LAYERS)?,
    };
    if !config.hidden.is_multiple_of(config.heads) {
        return Err(bad(format!(
            "hidden_size {} does not divide by num_attention_heads {}",
            config.hidden, config.heads
        )));
    }
    let (h, i) = (config.hidden as u64, config.intermediate as u64);
    // One layer as f32: four h² projections, two h·i, biases and norms.
    let layer_bytes = 4 * (4 * h * h + 2 * h * i + 10 * h + i);
    crate::memory::budget()
        .check(layer_bytes, &format!("one layer of {}", path.display()))
        .map_err(bad)?;
    Ok(config)
}

/// Tensor names of one layer: (layer prefix candidates, names inside the layer in the order of
/// [`LayerNormBlockWeights::tensors`]'s weights: q, k, v, o, attention norm, up, down, MLP norm).
fn layout(architecture: LlmArchitecture, layer: usize) -> (Vec<String>, [&'static str; 8]) {
    match architecture {
        LlmArchitecture::Bert => (
            vec![
                format!("bert.encoder.layer.{layer}."),
                format!("encoder.layer.{layer}."),
            ],
            [
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ],
        ),
        _ => (
            vec![format!("biogpt.layers.{layer}."), format!("layers.{layer}.")],
            [
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.out_proj",
                "self_attn_layer_norm",
                "fc1",
                "fc2",
                "final_layer_norm",
            ],
        ),
    }
}

/// Reads layer `layer` of a BioGPT or BERT checkpoint folder whose config.json was parsed.
pub fn load_layer_norm_layer(
    dir: &Path,
    architecture: LlmArchitecture,
    config: &HfLayerNormConfig,
    layer: usize,
) -> Result<LayerNormBlockWeights, WeightsError> {
    let files = tensor_files(dir)?;
    let (prefixes, names) = layout(architecture, layer);
    let probe = names[0];
    let expected = format!("{}{probe}.weight", prefixes[0]);
    let prefix = prefixes
        .iter()
        .find(|p| files.iter().any(|(n, _)| *n == format!("{p}{probe}.weight")))
        .cloned()
        .ok_or_else(|| WeightsError::MissingLayer {
            dir: dir.to_path_buf(),
            reason: format!(
                "no tensor {expected} in the checkpoint (tried the prefixes {prefixes:?}); is this a {} model and layer {layer} in range?",
                architecture.name()
            ),
        })?;
    let mut opened: Vec<(PathBuf, SafetensorsFile)> = Vec::new();
    // `suffixes` lists accepted spellings of one tensor's last name part.
    let mut read = |part: &str, suffixes: &[&str], shape: &[usize]| -> Result<Vec<f32>, WeightsError> {
        let candidates: Vec<String> = suffixes.iter().map(|s| format!("{prefix}{part}.{s}")).collect();
        let (name, path) = candidates
            .iter()
            .find_map(|c| {
                files
                    .iter()
                    .find(|(n, _)| n == c)
                    .map(|(_, p)| (c.clone(), p.clone()))
            })
            .ok_or_else(|| WeightsError::MissingLayer {
                dir: dir.to_path_buf(),
                reason: format!(
                    "tensor {} is not in the checkpoint; the folder is incomplete or not a {} model",
                    candidates[0],
                    architecture.name()
                ),
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
        let values = file.read_f32(&name, shape)?;
        // Hugging Face linear weights are [out, in]; ours are [in, out].
        Ok(match shape {
            [rows, cols] => transpose(&values, *rows, *cols),
            _ => values,
        })
    };
    let (h, i) = (config.hidden, config.intermediate);
    let mut linear = |part: &str, d_in: usize, d_out: usize| -> Result<(Vec<f32>, Vec<f32>), WeightsError> {
        Ok((
            read(part, &["weight"], &[d_out, d_in])?,
            read(part, &["bias"], &[d_out])?,
        ))
    };
    let q = linear(names[0], h, h)?;
    let k = linear(names[1], h, h)?;
    let v = linear(names[2], h, h)?;
    let o = linear(names[3], h, h)?;
    let up = linear(names[5], h, i)?;
    let down = linear(names[6], i, h)?;
    let mut norm = |part: &str| -> Result<(Vec<f32>, Vec<f32>), WeightsError> {
        Ok((
            read(part, &["weight", "gamma"], &[h])?,
            read(part, &["bias", "beta"], &[h])?,
        ))
    };
    let attention_norm = norm(names[4])?;
    let mlp_norm = norm(names[7])?;
    Ok(LayerNormBlockWeights {
        architecture,
        hidden: h,
        heads: config.heads,
        intermediate: i,
        eps: config.eps,
        source: format!("{} layer {layer}", dir.display()),
        q,
        k,
        v,
        o,
        attention_norm,
        up,
        down,
        mlp_norm,
    })
}
