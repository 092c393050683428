//! One prediction, one Dice, whoever computes it: the validation curve of `mvl train`, `mvl eval`,
//! `mvl predict` scored as the app's Metrics tab scores a file (the label scheme recorded beside
//! it, then `score_case`), `mvl metrics`, and the worker's before/after table. The scans are on the
//! model grid (16³), so validation (on the model grid) and the rest (in each scan's geometry) see
//! the same voxels; any difference is a difference in how outputs become labels or are scored.
//! Run for a one-channel sigmoid model (merged foreground, reported as "foreground") and a
//! softmax model (every class).

use engine::metrics::{CaseMetrics, DEFAULT_TOLERANCE_MM, LabelScheme, score_case};
use engine::worker::{CaseJob, Command, Event, Worker};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tests::{demo_task, mvl};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("json")
}

/// Dice of every reported class of one case, keyed by label value (`None`: both empty).
type CaseDice = BTreeMap<u32, Option<f64>>;

fn dice_of(metrics: &CaseMetrics) -> CaseDice {
    metrics.classes.iter().map(|c| (c.label, c.dice)).collect()
}

/// Whether two Dice tables agree to float rounding (same classes, same defined values).
fn assert_same(what: &str, a: &CaseDice, b: &CaseDice) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: classes {a:?} vs {b:?}"
    );
    for (label, x) in a {
        match (x, &b[label]) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12, "{what}, label {label}: {x} vs {y}"),
            (x, y) => assert_eq!(x, y, "{what}, label {label}: defined in one only"),
        }
    }
}

/// The worker's `after` metrics of each case of a `PredictCases` job.
fn worker_dice(checkpoint: &Path, cases: Vec<CaseJob>) -> BTreeMap<String, CaseDice> {
    let worker = Worker::spawn(engine::device::DeviceKind::Cpu, || {}).expect("worker spawns");
    worker
        .send(Command::PredictCases {
            checkpoint: checkpoint.to_path_buf(),
            cases,
            uncertainty: None,
        })
        .expect("sent");
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut scored = BTreeMap::new();
    while Instant::now() < deadline {
        match worker.recv_timeout(Duration::from_millis(200)) {
            Some(Event::CasePredicted {
                id,
                after,
                scoring_problem,
                ..
            }) => {
                assert!(scoring_problem.is_none(), "{id}: {scoring_problem:?}");
                scored.insert(id, dice_of(&after.expect("a ground truth was given")));
            }
            Some(Event::PredictionsDone { .. }) => return scored,
            Some(Event::Failed(message)) => panic!("worker failed: {message}"),
            _ => {}
        }
    }
    panic!("the worker did not finish predicting before the deadline");
}

fn check_callers(dir: &Path, task: &Path, model_lines: &str, name: &str, expected_labels: &[u32]) {
    let config = dir.join(format!("{name}.toml"));
    // Trained until it predicts some foreground, so Dice is neither 0 nor 1 (checked below).
    let preset = tests::tiny_preset(
        "medvisionllama",
        0.0,
        "epochs = 12\nbatch_size = 2\nlearning_rate = 5e-3",
    )
    .replace("[model.llm]", &format!("{model_lines}\n[model.llm]"));
    std::fs::write(&config, preset).expect("config");
    let run = dir.join(name);
    let (ok, text) = mvl(&[
        "train",
        "--config",
        s(&config),
        "--data",
        s(task),
        "--fold",
        "0",
        "--out",
        s(&run),
        "--seed",
        "5",
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    let info = json(&run.join("run.json"));
    let val: Vec<String> = info["val"]
        .as_array()
        .expect("val ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    assert!(val.len() >= 2, "{val:?}");
    let truth_of = |id: &str| task.join(format!("labelsTr/{id}.nii.gz"));
    let image_of = |id: &str| task.join(format!("imagesTr/{id}.nii.gz"));

    // mvl eval on the validation split: one row per case and class.
    let (ok, text) = mvl(&["eval", "--run", s(&run), "--split", "val", "--device", "cpu"]);
    assert!(ok, "{text}");
    let report = json(&run.join("eval_val.json"));
    let mut eval: BTreeMap<String, CaseDice> = BTreeMap::new();
    for row in report["rows"].as_array().expect("rows") {
        let label = u32::try_from(row["class"].as_u64().expect("class")).expect("small label");
        eval.entry(row["case"].as_str().expect("case").to_string())
            .or_default()
            .insert(label, row["dice"].as_f64());
    }
    assert_eq!(eval.keys().cloned().collect::<Vec<_>>(), {
        let mut sorted = val.clone();
        sorted.sort();
        sorted
    });
    for (id, classes) in &eval {
        assert_eq!(
            classes.keys().copied().collect::<Vec<_>>(),
            expected_labels,
            "{id}"
        );
    }
    let partial = eval
        .values()
        .flat_map(|c| c.values())
        .flatten()
        .filter(|d| **d > 0.02 && **d < 0.98)
        .count();
    assert!(
        partial > 0,
        "{name}: every Dice is 0 or 1, which proves little: {eval:?}"
    );

    // The validation curve at the epoch best/ was saved: each class's mean over the cases where
    // it is defined.
    let best_epoch = json(&run.join("best/checkpoint.json"))["training"]["epoch"]
        .as_u64()
        .expect("best epoch");
    let history = json(&run.join("history.json"));
    let record = history
        .as_array()
        .expect("history")
        .iter()
        .find(|r| r["epoch"].as_u64() == Some(best_epoch))
        .expect("the best epoch's record");
    let per_class = record["val_dice_per_class"].as_array().expect("per class");
    assert_eq!(per_class.len(), expected_labels.len());
    for (index, label) in expected_labels.iter().enumerate() {
        let defined: Vec<f64> = eval.values().filter_map(|c| c[label]).collect();
        match per_class[index].as_f64() {
            Some(curve) => {
                let mean = defined.iter().sum::<f64>() / defined.len() as f64;
                assert!(
                    (curve - mean).abs() <= 1e-9,
                    "{name} label {label}: curve {curve} vs eval {mean}"
                );
            }
            None => assert!(
                defined.is_empty(),
                "{name} label {label}: curve undefined, eval {defined:?}"
            ),
        }
    }

    // mvl predict, scored as the app's Metrics tab scores a file, and by mvl metrics.
    let predicted = dir.join(format!("{name}-predicted"));
    for id in &val {
        let out = predicted.join(format!("{id}.nii.gz"));
        let (ok, text) = mvl(&[
            "predict",
            "--checkpoint",
            s(&run.join("best")),
            "--input",
            s(&image_of(id)),
            "--out",
            s(&out),
            "--device",
            "cpu",
        ]);
        assert!(ok, "{text}");
        let scheme = LabelScheme::load_beside(&predicted).expect("mvl predict records the label scheme");
        let prediction = engine::volume::read_nifti(&out).expect("prediction").volume;
        let truth = engine::volume::read_nifti(&truth_of(id)).expect("truth").volume;
        let app = score_case(&prediction, &truth, &scheme, DEFAULT_TOLERANCE_MM).expect("scored");
        assert_same(&format!("{name} {id}: app vs eval"), &dice_of(&app), &eval[id]);

        let (ok, text) = mvl(&["metrics", "--pred", s(&out), "--gt", s(&truth_of(id)), "--json"]);
        assert!(ok, "{text}");
        let printed: Value = serde_json::from_str(&text).expect("metrics json");
        let cli: CaseDice = printed["classes"]
            .as_object()
            .expect("classes")
            .iter()
            .map(|(label, m)| (label.parse().expect("label"), m["dice"].as_f64()))
            .collect();
        assert_same(&format!("{name} {id}: mvl metrics vs eval"), &cli, &eval[id]);
    }

    // The worker's before/after table.
    let worker_out = dir.join(format!("{name}-worker"));
    let jobs = val
        .iter()
        .map(|id| CaseJob {
            id: id.clone(),
            image: image_of(id),
            ground_truth: Some(truth_of(id)),
            output: worker_out.join(format!("{id}.nii.gz")),
        })
        .collect();
    let worker = worker_dice(&run.join("best"), jobs);
    for id in &val {
        assert_same(&format!("{name} {id}: worker vs eval"), &worker[id], &eval[id]);
    }
}

#[test]
fn every_caller_reads_the_same_dice_for_the_same_prediction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = demo_task(dir.path(), 10, 3);
    // One sigmoid channel: organ and lesion merged into label 1, "foreground".
    check_callers(
        dir.path(),
        &task,
        "out_channels = 1\noutput = \"sigmoid\"",
        "sigmoid",
        &[1],
    );
    let report = json(&dir.path().join("sigmoid/eval_val.json"));
    assert_eq!(report["label_names"]["1"], "foreground");
    // Softmax over background, organ and lesion: both classes reported.
    check_callers(
        dir.path(),
        &task,
        "out_channels = 3\noutput = \"softmax\"",
        "softmax",
        &[1, 2],
    );
}
