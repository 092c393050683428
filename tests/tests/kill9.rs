//! `kill -9` at random moments: `mvl train` is started as a child process and killed with
//! SIGKILL at seeded random moments spread over a whole run. After every kill, `best/` and
//! `last/` must each be absent or hold a complete checkpoint that loads, every JSON file the run
//! wrote must parse, and `--resume` must finish the run.
//!
//! The kill moments are drawn within the measured length of an uninterrupted run, so they cover
//! preprocessing, training steps and checkpoint writes on a fast or a slow machine alike; what
//! is asserted does not depend on where they land.

use burn::backend::Flex;
use engine::checkpoint::{load_checkpoint, read_checkpoint_config};
use engine::rng::Rng;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use tests::mvl;

const TRIALS: usize = 12;
const EPOCHS: usize = 10;
const SEED: u64 = 0x6b69_6c6c;

const TRAINING: &str = "epochs = 10\nbatch_size = 2\nlearning_rate = 2e-3\nlast_save_interval_secs = 0";

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn train_command(config: &Path, task: &Path, run: &Path, resume: bool) -> Command {
    let mvl = env!("CARGO_BIN_EXE_mvl-under-test");
    let mut command = tests::train_command(mvl, None, config, task, run, resume);
    // Nothing is read from a run that is killed, so its output must not be a pipe that fills.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// `best/` or `last/`: absent, or a checkpoint whose config, metadata and weights load.
fn assert_whole_or_absent(folder: &Path, context: &str) {
    if !folder.exists() {
        return;
    }
    read_checkpoint_config(folder)
        .unwrap_or_else(|e| panic!("{context}: {} unreadable: {e}", folder.display()));
    let device = Default::default();
    load_checkpoint::<Flex>(folder, None, &device)
        .unwrap_or_else(|e| panic!("{context}: {} does not load: {e}", folder.display()));
    if folder.ends_with("last") {
        let state = std::fs::read(folder.join("state.json")).expect("last/ has state.json");
        serde_json::from_slice::<Value>(&state).expect("state.json parses");
        for resume_file in ["model.bin", "optimizer.bin"] {
            assert!(
                folder.join(resume_file).is_file(),
                "{context}: last/ lacks {resume_file}"
            );
        }
    }
}

/// Every JSON file of the run parses (each is replaced atomically, so none is ever half-written).
fn assert_json_files_parse(run: &Path, context: &str) {
    for name in ["run.json", "history.json", "splits.json"] {
        let path = run.join(name);
        if let Ok(bytes) = std::fs::read(&path) {
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|e| panic!("{context}: {name} is damaged: {e}"));
        }
    }
}

fn history_len(run: &Path) -> usize {
    let text = std::fs::read_to_string(run.join("history.json")).expect("history.json");
    serde_json::from_str::<Value>(&text)
        .expect("json")
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn checkpoints_survive_sigkill_at_any_moment_and_resume_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        s(&task),
        "--cases",
        "6",
        "--test-cases",
        "0",
        "--size",
        "16,16,8",
        "--seed",
        "5",
    ]);
    assert!(ok, "{text}");
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tests::tiny_preset("medvisionllama", 0.0, TRAINING)).expect("preset");

    // An uninterrupted run measures how long a run lasts here (its preprocessing cache is then
    // removed, so the first killed run preprocesses again and can be killed doing it).
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let output = train_command(&config, &task, &reference, false)
        .output()
        .expect("runs");
    let run_length = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(history_len(&reference), EPOCHS);
    std::fs::remove_dir_all(task.join(".mvl")).expect("cache removed");

    let mut rng = Rng::new(SEED);
    for trial in 0..TRIALS {
        let run = dir.path().join(format!("run-{trial}"));
        let kill_after = run_length.mul_f64(rng.uniform());
        let mut child = train_command(&config, &task, &run, false)
            .spawn()
            .expect("starts");
        std::thread::sleep(kill_after);
        // SIGKILL; the child may already have finished, which is a valid moment too.
        let _ = child.kill();
        let _ = child.wait();
        let context = format!("trial {trial}, killed after {kill_after:?} of a {run_length:?} run");
        // Where the kill landed, for the log (what is asserted holds wherever it lands).
        let epochs_done = std::fs::read_to_string(run.join("history.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.as_array().map(Vec::len));
        eprintln!(
            "{context}: best/ {}, last/ {}, best.old {}, last.partial {}, epochs in history {epochs_done:?}",
            run.join("best").exists(),
            run.join("last").exists(),
            run.join("best.old").exists(),
            run.join("last.partial").exists(),
        );
        assert_whole_or_absent(&run.join("best"), &context);
        assert_whole_or_absent(&run.join("last"), &context);
        assert_json_files_parse(&run, &context);

        let output = train_command(&config, &task, &run, true)
            .output()
            .expect("resumes");
        assert!(
            output.status.success(),
            "{context}: --resume failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            history_len(&run),
            EPOCHS,
            "{context}: the resumed run finishes every epoch"
        );
        for folder in ["best", "last"] {
            assert!(
                run.join(folder).is_dir(),
                "{context}: no {folder}/ after resuming"
            );
            assert_whole_or_absent(&run.join(folder), &context);
        }
        assert!(!run.join("last.partial").exists() && !run.join("best.partial").exists());
    }
}
