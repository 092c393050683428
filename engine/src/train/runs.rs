//! Run folders, shared by the app's training panel and the CLI: the next free numbered folder
//! for a new run, and the finished runs that have a best checkpoint.

use super::selection::Subset;
use std::path::{Path, PathBuf};

/// The folder in a task that holds what the app and `mvl` write for it (runs, predictions,
/// autosaves), beside the task's own `imagesTr/` and `labelsTr/`.
pub const APP_FOLDER: &str = ".medvisionllama";

/// Where a task's runs live: the app's training panel writes and lists them there, and so does
/// `mvl train` when given no `--out`.
pub fn task_runs_folder(task: &Path) -> PathBuf {
    task.join(APP_FOLDER).join("runs")
}

/// The name of a run's folder before its number: the preset's name and what the run trains on
/// (`fold0`, `3shot-fold0`, `25pct-fold0`, `corrected`).
pub fn run_stem(preset: &str, subset: &Subset, fold: usize) -> String {
    let what = match subset {
        Subset::All => format!("fold{fold}"),
        Subset::Cases(n) => format!("{n}shot-fold{fold}"),
        Subset::Fraction(f) => format!("{}pct-fold{fold}", (f * 100.0).round()),
        Subset::Ids(_) => "corrected".to_string(),
    };
    format!("{preset}-{what}")
}

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

    #[test]
    fn run_stems_name_the_preset_and_what_it_trains_on() {
        assert_eq!(run_stem("demo-cpu", &Subset::All, 2), "demo-cpu-fold2");
        assert_eq!(run_stem("demo-cpu", &Subset::Cases(3), 0), "demo-cpu-3shot-fold0");
        assert_eq!(run_stem("paper", &Subset::Fraction(0.25), 1), "paper-25pct-fold1");
        assert_eq!(
            run_stem("paper", &Subset::Ids(vec!["a".into()]), 1),
            "paper-corrected"
        );
        assert_eq!(
            task_runs_folder(Path::new("/data/Task09")),
            Path::new("/data/Task09/.medvisionllama/runs")
        );
    }
}
