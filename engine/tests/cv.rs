//! `mvl cv` at scale through the real executable: the Slurm script's array body run locally
//! with `SLURM_ARRAY_TASK_ID` set trains and evaluates exactly its fold; `--parallel 2` runs the
//! remaining folds as child processes, skipping the finished one; `mvl cv summarize` gathers
//! the folds and compares the presets.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const TINY: &str = r#"
[model]
name = "tiny"
kind = "KIND"
image_size = [16, 16, 16]
patch_size = 4
embed_dim = 16
decoder_depth = 1
num_heads = 2
mlp_dim = 32
dropout = 0.0

[model.llm]
hidden = 32
heads = 2
kv_heads = 1
intermediate = 48

[training]
epochs = 1
batch_size = 2
"#;

fn mvl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mvl"))
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

fn finished(run: &Path) -> bool {
    run.join("best/checkpoint.json").is_file() && run.join("eval_val.json").is_file()
}

#[test]
fn slurm_array_task_parallel_folds_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    run(mvl()
        .args([
            "demo-data",
            "--cases",
            "8",
            "--test-cases",
            "0",
            "--size",
            "20,20,12",
            "--out",
        ])
        .arg(&task));
    let (llm, baseline) = (
        dir.path().join("tiny.toml"),
        dir.path().join("tiny-baseline.toml"),
    );
    std::fs::write(&llm, TINY.replace("KIND", "medvisionllama")).expect("config");
    std::fs::write(&baseline, TINY.replace("KIND", "vit-baseline")).expect("config");
    let out = dir.path().join("cv");

    let text = run(mvl()
        .args(["cv", "--config"])
        .arg(&llm)
        .arg("--data")
        .arg(&task)
        .args(["--folds", "2", "--device", "cpu", "--emit", "slurm", "--out"])
        .arg(&out));
    assert!(text.contains("2 array tasks"), "{text}");
    let script = out.join("cv.slurm");
    let body = std::fs::read_to_string(&script).expect("script");
    assert!(body.contains("#SBATCH --array=0-1"), "{body}");
    // Array task 1 is fold 1: run the script as Slurm would, for that task only.
    run(Command::new("bash").arg(&script).env("SLURM_ARRAY_TASK_ID", "1"));
    assert!(
        finished(&out.join("tiny/fold1")),
        "task 1 trained and evaluated fold 1"
    );
    assert!(!out.join("tiny/fold0").exists(), "and nothing else");

    let summary: Value = serde_json::from_str(&run(mvl().args(["cv", "summarize", "--json"]).arg(&out)))
        .expect("json summary");
    assert_eq!(
        summary["presets"][0]["missing"],
        serde_json::json!([0]),
        "{summary}"
    );
    assert_eq!(summary["presets"][0]["folds"][0][0], 1, "{summary}");

    // The rest in parallel: fold 0 of tiny, both folds of the baseline; fold 1 is skipped.
    let text = run(mvl()
        .args(["cv", "--config"])
        .arg(&llm)
        .arg("--config")
        .arg(&baseline)
        .arg("--data")
        .arg(&task)
        .args(["--folds", "2", "--device", "cpu", "--parallel", "2", "--out"])
        .arg(&out));
    assert!(text.contains("tiny fold 1: done already"), "{text}");
    assert_eq!(text.matches(": started").count(), 3, "{text}");
    for run in [
        "tiny/fold0",
        "tiny/fold1",
        "tiny-baseline/fold0",
        "tiny-baseline/fold1",
    ] {
        assert!(finished(&out.join(run)), "{run} finished: {text}");
        assert!(out.join(run).with_extension("log").is_file() || run == "tiny/fold1");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cv_summary.json")).expect("summary"))
            .expect("json");
    for preset in 0..2 {
        assert_eq!(summary["presets"][preset]["val_dice"]["count"], 2, "{summary}");
    }
    let comparison = &summary["comparisons"][0];
    assert_eq!(comparison["reference"], "tiny");
    assert_eq!(comparison["other"], "tiny-baseline");
    // Paired over the validation cases of both folds: every non-test case once.
    let dice = comparison["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["metric"] == "dice")
        .expect("a Dice row");
    assert!(dice["cases"].as_u64().is_some_and(|n| n >= 2), "{dice}");
}
