#![no_main]
//! Fuzz target: the NIfTI-1 reader (.nii and gzipped .nii.gz bytes).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // .nii or .nii.gz bytes; a 16 MiB budget keeps every accepted volume small.
    let _ = engine::volume::read_nifti_bytes(data, engine::memory::Budget::fixed(16 << 20));
});
