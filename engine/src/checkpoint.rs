//! Our checkpoints: one folder holding `config.toml` (the model config), `model.safetensors`
//! (the trainable parameters) and `checkpoint.json` (where the LLM weights came from, the
//! preprocessing the model expects, training state). Frozen weights are not stored: the Llama
//! layer is re-read from its Hugging Face folder and random frozen weights are regenerated from
//! the config's seed; their fingerprint is stored and checked on load. Every file is written
//! atomically.

use crate::data::CtStatistics;
use crate::model::EngineBackend;
use crate::model::{ConfigError, MedVisionLlama, ModelConfig};
use crate::weights::{FrozenBlockWeights, RANDOM_WEIGHTS, WeightsError, load_frozen_block};
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File names inside a checkpoint folder.
pub const CONFIG_FILE: &str = "config.toml";
/// Trainable parameters.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Metadata.
pub const META_FILE: &str = "checkpoint.json";

/// What preprocessing the model was trained with, so a new scan is prepared the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessingSpec {
    /// Model grid.
    pub size: [usize; 3],
    /// Source channels fed to the model, in order.
    pub channels: Vec<usize>,
    /// Modality of each fed channel.
    pub modalities: Vec<String>,
    /// Dataset-level CT statistics per fed channel.
    pub ct_statistics: Vec<Option<CtStatistics>>,
    /// Label value → name of the task.
    pub labels: BTreeMap<u32, String>,
}

/// `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// "random (no checkpoint)" or "DIR layer L"; shown by every report.
    pub llm_weights: String,
    /// [`FrozenBlockWeights::fingerprint`] of the frozen weights it was trained with (absent in
    /// older checkpoints and for ViT-Baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_fingerprint: Option<String>,
    /// The preprocessing the model expects (absent for untrained checkpoints).
    pub preprocessing: Option<PreprocessingSpec>,
    /// Training state written by the trainer (epoch, metrics, …).
    #[serde(default)]
    pub training: serde_json::Value,
}

/// Everything that can go wrong with a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file is missing or unreadable.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The LLM weights the checkpoint refers to could not be read.
    #[error(
        "the checkpoint's LLM weights could not be loaded ({0}); pass --llm DIR pointing at the Hugging Face folder it was trained with"
    )]
    Llm(#[from] WeightsError),
}

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    model: ModelConfig,
}

/// Loads the frozen layer a config asks for (Llama, BioGPT or BERT, as `llm.architecture`
/// says): the checkpoint folder's layer, or random weights.
pub fn llm_weights_for(config: &ModelConfig) -> Result<Option<FrozenBlockWeights>, WeightsError> {
    if !config.has_llm() {
        return Ok(None);
    }
    match &config.llm.checkpoint {
        Some(dir) => load_frozen_block(dir, config.llm.architecture, config.llm.layer).map(Some),
        None => Ok(Some(FrozenBlockWeights::random(&config.llm, config.seed))),
    }
}

/// Makes a config agree with imported weights (their widths win).
pub fn adopt_llm_dims(config: &mut ModelConfig, weights: &FrozenBlockWeights) {
    config.llm.architecture = weights.architecture();
    match weights {
        FrozenBlockWeights::Llama(w) => {
            config.llm.hidden = w.hidden;
            config.llm.heads = w.heads;
            config.llm.kv_heads = w.kv_heads;
            config.llm.intermediate = w.intermediate;
            config.llm.rms_eps = w.rms_eps;
        }
        FrozenBlockWeights::LayerNorm(w) => {
            config.llm.hidden = w.hidden;
            config.llm.heads = w.heads;
            config.llm.kv_heads = w.heads;
            config.llm.intermediate = w.intermediate;
            config.llm.layer_norm_eps = w.eps;
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::volume::write_atomically(path, |w| std::io::Write::write_all(w, bytes)).map_err(|e| {
        CheckpointError::File {
            path: path.to_path_buf(),
            reason: crate::fault::describe(&e),
        }
    })
}

/// Writes a checkpoint folder (created if needed).
pub fn save_checkpoint<B: EngineBackend>(
    dir: &Path,
    model: &MedVisionLlama<B>,
    config: &ModelConfig,
    meta: &CheckpointMeta,
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|e| CheckpointError::File {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| CheckpointError::File {
        path: dir.join(WEIGHTS_FILE),
        reason: e.to_string(),
    })?;
    let weights = store.get_bytes().map_err(|e| CheckpointError::File {
        path: dir.join(WEIGHTS_FILE),
        reason: e.to_string(),
    })?;
    let config_text = toml::to_string_pretty(&ConfigFile {
        model: config.clone(),
    })
    .map_err(|e| CheckpointError::File {
        path: dir.join(CONFIG_FILE),
        reason: e.to_string(),
    })?;
    let meta_text = serde_json::to_vec_pretty(meta).map_err(|e| CheckpointError::File {
        path: dir.join(META_FILE),
        reason: e.to_string(),
    })?;
    // Weights first and metadata last: a reader that finds checkpoint.json finds the rest.
    write_file(&dir.join(WEIGHTS_FILE), &weights)?;
    write_file(&dir.join(CONFIG_FILE), config_text.as_bytes())?;
    write_file(&dir.join(META_FILE), &meta_text)
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct LoadedCheckpoint<B: EngineBackend> {
    /// The network with its trained parameters.
    pub model: MedVisionLlama<B>,
    /// Its config.
    pub config: ModelConfig,
    /// Its metadata.
    pub meta: CheckpointMeta,
}

/// Reads the config and metadata of a checkpoint folder.
pub fn read_checkpoint_config(dir: &Path) -> Result<(ModelConfig, CheckpointMeta), CheckpointError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| CheckpointError::File {
            path,
            reason: format!("{e}; a checkpoint folder holds {CONFIG_FILE}, {WEIGHTS_FILE} and {META_FILE}"),
        })
    };
    let config = parse_checkpoint_config(&read(CONFIG_FILE)?, &dir.join(CONFIG_FILE))?;
    let meta = parse_checkpoint_meta(&read(META_FILE)?, &dir.join(META_FILE))?;
    Ok((config, meta))
}

/// Parses the text of a `checkpoint.json` (`path` only names it in messages).
pub fn parse_checkpoint_meta(text: &str, path: &Path) -> Result<CheckpointMeta, CheckpointError> {
    serde_json::from_str(text).map_err(|e| CheckpointError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Parses and validates the text of a checkpoint's `config.toml` (`path` only names it).
pub fn parse_checkpoint_config(text: &str, path: &Path) -> Result<ModelConfig, CheckpointError> {
    let config: ConfigFile = toml::from_str(text).map_err(|e| CheckpointError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    config.model.validate()?;
    Ok(config.model)
}

/// Reads a checkpoint folder onto a device. `llm_override` replaces the LLM folder recorded in
/// the config (the weights moved, or another machine).
pub fn load_checkpoint<B: EngineBackend>(
    dir: &Path,
    llm_override: Option<&Path>,
    device: &B::Device,
) -> Result<LoadedCheckpoint<B>, CheckpointError> {
    let (mut config, meta) = read_checkpoint_config(dir)?;
    if let Some(llm) = llm_override {
        config.llm.checkpoint = Some(llm.to_path_buf());
    }
    let weights = llm_weights_for(&config)?;
    if let (Some(expected), Some(weights)) = (&meta.llm_fingerprint, &weights) {
        let found = weights.fingerprint();
        if &found != expected {
            return Err(CheckpointError::File {
                path: dir.join(META_FILE),
                reason: format!(
                    "was trained with frozen LLM weights {expected} ({}), but {} holds {found}; the model would run with weights it never saw. Pass --llm pointing at the folder it was trained with",
                    meta.llm_weights,
                    weights.source()
                ),
            });
        }
    }
    let mut model = MedVisionLlama::<B>::new(&config, weights, device);
    let path = dir.join(WEIGHTS_FILE);
    if !path.is_file() {
        return Err(CheckpointError::File {
            path,
            reason: "missing; the checkpoint is incomplete".into(),
        });
    }
    let mut store = SafetensorsStore::from_file(&path);
    let result = model.load_from(&mut store).map_err(|e| CheckpointError::File {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(CheckpointError::File {
            path,
            reason: format!(
                "does not match the config: missing {:?}, errors {:?}",
                result.missing.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                result.errors.len()
            ),
        });
    }
    Ok(LoadedCheckpoint { model, config, meta })
}

/// The metadata of a fresh (untrained) checkpoint.
pub fn fresh_meta(config: &ModelConfig, weights: Option<&FrozenBlockWeights>) -> CheckpointMeta {
    CheckpointMeta {
        llm_weights: config.llm_weights_source(weights),
        llm_fingerprint: weights.map(FrozenBlockWeights::fingerprint),
        preprocessing: None,
        training: serde_json::Value::Null,
    }
}

/// True when the weights are random.
pub fn is_random(meta: &CheckpointMeta) -> bool {
    meta.llm_weights == RANDOM_WEIGHTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LlmConfig, ModelConfig};
    use burn::backend::Flex;

    /// A checkpoint reloaded with other frozen weights than it was trained with (here: the
    /// random Llama block regenerated from another seed) is refused, naming both.
    #[test]
    fn other_frozen_weights_than_trained_with_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ModelConfig {
            image_size: [8, 8, 8],
            patch_size: 4,
            embed_dim: 8,
            encoder_depth: 1,
            decoder_depth: 1,
            num_heads: 1,
            mlp_dim: 8,
            llm: LlmConfig {
                hidden: 16,
                heads: 2,
                kv_heads: 1,
                intermediate: 16,
                ..LlmConfig::default()
            },
            seed: 3,
            ..ModelConfig::default()
        };
        let weights = llm_weights_for(&config).expect("random weights");
        let device = Default::default();
        let model = MedVisionLlama::<Flex>::new(&config, weights.clone(), &device);
        save_checkpoint(
            dir.path(),
            &model,
            &config,
            &fresh_meta(&config, weights.as_ref()),
        )
        .expect("saves");
        assert!(load_checkpoint::<Flex>(dir.path(), None, &device).is_ok());

        let path = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).expect("config");
        assert!(text.contains("seed = 3"), "{text}");
        std::fs::write(&path, text.replace("seed = 3", "seed = 4")).expect("write");
        let message = load_checkpoint::<Flex>(dir.path(), None, &device)
            .expect_err("other frozen weights")
            .to_string();
        let expected = weights
            .as_ref()
            .map(FrozenBlockWeights::fingerprint)
            .unwrap_or_default();
        assert!(
            message.contains(&expected) && message.contains("frozen LLM weights"),
            "{message}"
        );
    }
}
