#![no_main]
//! Fuzz target: a Hugging Face Llama config.json.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine::weights::parse_hf_config(text, Path::new("config.json"));
    }
});
