//! Tests of the streaming reader: the memory budget, summaries of files with non-finite voxels,
//! chunk boundaries, and reading from bytes.

use super::*;
use crate::memory::Budget;
use crate::volume::{Affine, DataType, Geometry, Volume, WriteOptions, read_nifti, write_nifti};
use std::io::Write;

/// A gzipped header claiming `dims` of float64 followed by `zeros` bytes of zero voxels.
fn lying_gzip(dims: [i16; 3], zeros: usize) -> Vec<u8> {
    let header = NiftiHeader {
        dim: [3, dims[0], dims[1], dims[2], 1, 1, 1, 1],
        datatype: DataType::F64.code(),
        bitpix: 64,
        ..NiftiHeader::default()
    };
    let mut plain = header.to_bytes();
    plain.extend_from_slice(&[0; 4]);
    plain.resize(plain.len() + zeros, 0);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let written = encoder.write_all(&plain).and_then(|()| encoder.finish());
    written.unwrap_or_default()
}

#[test]
fn a_header_claiming_a_huge_volume_is_refused_naming_file_size_and_limit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("huge.nii.gz");
    std::fs::write(&path, lying_gzip([1024, 1024, 1024], 4096))?;
    let budget = Budget::fixed(1 << 30);
    let error = read_nifti_within(&path, budget)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // 1024³ voxels × 4 bytes (decoded f32) = 4 GiB; stored as float64 = 8 GiB.
    assert!(error.contains("huge.nii.gz"), "{error}");
    assert!(error.contains("too large to load"), "{error}");
    assert!(error.contains("4.0 GiB (4294967296 bytes)"), "{error}");
    assert!(error.contains("8.0 GiB (8589934592 bytes) stored"), "{error}");
    assert!(error.contains("budget of 1.0 GiB (1073741824 bytes)"), "{error}");
    assert!(error.contains("MVL_MAX_VOLUME_BYTES"), "{error}");
    // The same bytes in memory are refused the same way.
    let from_bytes = read_nifti_bytes(&std::fs::read(&path)?, budget);
    assert!(
        matches!(from_bytes, Err(NiftiError::TooLarge(_))),
        "{from_bytes:?}"
    );
    Ok(())
}

#[test]
fn a_volume_within_the_budget_loads_and_one_byte_less_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("small.nii");
    let geometry = Geometry {
        shape: [4, 3, 2],
        world_from_voxel: Affine::identity(),
    };
    write_nifti(
        &path,
        &Volume::zeros(&geometry),
        None,
        WriteOptions::new(DataType::U8),
    )?;
    // 24 voxels decode to 96 bytes of f32.
    assert!(read_nifti_within(&path, Budget::fixed(96)).is_ok());
    let refused = read_nifti_within(&path, Budget::fixed(95));
    assert!(
        matches!(&refused, Err(NiftiError::InFile { problem, .. }) if matches!(**problem, NiftiError::TooLarge(_)))
    );
    Ok(())
}

#[test]
fn a_lying_gzip_within_the_budget_is_reported_truncated() -> anyhow::Result<()> {
    let bytes = lying_gzip([64, 64, 64], 1000);
    let error = read_nifti_bytes(&bytes, Budget::fixed(1 << 30))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    // 64³ float64 voxels are 2097152 bytes; only the 1000 written are present.
    assert!(
        error.contains("2097152 bytes of voxels, but only 1000 are present"),
        "{error}"
    );
    Ok(())
}

#[test]
fn scanning_counts_non_finite_voxels_and_summarises_the_rest() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nan.nii.gz");
    let geometry = Geometry {
        shape: [5, 2, 1],
        world_from_voxel: Affine::identity(),
    };
    let values = vec![
        1.0,
        f32::NAN,
        4.0,
        f32::INFINITY,
        -2.0,
        7.0,
        f32::NEG_INFINITY,
        0.0,
        f32::NAN,
        5.0,
    ];
    let volume = Volume::new(geometry.shape, 1, values, Affine::identity())?;
    write_nifti(&path, &volume, None, WriteOptions::new(DataType::F32))?;
    let scan = scan_nifti(&path)?;
    // Finite: 1, 4, −2, 7, 0, 5 → min −2, max 7, mean 15/6; non-finite: 2 NaN + 2 ∞.
    assert_eq!(scan.stats.non_finite, 4);
    assert_eq!(scan.stats.min, -2.0);
    assert_eq!(scan.stats.max, 7.0);
    assert!((scan.stats.mean - 2.5).abs() < 1e-12);
    assert_eq!(scan.datatype, DataType::F32);
    Ok(())
}

#[test]
fn streaming_across_chunks_matches_a_brute_force_sum() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("big.nii.gz");
    // More than one chunk (2^20 voxels), with a partial last chunk.
    let geometry = Geometry {
        shape: [128, 128, 65],
        world_from_voxel: Affine::identity(),
    };
    let value = |x: usize, y: usize, z: usize| ((x * 7 + y * 3 + z * 11) % 251) as f32;
    let volume = Volume::from_fn(&geometry, value);
    write_nifti(&path, &volume, None, WriteOptions::new(DataType::U8))?;
    let (mut sum, mut max) = (0u64, 0u64);
    for z in 0..65 {
        for y in 0..128 {
            for x in 0..128 {
                let v = ((x * 7 + y * 3 + z * 11) % 251) as u64;
                sum += v;
                max = max.max(v);
            }
        }
    }
    let scan = scan_nifti(&path)?;
    let voxels = (128 * 128 * 65) as f64;
    assert!((scan.stats.mean - sum as f64 / voxels).abs() < 1e-9);
    assert_eq!(scan.stats.max, max as f64);
    assert_eq!(scan.stats.min, 0.0);
    assert_eq!(scan.stats.non_finite, 0);
    let read = read_nifti(&path)?;
    assert_eq!(read.volume.voxels(), volume.voxels());
    let from_bytes = read_nifti_bytes(&std::fs::read(&path)?, Budget::fixed(1 << 30))?;
    assert_eq!(from_bytes.volume.voxels(), volume.voxels());
    Ok(())
}
