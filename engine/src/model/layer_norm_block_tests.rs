//! The §4.4.2 block swap against Hugging Face transformers: tiny random BioGPT and BERT
//! checkpoints in the real format (`tests/fixtures/lm_blocks/`, written by
//! `tests/fixtures/make_lm_block_fixtures.py`) are read with our reader, and our frozen block's output
//! for a fixed input is compared with what transformers' `BioGptDecoderLayer` / `BertLayer`
//! computed for it. Then the refusals: a wrong shape, a missing tensor, another architecture's
//! folder and an unknown `model_type`, each naming the file and the fix.

use super::{LayerNormBlock, LlmArchitecture, LlmConfig};
use crate::weights::{FrozenBlockWeights, load_frozen_block};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The workspace's committed fixtures.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Absolute tolerance against transformers. Both sides compute in f32 with the same formulas;
/// the differences are summation order and erf/exp implementations, ~1e-6 on outputs of size
/// ~1. 1e-4 leaves room for that and nothing else: a missing bias or LayerNorm weight, a
/// transposed projection or a causal mask each move outputs by more than 1e-2.
const ABSOLUTE_TOLERANCE: f32 = 1e-4;

fn folder(name: &str) -> PathBuf {
    fixtures_dir().join("lm_blocks").join(name)
}

fn expected(name: &str) -> Value {
    let path = folder(name).join("expected.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/lm_blocks/*/expected.json is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

fn floats(value: &Value, key: &str) -> Vec<f32> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is an array"))
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

/// Our block's output for the fixture's input, with or without the final LayerNorm.
fn our_output(name: &str, architecture: LlmArchitecture, final_norm: bool) -> Vec<f32> {
    let fixture = expected(name);
    let layer = fixture["layer"].as_u64().expect("layer") as usize;
    let shape: Vec<usize> = fixture["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("dim") as usize)
        .collect();
    let weights = match load_frozen_block(&folder(name), architecture, layer).expect("the fixture reads") {
        FrozenBlockWeights::LayerNorm(w) => w,
        FrozenBlockWeights::Llama(_) => panic!("{name} read as a Llama layer"),
    };
    let config = LlmConfig {
        architecture,
        final_norm,
        ..LlmConfig::default()
    };
    let device = Default::default();
    let block = LayerNormBlock::<Flex>::new(weights, &config, 0, &device);
    let x = Tensor::<Flex, 3>::from_data(
        TensorData::new(floats(&fixture, "input"), [shape[0], shape[1], shape[2]]),
        &device,
    );
    block.forward(x).into_data().to_vec::<f32>().expect("f32 output")
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths");
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= ABSOLUTE_TOLERANCE,
        "{what}: largest difference from transformers {worst}"
    );
}

#[test]
fn biogpt_layer_matches_transformers() {
    let fixture = expected("biogpt");
    let ours = our_output("biogpt", LlmArchitecture::Biogpt, false);
    assert_close(&ours, &floats(&fixture, "output"), "BioGPT layer");
    let ours = our_output("biogpt", LlmArchitecture::Biogpt, true);
    assert_close(
        &ours,
        &floats(&fixture, "output_final_norm"),
        "BioGPT layer + final norm",
    );
}

#[test]
fn bert_layer_matches_transformers() {
    let fixture = expected("bert");
    let ours = our_output("bert", LlmArchitecture::Bert, false);
    assert_close(&ours, &floats(&fixture, "output"), "BERT layer");
    let ours = our_output("bert", LlmArchitecture::Bert, true);
    assert_close(
        &ours,
        &floats(&fixture, "output_final_norm"),
        "BERT layer + final norm",
    );
}

/// A copy of a fixture folder that a test may damage.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(folder(name).join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let bytes = std::fs::read(path).expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains(from), "{} holds {from}", path.display());
    // Same-length replacements keep a safetensors header's length field right.
    assert_eq!(from.len(), to.len());
    let position = text.find(from).expect("found");
    let mut edited = bytes;
    edited[position..position + from.len()].copy_from_slice(to.as_bytes());
    std::fs::write(path, edited).expect("write");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_refused_naming_the_file_and_tensor() {
    let dir = copy_of("biogpt");
    // config.json now claims a wider MLP than the tensors hold.
    edit(
        &dir.path().join("config.json"),
        "\"intermediate_size\": 48",
        "\"intermediate_size\": 40",
    );
    let message = load_frozen_block(dir.path(), LlmArchitecture::Biogpt, 1)
        .expect_err("wrong shape")
        .to_string();
    assert!(
        message.contains("model.safetensors")
            && message.contains("biogpt.layers.1.fc1.weight")
            && message.contains("[48, 32]")
            && message.contains("[40, 32]"),
        "{message}"
    );
}

#[test]
fn a_missing_tensor_is_refused_naming_the_folder_and_tensor() {
    let dir = copy_of("bert");
    edit(
        &dir.path().join("model.safetensors"),
        "bert.encoder.layer.1.output.dense.bias",
        "bert.encoder.layer.1.output.dense.bia_",
    );
    let message = load_frozen_block(dir.path(), LlmArchitecture::Bert, 1)
        .expect_err("missing tensor")
        .to_string();
    assert!(
        message.contains(&dir.path().display().to_string())
            && message.contains("bert.encoder.layer.1.output.dense.bias")
            && message.contains("not in the checkpoint"),
        "{message}"
    );
}

#[test]
fn another_architecture_or_an_unknown_model_type_is_refused_with_the_fix() {
    let message = load_frozen_block(&folder("bert"), LlmArchitecture::Biogpt, 1)
        .expect_err("a BERT folder read as BioGPT")
        .to_string();
    assert!(
        message.contains("config.json") && message.contains("architecture = \"bert\""),
        "{message}"
    );
    let message = load_frozen_block(&folder("biogpt"), LlmArchitecture::Llama, 1)
        .expect_err("a BioGPT folder read as Llama")
        .to_string();
    assert!(message.contains("architecture = \"biogpt\""), "{message}");
    let dir = copy_of("biogpt");
    edit(&dir.path().join("config.json"), "\"biogpt\"", "\"gpt2xx\"");
    let message = load_frozen_block(dir.path(), LlmArchitecture::Biogpt, 1)
        .expect_err("unknown model_type")
        .to_string();
    assert!(
        message.contains("config.json") && message.contains("\"gpt2xx\"") && message.contains("supported"),
        "{message}"
    );
    let message = load_frozen_block(&folder("biogpt"), LlmArchitecture::Biogpt, 2)
        .expect_err("layer out of range")
        .to_string();
    assert!(message.contains("2 layers"), "{message}");
}
