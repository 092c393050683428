//! `mvl model`, `mvl predict` and `mvl activations` end to end on a phantom scan.

use engine::volume::read_nifti;
use serde_json::Value;
use std::path::Path;
use tests::mvl;

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn model_json_reports_the_official_counts() {
    let config = tests::fixtures_dir().join("../../configs/official-code.toml");
    let (ok, text) = mvl(&["model", "--config", s(&config), "--json"]);
    assert!(ok, "{text}");
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["trainable_params"], 1_165_440);
    assert_eq!(json["frozen_params"], 218_112_000 + 2 * 64 * 4096);
    assert_eq!(json["tokens"], 4096);
    assert_eq!(json["llm_weights"], "random (no checkpoint)");
    let flops = json["flops_per_sample"].as_f64().expect("number");
    assert!((2.0e12..2.3e12).contains(&flops), "{flops}");
}

#[test]
fn predict_writes_the_label_in_the_scans_own_geometry_and_activations_write_every_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        s(&task),
        "--cases",
        "2",
        "--test-cases",
        "0",
        "--size",
        "40,36,20",
    ]);
    assert!(ok, "{text}");
    let config = tests::fixtures_dir().join("../../configs/demo-cpu.toml");
    let checkpoint = dir.path().join("checkpoint");
    let (ok, text) = mvl(&[
        "model",
        "--config",
        s(&config),
        "--init-checkpoint",
        s(&checkpoint),
    ]);
    assert!(ok, "{text}");
    let scan = task.join("imagesTr/phantom_001.nii.gz");
    let out = dir.path().join("pred.nii.gz");
    let probabilities = dir.path().join("prob.nii.gz");
    let (ok, text) = mvl(&[
        "predict",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&scan),
        "--out",
        s(&out),
        "--probabilities",
        s(&probabilities),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("LLM weights: random (no checkpoint)"), "{text}");
    let source = read_nifti(&scan).expect("scan");
    let label = read_nifti(&out).expect("label");
    assert_eq!(label.volume.shape(), source.volume.shape());
    // The scan's header is reused, so the affine fields are bit-identical.
    assert_eq!(label.header.srow_x, source.header.srow_x);
    assert_eq!(label.header.srow_y, source.header.srow_y);
    assert_eq!(label.header.srow_z, source.header.srow_z);
    assert_eq!(label.header.qform_code, source.header.qform_code);
    // demo-cpu is a softmax over background, organ and lesion: labels 0, 1, 2.
    assert!(label.volume.voxels().iter().all(|v| [0.0, 1.0, 2.0].contains(v)));
    let probabilities = read_nifti(&probabilities).expect("probabilities").volume;
    assert!(probabilities.voxels().iter().all(|p| (0.0..=1.0).contains(p)));
    // The written label is the arg-max of the written per-class probabilities (channel-major).
    assert_eq!(probabilities.channels(), 3);
    let len = probabilities.channel_len();
    for (i, l) in label.volume.voxels().iter().enumerate() {
        let values: Vec<f32> = (0..3).map(|c| probabilities.voxels()[c * len + i]).collect();
        // Softmax probabilities, resampled trilinearly (a convex combination), still sum to 1.
        let sum: f32 = values.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "voxel {i}: {values:?} sum to {sum}");
        let best = (0..3).fold(0, |best, c| if values[c] > values[best] { c } else { best });
        assert_eq!(*l, best as f32, "voxel {i}: {values:?}");
    }

    // Under test-time mirroring: the map on the scan's grid, the score printed and recorded.
    let uncertain_out = dir.path().join("uncertain/pred.nii.gz");
    // The map goes into a folder that does not exist yet: it is made.
    let map_path = dir.path().join("uncertain/maps/phantom_001_uncertainty.nii.gz");
    let (ok, text) = mvl(&[
        "predict",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&scan),
        "--out",
        s(&uncertain_out),
        "--uncertainty",
        s(&map_path),
        "--mirroring",
        "each-axis",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    let map = read_nifti(&map_path).expect("uncertainty map").volume;
    assert_eq!(map.shape(), source.volume.shape());
    assert!(map.voxels().iter().all(|u| (0.0..=1.0).contains(u)));
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("uncertain/uncertainty.json")).expect("uncertainty.json"),
    )
    .expect("json");
    let score = recorded["scores"]["phantom_001"]
        .as_f64()
        .expect("a score for the case");
    assert!(score > 0.0 && score <= 1.0, "{score}");
    assert!(text.contains(&format!("uncertainty score {score:.4}")), "{text}");
    assert!(
        recorded["method"]
            .as_str()
            .is_some_and(|m| m.contains("4 predictions")),
        "{recorded}"
    );

    // Monte-Carlo dropout needs dropout, and demo-cpu has none: refused, with nothing written.
    let mc_map = dir.path().join("mc/map.nii.gz");
    let (ok, text) = mvl(&[
        "predict",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&scan),
        "--out",
        s(&dir.path().join("mc/pred.nii.gz")),
        "--uncertainty",
        s(&mc_map),
        "--method",
        "mc-dropout",
        "--device",
        "cpu",
    ]);
    // (The message goes to standard error; its text is checked in the engine's unit test.)
    assert!(!ok, "{text}");
    assert!(!mc_map.exists() && !dir.path().join("mc/pred.nii.gz").exists());

    let maps = dir.path().join("maps");
    let (ok, text) = mvl(&[
        "activations",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&scan),
        "--out",
        s(&maps),
        "--slice",
        "coronal:10",
        "--block",
        "3",
        "--head",
        "0",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    for stem in ["ve", "vd1", "llm", "vd2", "vd", "probability", "attention_b3_h0"] {
        let volume = read_nifti(&maps.join(format!("{stem}.nii.gz")))
            .expect(stem)
            .volume;
        assert_eq!(volume.shape(), source.volume.shape(), "{stem}");
        let png = std::fs::read(maps.join(format!("{stem}.png"))).expect("png");
        assert_eq!(&png[1..4], b"PNG");
    }
    let (ok, _) = mvl(&[
        "activations",
        "--checkpoint",
        s(&checkpoint),
        "--input",
        s(&scan),
        "--out",
        s(&maps),
        "--block",
        "9",
        "--device",
        "cpu",
    ]);
    assert!(!ok, "block 9 of a 4-block model is refused");
}
