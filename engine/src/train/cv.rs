//! Cross-validation folders: `OUT/<preset>/fold<k>/` per preset and fold, which of them are
//! complete, and the summary a researcher reports (best validation Dice per fold, mean ± SD per
//! preset, and the paper's Table-2 comparison of every preset against the first on the
//! out-of-fold validation cases).

use super::{CompareRow, EvalReport, RunInfo, TrainError, compare_runs};
use crate::metrics::{MeanSd, mean_sd};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The folder of one preset's fold.
pub fn fold_dir(out: &Path, preset: &str, fold: usize) -> PathBuf {
    out.join(preset).join(format!("fold{fold}"))
}

/// A preset's name: its file name without extension.
pub fn preset_name(config: &Path) -> String {
    config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "preset".into())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Whether a run folder holds a finished run: its `last/` state reached the epochs of its
/// `run.json` and a `best/` checkpoint exists.
pub fn is_complete(run: &Path) -> bool {
    let Some(info) = read_json::<RunInfo>(&run.join("run.json")) else {
        return false;
    };
    let completed = read_json::<serde_json::Value>(&run.join("last").join("state.json"))
        .and_then(|state| state.get("epochs_completed")?.as_u64())
        .unwrap_or(0);
    completed as usize >= info.training.epochs
        && run.join("best").join(crate::checkpoint::META_FILE).is_file()
}

/// Whether a finished run has its validation evaluation too.
pub fn is_evaluated(run: &Path) -> bool {
    is_complete(run) && run.join("eval_val.json").is_file()
}

/// One preset over its folds.
#[derive(Debug, Clone, Serialize)]
pub struct PresetSummary {
    /// Preset name.
    pub preset: String,
    /// (fold, best validation Dice) of every finished fold.
    pub folds: Vec<(usize, f64)>,
    /// Folds without a finished run.
    pub missing: Vec<usize>,
    /// Mean and SD of the best validation Dice over the finished folds.
    pub val_dice: MeanSd,
}

/// One comparison of the Table-2 kind.
#[derive(Debug, Clone, Serialize)]
pub struct PresetComparison {
    /// The reference preset (the first).
    pub reference: String,
    /// The other preset.
    pub other: String,
    /// Metric by metric and class, paired by case over every fold's validation cases.
    pub rows: Vec<CompareRow>,
}

/// `cv_summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CvSummary {
    /// Per preset, in the order given.
    pub presets: Vec<PresetSummary>,
    /// Every other preset against the first, where both have every fold evaluated.
    pub comparisons: Vec<PresetComparison>,
}

/// One more than the highest `fold<k>` folder in a preset's folder (0 when there is none).
fn folds_found(preset_dir: &Path) -> usize {
    std::fs::read_dir(preset_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_prefix("fold")?
                        .parse::<usize>()
                        .ok()
                })
                .map(|k| k + 1)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The best validation Dice a run reached (NaN when it has no finite one).
fn best_val_dice(run: &Path) -> f64 {
    read_json::<Vec<super::EpochRecord>>(&run.join("history.json"))
        .unwrap_or_default()
        .iter()
        .map(|r| r.val_dice)
        .filter(|d| d.is_finite())
        .fold(f64::NAN, f64::max)
}

/// Summarises `out` for `presets` (all sub-folders holding `fold<k>` folders when empty) and
/// `folds` folds (as many as found when `None`); writes `out/cv_summary.json`.
pub fn summarize(out: &Path, presets: &[String], folds: Option<usize>) -> Result<CvSummary, TrainError> {
    let mut names: Vec<String> = presets.to_vec();
    if names.is_empty() {
        let entries = std::fs::read_dir(out).map_err(|e| TrainError::File {
            path: out.to_path_buf(),
            reason: format!("{e}; give the folder `mvl cv --out` wrote"),
        })?;
        names = entries
            .filter_map(Result::ok)
            .filter(|e| folds_found(&e.path()) > 0)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
    }
    if names.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: no preset folders with fold<k>/ inside; run `mvl cv --out {}` first",
            out.display(),
            out.display()
        )));
    }
    let fold_count = |preset: &str| folds.unwrap_or_else(|| folds_found(&out.join(preset)));
    let mut summaries = Vec::new();
    let mut pooled: Vec<Option<EvalReport>> = Vec::new();
    for preset in &names {
        let (mut done, mut missing, mut reports) = (Vec::new(), Vec::new(), Vec::new());
        for fold in 0..fold_count(preset) {
            let run = fold_dir(out, preset, fold);
            if is_complete(&run) {
                done.push((fold, best_val_dice(&run)));
                reports.push(read_json::<EvalReport>(&run.join("eval_val.json")));
            } else {
                missing.push(fold);
            }
        }
        let dices: Vec<f64> = done.iter().map(|(_, d)| *d).filter(|d| d.is_finite()).collect();
        pooled.push(pool(&reports, missing.is_empty()));
        summaries.push(PresetSummary {
            preset: preset.clone(),
            val_dice: mean_sd(&dices),
            folds: done,
            missing,
        });
    }
    let mut comparisons = Vec::new();
    if let Some(Some(reference)) = pooled.first() {
        for (index, other) in pooled.iter().enumerate().skip(1) {
            if let Some(other) = other {
                comparisons.push(PresetComparison {
                    reference: names[0].clone(),
                    other: names[index].clone(),
                    rows: compare_runs(reference, other),
                });
            }
        }
    }
    let summary = CvSummary {
        presets: summaries,
        comparisons,
    };
    let path = out.join("cv_summary.json");
    let text = serde_json::to_vec_pretty(&summary).map_err(|e| TrainError::Invalid(e.to_string()))?;
    crate::volume::write_atomically(&path, |w| std::io::Write::write_all(w, &text)).map_err(|e| {
        TrainError::File {
            path,
            reason: e.to_string(),
        }
    })?;
    Ok(summary)
}

/// Every fold's validation rows in one report (each case is validated in exactly one fold), when
/// every fold is finished and evaluated.
fn pool(reports: &[Option<EvalReport>], all_folds_done: bool) -> Option<EvalReport> {
    if !all_folds_done || reports.is_empty() || reports.iter().any(Option::is_none) {
        return None;
    }
    let mut reports = reports.iter().flatten();
    let mut pooled = reports.next()?.clone();
    for report in reports {
        pooled.rows.extend(report.rows.iter().cloned());
    }
    Some(pooled)
}
