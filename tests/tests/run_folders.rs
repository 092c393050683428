//! `mvl train` without `--out`: runs numbered in the task's runs folder, where the app's Training
//! tab lists them and `mvl runs` prints them. Its own test binary: trainings in one process share
//! burn's random generator, so they must not run beside the seeded-reproducibility test.

use serde_json::Value;
use std::path::Path;
use tests::{demo_task, mvl};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn train_without_out_numbers_runs_in_the_task_where_the_app_and_mvl_runs_list_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The seed demo-data uses when none is given.
    let task = demo_task(dir.path(), 6, 0);
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        tests::tiny_preset("medvisionllama", 0.0, "epochs = 1\nbatch_size = 2"),
    )
    .expect("config");
    let runs = task.join(".medvisionllama").join("runs");
    for (extra, expected) in [
        (None, "tiny-fold1-001"),
        (None, "tiny-fold1-002"),
        (Some("2"), "tiny-2shot-fold1-001"),
    ] {
        let mut args = vec![
            "train",
            "--config",
            s(&config),
            "--data",
            s(&task),
            "--fold",
            "1",
            "--device",
            "cpu",
        ];
        if let Some(cases) = extra {
            args.extend(["--cases", cases]);
        }
        let (ok, text) = mvl(&args);
        assert!(ok, "{text}");
        assert!(
            text.contains(&format!("run folder: {}", runs.join(expected).display())),
            "{text}"
        );
        assert!(
            runs.join(expected).join("best/checkpoint.json").is_file(),
            "{expected}"
        );
    }
    let (ok, text) = mvl(&["runs", "--data", s(&task), "--json"]);
    assert!(ok, "{text}");
    let listed: Value = serde_json::from_str(&text).expect("json");
    let mut names: Vec<&str> = listed
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["tiny-2shot-fold1-001", "tiny-fold1-001", "tiny-fold1-002"]
    );
    assert!(listed[0]["epoch"].as_u64() == Some(1), "{text}");
    // Resuming needs the run named (clap refuses --resume without --out; its message goes to
    // stderr, not to the captured output).
    let (ok, _) = mvl(&[
        "train",
        "--config",
        s(&config),
        "--data",
        s(&task),
        "--resume",
        "--device",
        "cpu",
    ]);
    assert!(!ok, "--resume without --out must be refused");
}
