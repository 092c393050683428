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

/// Source files of the third-party pixel decoders. The engine runs them only inside
/// `volume::dicom::pixels::decode_into`'s `catch_unwind`, which turns a panic of theirs into an
/// error naming the file ("the … decoder failed on corrupt data"): the reader's designed
/// behaviour, not a crash. Their panics are counted and printed; any other panic (the engine,
/// dicom-object's parser, the deflate reader) still aborts the run as a crash.
const GUARDED_DECODERS: [&str; 7] = [
    "/dicom-transfer-syntax-registry-0.10.1/src/adapters/jpeg.rs",
    "/dicom-transfer-syntax-registry-0.10.1/src/adapters/jpeg2k.rs",
    "/dicom-transfer-syntax-registry-0.10.1/src/adapters/rle_lossless.rs",
    "/dicom-pixeldata-0.10.1/src/",
    "/jpeg-decoder-0.3.2/src/",
    "/jpeg2k-",
    "/openjp2-",
];

/// Lets panics raised in [`GUARDED_DECODERS`] unwind to the engine's guard (libFuzzer's hook
/// aborts on every panic) and counts them; installed once, after libFuzzer's own hook.
fn guard_decoder_panics() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or_default();
            if GUARDED_DECODERS.iter().any(|decoder| file.contains(decoder)) {
                static CAUGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = CAUGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    eprintln!("decoder panic caught by the engine's guard (#{n}): {info}");
                }
                return;
            }
            libfuzzer_hook(info);
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    guard_decoder_panics();
    // A 64 MiB memory budget (what `--max-volume-bytes 64M` gives a user) bounds the volume a
    // header may ask for; with the machine's own budget a few bytes could claim gigabytes.
    engine::memory::set_budget_override(64 << 20);
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
