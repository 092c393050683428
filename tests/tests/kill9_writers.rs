//! `kill -9` at any moment while the app's files are being replaced: saving a label (`.nii`),
//! the autosave of an edit session (`.nii.gz`), `reviews.json`, and the preprocessing cache.
//! `writer-under-test` rewrites one of them in a loop through the engine's writers (the same
//! calls the app and `mvl train` make); it is killed with SIGKILL at seeded random moments, and
//! each time the file must be a complete version — the old one or the new one, never a mix or a
//! truncated file — and the next writer must succeed.
//!
//! The child says `ready` once its first version is complete, so there is always a version to
//! keep; the kill moments are drawn over several rewrites, and what is asserted does not depend
//! on where they land.

use engine::data::{PreprocessOptions, PreprocessedTask, ReviewSheet, open_task, preprocess_task};
use engine::rng::Rng;
use engine::volume::{read_nifti, write_u8_label_like};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::mvl;

const TRIALS: usize = 16;
const SEED: u64 = 0x6b39_7772;
/// Kill moments are drawn in [0, this) after `ready`: several rewrites of each file.
const KILL_WINDOW: Duration = Duration::from_millis(400);
/// Must match `writer_under_test.rs`.
const REVIEW_CASES: usize = 400;
const CACHE_GRIDS: [[usize; 3]; 2] = [[16, 16, 8], [8, 8, 4]];

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A phantom task; returns its folder and its first training image.
fn phantom_task(root: &Path, size: &str) -> (PathBuf, PathBuf) {
    let task = root.join("task");
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        s(&task),
        "--cases",
        "3",
        "--test-cases",
        "0",
        "--size",
        size,
        "--seed",
        "3",
    ]);
    assert!(ok, "{text}");
    let scan = open_task(&task).expect("task opens").training[0].image.clone();
    (task, scan)
}

/// Starts the writer, waits for its first complete version, kills it at a random moment.
fn kill_writer_at_random(args: &[&str], rng: &mut Rng) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_writer-under-test"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("writer starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads");
    assert_eq!(line.trim(), "ready", "the writer failed before its first version");
    let kill_after = KILL_WINDOW.mul_f64(rng.uniform());
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "the writer loops until killed");
    format!("{} killed {kill_after:?} after ready", args[0])
}

/// Every voxel is 1 (even generation) or every voxel is 2 (odd): a complete version.
fn assert_whole_label(path: &Path, shape: [usize; 3], context: &str) {
    let image = read_nifti(path).unwrap_or_else(|e| panic!("{context}: the label does not read: {e}"));
    assert_eq!(image.volume.shape(), shape, "{context}");
    let voxels = image.volume.voxels();
    let first = voxels[0];
    assert!(first == 1.0 || first == 2.0, "{context}: voxel value {first}");
    assert!(
        voxels.iter().all(|v| *v == first),
        "{context}: the label mixes two versions"
    );
}

fn label_trials(kind: &str, file: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    // Large enough that one write takes a while, so kills land inside writes too.
    let (_, scan) = phantom_task(dir.path(), "96,96,48");
    let shape = read_nifti(&scan).expect("scan").volume.shape();
    let target = dir.path().join(file);
    let mut rng = Rng::new(SEED ^ kind.len() as u64);
    for trial in 0..TRIALS {
        let context = kill_writer_at_random(&[kind, s(&target), s(&scan)], &mut rng);
        let context = format!("trial {trial}: {context}");
        assert_whole_label(&target, shape, &context);
    }
    // The next save replaces whatever the kills left.
    let status = Command::new(env!("CARGO_BIN_EXE_writer-under-test"))
        .args([kind, s(&target), "/nonexistent-scan.nii.gz"])
        .output()
        .expect("runs");
    assert!(!status.status.success(), "a failed save is reported");
    assert_whole_label(&target, shape, "after a failed save");
    // A successful save also clears the temporary files the killed writers left behind.
    let image = read_nifti(&scan).expect("scan");
    let ones = vec![1u8; shape.iter().product()];
    write_u8_label_like(
        &target,
        shape,
        &image.header.world_from_voxel_mm(),
        &ones,
        &image.header,
    )
    .expect("the next save succeeds");
    assert_whole_label(&target, shape, "after the next save");
    let folder = target.parent().expect("folder");
    let leftovers: Vec<String> = std::fs::read_dir(folder)
        .expect("folder lists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files of killed writers remain: {leftovers:?}"
    );
}

#[test]
fn a_label_being_saved_survives_sigkill_at_any_moment() {
    label_trials("label", "labelsCorrected/case_000.nii");
}

#[test]
fn an_autosave_survives_sigkill_at_any_moment() {
    label_trials("autosave", ".medvisionllama/autosave/case_000.nii.gz");
}

#[test]
fn reviews_json_survives_sigkill_at_any_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("reviews.json");
    let mut rng = Rng::new(SEED);
    for trial in 0..TRIALS {
        let context = kill_writer_at_random(&["reviews", s(&target), "-"], &mut rng);
        let context = format!("trial {trial}: {context}");
        let sheet = ReviewSheet::load(&target)
            .unwrap_or_else(|e| panic!("{context}: reviews.json is damaged: {e}"))
            .unwrap_or_else(|| panic!("{context}: reviews.json is gone"));
        let generation: usize = sheet
            .task
            .strip_prefix("generation ")
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("{context}: task {:?}", sheet.task));
        assert_eq!(
            sheet.cases.len(),
            REVIEW_CASES + generation % 2,
            "{context}: the sheet mixes two versions"
        );
        let stamp = format!("generation {generation}:");
        assert!(
            sheet.cases.values().all(|r| r.comment.starts_with(&stamp)),
            "{context}: comments from another version"
        );
    }
}

/// The manifest, when there is one, parses, and every case it lists loads on its grid.
fn assert_cache_consistent(out: &Path, context: &str) {
    if !out.join(engine::data::PREPROCESS_MANIFEST).exists() {
        return;
    }
    let manifest =
        PreprocessedTask::open(out).unwrap_or_else(|e| panic!("{context}: the manifest is damaged: {e}"));
    for case in &manifest.cases {
        let (image, label) = manifest
            .load(case)
            .unwrap_or_else(|e| panic!("{context}: {} does not load: {e}", case.id));
        assert_eq!(
            image.shape(),
            manifest.options.size,
            "{context}: {} is not on the manifest's grid",
            case.id
        );
        if let Some(label) = label {
            assert_eq!(
                label.shape(),
                manifest.options.size,
                "{context}: {} label",
                case.id
            );
        }
    }
}

#[test]
fn the_preprocessing_cache_survives_sigkill_at_any_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (task_dir, _) = phantom_task(dir.path(), "32,32,16");
    let out = dir.path().join("cache");
    let mut rng = Rng::new(SEED ^ 0xcac4e);
    let task = open_task(&task_dir).expect("task");
    for trial in 0..TRIALS {
        let context = kill_writer_at_random(&["cache", s(&task_dir), s(&out)], &mut rng);
        let context = format!("trial {trial}: {context}");
        assert_cache_consistent(&out, &context);
        // The next run (as training starts one) gives every case on its grid.
        for size in CACHE_GRIDS {
            let options = PreprocessOptions { size, channels: None };
            preprocess_task(&task, &out, &options)
                .unwrap_or_else(|e| panic!("{context}: preprocessing again fails: {e}"));
            assert_cache_consistent(&out, &context);
        }
    }
}
