//! Faults become messages, and nothing the user made is lost: a disk that fills up while a
//! label, `reviews.json` or a checkpoint is written (a 64 KiB tmpfs when the tests run as root,
//! as in CI; otherwise an injected `ENOSPC` writer), a scan removed from a task, and a model too
//! large for the memory budget, refused before anything is allocated. A training run that stops
//! on such an error resumes once the cause is fixed.

use engine::data::{PreprocessOptions, ReviewSheet, ReviewState, open_task, preprocess_task};
use engine::volume::{read_nifti, write_atomically, write_u8_label_like};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::mvl;

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A small tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "64k") on `dir`; `None` where mounting is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(dir)])
            .output()
            .ok()?;
        status.status.success().then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let output = Command::new("mount")
            .args(["-o", &format!("remount,size={size}"), s(&self.0)])
            .output()
            .expect("mount runs");
        assert!(output.status.success(), "remount: {output:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

fn hidden_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("lists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

fn phantom_task(root: &Path, size: &str, cases: &str) -> PathBuf {
    let task = root.join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        s(&task),
        "--cases",
        cases,
        "--test-cases",
        "0",
        "--size",
        size,
        "--seed",
        "7",
    ]);
    assert!(ok, "{text}");
    task
}

fn write_label(path: &Path, scan: &Path, value: u8) -> Result<(), String> {
    let image = read_nifti(scan).map_err(|e| e.to_string())?;
    let shape = image.volume.shape();
    let voxels = vec![value; shape.iter().product()];
    write_u8_label_like(
        path,
        shape,
        &image.header.world_from_voxel_mm(),
        &voxels,
        &image.header,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn a_full_disk_while_saving_is_a_message_and_keeps_the_previous_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), "96,96,48", "1");
    let scan = open_task(&task).expect("task").training[0].image.clone();
    let small_scan = {
        let small = phantom_task(&dir.path().join("small"), "8,8,8", "1");
        open_task(&small).expect("task").training[0].image.clone()
    };
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "64k") else {
        // Not root: the same promise through an injected "No space left on device".
        eprintln!("tmpfs cannot be mounted here; injecting ENOSPC instead");
        let path = dir.path().join("reviews.json");
        ReviewSheet::new("old").save(&path).expect("first save");
        let error =
            write_atomically(&path, |_| Err(std::io::Error::from_raw_os_error(28))).expect_err("full");
        assert!(engine::fault::describe(&error).contains("free some space"));
        assert_eq!(
            ReviewSheet::load(&path).expect("reads").map(|s| s.task),
            Some("old".into())
        );
        return;
    };
    let folder = disk.0.clone();

    // A label that fits, then one that does not (96×96×48 bytes > 64 KiB, stored uncompressed).
    let label = folder.join("case_000.nii");
    write_label(&label, &small_scan, 1).expect("a small label fits");
    let before = std::fs::read(&label).expect("reads");
    let message = write_label(&label, &scan, 2).expect_err("the disk is full");
    assert!(message.contains("case_000.nii"), "names the file: {message}");
    assert!(message.contains("free some space"), "says what to do: {message}");
    assert_eq!(
        std::fs::read(&label).expect("reads"),
        before,
        "the previous label is intact"
    );
    assert!(
        hidden_leftovers(&folder).is_empty(),
        "temporaries removed: {:?}",
        hidden_leftovers(&folder)
    );

    // reviews.json: a small sheet, then one too large for what is left.
    let reviews = folder.join("reviews.json");
    let mut sheet = ReviewSheet::new("task");
    sheet.review_mut("case_000").state = ReviewState::Accepted;
    sheet.save(&reviews).expect("a small sheet fits");
    let mut big = sheet.clone();
    big.review_mut("case_001").comment = "x".repeat(200_000);
    let message = big.save(&reviews).expect_err("the disk is full").to_string();
    assert!(
        message.contains("reviews.json") && message.contains("free some space"),
        "{message}"
    );
    assert_eq!(
        ReviewSheet::load(&reviews).expect("reads"),
        Some(sheet),
        "the previous sheet is intact"
    );
    assert!(hidden_leftovers(&folder).is_empty());
}

const TRAINING: &str = "epochs = 2\nbatch_size = 2\nlearning_rate = 2e-3\nlast_save_interval_secs = 0";

fn train(config: &Path, task: &Path, run: &Path, resume: bool, budget: Option<&str>) -> Output {
    let mvl = env!("CARGO_BIN_EXE_mvl-under-test");
    let mut command = tests::train_command(mvl, budget, config, task, run, resume);
    command.output().expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
}

fn history_len(run: &Path) -> usize {
    std::fs::read_to_string(run.join("history.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn a_training_run_on_a_full_disk_stops_with_a_message_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), "16,16,8", "6");
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tests::tiny_preset("medvisionllama", 0.0, TRAINING)).expect("preset");
    let Some(disk) = Tmpfs::mount(&dir.path().join("runs"), "32k") else {
        eprintln!("tmpfs cannot be mounted here; the full-disk training case needs root");
        return;
    };
    let run = disk.0.join("run");
    let output = train(&config, &task, &run, false, None);
    assert!(!output.status.success(), "a full disk stops the run");
    let message = stderr(&output);
    assert!(message.contains("free some space"), "says what to do: {message}");
    assert!(message.contains(s(&run)), "names the file: {message}");
    // What is there is whole: no half-written checkpoint under its final name.
    for folder in ["best", "last"] {
        let path = run.join(folder);
        if path.exists() {
            engine::checkpoint::read_checkpoint_config(&path).expect("a complete checkpoint");
        }
    }
    // Space is freed: the run resumes and finishes.
    disk.resize("64m");
    let output = train(&config, &task, &run, true, None);
    assert!(output.status.success(), "--resume finishes: {}", stderr(&output));
    assert_eq!(history_len(&run), 2);
    assert!(run.join("last").join("state.json").is_file());
}

#[test]
fn a_scan_removed_from_an_open_task_is_named_and_training_resumes_once_it_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task_dir = phantom_task(dir.path(), "16,16,8", "6");
    let task = open_task(&task_dir).expect("task");
    let scan = task.training[1].image.clone();
    let kept = dir.path().join("kept.nii.gz");
    std::fs::rename(&scan, &kept).expect("moved away");
    let name = scan.file_name().expect("name").to_string_lossy().into_owned();

    let options = PreprocessOptions {
        size: [16, 16, 8],
        channels: None,
    };
    let message = preprocess_task(&task, &dir.path().join("cache"), &options)
        .expect_err("a scan is missing")
        .to_string();
    assert!(message.contains(&name), "names the scan: {message}");
    assert!(
        message.contains("moved or deleted") || message.contains("restore it"),
        "says what to do: {message}"
    );

    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tests::tiny_preset("medvisionllama", 0.0, TRAINING)).expect("preset");
    let run = dir.path().join("run");
    let output = train(&config, &task_dir, &run, false, None);
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&name), "{}", stderr(&output));
    std::fs::rename(&kept, &scan).expect("put back");
    let output = train(&config, &task_dir, &run, true, None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(history_len(&run), 2);
}

#[test]
fn a_model_beyond_the_memory_budget_is_refused_before_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), "16,16,8", "6");
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, tests::tiny_preset("medvisionllama", 0.0, TRAINING)).expect("preset");
    let run = dir.path().join("run");
    // A child process: the budget override is process-wide.
    let output = train(&config, &task, &run, false, Some("16K"));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("memory budget of"), "{message}");
    assert!(
        message.contains("--max-volume-bytes"),
        "says how to raise it: {message}"
    );
    assert!(message.contains("tiny.toml"), "names the preset: {message}");
    assert!(!run.join("last").exists() && !run.join("best").exists());
    // With the default budget the same preset trains.
    let output = train(&config, &task, &run, false, None);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_dicom_series_beyond_the_memory_budget_is_refused_before_allocating() {
    let series = tests::fixtures_dir().join("dicom").join("axial");
    let info = |budget: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mvl-under-test"));
        if let Some(bytes) = budget {
            command.args(["--max-volume-bytes", bytes]);
        }
        command.args(["info", s(&series)]).output().expect("runs")
    };
    let output = info(Some("64"));
    assert!(!output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("axial"), "names the series: {message}");
    assert!(message.contains("memory budget of"), "{message}");
    assert!(
        message.contains("--max-volume-bytes"),
        "says how to raise it: {message}"
    );
    let output = info(None);
    assert!(output.status.success(), "{}", stderr(&output));
}
