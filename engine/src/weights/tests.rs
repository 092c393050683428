//! Tiny Llama checkpoints written in the real Hugging Face layout (config.json plus one
//! model.safetensors, or an index plus shards) with the `safetensors` crate, read back by our
//! importer and compared value for value, through bf16, f16 and f32.

use super::*;
use crate::model::LlmConfig;
use ::safetensors::{Dtype, serialize_to_file, tensor::TensorView};
use std::collections::HashMap;

fn tiny_config() -> LlmConfig {
    LlmConfig {
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        intermediate: 96,
        ..LlmConfig::default()
    }
}

/// HF tensors for one layer: name → ([out, in]-layout values, shape).
fn hf_tensors(weights: &LlamaLayerWeights, layer: usize) -> Vec<(String, Vec<f32>, Vec<usize>)> {
    let (h, i, kv) = (
        weights.hidden,
        weights.intermediate,
        weights.kv_heads * weights.head_dim(),
    );
    let t = |m: &[f32], d_in: usize, d_out: usize| -> Vec<f32> {
        // ours [in, out] → HF [out, in]
        let mut out = vec![0.0; m.len()];
        for r in 0..d_in {
            for c in 0..d_out {
                out[c * d_in + r] = m[r * d_out + c];
            }
        }
        out
    };
    let name = |s: &str| format!("model.layers.{layer}.{s}");
    vec![
        (
            name("input_layernorm.weight"),
            weights.input_norm.clone(),
            vec![h],
        ),
        (
            name("post_attention_layernorm.weight"),
            weights.post_norm.clone(),
            vec![h],
        ),
        (name("self_attn.q_proj.weight"), t(&weights.q, h, h), vec![h, h]),
        (name("self_attn.k_proj.weight"), t(&weights.k, h, kv), vec![kv, h]),
        (name("self_attn.v_proj.weight"), t(&weights.v, h, kv), vec![kv, h]),
        (name("self_attn.o_proj.weight"), t(&weights.o, h, h), vec![h, h]),
        (name("mlp.gate_proj.weight"), t(&weights.gate, h, i), vec![i, h]),
        (name("mlp.up_proj.weight"), t(&weights.up, h, i), vec![i, h]),
        (name("mlp.down_proj.weight"), t(&weights.down, i, h), vec![h, i]),
    ]
}

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn write_config(dir: &Path, layers: usize) {
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 96, "num_hidden_layers": layers, "rms_norm_eps": 1e-5,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config");
}

/// Writes `layers` layers (layer L from seed L) into one file or into two shards.
fn write_checkpoint(dir: &Path, layers: usize, dtype: Dtype, sharded: bool) -> Vec<LlamaLayerWeights> {
    write_config(dir, layers);
    let all: Vec<LlamaLayerWeights> = (0..layers)
        .map(|l| LlamaLayerWeights::random(&tiny_config(), l as u64 + 10))
        .collect();
    let tensors: Vec<(String, Vec<u8>, Vec<usize>)> = all
        .iter()
        .enumerate()
        .flat_map(|(l, w)| hf_tensors(w, l))
        .map(|(n, v, s)| (n, encode(&v, dtype), s))
        .collect();
    let shard_of = |name: &str| {
        if sharded && !name.contains("layers.0.") {
            1
        } else {
            0
        }
    };
    let mut weight_map = serde_json::Map::new();
    for shard in 0..if sharded { 2 } else { 1 } {
        let views: HashMap<String, TensorView<'_>> = tensors
            .iter()
            .filter(|(n, _, _)| shard_of(n) == shard)
            .map(|(n, bytes, shape)| {
                (
                    n.clone(),
                    TensorView::new(dtype, shape.clone(), bytes).expect("view"),
                )
            })
            .collect();
        let file = if sharded {
            format!("model-0000{}-of-00002.safetensors", shard + 1)
        } else {
            "model.safetensors".into()
        };
        for name in views.keys() {
            weight_map.insert(name.clone(), serde_json::Value::from(file.clone()));
        }
        serialize_to_file(views, None, &dir.join(&file)).expect("serialize");
    }
    if sharded {
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).expect("index");
    }
    all
}

fn rounded(values: &[f32], dtype: Dtype) -> Vec<f32> {
    match dtype {
        Dtype::BF16 => values.iter().map(|v| half::bf16::from_f32(*v).to_f32()).collect(),
        Dtype::F16 => values.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect(),
        _ => values.to_vec(),
    }
}

#[test]
fn single_and_sharded_checkpoints_import_exactly_in_every_dtype() {
    for sharded in [false, true] {
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32] {
            let dir = tempfile::tempdir().expect("tempdir");
            let written = write_checkpoint(dir.path(), 3, dtype, sharded);
            for layer in [0, 2] {
                let got = load_llama_layer(dir.path(), layer).expect("imports");
                let want = &written[layer];
                assert_eq!(
                    (got.hidden, got.heads, got.kv_heads, got.intermediate),
                    (64, 4, 2, 96)
                );
                for (name, a, b) in [
                    ("q", &got.q, &want.q),
                    ("k", &got.k, &want.k),
                    ("down", &got.down, &want.down),
                    ("norm", &got.input_norm, &want.input_norm),
                ] {
                    assert_eq!(
                        a,
                        &rounded(b, dtype),
                        "{name} layer {layer} {dtype:?} sharded={sharded}"
                    );
                }
                assert!(got.source.contains(&format!("layer {layer}")));
            }
        }
    }
}

#[test]
fn missing_layer_wrong_shape_and_non_llama_config_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_checkpoint(dir.path(), 2, Dtype::F32, false);
    let error = load_llama_layer(dir.path(), 31)
        .expect_err("only 2 layers")
        .to_string();
    assert!(
        error.contains("layer 31") && error.contains("2 layers"),
        "{error}"
    );
    // A config claiming a wider model than the tensors hold.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).expect("r"))
            .expect("json");
    config["intermediate_size"] = 128.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("w");
    let error = load_llama_layer(dir.path(), 0).expect_err("shape").to_string();
    assert!(error.contains("shape [96, 64], expected [128, 64]"), "{error}");
    config["model_type"] = "bert".into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("w");
    let error = load_llama_layer(dir.path(), 0).expect_err("bert").to_string();
    assert!(error.contains("not a Llama-architecture checkpoint"), "{error}");
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(
        load_llama_layer(empty.path(), 0)
            .expect_err("no config")
            .to_string()
            .contains("config.json")
    );
}

fn config_json(hidden: u64, heads: u64, intermediate: u64, layers: u64) -> String {
    format!(
        r#"{{"model_type": "llama", "hidden_size": {hidden}, "num_attention_heads": {heads},
            "intermediate_size": {intermediate}, "num_hidden_layers": {layers}}}"#
    )
}

#[test]
fn config_sizes_are_bounded_before_use() {
    let path = Path::new("config.json");
    let refusal = |text: String| {
        parse_hf_config(&text, path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // num_hidden_layers = 0 used to underflow "0–{layers − 1}".
    let message = refusal(config_json(64, 4, 96, 0));
    assert!(
        message.contains("num_hidden_layers is 0; it must be between 1 and 4096"),
        "{message}"
    );
    let message = refusal(config_json(1 << 40, 4, 96, 2));
    assert!(message.contains("hidden_size is 1099511627776"), "{message}");
    let message = refusal(config_json(64, 128, 96, 2));
    assert!(
        message.contains("num_attention_heads is 128; it must be between 1 and 64"),
        "{message}"
    );
    let message = refusal(config_json(64, 4, u64::MAX, 2));
    assert!(
        message.contains("intermediate_size is 18446744073709551615"),
        "{message}"
    );
    assert!(parse_hf_config(&config_json(64, 4, 96, 2), path).is_ok());
}

#[test]
fn a_folder_claiming_zero_layers_is_refused_not_underflowed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("config.json"), config_json(64, 4, 96, 0))?;
    let message = load_llama_layer(dir.path(), 0)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("num_hidden_layers is 0"), "{message}");
    Ok(())
}

/// A Llama layer's fingerprint is what it was before other architectures existed (older
/// checkpoints still load), and a BioGPT and a BERT layer with the very same values differ
/// (the architecture is hashed: the same numbers make another computation).
#[test]
fn fingerprints_keep_llama_and_tell_architectures_apart() {
    use crate::model::LlmArchitecture;
    let llama = LlamaLayerWeights::random(&tiny_config(), 5);
    assert_eq!(
        FrozenBlockWeights::from(llama.clone()).fingerprint(),
        llama.fingerprint()
    );
    let config = LlmConfig {
        architecture: LlmArchitecture::Biogpt,
        kv_heads: tiny_config().heads,
        ..tiny_config()
    };
    let biogpt = FrozenBlockWeights::random(&config, 5);
    let bert = FrozenBlockWeights::random(
        &LlmConfig {
            architecture: LlmArchitecture::Bert,
            ..config.clone()
        },
        5,
    );
    match (&biogpt, &bert) {
        (FrozenBlockWeights::LayerNorm(a), FrozenBlockWeights::LayerNorm(b)) => {
            assert_eq!(a.tensors(), b.tensors(), "same values");
        }
        _ => panic!("random BioGPT/BERT weights are LayerNorm blocks"),
    }
    assert_ne!(biogpt.fingerprint(), bert.fingerprint());
    assert_ne!(
        biogpt.fingerprint(),
        FrozenBlockWeights::random(&config, 6).fingerprint()
    );
}
