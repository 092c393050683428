#![no_main]
//! Fuzz target: a checkpoint's checkpoint.json.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine::checkpoint::parse_checkpoint_meta(text, Path::new("checkpoint.json"));
    }
});
