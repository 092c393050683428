//! Training through the CLI on a tiny model: the same seed gives the same splits and the same
//! first-epoch loss; eval writes per-case reports; compare pairs the first run with the others.

use serde_json::Value;
use std::path::Path;
use tests::mvl;

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

const TRAINING: &str = "epochs = 2\nbatch_size = 2\nlearning_rate = 2e-3";

fn first_loss(run: &Path) -> f64 {
    let history: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).expect("history"))
            .expect("json");
    history[0]["train_loss"].as_f64().expect("loss")
}

#[test]
fn seeded_training_is_reproducible_and_runs_compare() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        s(&task),
        "--cases",
        "12",
        "--test-cases",
        "0",
        "--size",
        "24,24,12",
        "--seed",
        "2",
    ]);
    assert!(ok, "{text}");
    let llm = dir.path().join("tiny.toml");
    let baseline = dir.path().join("tiny-baseline.toml");
    std::fs::write(&llm, tests::tiny_preset("medvisionllama", 0.1, TRAINING)).expect("config");
    std::fs::write(&baseline, tests::tiny_preset("vit-baseline", 0.1, TRAINING)).expect("config");
    let train = |config: &Path, run: &Path, seed: &str| {
        let (ok, text) = mvl(&[
            "train",
            "--config",
            s(config),
            "--data",
            s(&task),
            "--fold",
            "1",
            "--out",
            s(run),
            "--seed",
            seed,
            "--device",
            "cpu",
        ]);
        assert!(ok, "{text}");
        text
    };
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let text = train(&llm, &a, "3");
    assert!(text.contains("best validation Dice"), "{text}");
    train(&llm, &b, "3");
    train(&llm, &c, "4");
    assert_eq!(
        std::fs::read(a.join("splits.json")).expect("a"),
        std::fs::read(b.join("splits.json")).expect("b")
    );
    assert_eq!(first_loss(&a), first_loss(&b), "same seed, same first-epoch loss");
    assert_ne!(first_loss(&a), first_loss(&c), "another seed, another loss");
    for file in [
        "best/model.safetensors",
        "best/config.toml",
        "best/checkpoint.json",
        "last/optimizer.bin",
        "run.json",
    ] {
        assert!(a.join(file).is_file(), "{file}");
    }

    let base_run = dir.path().join("base");
    train(&baseline, &base_run, "3");
    for run in [&a, &base_run, &c] {
        let (ok, text) = mvl(&["eval", "--run", s(run), "--split", "val", "--device", "cpu"]);
        assert!(ok, "{text}");
        let csv = std::fs::read_to_string(run.join("eval_val.csv")).expect("csv");
        assert!(csv.starts_with(engine::metrics::REPORT_CSV_HEADER), "{csv}");
        assert!(csv.lines().count() > 1);
    }
    let (ok, text) = mvl(&["compare", s(&a), s(&base_run), "--split", "val", "--json"]);
    assert!(ok, "{text}");
    let rows: Value = serde_json::from_str(&text).expect("json");
    let metrics: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["metric"].as_str().expect("metric"))
        .collect();
    assert_eq!(
        &metrics[..6],
        &["dice", "jaccard", "sensitivity", "specificity", "hd95_mm", "nsd"]
    );
    assert!(rows[0]["cases"].as_u64().expect("n") >= 2);

    // More than two runs: the first against each other, in one table.
    let (ok, text) = mvl(&["compare", s(&a), s(&base_run), s(&c), "--split", "val", "--json"]);
    assert!(ok, "{text}");
    let rows: Value = serde_json::from_str(&text).expect("json");
    let against: std::collections::BTreeSet<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["against"].as_str().expect("against"))
        .collect();
    assert_eq!(against, [s(&base_run), s(&c)].into_iter().collect());
    let (ok, text) = mvl(&["compare", s(&a), s(&base_run), s(&c), "--split", "val"]);
    assert!(
        ok && text.contains("C mean ± SD") && text.contains("C = "),
        "{text}"
    );
}
