//! Bad input gets a clear error naming the file and the problem: never a panic, never a huge
//! allocation. Each case starts from a valid file and breaks one thing.

use engine::volume::{Affine, DataType, Geometry, Volume, WriteOptions, read_nifti, write_nifti};
use std::path::{Path, PathBuf};

/// Byte offsets of header fields (nifti1.h).
const DIM_OFFSET: usize = 40;
const DATATYPE_OFFSET: usize = 70;
const BITPIX_OFFSET: usize = 72;
const SCL_SLOPE_OFFSET: usize = 112;
const MAGIC_OFFSET: usize = 344;

fn valid_file(dir: &Path, name: &str) -> PathBuf {
    let geometry = Geometry {
        shape: [6, 5, 4],
        world_from_voxel: Affine::from_diagonal([0.8, 0.8, 2.5]),
    };
    let volume = Volume::from_fn(&geometry, |x, y, z| (x + 2 * y + 3 * z) as f32);
    let path = dir.join(name);
    write_nifti(&path, &volume, None, WriteOptions::new(DataType::I16)).expect("writes");
    path
}

fn patched(dir: &Path, name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(valid_file(dir, "source.nii")).expect("reads");
    patch(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writes");
    path
}

fn set_i16(bytes: &mut [u8], offset: usize, value: i16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

/// Reading fails, and the message names the file and contains `needle`.
fn assert_refused(path: &Path, needle: &str) {
    let message = read_nifti(path).expect_err("must be refused").to_string();
    let name = path.file_name().expect("name").to_string_lossy();
    assert!(
        message.contains(name.as_ref()),
        "message does not name the file: {message}"
    );
    assert!(message.contains(needle), "expected {needle:?} in: {message}");
}

#[test]
fn truncated_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let half = patched(dir.path(), "half.nii", |b| b.truncate(b.len() / 2 + 200));
    assert_refused(&half, "truncated");
    let header_only = patched(dir.path(), "tiny.nii", |b| b.truncate(100));
    assert_refused(&header_only, "truncated");
    let empty = dir.path().join("empty.nii");
    std::fs::write(&empty, b"").expect("writes");
    assert_refused(&empty, "truncated");
}

#[test]
fn wrong_magic_and_non_nifti_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let magic = patched(dir.path(), "magic.nii", |b| {
        b[MAGIC_OFFSET..MAGIC_OFFSET + 4].copy_from_slice(b"abc\0")
    });
    assert_refused(&magic, "magic");
    let text = dir.path().join("notes.nii");
    std::fs::write(
        &text,
        "this is not an image at all, just some text that is long enough to fill a header. ".repeat(10),
    )
    .expect("writes");
    assert_refused(&text, "not a NIfTI-1 file");
}

#[test]
fn dims_that_do_not_match_the_data_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bigger = patched(dir.path(), "bigger.nii", |b| set_i16(b, DIM_OFFSET + 2, 60));
    assert_refused(&bigger, "truncated");
    let zero = patched(dir.path(), "zero.nii", |b| set_i16(b, DIM_OFFSET + 4, 0));
    assert_refused(&zero, "at least 1");
    let negative = patched(dir.path(), "negative.nii", |b| set_i16(b, DIM_OFFSET + 6, -4));
    assert_refused(&negative, "at least 1");
    let ndim = patched(dir.path(), "ndim.nii", |b| set_i16(b, DIM_OFFSET, 9));
    assert_refused(&ndim, "dim[0]");
}

#[test]
fn absurd_dims_are_refused_before_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 32767³ × 32767 voxels would be petabytes; we must refuse from the header alone.
    let absurd = patched(dir.path(), "absurd.nii", |b| {
        set_i16(b, DIM_OFFSET, 4);
        for axis in 1..=4 {
            set_i16(b, DIM_OFFSET + 2 * axis, i16::MAX);
        }
    });
    assert_refused(&absurd, "more than");
    // Also through gzip, where the size cannot be checked against the file length first.
    let gz = dir.path().join("absurd.nii.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &std::fs::read(&absurd).expect("read")).expect("gzip");
    std::fs::write(&gz, encoder.finish().expect("gzip")).expect("write");
    assert_refused(&gz, "more than");
}

#[test]
fn corrupt_and_truncated_gzip_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = valid_file(dir.path(), "good.nii.gz");
    let mut bytes = std::fs::read(&source).expect("reads");
    let cut = dir.path().join("cut.nii.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("writes");
    assert_refused(&cut, "truncated");
    // Overwrite the middle of the deflate stream with garbage.
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle - 8..middle + 8] {
        *byte ^= 0xA5;
    }
    let corrupt = dir.path().join("corrupt.nii.gz");
    std::fs::write(&corrupt, &bytes).expect("writes");
    let message = read_nifti(&corrupt).expect_err("corrupt").to_string();
    assert!(message.contains("corrupt.nii.gz"), "{message}");
    assert!(
        message.contains("gzip") || message.contains("truncated"),
        "{message}"
    );
}

#[test]
fn unsupported_datatype_and_bitpix_mismatch_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rgb = patched(dir.path(), "rgb.nii", |b| set_i16(b, DATATYPE_OFFSET, 128));
    assert_refused(&rgb, "rgb24");
    let bitpix = patched(dir.path(), "bitpix.nii", |b| set_i16(b, BITPIX_OFFSET, 8));
    assert_refused(&bitpix, "bitpix");
}

#[test]
fn nan_or_zero_slope_means_unscaled_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = read_nifti(&valid_file(dir.path(), "plain.nii")).expect("reads");
    for (name, slope) in [("nan.nii", f32::NAN), ("zero.nii", 0.0)] {
        let path = patched(dir.path(), name, |b| {
            b[SCL_SLOPE_OFFSET..SCL_SLOPE_OFFSET + 4].copy_from_slice(&slope.to_le_bytes());
        });
        let image = read_nifti(&path).expect("a NaN or zero slope is legal: no scaling");
        assert_eq!(image.volume.voxels(), original.volume.voxels(), "{name}");
    }
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let message = read_nifti(&dir.path().join("nowhere.nii.gz"))
        .expect_err("missing")
        .to_string();
    assert!(message.contains("nowhere.nii.gz"), "{message}");
}
