//! Throwaway comparison behind docs/NIFTI.md: the crates.io `nifti` crate (0.17) on our nibabel
//! fixtures (shape, affine, voxels against `tests/fixtures/nibabel/expected.json`) and on the
//! bad-input cases of `tests/tests/bad_input.rs` (rebuilt here by the same byte patches, from
//! the little-endian int16 fixture). Prints one Markdown table row per case.
//!
//!     cd tools/nifti-crate-compare && cargo run --release -- ../../tests/fixtures/nibabel
//!
//! Not part of the workspace or of CI: the engine keeps its own reader (see docs/NIFTI.md).

use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

const AFFINE_TOLERANCE: f64 = 1e-5;
const DIM_OFFSET: usize = 40;
const DATATYPE_OFFSET: usize = 70;
const BITPIX_OFFSET: usize = 72;
const PIXDIM_OFFSET: usize = 76;
const SCL_SLOPE_OFFSET: usize = 112;
const MAGIC_OFFSET: usize = 344;

/// What reading a file gave: shape, affine rows, voxels in file (x-fastest) order.
type Read3 = (Vec<usize>, [[f64; 4]; 3], Vec<f64>);

fn read_with_crate(path: &Path) -> Result<Read3, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<Read3, String> {
        let object = ReaderOptions::new().read_file(path).map_err(|e| e.to_string())?;
        let affine = object.header().affine::<f64>();
        let mut rows = [[0.0; 4]; 3];
        for (r, row) in rows.iter_mut().enumerate() {
            for (c, value) in row.iter_mut().enumerate() {
                *value = affine[(r, c)];
            }
        }
        let array = object.into_volume().into_ndarray::<f64>().map_err(|e| e.to_string())?;
        let shape = array.shape().to_vec();
        let voxels = array.t().iter().copied().collect();
        Ok((shape, rows, voxels))
    }));
    outcome.unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("PANIC: {text}"))
    })
}

fn numbers(value: &serde_json::Value) -> Vec<f64> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_f64()).collect()).unwrap_or_default()
}

fn compare_fixture(path: &Path, record: &serde_json::Value) -> String {
    let (shape, rows, voxels) = match read_with_crate(path) {
        Ok(read) => read,
        Err(error) => return format!("fails: {error}"),
    };
    let mut problems = Vec::new();
    let want_shape: Vec<usize> = numbers(&record["shape"]).iter().map(|v| *v as usize).collect();
    if shape != want_shape {
        problems.push(format!("shape {shape:?} vs {want_shape:?}"));
    }
    let want_affine: Vec<f64> = record["affine"].as_array().into_iter().flatten().flat_map(numbers).collect();
    let worst = (0..12)
        .map(|i| (rows[i / 4][i % 4] - want_affine[i]).abs())
        .fold(0.0, f64::max);
    if worst > AFFINE_TOLERANCE {
        problems.push(format!("affine off by {worst:.3} mm"));
    }
    let want_voxels = numbers(&record["voxels"]);
    let bad_voxels = voxels
        .iter()
        .zip(&want_voxels)
        .filter(|(got, want)| (*got - *want).abs() > want.abs() * 1e-6 + 1e-6)
        .count();
    if voxels.len() != want_voxels.len() || bad_voxels > 0 {
        problems.push(format!("{bad_voxels} of {} voxels differ", want_voxels.len()));
    }
    if problems.is_empty() { "agrees".into() } else { problems.join("; ") }
}

fn set_i16(bytes: &mut [u8], offset: usize, value: i16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// The bad-input cases: (file name, bytes, what our reader does).
fn bad_cases(valid: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let patched = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = valid.to_vec();
        patch(&mut bytes);
        bytes
    };
    let valid_gz = gzip(valid);
    let mut corrupt_gz = valid_gz.clone();
    let middle = corrupt_gz.len() / 2;
    for byte in &mut corrupt_gz[middle - 8..middle + 8] {
        *byte ^= 0xA5;
    }
    let absurd = patched(&|b| {
        set_i16(b, DIM_OFFSET, 4);
        for axis in 1..=4 {
            set_i16(b, DIM_OFFSET + 2 * axis, i16::MAX);
        }
    });
    vec![
        ("half.nii", patched(&|b| b.truncate(b.len() - 10)), "refused: truncated"),
        ("tiny.nii", patched(&|b| b.truncate(100)), "refused: truncated"),
        ("empty.nii", Vec::new(), "refused: truncated"),
        ("magic.nii", patched(&|b| b[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(b"abc\0")), "refused: magic"),
        ("notes.nii", "this is not an image at all, just some text that is long enough to fill a header. ".repeat(10).into_bytes(), "refused: not a NIfTI-1 file"),
        ("bigger.nii", patched(&|b| set_i16(b, DIM_OFFSET + 2, 60)), "refused: truncated"),
        ("zero.nii", patched(&|b| set_i16(b, DIM_OFFSET + 4, 0)), "refused: dim at least 1"),
        ("negative.nii", patched(&|b| set_i16(b, DIM_OFFSET + 6, -4)), "refused: dim at least 1"),
        ("ndim.nii", patched(&|b| set_i16(b, DIM_OFFSET, 9)), "refused: dim[0]"),
        ("absurd.nii", absurd.clone(), "refused from the header: more than the limit"),
        ("absurd.nii.gz", gzip(&absurd), "refused from the header: more than the limit"),
        ("cut.nii.gz", valid_gz[..valid_gz.len() / 2].to_vec(), "refused: truncated"),
        ("corrupt.nii.gz", corrupt_gz, "refused: gzip / truncated"),
        ("rgb.nii", patched(&|b| set_i16(b, DATATYPE_OFFSET, 128)), "refused: rgb24 unsupported"),
        ("bitpix.nii", patched(&|b| set_i16(b, BITPIX_OFFSET, 8)), "refused: bitpix"),
        ("nan_slope.nii", patched(&|b| b[SCL_SLOPE_OFFSET..SCL_SLOPE_OFFSET + 4].copy_from_slice(&f32::NAN.to_le_bytes())), "read, unscaled"),
        ("zero_slope.nii", patched(&|b| b[SCL_SLOPE_OFFSET..SCL_SLOPE_OFFSET + 4].copy_from_slice(&0f32.to_le_bytes())), "read, unscaled"),
        // Not in bad_input.rs: a qform-only file whose qfac (pixdim[0]) is 0, which NIfTI readers
        // (nibabel, ITK, ours) treat as 1.
        ("qfac0.nii", patched(&|b| {
            b[PIXDIM_OFFSET..PIXDIM_OFFSET + 4].copy_from_slice(&0f32.to_le_bytes());
            set_i16(b, 252, 1); // qform_code
            set_i16(b, 254, 0); // sform_code
        }), "read, qfac taken as 1"),
    ]
}

/// Reads `path` in a child process, so an allocation failure (an abort, not a panic) is reported
/// as such instead of ending the comparison.
fn read_in_child(path: &Path) -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    match std::process::Command::new(exe).arg("--one").arg(path).output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_string(),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().filter(|l| !l.trim().is_empty()).last().unwrap_or("");
            format!("process died ({}): {last}", output.status)
        }
        Err(error) => format!("cannot start: {error}"),
    }
}

fn describe(path: &Path) -> String {
    match read_with_crate(path) {
        Ok((shape, _, voxels)) => format!("read: shape {shape:?}, {} voxels, first {:?}", voxels.len(), voxels.first()),
        Err(error) => format!("error: {}", error.replace('\n', " ")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        let line = describe(Path::new(args.get(2).map(String::as_str).unwrap_or("")));
        let _ = writeln!(std::io::stdout(), "{line}");
        return;
    }
    let fixtures = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "../../tests/fixtures/nibabel".into()));
    let text = std::fs::read_to_string(fixtures.join("expected.json")).unwrap_or_default();
    let expected: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "| nibabel fixture | `nifti` 0.17 |\n|---|---|");
    for (name, record) in &expected {
        let gz = fixtures.join(format!("{name}.nii.gz"));
        let path = if gz.exists() { gz } else { fixtures.join(format!("{name}.nii")) };
        let _ = writeln!(out, "| {name} | {} |", compare_fixture(&path, record));
    }
    let mut valid = Vec::new();
    let source = fixtures.join("int16_le.nii.gz");
    let opened = std::fs::File::open(&source).map(|f| flate2::read::GzDecoder::new(f).read_to_end(&mut valid));
    if !matches!(opened, Ok(Ok(_))) {
        let _ = writeln!(out, "cannot read {}", source.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("i16-nifti-compare-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = writeln!(out, "\n| bad input | ours | `nifti` 0.17 |\n|---|---|---|");
    for (name, bytes, ours) in bad_cases(&valid) {
        let path = dir.join(name);
        let _ = std::fs::write(&path, &bytes);
        let theirs = read_in_child(&path);
        let _ = writeln!(out, "| {name} | {ours} | {theirs} |");
    }
    let missing = read_in_child(&dir.join("nowhere.nii.gz"));
    let _ = writeln!(out, "| nowhere.nii.gz (missing) | refused, names the file | {missing} |");
    let _ = std::fs::remove_dir_all(&dir);
}
