//! Where runs live in a task and which of them have a best checkpoint.

use crate::io::label_io::APP_FOLDER;
use crate::io::source::Source;
use crate::model::run_state::RUNS_FOLDER;
use std::path::{Path, PathBuf};

/// The task folder of a source; training needs a task, not a single scan.
pub fn task_folder(source: &Source) -> Result<PathBuf, String> {
    crate::io::label_io::source_folder(source)
        .filter(|_| crate::io::label_io::is_task(source))
        .ok_or_else(|| "training and batch prediction need an MSD task folder, not a single scan".into())
}

/// `runs/<stem>-NNN` with the first number not taken.
pub fn next_run_folder(runs: &Path, stem: &str) -> PathBuf {
    (1..)
        .map(|n| runs.join(format!("{stem}-{n:03}")))
        .find(|path| !path.exists() && !path.with_extension("partial").exists())
        .unwrap_or_else(|| runs.join(stem))
}

/// A finished or stopped run with a best checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// The run folder's name.
    pub name: String,
    /// Its `best/` checkpoint.
    pub checkpoint: PathBuf,
}

/// The runs of a task that have a best checkpoint, newest first.
pub fn list_runs(task: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(task.join(APP_FOLDER).join(RUNS_FOLDER)) else {
        return Vec::new();
    };
    let mut runs: Vec<(std::time::SystemTime, RunEntry)> = entries
        .flatten()
        .filter_map(|entry| {
            let checkpoint = entry.path().join("best");
            let modified = std::fs::metadata(&checkpoint).ok()?.modified().ok()?;
            checkpoint.join("checkpoint.json").is_file().then(|| {
                (
                    modified,
                    RunEntry {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        checkpoint,
                    },
                )
            })
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    runs.into_iter().map(|(_, run)| run).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_take_the_next_free_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = next_run_folder(dir.path(), "demo-cpu-fold0");
        assert_eq!(first, dir.path().join("demo-cpu-fold0-001"));
        std::fs::create_dir_all(&first).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("demo-cpu-fold0-002.partial")).expect("mkdir");
        assert_eq!(
            next_run_folder(dir.path(), "demo-cpu-fold0"),
            dir.path().join("demo-cpu-fold0-003")
        );
    }
}
