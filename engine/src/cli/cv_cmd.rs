//! `mvl cv`: every fold of every preset, trained then evaluated on its validation cases,
//! skipping folds already done; one at a time in this process, `--parallel N` child processes
//! at once, or a Slurm job-array script (`--emit slurm`) with one fold × preset per task.
//! `mvl cv summarize DIR` gathers the finished folds.

use super::output::Output;
use super::train_cmd::{self, TrainArgs};
use crate::device::{DeviceKind, dispatch, dispatch_autodiff, guard};
use crate::train::cv::{CvSummary, fold_dir, is_complete, is_evaluated, preset_name, summarize};
use crate::train::evaluate::METRICS;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::Duration;

/// Options of `mvl cv` as parsed.
#[derive(Debug, Clone)]
pub struct CvArgs {
    /// Presets, compared against the first.
    pub configs: Vec<PathBuf>,
    /// The task folder.
    pub data: PathBuf,
    /// Number of folds.
    pub folds: usize,
    /// Parent of the run folders.
    pub out: PathBuf,
    /// Override the presets' epochs.
    pub epochs: Option<usize>,
    /// Few-shot fraction.
    pub fraction: Option<f64>,
    /// Device of every fold.
    pub device: Option<DeviceKind>,
    /// Folds run at once (child processes when above 1).
    pub parallel: usize,
    /// GPU indices handed round-robin to the child processes (`CUDA_VISIBLE_DEVICES`).
    pub gpus: Vec<String>,
    /// Write a job script instead of running ("slurm").
    pub emit: Option<String>,
    /// The `mvl` executable the children and scripts run (this one by default).
    pub mvl: Option<PathBuf>,
}

/// One fold of one preset.
struct FoldJob {
    preset: String,
    config: PathBuf,
    fold: usize,
    run: PathBuf,
}

fn jobs(args: &CvArgs) -> Vec<FoldJob> {
    args.configs
        .iter()
        .flat_map(|config| {
            (0..args.folds).map(move |fold| FoldJob {
                preset: preset_name(config),
                config: config.clone(),
                fold,
                run: fold_dir(&args.out, &preset_name(config), fold),
            })
        })
        .collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `mvl train` and `mvl eval` arguments of a fold. Runs always pass `--resume`: a fold cut
/// short (a killed process, a preempted job) continues where its `last/` checkpoint is.
fn fold_commands(job: &FoldJob, args: &CvArgs) -> [Vec<String>; 2] {
    let text = |p: &Path| absolute(p).to_string_lossy().into_owned();
    let mut train = vec![
        "train".to_string(),
        "--config".into(),
        text(&job.config),
        "--data".into(),
        text(&args.data),
        "--fold".into(),
        job.fold.to_string(),
        "--out".into(),
        text(&job.run),
        "--resume".into(),
    ];
    if let Some(epochs) = args.epochs {
        train.extend(["--epochs".into(), epochs.to_string()]);
    }
    if let Some(fraction) = args.fraction {
        train.extend(["--fraction".into(), fraction.to_string()]);
    }
    let mut eval = vec![
        "eval".to_string(),
        "--run".into(),
        text(&job.run),
        "--split".into(),
        "val".into(),
    ];
    if let Some(device) = args.device {
        let name = device.name();
        train.extend(["--device".into(), name.into()]);
        eval.extend(["--device".into(), name.into()]);
    }
    [train, eval]
}

fn mvl_executable(args: &CvArgs) -> anyhow::Result<PathBuf> {
    match &args.mvl {
        Some(path) => Ok(absolute(path)),
        None => std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot find the mvl executable: {e}; pass --mvl PATH")),
    }
}

/// Quotes a word for bash.
fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The Slurm job-array script: array task i runs fold job i.
fn slurm_script(args: &CvArgs, jobs: &[FoldJob], mvl: &Path) -> String {
    let array = |values: Vec<String>| values.iter().map(|v| quoted(v)).collect::<Vec<_>>().join(" ");
    let commands: Vec<[Vec<String>; 2]> = jobs.iter().map(|j| fold_commands(j, args)).collect();
    let train_lines = array(commands.iter().map(|[t, _]| t.join("\u{1f}")).collect());
    let eval_lines = array(commands.iter().map(|[_, e]| e.join("\u{1f}")).collect());
    let gres = if args.device == Some(DeviceKind::Cuda) {
        "#SBATCH --gres=gpu:1\n"
    } else {
        ""
    };
    let out = absolute(&args.out);
    format!(
        "#!/usr/bin/env bash\n\
         #SBATCH --job-name=mvl-cv\n\
         #SBATCH --array=0-{last}\n\
         {gres}#SBATCH --output={log}/slurm-%A_%a.log\n\
         # Written by `mvl cv --emit slurm`: array task i trains one fold of one preset, then\n\
         # evaluates it on its validation cases. Submit with `sbatch {script}`; when the array\n\
         # has finished, `mvl cv summarize {out_text}` gathers the folds. Re-submitting resumes\n\
         # unfinished folds from their last/ checkpoint.\n\
         set -euo pipefail\n\
         MVL=${{MVL:-{mvl}}}\n\
         TRAIN=({train_lines})\n\
         EVAL=({eval_lines})\n\
         i=\"${{SLURM_ARRAY_TASK_ID:?set by Slurm (sbatch --array)}}\"\n\
         IFS=$'\\x1f' read -r -a train_args <<< \"${{TRAIN[$i]}}\"\n\
         IFS=$'\\x1f' read -r -a eval_args <<< \"${{EVAL[$i]}}\"\n\
         \"$MVL\" \"${{train_args[@]}}\"\n\
         \"$MVL\" \"${{eval_args[@]}}\"\n",
        last = jobs.len().saturating_sub(1),
        log = out.display(),
        script = out.join("cv.slurm").display(),
        out_text = out.display(),
        mvl = quoted(&mvl.to_string_lossy()),
    )
}

/// `mvl cv`.
pub fn cv(output: &mut Output, args: CvArgs) -> anyhow::Result<ExitCode> {
    if args.configs.is_empty() {
        anyhow::bail!("give at least one --config");
    }
    let all = jobs(&args);
    std::fs::create_dir_all(&args.out).map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    if let Some(kind) = &args.emit {
        if kind != "slurm" {
            anyhow::bail!("--emit {kind}: the one script kind is slurm");
        }
        let path = args.out.join("cv.slurm");
        let script = slurm_script(&args, &all, &mvl_executable(&args)?);
        crate::volume::write_atomically(&path, |w| std::io::Write::write_all(w, script.as_bytes()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        output.line(format!(
            "wrote {} ({} array tasks: {} preset(s) × {} folds); submit it with `sbatch {}`",
            path.display(),
            all.len(),
            args.configs.len(),
            args.folds,
            path.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let (todo, done): (Vec<FoldJob>, Vec<FoldJob>) = all.into_iter().partition(|j| !is_evaluated(&j.run));
    for job in &done {
        output.line(format!(
            "{} fold {}: done already ({})",
            job.preset,
            job.fold,
            job.run.display()
        ));
    }
    let failures = if args.parallel <= 1 {
        run_here(output, &args, &todo)?
    } else {
        run_children(output, &args, &todo)?
    };
    let names: Vec<String> = args.configs.iter().map(|c| preset_name(c)).collect();
    let summary = summarize(&args.out, &names, Some(args.folds))?;
    print_summary(output, &summary);
    if failures > 0 {
        output.line(format!(
            "{failures} fold(s) failed; run the same command again to retry them"
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Trains and evaluates the folds one after the other in this process.
fn run_here(output: &mut Output, args: &CvArgs, todo: &[FoldJob]) -> anyhow::Result<usize> {
    let (kind, reason) = train_cmd::device_kind(args.device)?;
    output.line(format!("device: {reason}"));
    for job in todo {
        if !is_complete(&job.run) {
            let options = train_cmd::train_options(&TrainArgs {
                config: job.config.clone(),
                data: args.data.clone(),
                fold: job.fold,
                fraction: args.fraction,
                cases: None,
                corrected: false,
                allow_test_cases: false,
                out: Some(job.run.clone()),
                resume: true,
                epochs: args.epochs,
                seed: None,
                llm: None,
                layer: None,
                init_from: None,
                device: args.device,
                dtype: None,
            })?;
            let (summary, _) = guard(kind, || dispatch_autodiff(kind, train_cmd::TrainJob(options)))
                .map_err(|fault| {
                    anyhow::anyhow!(
                        "{fault}. {} stopped; running mvl cv again resumes it",
                        job.run.display()
                    )
                })??;
            output.line(format!(
                "{} fold {}: best val Dice {:.4} ({})",
                job.preset,
                job.fold,
                summary.best_val_dice,
                job.run.display()
            ));
        }
        guard(kind, || dispatch(kind, train_cmd::EvalJob::val(job.run.clone())))??;
    }
    Ok(0)
}

/// Runs the folds as child processes, `args.parallel` at a time; returns how many failed.
fn run_children(output: &mut Output, args: &CvArgs, todo: &[FoldJob]) -> anyhow::Result<usize> {
    const POLL: Duration = Duration::from_millis(200);
    let mvl = mvl_executable(args)?;
    let mut queue = todo.iter().enumerate();
    let mut running: Vec<(&FoldJob, Child)> = Vec::new();
    let mut failures = 0;
    loop {
        while running.len() < args.parallel {
            let Some((index, job)) = queue.next() else { break };
            let child = spawn_fold(&mvl, job, args, index)?;
            output.line(format!(
                "{} fold {}: started (log {})",
                job.preset,
                job.fold,
                log_path(job).display()
            ));
            running.push((job, child));
        }
        if running.is_empty() {
            return Ok(failures);
        }
        std::thread::sleep(POLL);
        let mut still = Vec::new();
        for (job, mut child) in running {
            match child.try_wait()? {
                None => still.push((job, child)),
                Some(status) if status.success() => {
                    output.line(format!(
                        "{} fold {}: done ({})",
                        job.preset,
                        job.fold,
                        job.run.display()
                    ));
                }
                Some(status) => {
                    failures += 1;
                    output.line(format!(
                        "{} fold {}: failed ({status}); see {}",
                        job.preset,
                        job.fold,
                        log_path(job).display()
                    ));
                }
            }
        }
        running = still;
    }
}

fn log_path(job: &FoldJob) -> PathBuf {
    job.run.with_extension("log")
}

/// One child: `sh -c 'mvl train … && mvl eval …'` (eval only after a successful training), its
/// output appended to the fold's log.
fn spawn_fold(mvl: &Path, job: &FoldJob, args: &CvArgs, index: usize) -> anyhow::Result<Child> {
    if let Some(parent) = job.run.parent() {
        std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(job))
        .map_err(|e| anyhow::anyhow!("{}: {e}", log_path(job).display()))?;
    let [train, eval] = fold_commands(job, args);
    let line = |words: &[String]| {
        std::iter::once(quoted(&mvl.to_string_lossy()))
            .chain(words.iter().map(|w| quoted(w)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{} && {}", line(&train), line(&eval)))
        .stdout(log.try_clone()?)
        .stderr(log);
    if !args.gpus.is_empty() {
        command.env("CUDA_VISIBLE_DEVICES", &args.gpus[index % args.gpus.len()]);
    }
    command
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", mvl.display()))
}

/// Prints a summary: val Dice per preset, then every other preset against the first.
pub fn print_summary(output: &mut Output, summary: &CvSummary) {
    output.line("");
    for preset in &summary.presets {
        let missing = if preset.missing.is_empty() {
            String::new()
        } else {
            format!("; folds {:?} not finished", preset.missing)
        };
        output.line(format!(
            "{:<24} best val Dice {:.4} ± {:.4} over {} fold(s){missing}",
            preset.preset, preset.val_dice.mean, preset.val_dice.sd, preset.val_dice.count
        ));
    }
    for comparison in &summary.comparisons {
        output.line(format!(
            "\n{} (A) vs {} (B), paired by validation case over all folds:",
            comparison.reference, comparison.other
        ));
        output.line(format!(
            "{:>5} {:<12} {:>5} {:>17} {:>17} {:>9} {:>9}",
            "class", "metric", "n", "A mean ± sd", "B mean ± sd", "t-test p", "Wilcoxon"
        ));
        let p = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |p| format!("{p:.4}"));
        for row in comparison
            .rows
            .iter()
            .filter(|r| METRICS.contains(&r.metric.as_str()))
        {
            output.line(format!(
                "{:>5} {:<12} {:>5} {:>8.4} ± {:<6.4} {:>8.4} ± {:<6.4} {:>9} {:>9}",
                row.class,
                row.metric,
                row.cases,
                row.a_mean,
                row.a_sd,
                row.b_mean,
                row.b_sd,
                p(row.t_test_p),
                p(row.wilcoxon_p)
            ));
        }
    }
}

/// `mvl cv summarize DIR`.
pub fn summarize_cmd(output: &mut Output, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let summary = summarize(dir, &[], None)?;
    if json {
        output.json(&summary)?;
    } else {
        print_summary(output, &summary);
        output.line(format!("wrote {}", dir.join("cv_summary.json").display()));
    }
    Ok(ExitCode::SUCCESS)
}
