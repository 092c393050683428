#![no_main]
//! Fuzz target: a reviews.json (the app's review sidecar, parsed by the engine).

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine::data::ReviewSheet::parse(text, Path::new("reviews.json"));
    }
});
