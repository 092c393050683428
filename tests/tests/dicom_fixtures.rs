//! Our DICOM reader against series pydicom wrote from a known truth (axial, flipped, sagittal,
//! coronal, oblique, enhanced multi-frame; six transfer syntaxes; rescale), an 8-bit JPEG
//! Baseline series (values as libjpeg decodes them), and real files pydicom ships (values as
//! pydicom + pylibjpeg decode them, geometry from their tags).
//! `fixtures/make_dicom_fixtures.py` writes the files and `dicom/expected.json`; for the
//! single-frame series it also checks that dcm2niix puts every value at the same position.

use engine::volume::dicom::{DicomError, read_dicom_series, scan_folder};
use engine::volume::{Affine, DataType, read_nifti};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tests::{fixtures_dir, mvl};

/// Positions and cosines are decimal strings of 10 significant digits in the fixtures.
const AFFINE_TOLERANCE_MM: f64 = 1e-5;
/// Our voxels are f32; the reference is f64.
const VOXEL_RELATIVE_TOLERANCE: f64 = 1e-6;

fn dicom_dir() -> PathBuf {
    fixtures_dir().join("dicom")
}

fn expected() -> serde_json::Map<String, Value> {
    let path = dicom_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/dicom/expected.json is committed");
    match serde_json::from_str::<Value>(&text).expect("valid JSON") {
        Value::Object(map) => map,
        _ => panic!("expected.json holds an object"),
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

fn affine_of(record: &Value) -> [[f64; 4]; 4] {
    let rows: Vec<Vec<f64>> = record["affine"]
        .as_array()
        .expect("rows")
        .iter()
        .map(numbers)
        .collect();
    let mut affine = [[0.0; 4]; 4];
    for (r, row) in rows.iter().enumerate() {
        affine[r].copy_from_slice(row);
    }
    affine
}

/// Folder and series UID of a record.
fn source_of(name: &str, record: &Value) -> (PathBuf, Option<String>) {
    match record.get("series_uid").and_then(Value::as_str) {
        Some(uid) => (dicom_dir().join("two_series"), Some(uid.to_string())),
        None => (dicom_dir().join(name), None),
    }
}

fn close(got: f64, want: f64, tolerance: f64) -> bool {
    (got - want).abs() <= tolerance + VOXEL_RELATIVE_TOLERANCE * want.abs()
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn every_series_loads_as_its_truth() {
    let records = expected();
    assert_eq!(records.len(), 17, "fixture count");
    for (name, record) in &records {
        let (dir, uid) = source_of(name, record);
        let loaded = read_dicom_series(&dir, uid.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let volume = &loaded.volume;
        let shape: Vec<usize> = numbers(&record["shape"]).iter().map(|v| *v as usize).collect();
        assert_eq!(&volume.shape()[..], &shape[..], "{name} shape");
        let want = Affine(affine_of(record));
        let difference = volume.world_from_voxel().max_abs_diff(&want);
        assert!(
            difference < AFFINE_TOLERANCE_MM,
            "{name} affine {:?}, expected {:?}",
            volume.world_from_voxel().0,
            want.0
        );
        let voxels = volume.voxels();
        // Lossy JPEG: another decoder's values, which may differ by one grey level (but rarely).
        let tolerance = record
            .get("voxel_tolerance")
            .and_then(Value::as_f64)
            .unwrap_or(1e-3);
        if let Some(list) = record.get("voxels") {
            let want = numbers(list);
            assert_eq!(voxels.len(), want.len(), "{name} voxel count");
            let mut total_difference = 0.0;
            for (i, (got, want)) in voxels.iter().zip(&want).enumerate() {
                assert!(
                    close(f64::from(*got), *want, tolerance),
                    "{name} voxel {i}: {got} vs {want}"
                );
                total_difference += (f64::from(*got) - want).abs();
            }
            let mean_difference = total_difference / want.len() as f64;
            assert!(
                mean_difference < 0.25,
                "{name}: mean difference {mean_difference}"
            );
        }
        if let Some(samples) = record.get("voxel_samples").and_then(Value::as_array) {
            for sample in samples {
                let pair = numbers(sample);
                let got = f64::from(voxels[pair[0] as usize]);
                assert!(
                    close(got, pair[1], tolerance),
                    "{name} voxel {}: {got} vs {}",
                    pair[0],
                    pair[1]
                );
            }
            let sum: f64 = voxels.iter().map(|v| f64::from(*v)).sum();
            let want_sum = record["voxel_sum"].as_f64().expect("sum");
            assert!(
                (sum - want_sum).abs() <= 1e-6 * want_sum.abs().max(1.0),
                "{name} sum {sum} vs {want_sum}"
            );
        }
    }
}

#[test]
fn the_synthetic_geometry_was_confirmed_by_dcm2niix() {
    // The generator refuses to write these unless dcm2niix agreed voxel by voxel.
    let records = expected();
    for name in [
        "axial",
        "axial_flipped_implicit",
        "sagittal_bigendian",
        "oblique_rle",
    ] {
        assert_eq!(
            records[name]["checked_with_dcm2niix"],
            Value::Bool(true),
            "{name}"
        );
    }
}

#[test]
fn bad_series_are_refused_with_the_reason_and_the_file() {
    let cases = [
        ("bad_uneven_spacing", "uneven slice spacing"),
        ("bad_gantry_tilt", "gantry tilt"),
        ("bad_mixed_orientation", "different orientations"),
        ("bad_mixed_size", "differ in size"),
        ("bad_duplicate_position", "same position"),
        ("bad_missing_pixels", "no pixel data"),
        ("bad_truncated", "truncated"),
        ("bad_truncated_real", "MR_truncated.dcm"),
        ("bad_huge", "more than the limit"),
        // Found by the dicom fuzz target: dicom-pixeldata asserted on BitsStored 0.
        ("bad_bits_stored", "BitsStored 0"),
        // Found by the dicom fuzz target: dicom-rs's RLE adapter indexed past a fragment whose
        // header announced 512 segments (a panic inside it).
        ("fuzz_rle_header", "RLE header announcing 512 segments"),
        // Found by the dicom fuzz target: dicom-rs's JPEG adapter copied a 331 872-byte frame
        // into the 96 bytes the header's Rows and Columns make room for (a panic inside it).
        ("fuzz_jpeg_size", "the JPEG stream in fragment 1 is"),
        ("pydicom_unsupported", "JPEG-LS"),
        ("unsupported_jpeg12", "12-bit"),
    ];
    for (name, needle) in cases {
        let dir = dicom_dir().join(name);
        let error = match read_dicom_series(&dir, None) {
            Ok(_) => panic!("{name} was accepted"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(needle), "{name}: {error}");
        assert!(error.contains(".dcm"), "{name} names no file: {error}");
    }
}

#[test]
fn empty_folders_and_folders_without_dicom_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    match read_dicom_series(dir.path(), None) {
        Err(error @ DicomError::NoImages { .. }) => assert!(error.to_string().contains("no DICOM images")),
        other => panic!("empty folder: {other:?}"),
    }
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    std::fs::write(dir.path().join("fake.dcm"), [0u8; 200]).expect("write");
    let scan = scan_folder(dir.path()).expect("scan");
    assert_eq!(scan.skipped.len(), 2);
    let error = read_dicom_series(dir.path(), None)
        .expect_err("nothing to read")
        .to_string();
    assert!(
        error.contains("2 file(s) skipped") && error.contains("notes.txt"),
        "{error}"
    );
}

#[test]
fn a_folder_with_two_series_lists_both_and_converts_the_chosen_one() {
    let dir = dicom_dir().join("two_series");
    let (ok, text) = mvl(&["info", s(&dir)]);
    assert!(ok, "{text}");
    assert!(text.contains("2 series"), "{text}");
    assert!(
        text.contains("first series") && text.contains("second series"),
        "{text}"
    );
    assert!(text.contains("README.txt"), "the skipped file is named: {text}");
    assert!(
        text.contains("Phantom^Dicom") && text.contains("MVL fixtures") && text.contains("8×6"),
        "{text}"
    );

    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().join("scan.nii.gz");
    let (ok, text) = mvl(&["convert", s(&dir), "--out", s(&out)]);
    assert!(!ok && text.is_empty(), "must ask which series: {text}");
    assert!(!out.exists());

    let record = &expected()["two_series_b"];
    let uid = record["series_uid"].as_str().expect("uid");
    let (ok, text) = mvl(&["convert", s(&dir), "--out", s(&out), "--series", uid]);
    assert!(ok, "{text}");
    let image = read_nifti(&out).expect("written NIfTI reads back");
    assert_eq!(image.volume.shape(), [8, 6, 4]);
    assert_eq!(image.datatype, DataType::I16, "whole numbers are stored as int16");
    let want = affine_of(record);
    // The sform is float32.
    assert!(image.volume.world_from_voxel().max_abs_diff(&Affine(want)) < 1e-4);
    for (got, want) in image.volume.voxels().iter().zip(numbers(&record["voxels"])) {
        assert_eq!(f64::from(*got), want);
    }
}

#[test]
fn info_on_one_series_reports_geometry_like_a_nifti_file() {
    let dir = dicom_dir().join("oblique_rle");
    let (ok, text) = mvl(&["info", s(&dir)]);
    assert!(ok, "{text}");
    for field in [
        "shape        8 × 6 × 5",
        "spacing",
        "orientation",
        "world_from_voxel",
        "RLE Lossless",
        "intercept -1000",
    ] {
        assert!(text.contains(field), "{field}: {text}");
    }
    let (ok, text) = mvl(&["info", s(&dir), "--json"]);
    assert!(ok, "{text}");
    let json: Value = serde_json::from_str(&text).expect("json");
    let spacing = numbers(&json["spacing_mm"]);
    for (got, want) in spacing.iter().zip([0.85, 0.95, 2.2]) {
        assert!((got - want).abs() < 1e-6, "{spacing:?}");
    }
    assert_eq!(json["modality"], "CT");
}

#[test]
fn rescaled_fractional_values_are_written_as_float32() {
    let dir = dicom_dir().join("coronal_deflate");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let out = out_dir.path().join("scan.nii");
    let (ok, text) = mvl(&["convert", s(&dir), "--out", s(&out)]);
    assert!(ok, "{text}");
    let image = read_nifti(&out).expect("reads back");
    assert_eq!(image.datatype, DataType::F32, "slope 0.5 gives halves");
    let want = numbers(&expected()["coronal_deflate"]["voxels"]);
    for (got, want) in image.volume.voxels().iter().zip(want) {
        assert_eq!(f64::from(*got), want);
    }
}

#[test]
fn predict_takes_a_dicom_folder_and_writes_the_label_in_its_geometry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixtures_dir().join("../../configs/demo-cpu.toml");
    let checkpoint = dir.path().join("checkpoint");
    let (ok, text) = mvl(&[
        "model",
        "--config",
        s(&config),
        "--init-checkpoint",
        s(&checkpoint),
    ]);
    assert!(ok, "{text}");
    let input = dicom_dir().join("oblique_rle");
    let out = dir.path().join("label.nii.gz");
    let (ok, text) = mvl(&[
        "predict",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&input),
        "--out",
        s(&out),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    let label = read_nifti(&out).expect("label");
    assert_eq!(label.volume.shape(), [8, 6, 5]);
    let want = Affine(affine_of(&expected()["oblique_rle"]));
    assert!(label.volume.world_from_voxel().max_abs_diff(&want) < 1e-4);
}
