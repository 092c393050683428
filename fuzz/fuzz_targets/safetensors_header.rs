#![no_main]
//! Fuzz target: the JSON header of a safetensors file.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = engine::weights::parse_safetensors_header(data);
});
