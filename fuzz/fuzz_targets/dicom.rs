#![no_main]
//! Fuzz target: the DICOM series reader, on one file or a series of several. The input is split
//! at every [`SEPARATOR`] into files `IM0000.dcm`, `IM0001.dcm`, … of one folder, which is then
//! read as `mvl info FOLDER` would (header scan, slice sorting and geometry, pixel decoding).
//! Seeds are the files `tests/fixtures/make_dicom_fixtures.py` writes (see corpus/dicom/).

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Marks the start of the next file; chosen so that it never occurs inside the seed files.
const SEPARATOR: &[u8] = b"\n--mvl-fuzz-next-file--\n";
/// More files add nothing the sorting code has not seen with a few.
const MAX_FILES: usize = 8;

/// One folder per fuzzing process, on a RAM disk when there is one.
fn folder() -> &'static PathBuf {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        base.join(format!("mvl-fuzz-dicom-{}", std::process::id()))
    })
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < MAX_FILES {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let dir = folder();
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for (index, part) in split(data).into_iter().enumerate() {
        if std::fs::write(dir.join(format!("IM{index:04}.dcm")), part).is_err() {
            return;
        }
    }
    let _ = engine::volume::dicom::read_dicom_series(dir, None);
});
