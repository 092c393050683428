//! Our metrics against DeepMind's `surface-distance` package (0.1, PyPI) on the label pairs in
//! `fixtures/surface_distance/`, written by `fixtures/make_surface_distance_fixtures.py`: HD95,
//! surface Dice at three tolerances, total surfel areas and Dice, per label. Then `mvl metrics`
//! on the same files.

use engine::metrics::{case_metrics, compute_surface_distances};
use engine::volume::{Volume, read_nifti};
use serde_json::Value;
use std::path::PathBuf;
use tests::{fixtures_dir, mvl};

/// Relative tolerance against the package. Both sides compute the same float64 expressions
/// (our distance transform sums squares in scipy's order), so agreement is far tighter; 1e-4
/// leaves room only for summation-order differences in the area totals.
const RELATIVE_TOLERANCE: f64 = 1e-4;

fn expected() -> Value {
    let path = fixtures_dir().join("surface_distance/expected.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/surface_distance/expected.json is committed");
    serde_json::from_str(&text).expect("valid JSON")
}

fn fixture(case: &str, role: &str) -> PathBuf {
    fixtures_dir().join(format!("surface_distance/{case}_{role}.nii.gz"))
}

fn read(case: &str, role: &str) -> Volume {
    read_nifti(&fixture(case, role)).expect("fixture reads").volume
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let error = (actual - expected).abs() / expected.abs().max(1e-12);
    assert!(
        actual == expected || error <= RELATIVE_TOLERANCE,
        "{what}: ours {actual}, surface-distance {expected}"
    );
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what} is a number"))
}

#[test]
fn metrics_agree_with_the_surface_distance_package() {
    let expected = expected();
    let cases = expected["cases"].as_object().expect("cases");
    assert_eq!(cases.len(), 4, "fixture count");
    let tolerances: Vec<(String, f64)> = expected["tolerances_mm"]
        .as_array()
        .expect("tolerances")
        .iter()
        .map(|t| {
            let t = number(t, "tolerance");
            (format!("{t:?}"), t)
        })
        .collect();
    for (name, case) in cases {
        let (prediction, ground_truth) = (read(name, "pred"), read(name, "gt"));
        let spacing = ground_truth.spacing_mm();
        for (axis, zoom) in case["spacing_mm"].as_array().expect("spacing").iter().enumerate() {
            assert_close(spacing[axis], number(zoom, "zoom"), &format!("{name} spacing"));
        }
        let classes = case["classes"].as_object().expect("classes");
        for (key, tolerance) in &tolerances {
            let ours = case_metrics(&prediction, &ground_truth, *tolerance).expect("same grid");
            let labels: Vec<String> = ours.classes.iter().map(|c| c.label.to_string()).collect();
            let theirs: Vec<&String> = classes.keys().collect();
            assert_eq!(labels.iter().collect::<Vec<_>>(), theirs, "{name}: labels");
            for class in &ours.classes {
                let reference = &classes[&class.label.to_string()];
                let what = format!("{name} label {} τ={key}", class.label);
                let dice = class.dice.expect("never both empty here");
                assert_close(dice, number(&reference["dice"], "dice"), &format!("{what} Dice"));
                let nsd = class.nsd.expect("defined");
                assert_close(nsd, number(&reference["nsd"][key], "nsd"), &format!("{what} NSD"));
                let hd95 = class.hd95_mm.expect("defined");
                match reference["hd95_mm"].as_f64() {
                    Some(package) => assert_close(hd95, package, &format!("{what} HD95")),
                    // The package gives ∞ when one mask is empty; DESIGN.md §5 asks for the
                    // image diagonal instead.
                    None => assert_close(hd95, ours.diagonal_mm, &format!("{what} HD95 = diagonal")),
                }
                assert_eq!(
                    class.ground_truth_voxels,
                    reference["gt_voxels"].as_u64().expect("count")
                );
                assert_eq!(
                    class.prediction_voxels,
                    reference["pred_voxels"].as_u64().expect("count")
                );
            }
        }
    }
}

#[test]
fn surfel_areas_agree_with_the_surface_distance_package() {
    let expected = expected();
    for (name, case) in expected["cases"].as_object().expect("cases") {
        let (prediction, ground_truth) = (read(name, "pred"), read(name, "gt"));
        for (label, reference) in case["classes"].as_object().expect("classes") {
            let value: f32 = label.parse().expect("numeric label");
            let mask = |v: &Volume| v.voxels().iter().map(|x| *x == value).collect::<Vec<bool>>();
            let surfaces = compute_surface_distances(
                &mask(&ground_truth),
                &mask(&prediction),
                ground_truth.shape(),
                ground_truth.spacing_mm(),
            );
            for (ours, key) in [
                (&surfaces.surfel_areas_gt_mm2, "surfel_area_gt_mm2"),
                (&surfaces.surfel_areas_pred_mm2, "surfel_area_pred_mm2"),
            ] {
                let total: f64 = ours.iter().sum();
                assert_close(
                    total,
                    number(&reference[key], key),
                    &format!("{name} {label} {key}"),
                );
            }
        }
    }
}

#[test]
fn mvl_metrics_json_has_one_entry_per_label_with_the_six_metrics() {
    let (pred, gt) = (fixture("empty", "pred"), fixture("empty", "gt"));
    let args = [
        "metrics",
        "--pred",
        pred.to_str().expect("utf-8"),
        "--gt",
        gt.to_str().expect("utf-8"),
        "--json",
    ];
    let (ok, text) = mvl(&args);
    assert!(ok, "{text}");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    let top: Vec<&String> = json.as_object().expect("object").keys().collect();
    assert_eq!(top, ["classes"]);
    let classes = json["classes"].as_object().expect("classes");
    assert_eq!(classes.keys().collect::<Vec<_>>(), ["1", "3"]);
    for class in classes.values() {
        let mut keys: Vec<&String> = class.as_object().expect("class").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["dice", "hd95_mm", "jaccard", "nsd", "sensitivity", "specificity"]
        );
        assert_eq!(class["dice"].as_f64(), Some(0.0));
        assert_eq!(class["nsd"].as_f64(), Some(0.0));
    }
    // Label 3 has no ground truth: sensitivity is undefined, printed as null.
    assert!(classes["3"]["sensitivity"].is_null());
    // Text output works too, and the default tolerance is 1 mm.
    let (ok, text) = mvl(&args[..5]);
    assert!(ok && text.contains("NSD tolerance 1 mm"), "{text}");
}

#[test]
fn mvl_metrics_fails_on_different_grids() {
    // The message (naming both files) goes to standard error; engine::cli's own tests check it.
    let (pred, gt) = (fixture("blobs", "pred"), fixture("spheres", "gt"));
    let (pred, gt) = (pred.to_str().expect("utf-8"), gt.to_str().expect("utf-8"));
    let (ok, text) = mvl(&["metrics", "--pred", pred, "--gt", gt, "--json"]);
    assert!(!ok && text.is_empty(), "{text}");
}

#[test]
fn mvl_stats_matches_a_two_pass_count_over_a_demo_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    let task_str = task.to_str().expect("utf-8");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        task_str,
        "--cases",
        "1",
        "--test-cases",
        "0",
        "--size",
        "32,32,12",
    ]);
    assert!(ok, "{text}");
    let case = engine::data::open_task(&task).expect("task").training[0].clone();
    let label_path = case.label.expect("labelled case");
    let (label_arg, image_arg) = (
        label_path.to_str().expect("utf-8"),
        case.image.to_str().expect("utf-8"),
    );
    let (ok, text) = mvl(&["stats", "--label", label_arg, "--image", image_arg, "--json"]);
    assert!(ok, "{text}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    let listed = report["labels"].as_array().expect("labels array");
    // The same figures counted another way: every voxel visited per label, mean first, then
    // squared deviations; the voxel volume from the spacing of the (axis-aligned) demo grid.
    let label = read_nifti(&label_path).expect("label").volume;
    let image = read_nifti(&case.image).expect("image").volume;
    let voxel_ml = label.spacing_mm().iter().product::<f64>() / 1000.0;
    let mut present: Vec<u32> = label
        .voxels()
        .iter()
        .map(|v| *v as u32)
        .filter(|v| *v > 0)
        .collect();
    present.sort_unstable();
    present.dedup();
    assert!(
        present.len() >= 2,
        "the demo case has an organ and a lesion: {present:?}"
    );
    assert_eq!(listed.len(), present.len(), "{text}");
    for (entry, &number) in listed.iter().zip(&present) {
        assert_eq!(entry["label"].as_u64(), Some(u64::from(number)));
        let inside: Vec<f64> = label
            .voxels()
            .iter()
            .zip(image.voxels())
            .filter(|(l, _)| **l as u32 == number)
            .map(|(_, v)| f64::from(*v))
            .collect();
        let n = inside.len() as f64;
        let mean = inside.iter().sum::<f64>() / n;
        let sd = (inside.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert_eq!(entry["voxels"].as_u64(), Some(inside.len() as u64));
        assert_close(number_of(entry, "volume_ml"), n * voxel_ml, "volume");
        assert_close(number_of(entry, "mean"), mean, "mean");
        assert_close(number_of(entry, "sd"), sd, "sd");
        let min = inside.iter().copied().fold(f64::INFINITY, f64::min);
        let max = inside.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((number_of(entry, "min"), number_of(entry, "max")), (min, max));
    }
    // A table too; a label on another grid is refused (the message, naming both files, goes to
    // standard error).
    let (ok, text) = mvl(&["stats", "--label", label_arg, "--image", image_arg]);
    assert!(ok && text.contains("mL"), "{text}");
    let other = fixture("spheres", "gt");
    let (ok, _) = mvl(&[
        "stats",
        "--label",
        other.to_str().expect("utf-8"),
        "--image",
        image_arg,
    ]);
    assert!(!ok, "a label off the image's grid is refused");
}

fn number_of(entry: &Value, key: &str) -> f64 {
    entry[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {entry}"))
}
