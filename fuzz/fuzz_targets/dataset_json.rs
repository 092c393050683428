#![no_main]
//! Fuzz target: an MSD dataset.json.

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = engine::data::parse_dataset_json(text, Path::new("/fuzz-task"));
    }
});
