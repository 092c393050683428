//! Where runs live in a task; the folder rules themselves (next free number, runs with a best
//! checkpoint) are the engine's, shared with the CLI.

use crate::io::source::Source;
pub use engine::train::runs::{RunEntry, next_run_folder, run_stem, task_runs_folder};
use std::path::{Path, PathBuf};

/// The task folder of a source; training needs a task, not a single scan.
pub fn task_folder(source: &Source) -> Result<PathBuf, String> {
    crate::io::label_io::source_folder(source)
        .filter(|_| crate::io::label_io::is_task(source))
        .ok_or_else(|| "training and batch prediction need an MSD task folder, not a single scan".into())
}

/// The runs of a task (in its `.medvisionllama/runs/`, the app's and `mvl train`'s without
/// `--out`) that have a best checkpoint, newest first.
pub fn list_runs(task: &Path) -> Vec<RunEntry> {
    engine::train::runs::list_runs(&task_runs_folder(task))
}
