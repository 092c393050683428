//! Run folders, shared by the app's training panel and the CLI: the next free numbered folder
//! for a new run, and the finished runs that have a best checkpoint.

use std::path::{Path, PathBuf};

/// `<runs>/<stem>-NNN` with the first number whose folder (and `.partial` twin) does not exist.
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

/// The runs in `runs` that have a best checkpoint (`best/checkpoint.json`), newest first (ties
/// by name); empty when the folder does not exist.
pub fn list_runs(runs: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, RunEntry)> = entries
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
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    found.into_iter().map(|(_, run)| run).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_take_the_next_free_number_and_only_finished_runs_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = next_run_folder(dir.path(), "demo-cpu-fold0");
        assert_eq!(first, dir.path().join("demo-cpu-fold0-001"));
        std::fs::create_dir_all(first.join("best")).expect("mkdir");
        std::fs::write(first.join("best").join("checkpoint.json"), "{}").expect("write");
        std::fs::create_dir_all(dir.path().join("demo-cpu-fold0-002.partial")).expect("mkdir");
        assert_eq!(
            next_run_folder(dir.path(), "demo-cpu-fold0"),
            dir.path().join("demo-cpu-fold0-003")
        );
        // The .partial folder has no best checkpoint: only the first run is listed.
        let runs = list_runs(dir.path());
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].name, "demo-cpu-fold0-001");
        assert_eq!(runs[0].checkpoint, first.join("best"));
        assert!(list_runs(&dir.path().join("missing")).is_empty());
    }
}
