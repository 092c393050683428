//! Scans with NaN and ±∞ voxels: `mvl info` counts them (JSON `non_finite`) and leaves them out
//! of min/max/mean; preprocessing turns them into finite values instead of spreading them.

use engine::data::PreprocessedTask;
use engine::volume::{DataType, WriteOptions, read_nifti, write_nifti};
use serde_json::Value;
use std::path::Path;
use tests::mvl;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn info_counts_non_finite_voxels_and_preprocessing_removes_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let task = root.path().join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        path_str(&task),
        "--cases",
        "3",
        "--test-cases",
        "0",
        "--size",
        "16,16,8",
    ]);
    assert!(ok, "{text}");
    // Poison the first case: every 7th voxel NaN, every 11th (not 7th) +∞, voxel 5 −∞.
    let image_path = task.join("imagesTr/phantom_000.nii.gz");
    let mut image = read_nifti(&image_path).expect("reads");
    let mut poisoned = 0u64;
    for (i, v) in image.volume.voxels_mut().iter_mut().enumerate() {
        let replacement = if i % 7 == 0 {
            f32::NAN
        } else if i % 11 == 0 {
            f32::INFINITY
        } else if i == 5 {
            f32::NEG_INFINITY
        } else {
            continue;
        };
        *v = replacement;
        poisoned += 1;
    }
    let finite: Vec<f64> = image
        .volume
        .voxels()
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| f64::from(*v))
        .collect();
    let expected_min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let expected_max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    write_nifti(
        &image_path,
        &image.volume,
        Some(&image.header),
        WriteOptions::new(DataType::F32),
    )
    .expect("writes");

    let (ok, text) = mvl(&["info", path_str(&image_path), "--json"]);
    assert!(ok, "{text}");
    let info: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(info["non_finite"].as_u64(), Some(poisoned));
    assert_eq!(info["min"].as_f64(), Some(expected_min));
    assert_eq!(info["max"].as_f64(), Some(expected_max));
    let (ok, text) = mvl(&["info", path_str(&image_path)]);
    assert!(
        ok && text.contains(&format!("{poisoned} voxels are NaN or ±∞")),
        "{text}"
    );

    let out = root.path().join("pre");
    let (ok, text) = mvl(&[
        "preprocess",
        path_str(&task),
        "--out",
        path_str(&out),
        "--size",
        "8",
    ]);
    assert!(ok, "{text}");
    let manifest = PreprocessedTask::open(&out).expect("manifest");
    for case in &manifest.cases {
        let (model_image, _) = manifest.load(case).expect("loads");
        let bad = model_image.voxels().iter().filter(|v| !v.is_finite()).count();
        assert_eq!(
            bad, 0,
            "{} has {bad} non-finite voxels after preprocessing",
            case.id
        );
    }
}
