//! End to end through the `mvl` CLI: demo-data → dataset → info → preprocess (cached) → splits,
//! with the geometry checked across the whole round trip.

use engine::data::{PreprocessedTask, Splits};
use engine::volume::{Interpolation, Volume, read_nifti, resample};
use serde_json::Value;
use std::path::Path;
use tests::mvl;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn make_task(dir: &Path, seed: &str) {
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        path_str(dir),
        "--cases",
        "10",
        "--test-cases",
        "2",
        "--size",
        "40,36,16",
        "--seed",
        seed,
    ]);
    assert!(ok, "{text}");
}

/// Physical centre of mass of the voxels > 0.
fn centre_of_mass_mm(volume: &Volume) -> [f64; 3] {
    let [nx, ny, nz] = volume.shape();
    let (mut sum, mut count) = ([0.0; 3], 0.0);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if volume.at(x, y, z) > 0.0 {
                    let w = volume.world_from_voxel().apply([x as f64, y as f64, z as f64]);
                    (0..3).for_each(|a| sum[a] += w[a]);
                    count += 1.0;
                }
            }
        }
    }
    sum.map(|s| s / count)
}

#[test]
fn demo_data_dataset_preprocess_splits() {
    let root = tempfile::tempdir().expect("tempdir");
    let task = root.path().join("task");
    make_task(&task, "3");

    let (ok, text) = mvl(&["dataset", path_str(&task), "--json"]);
    assert!(ok, "a fresh phantom task has no problems: {text}");
    let report: Value = serde_json::from_str(&text).expect("json");
    let cases = report["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 12);
    assert_eq!(cases[0]["shape"], serde_json::json!([40, 36, 16]));
    assert_eq!(cases[0]["label_values"], serde_json::json!([0, 1, 2]));

    let image_path = task.join("imagesTr/phantom_000.nii.gz");
    let (ok, text) = mvl(&["info", path_str(&image_path), "--json"]);
    assert!(ok, "{text}");
    let info: Value = serde_json::from_str(&text).expect("json");
    for key in [
        "shape",
        "datatype",
        "spacing_mm",
        "affine",
        "orientation",
        "min",
        "max",
        "mean",
    ] {
        assert!(info.get(key).is_some(), "info --json lacks {key}");
    }
    assert_eq!(info["datatype"], "int16");
    let spacing: Vec<f64> = info["spacing_mm"]
        .as_array()
        .expect("spacing")
        .iter()
        .map(|v| v.as_f64().expect("f64"))
        .collect();
    assert!(spacing[2] > 1.3 * spacing[0], "anisotropic: {spacing:?}");

    let preprocessed = root.path().join("pre");
    let (ok, text) = mvl(&[
        "preprocess",
        path_str(&task),
        "--out",
        path_str(&preprocessed),
        "--size",
        "24",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("preprocessed 12 case(s), reused 0"), "{text}");
    let manifest = PreprocessedTask::open(&preprocessed).expect("manifest");
    assert_eq!(manifest.cases.len(), 12);
    let first = &manifest.cases[0];
    let (model_image, model_label) = manifest.load(first).expect("loads");
    assert_eq!(model_image.shape(), [24, 24, 24]);
    assert_eq!(
        engine::volume::orientation_string(model_image.world_from_voxel()),
        "RAS"
    );
    // The cache keeps intensities in HU (a run normalises them with statistics of its own
    // training cases): the phantom's air is -1000 HU and its tissue above -200 HU.
    let model_label = model_label.expect("training case has a label");
    let (min, max) = model_image
        .voxels()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    assert!(min < -900.0 && max > -200.0, "HU range {min}..{max}");

    // Geometry: the label's physical centre of mass survives reorientation and resampling, and
    // the model-grid label resampled back onto the scan's grid overlaps the original.
    let original_label = read_nifti(&task.join("labelsTr/phantom_000.nii.gz"))
        .expect("label")
        .volume;
    let before = centre_of_mass_mm(&original_label);
    let after = centre_of_mass_mm(&model_label);
    let voxel = model_label.spacing_mm().into_iter().fold(0.0, f64::max);
    let shift = (0..3).map(|a| (before[a] - after[a]).powi(2)).sum::<f64>().sqrt();
    assert!(
        shift < voxel,
        "centre of mass moved {shift} mm (model voxel {voxel} mm)"
    );
    let back = resample(&model_label, &first.source_geometry, Interpolation::Nearest, 0.0);
    let (mut overlap, mut total) = (0.0, 0.0);
    for (a, b) in back.voxels().iter().zip(original_label.voxels()) {
        let (a, b) = (*a > 0.0, *b > 0.0);
        overlap += f64::from(u8::from(a && b));
        total += f64::from(u8::from(a)) + f64::from(u8::from(b));
    }
    let dice = 2.0 * overlap / total;
    assert!(dice > 0.8, "round-trip Dice {dice}");

    // Cached: nothing is recomputed; changing one test image recomputes only it.
    let (ok, text) = mvl(&[
        "preprocess",
        path_str(&task),
        "--out",
        path_str(&preprocessed),
        "--size",
        "24",
    ]);
    assert!(ok && text.contains("preprocessed 0 case(s), reused 12"), "{text}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let test_image = task.join("imagesTs/phantom_010.nii.gz");
    let bytes = std::fs::read(&test_image).expect("reads");
    std::fs::write(&test_image, bytes).expect("rewrites");
    let (ok, text) = mvl(&[
        "preprocess",
        path_str(&task),
        "--out",
        path_str(&preprocessed),
        "--size",
        "24",
    ]);
    assert!(ok && text.contains("preprocessed 1 case(s), reused 11"), "{text}");

    let (ok, text) = mvl(&[
        "splits",
        path_str(&task),
        "--folds",
        "3",
        "--test",
        "0.1",
        "--seed",
        "5",
    ]);
    assert!(ok, "{text}");
    let splits = Splits::load(&task.join("splits.json")).expect("splits.json");
    assert_eq!(splits.test.len(), 1);
    assert_eq!(splits.folds.len(), 3);
    assert_eq!(splits.folds.iter().map(|f| f.val.len()).sum::<usize>(), 9);
}

#[test]
fn demo_data_is_deterministic_per_seed() {
    let root = tempfile::tempdir().expect("tempdir");
    make_task(&root.path().join("a"), "9");
    make_task(&root.path().join("b"), "9");
    make_task(&root.path().join("c"), "10");
    let read = |task: &str| {
        std::fs::read(root.path().join(task).join("imagesTr/phantom_004.nii.gz")).expect("reads")
    };
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
}

#[test]
fn dataset_problems_are_reported_and_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let task = root.path().join("task");
    make_task(&task, "4");
    // A missing label, a label on another grid, and an unlisted file.
    std::fs::remove_file(task.join("labelsTr/phantom_001.nii.gz")).expect("removes");
    // phantom_002's label moved 7 mm along x: same shape, another affine.
    let label = read_nifti(&task.join("labelsTr/phantom_002.nii.gz"))
        .expect("reads")
        .volume;
    let mut moved = *label.world_from_voxel();
    moved.0[0][3] += 7.0;
    let moved_label = Volume::new(label.shape(), 1, label.voxels().to_vec(), moved).expect("volume");
    engine::volume::write_nifti(
        &task.join("labelsTr/phantom_002.nii.gz"),
        &moved_label,
        None,
        engine::volume::WriteOptions::new(engine::volume::DataType::U8),
    )
    .expect("writes");
    std::fs::copy(
        task.join("imagesTr/phantom_000.nii.gz"),
        task.join("imagesTr/stray.nii.gz"),
    )
    .expect("copies");
    let (ok, text) = mvl(&["dataset", path_str(&task)]);
    assert!(!ok, "problems make `mvl dataset` fail");
    assert!(
        text.contains("phantom_001.nii.gz: listed in dataset.json but missing"),
        "{text}"
    );
    assert!(text.contains("stray.nii.gz: on disk but not listed"), "{text}");
    assert!(text.contains("phantom_002.nii.gz: affine differs"), "{text}");
    // Preprocessing names the missing file instead of panicking.
    let (ok, _) = mvl(&[
        "preprocess",
        path_str(&task),
        "--out",
        path_str(&root.path().join("pre")),
        "--size",
        "16",
    ]);
    assert!(!ok);
}
