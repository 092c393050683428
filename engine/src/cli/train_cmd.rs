//! `mvl train`, `mvl eval` and `mvl compare`.

use super::model_cmd::load_config;
use super::output::Output;
use crate::device::{AutodiffJob, BackendJob, DeviceKind, choose_device, dispatch, dispatch_autodiff, guard};
use crate::model::{EngineAutodiffBackend, EngineBackend};
use crate::train::{self, EvalReport, Subset, TrainEvent, TrainOptions, TrainSummary, TrainingConfig};
use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

/// Width of the text progress bar.
const BAR_WIDTH: usize = 24;

fn format_eta(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// A training run on the chosen backend.
pub(super) struct TrainJob(pub(super) TrainOptions);

impl AutodiffJob for TrainJob {
    type Output = anyhow::Result<(TrainSummary, Vec<String>)>;
    fn run<B: EngineAutodiffBackend>(self, device: B::Device) -> Self::Output {
        let stop = AtomicBool::new(false);
        let mut lines = Vec::new();
        let mut last_dice = f64::NAN;
        let mut on_event = |event: TrainEvent| {
            let mut stderr = std::io::stderr().lock();
            match &event {
                TrainEvent::Started {
                    train_cases,
                    val_cases,
                    first_epoch,
                    epochs,
                    llm_weights,
                } => {
                    let _ = writeln!(
                        stderr,
                        "LLM weights: {llm_weights}\ntraining on {train_cases} cases, validating on {val_cases}; epochs {first_epoch}–{epochs}"
                    );
                }
                TrainEvent::Progress {
                    epoch,
                    step,
                    steps,
                    loss,
                    eta_secs,
                } => {
                    let filled = BAR_WIDTH * step / steps.max(&1);
                    let bar: String = "=".repeat(filled) + &" ".repeat(BAR_WIDTH - filled);
                    // No validation yet (or none defined): a dash, not NaN.
                    let dice = if last_dice.is_nan() {
                        "—".to_string()
                    } else {
                        format!("{last_dice:.4}")
                    };
                    let _ = write!(
                        stderr,
                        "\repoch {epoch:>3} [{bar}] step {step}/{steps} loss {loss:.4} val Dice {dice} ETA {}   ",
                        format_eta(*eta_secs)
                    );
                }
                TrainEvent::Epoch {
                    epoch,
                    train_loss,
                    val_dice,
                    val_dice_per_class,
                    learning_rate,
                    seconds,
                } => {
                    last_dice = *val_dice;
                    let _ = writeln!(stderr);
                    let classes: Vec<String> = val_dice_per_class.iter().map(|d| format!("{d:.3}")).collect();
                    lines.push(format!(
                        "epoch {epoch:>3}: train loss {train_loss:.4}, val Dice {val_dice:.4} (per class {}), lr {learning_rate:.2e} ({seconds:.1} s)",
                        classes.join(" / ")
                    ));
                }
                TrainEvent::RolledBack { .. } => {
                    if let Some(line) = event.rollback_line() {
                        let _ = writeln!(stderr, "\n{line}");
                        lines.push(line);
                    }
                }
                TrainEvent::CheckpointSaved { path, val_dice } => {
                    let _ = writeln!(stderr, "saved {} (val Dice {val_dice:.4})", path.display());
                }
                TrainEvent::Finished { .. } => {}
            }
        };
        let summary = train::train::<B>(&self.0, &device, &stop, &mut on_event)?;
        Ok((summary, lines))
    }
}

/// Options of `mvl train` as parsed.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    /// Preset.
    pub config: PathBuf,
    /// Task folder.
    pub data: PathBuf,
    /// Fold.
    pub fold: usize,
    /// Few-shot fraction.
    pub fraction: Option<f64>,
    /// Few-shot count.
    pub cases: Option<usize>,
    /// Train on the cases with a corrected label, using those labels.
    pub corrected: bool,
    /// Let corrected cases be held-out test cases (left out of test reports).
    pub allow_test_cases: bool,
    /// Run folder (`None`: the next free one in the task's runs folder).
    pub out: Option<PathBuf>,
    /// Resume from out/last.
    pub resume: bool,
    /// Override epochs.
    pub epochs: Option<usize>,
    /// Override the training seed.
    pub seed: Option<u64>,
    /// LLM folder.
    pub llm: Option<PathBuf>,
    /// LLM layer.
    pub layer: Option<usize>,
    /// Start from this checkpoint (fine-tuning).
    pub init_from: Option<PathBuf>,
    /// Device.
    pub device: Option<DeviceKind>,
    /// Precision of the frozen block (`None`: the preset's).
    pub dtype: Option<crate::device::Precision>,
}

/// Builds the engine's options from the CLI's.
pub fn train_options(args: &TrainArgs) -> anyhow::Result<TrainOptions> {
    let model = load_config(&args.config, args.llm.clone(), args.layer)?;
    let mut training = TrainingConfig::from_file(&args.config)?;
    if args.init_from.is_some() {
        // Fine-tuning: the preset's fine-tuning epochs and learning rate, as the app does.
        training = training.for_fine_tuning();
    }
    if let Some(epochs) = args.epochs {
        training.epochs = epochs;
    }
    if let Some(seed) = args.seed {
        training.seed = seed;
    }
    if let Some(dtype) = args.dtype {
        training.dtype = dtype;
    }
    let (subset, label_overrides) = if args.corrected {
        if args.fraction.is_some() || args.cases.is_some() {
            anyhow::bail!("give --corrected alone: it trains on the corrected cases, not a few-shot part");
        }
        let overrides = crate::data::corrected_labels(&args.data);
        if overrides.is_empty() {
            anyhow::bail!(
                "{}: no corrected labels; --corrected trains on the cases with a file <case id>.nii.gz in this folder (save corrections there from the app first)",
                args.data.join(crate::data::CORRECTED_FOLDER).display()
            );
        }
        (Subset::Ids(overrides.keys().cloned().collect()), overrides)
    } else {
        let subset = match (args.fraction, args.cases) {
            (Some(_), Some(_)) => anyhow::bail!("give --fraction or --cases, not both"),
            (Some(f), None) => Subset::Fraction(f),
            (None, Some(n)) => Subset::Cases(n),
            (None, None) => Subset::All,
        };
        (subset, Default::default())
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = crate::train::runs::run_stem(&model.name, &subset, args.fold);
        crate::train::runs::next_run_folder(&crate::train::runs::task_runs_folder(&args.data), &stem)
    });
    Ok(TrainOptions {
        model,
        training,
        data: args.data.clone(),
        fold: args.fold,
        subset,
        out,
        resume: args.resume,
        init_from: args.init_from.clone(),
        label_overrides,
        allow_test_cases: args.allow_test_cases,
    })
}

pub(super) fn device_kind(requested: Option<DeviceKind>) -> anyhow::Result<(DeviceKind, String)> {
    let choice = choose_device(requested).map_err(anyhow::Error::msg)?;
    Ok((choice.kind, choice.reason))
}

/// `mvl train`.
pub fn train(output: &mut Output, args: TrainArgs) -> anyhow::Result<ExitCode> {
    let options = train_options(&args)?;
    let (kind, reason) = device_kind(args.device)?;
    output.line(format!("device: {reason}"));
    let out = options.out.clone();
    if args.out.is_none() {
        output.line(format!("run folder: {}", out.display()));
    }
    if !options.label_overrides.is_empty() {
        output.line(format!(
            "corrected labels: {} case(s) from {}",
            options.label_overrides.len(),
            args.data.join(crate::data::CORRECTED_FOLDER).display()
        ));
    }
    let (summary, lines) = guard(kind, || dispatch_autodiff(kind, TrainJob(options))).map_err(|fault| {
        anyhow::anyhow!(
            "{fault}. The run stopped; {} holds its last finished epoch: continue with the same command and --resume",
            out.join("last").display()
        )
    })??;
    lines.into_iter().for_each(|l| output.line(l));
    output.line(format!(
        "best validation Dice {:.4} after {} epoch(s){}; run folder {}",
        summary.best_val_dice,
        summary.epochs_completed,
        if summary.stopped { " (stopped)" } else { "" },
        out.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// One line of `mvl runs --json`.
#[derive(serde::Serialize)]
struct RunLine {
    name: String,
    checkpoint: PathBuf,
    /// The validation Dice and epoch its best checkpoint records (absent if unreadable).
    best_val_dice: Option<f64>,
    epoch: Option<u64>,
}

/// `mvl runs`.
pub fn runs(output: &mut Output, data: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let folder = crate::train::runs::task_runs_folder(data);
    let lines: Vec<RunLine> = crate::train::runs::list_runs(&folder)
        .into_iter()
        .map(|run| {
            let training = std::fs::read_to_string(run.checkpoint.join("checkpoint.json"))
                .ok()
                .and_then(|text| serde_json::from_str::<crate::checkpoint::CheckpointMeta>(&text).ok())
                .map(|meta| meta.training)
                .unwrap_or_default();
            RunLine {
                name: run.name,
                checkpoint: run.checkpoint,
                best_val_dice: training["val_dice"].as_f64(),
                epoch: training["epoch"].as_u64(),
            }
        })
        .collect();
    if json {
        output.json(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    if lines.is_empty() {
        output.line(format!(
            "no runs with a best checkpoint in {} (train with `mvl train` without --out, or from the app)",
            folder.display()
        ));
    }
    for line in &lines {
        let dice = line
            .best_val_dice
            .map_or_else(|| "—".to_string(), |d| format!("{d:.4}"));
        let epoch = line.epoch.map_or_else(String::new, |e| format!(" (epoch {e})"));
        output.line(format!(
            "{:<36} best val Dice {dice}{epoch}  {}",
            line.name,
            line.checkpoint.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Evaluates a run (for `mvl eval` and `mvl cv`).
pub(super) struct EvalJob {
    run: PathBuf,
    split: String,
    tolerance_mm: f64,
}

impl EvalJob {
    /// The validation evaluation at the default NSD tolerance.
    pub(super) fn val(run: PathBuf) -> Self {
        Self {
            run,
            split: "val".into(),
            tolerance_mm: crate::metrics::DEFAULT_TOLERANCE_MM,
        }
    }
}

impl BackendJob for EvalJob {
    type Output = anyhow::Result<EvalReport>;
    fn run<B: EngineBackend>(self, device: B::Device) -> Self::Output {
        Ok(train::evaluate_run::<B>(
            &self.run,
            &self.split,
            self.tolerance_mm,
            &device,
        )?)
    }
}

/// `mvl eval`.
pub fn eval(
    output: &mut Output,
    run: PathBuf,
    split: String,
    tolerance_mm: f64,
    device: Option<DeviceKind>,
) -> anyhow::Result<ExitCode> {
    let (kind, reason) = device_kind(device)?;
    output.line(format!("device: {reason}"));
    let report = guard(kind, || {
        dispatch(
            kind,
            EvalJob {
                run: run.clone(),
                split: split.clone(),
                tolerance_mm,
            },
        )
    })??;
    output.line(format!("LLM weights: {}", report.llm_weights));
    output.line(format!(
        "{:<16} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
        "case", "class", "Dice", "Jaccard", "sens", "spec", "HD95 mm", "NSD"
    ));
    let show = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"));
    for row in &report.rows {
        output.line(format!(
            "{:<16} {:>5} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
            row.case,
            row.class,
            show(row.dice),
            show(row.jaccard),
            show(row.sensitivity),
            show(row.specificity),
            show(row.hd95_mm),
            show(row.nsd)
        ));
    }
    // Means per class; a class absent from both prediction and ground truth of a case is left
    // out of its means.
    let mut classes: Vec<u32> = report.rows.iter().map(|r| r.class).collect();
    classes.dedup();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let rows: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.class == class && !r.both_empty)
            .collect();
        let flagged = report
            .rows
            .iter()
            .filter(|r| r.class == class && r.both_empty)
            .count();
        output.line(format!(
            "class {class} ({}): {} case(s){}",
            report
                .label_names
                .get(&class)
                .map_or("other label", String::as_str),
            rows.len(),
            if flagged > 0 {
                format!(", {flagged} without it in prediction and ground truth (left out)")
            } else {
                String::new()
            }
        ));
        for metric in train::evaluate::METRICS {
            let values: Vec<f64> = rows.iter().filter_map(|r| r.metric(metric)).collect();
            let stats = crate::metrics::mean_sd(&values);
            output.line(format!(
                "  mean {metric:<12} {:.4} ± {:.4} (n = {})",
                stats.mean, stats.sd, stats.count
            ));
        }
    }
    if !report.excluded.is_empty() {
        output.line(format!(
            "left out: {} (held-out test cases this run trained on)",
            report.excluded.join(", ")
        ));
    }
    output.line(format!(
        "wrote {} and .csv",
        run.join(format!("eval_{split}.json")).display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn read_report(path: &Path) -> anyhow::Result<EvalReport> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (run `mvl eval` first)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an evaluation report", path.display()))
}

/// One comparison row against the first run, as `mvl compare --json` prints it.
#[derive(serde::Serialize)]
struct CompareJsonRow<'a> {
    /// The run compared with the first.
    against: &'a Path,
    #[serde(flatten)]
    row: &'a train::CompareRow,
}

/// `mvl compare`: the first run against each of the others, paired by case and class, in one
/// table (mean ± SD per run, and each other run's p-values against the first).
pub fn compare(
    output: &mut Output,
    runs: Vec<PathBuf>,
    split: String,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if runs.len() < 2 {
        anyhow::bail!("give at least two run folders to compare");
    }
    let name = format!("eval_{split}.json");
    let reports = runs
        .iter()
        .map(|run| read_report(&run.join(&name)))
        .collect::<anyhow::Result<Vec<EvalReport>>>()?;
    let tables: Vec<Vec<train::CompareRow>> = reports[1..]
        .iter()
        .map(|other| train::compare_runs(&reports[0], other))
        .collect();
    if json {
        let rows: Vec<CompareJsonRow> = tables
            .iter()
            .zip(&runs[1..])
            .flat_map(|(table, run)| table.iter().map(move |row| CompareJsonRow { against: run, row }))
            .collect();
        output.json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let letter = |i: usize| char::from(b'A' + (i % 26) as u8);
    for (i, (run, report)) in runs.iter().zip(&reports).enumerate() {
        output.line(format!(
            "{} = {} (LLM weights: {})",
            letter(i),
            run.display(),
            report.llm_weights
        ));
    }
    let mut header = format!("{:>5} {:<12} {:>4} {:>16}", "class", "metric", "n", "A mean ± SD");
    for i in 1..runs.len() {
        header.push_str(&format!(
            " {:>16} {:>9} {:>9}",
            format!("{} mean ± SD", letter(i)),
            "t-test p",
            "Wilcoxon"
        ));
    }
    output.line(header);
    let p = |v: Option<f64>| {
        v.map_or_else(
            || "—".to_string(),
            |p| format!("{p:.4}{}", if p < 0.05 { "*" } else { "" }),
        )
    };
    for (index, first) in tables[0].iter().enumerate() {
        // Every table pairs A with one other run; n is A's pairs with B (the first other run).
        let mut line = format!(
            "{:>5} {:<12} {:>4} {:>16}",
            first.class,
            first.metric,
            first.cases,
            format!("{:.4} ± {:.4}", first.a_mean, first.a_sd)
        );
        for table in &tables {
            match table.get(index) {
                Some(row) => line.push_str(&format!(
                    " {:>16} {:>9} {:>9}",
                    format!("{:.4} ± {:.4}", row.b_mean, row.b_sd),
                    p(row.t_test_p),
                    p(row.wilcoxon_p)
                )),
                None => line.push_str(&format!(" {:>16} {:>9} {:>9}", "—", "—", "—")),
            }
        }
        output.line(line);
    }
    output.line("* p < 0.05 (paired with A, two-tailed)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(data: &Path, corrected: bool, cases: Option<usize>) -> TrainArgs {
        TrainArgs {
            config: Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo-cpu.toml"),
            data: data.to_path_buf(),
            fold: 0,
            fraction: None,
            cases,
            corrected,
            allow_test_cases: false,
            out: Some(data.join("run")),
            resume: false,
            epochs: None,
            seed: None,
            llm: None,
            layer: None,
            init_from: None,
            device: None,
            dtype: None,
        }
    }

    #[test]
    fn corrected_trains_on_the_corrected_cases_with_their_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let message = train_options(&args(dir.path(), true, None))
            .expect_err("nothing corrected yet")
            .to_string();
        assert!(message.contains(crate::data::CORRECTED_FOLDER), "{message}");
        let folder = dir.path().join(crate::data::CORRECTED_FOLDER);
        std::fs::create_dir_all(&folder).expect("folder");
        for name in ["b.nii", "a.nii.gz"] {
            std::fs::write(folder.join(name), b"").expect("write");
        }
        let options = train_options(&args(dir.path(), true, None)).expect("valid");
        assert_eq!(options.subset, Subset::Ids(vec!["a".into(), "b".into()]));
        assert_eq!(
            options.label_overrides.get("b").map(PathBuf::as_path),
            Some(folder.join("b.nii").as_path())
        );
        assert!(train_options(&args(dir.path(), true, Some(2))).is_err());
        assert!(
            train_options(&args(dir.path(), false, None))
                .expect("valid")
                .label_overrides
                .is_empty()
        );
        let parse = |extra: &[&str]| {
            let base = ["mvl", "train", "--config", "c.toml", "--data", "d", "--out", "o"];
            super::super::Cli::try_parse_from(base.iter().chain(extra)).is_ok()
        };
        assert!(parse(&["--corrected"]));
        assert!(
            !parse(&["--corrected", "--cases", "2"]),
            "--corrected excludes few-shot"
        );
    }
}
