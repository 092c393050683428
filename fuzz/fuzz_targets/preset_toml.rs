#![no_main]
//! Fuzz target: a TOML model preset and a checkpoint's config.toml.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine::model::ModelConfig::from_toml(text, Path::new("preset.toml"));
        let _ = engine::checkpoint::parse_checkpoint_config(text, Path::new("config.toml"));
    }
});
