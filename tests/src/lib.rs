//! Helpers shared by the end-to-end tests in `tests/tests/`: running the `mvl` CLI in-process
//! with its output captured, and locating the committed fixtures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The committed fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A `Write` that appends to a shared buffer, so a test can read what the CLI printed.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `mvl ARGS…` in-process; returns whether it succeeded and what it printed.
pub fn mvl(args: &[&str]) -> (bool, String) {
    let buffer = SharedBuffer::default();
    let mut output = engine::cli::Output::to_writer(Box::new(buffer.clone()));
    let code = engine::cli::run(std::iter::once("mvl").chain(args.iter().copied()), &mut output);
    drop(output);
    let text = buffer
        .0
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (code == ExitCode::SUCCESS, text)
}

/// Writes a phantom task of `cases` labelled 16³ cases (no test cases) with `seed` into
/// `root/task` through `mvl demo-data`, for the tiny presets of [`tiny_preset`]; returns its folder.
pub fn demo_task(root: &Path, cases: usize, seed: u64) -> PathBuf {
    let task = root.join("task");
    let (cases, seed) = (cases.to_string(), seed.to_string());
    let (ok, text) = mvl(&[
        "demo-data",
        "--out",
        task.to_str().expect("utf-8 temp path"),
        "--cases",
        &cases,
        "--test-cases",
        "0",
        "--size",
        "16,16,16",
        "--seed",
        &seed,
    ]);
    assert!(ok, "mvl demo-data: {text}");
    task
}

/// A tiny network preset for CLI tests (16³ input, 64 tokens, width 16, a 32-wide Llama-style
/// block): `kind` is "medvisionllama" or "vit-baseline", `training` the `[training]` table's
/// lines.
pub fn tiny_preset(kind: &str, dropout: f64, training: &str) -> String {
    format!(
        "[model]\nname = \"tiny\"\nkind = \"{kind}\"\nimage_size = [16, 16, 16]\npatch_size = 4\n\
         embed_dim = 16\ndecoder_depth = 1\nnum_heads = 2\nmlp_dim = 32\ndropout = {dropout:?}\n\n\
         [model.llm]\nhidden = 32\nheads = 2\nkv_heads = 1\nintermediate = 48\n\n[training]\n{training}\n"
    )
}

/// `<mvl> [--max-volume-bytes B] train --config C --data T --out R --device cpu [--resume]`: the
/// training command the fault and kill -9 tests run (`mvl` is the binary under test's path).
pub fn train_command(
    mvl: &str,
    budget: Option<&str>,
    config: &Path,
    task: &Path,
    run: &Path,
    resume: bool,
) -> Command {
    let mut command = Command::new(mvl);
    if let Some(bytes) = budget {
        command.args(["--max-volume-bytes", bytes]);
    }
    command
        .arg("train")
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(task);
    command.arg("--out").arg(run).args(["--device", "cpu"]);
    if resume {
        command.arg("--resume");
    }
    command
}
