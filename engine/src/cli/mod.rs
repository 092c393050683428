//! The `mvl` command line, as a library module so that tests drive it in-process. It uses the
//! same engine API as the app.

mod args;
mod bench_cmd;
mod commands;
mod cv_cmd;
mod dicom_cmd;
mod metrics_cmd;
mod model_cmd;
mod output;
mod train_cmd;

pub use output::Output;

use crate::data::{LESION_RADIUS_MM, PhantomOptions, SplitOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// MedVisionLlama Studio command line: inspect volumes, make and check datasets, preprocess.
#[derive(Parser)]
#[command(name = "mvl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most bytes one decoded volume may take (e.g. 8G); larger files are refused before
    /// anything is allocated. Default: half the available memory, or $MVL_MAX_VOLUME_BYTES.
    #[arg(long, global = true, value_parser = crate::memory::parse_bytes)]
    max_volume_bytes: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Time inference and training steps of a preset: ms per sample, peak memory, TFLOP/s.
    Bench(bench_cmd::BenchArgs),
    /// Header, geometry and intensity summary of a NIfTI file; for a folder of DICOM files, its
    /// series, or one series in full.
    Info {
        /// A .nii or .nii.gz file, or a folder of DICOM files.
        file: PathBuf,
        /// The DICOM series to describe (SeriesInstanceUID), when the folder holds several.
        #[arg(long)]
        series: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert a DICOM series to NIfTI (RAS geometry as dcm2niix writes it, rescaled values).
    Convert {
        /// A folder of DICOM files (searched recursively).
        dir: PathBuf,
        /// Output .nii or .nii.gz file.
        #[arg(long)]
        out: PathBuf,
        /// SeriesInstanceUID, when the folder holds several series.
        #[arg(long)]
        series: Option<String>,
    },
    /// Write a complete MSD-layout phantom task (the demo and test data).
    DemoData {
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Labelled training cases (the app's demo task has 24).
        #[arg(long, default_value_t = 24)]
        cases: usize,
        /// Unlabelled test cases (imagesTs; the app's demo task has 2).
        #[arg(long, default_value_t = 2)]
        test_cases: usize,
        /// Seed; the same seed writes the same data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Voxels per case: X,Y,Z.
        #[arg(long, default_value = "96,96,40", value_parser = args::parse_size)]
        size: [usize; 3],
        /// Make multi-contrast MRI with this many channels (4-D files) instead of CT.
        #[arg(long)]
        mri_channels: Option<usize>,
        /// Lesion radius range in mm (in-plane): MIN,MAX.
        #[arg(long, value_parser = args::parse_range_mm)]
        lesion_radius_mm: Option<(f64, f64)>,
    },
    /// List the cases of an MSD task and every problem found.
    Dataset {
        /// The task folder (holding dataset.json).
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reorient, resample to the model grid and normalise every case (cached).
    Preprocess {
        /// The task folder.
        dir: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Model grid: N or X,Y,Z.
        #[arg(long, default_value = "128", value_parser = args::parse_size)]
        size: [usize; 3],
        /// Channels to keep, e.g. 0 or 0,2 (default: all).
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<usize>>,
    },
    /// Write splits.json: held-out test set, folds and few-shot subsets.
    Splits {
        /// The task folder.
        dir: PathBuf,
        /// Cross-validation folds.
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Fraction held out for testing.
        #[arg(long, default_value_t = 0.1)]
        test: f64,
        /// Seed of the shuffle.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Few-shot fractions of each fold's training cases.
        #[arg(long, default_value = "0.1,0.3", value_delimiter = ',')]
        few_shot: Vec<f64>,
        /// Few-shot subsets of a fixed number of cases, e.g. 5.
        #[arg(long, value_delimiter = ',')]
        few_shot_cases: Vec<usize>,
        /// Where to write (default: DIR/splits.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Per-class Dice, Jaccard, sensitivity, specificity, HD95 and NSD of a prediction.
    Metrics {
        /// Predicted label file.
        #[arg(long)]
        pred: PathBuf,
        /// Ground-truth label file on the same grid.
        #[arg(long)]
        gt: PathBuf,
        /// NSD (surface Dice) tolerance in mm.
        #[arg(long, default_value_t = crate::metrics::DEFAULT_TOLERANCE_MM)]
        tolerance_mm: f64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Per-label voxel count, volume in mL and intensity inside (mean, SD, min, max).
    Stats {
        /// Label file (whole label numbers).
        #[arg(long)]
        label: PathBuf,
        /// The scan the label was drawn on (same grid).
        #[arg(long)]
        image: PathBuf,
        /// The image channel measured (multi-channel MRI).
        #[arg(long, default_value_t = 0)]
        channel: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The surface of a label as a triangle mesh (binary STL or OBJ, world millimetres): its
    /// area and enclosed volume. Every label value unless --value names one.
    Mesh {
        /// Label file (whole label numbers).
        #[arg(long)]
        label: PathBuf,
        /// The mesh file to write: .stl or .obj (with --value unset and several labels, one file
        /// per label: NAME_label<N>.stl).
        #[arg(long)]
        out: PathBuf,
        /// Only this label value.
        #[arg(long)]
        value: Option<u32>,
        /// Gaussian smoothing before the surface is taken, voxels (0: the voxels' own steps).
        #[arg(long, default_value_t = 1.0)]
        sigma: f64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The architecture, parameter counts, tokens and FLOPs of a model preset.
    Model {
        /// A preset, e.g. configs/official-code.toml.
        #[arg(long)]
        config: PathBuf,
        /// Hugging Face checkpoint folder of the LLM (config.json + safetensors).
        #[arg(long)]
        llm: Option<PathBuf>,
        /// LLM layer index to use.
        #[arg(long)]
        layer: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write an untrained checkpoint folder here.
        #[arg(long)]
        init_checkpoint: Option<PathBuf>,
    },
    /// Predict a scan with a checkpoint; the label is written in the scan's own grid and geometry.
    Predict {
        /// Checkpoint folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The scan (.nii or .nii.gz, or a folder holding a DICOM series).
        #[arg(long)]
        input: PathBuf,
        /// SeriesInstanceUID, when the input folder holds several series.
        #[arg(long)]
        series: Option<String>,
        /// Output label file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the probabilities here.
        #[arg(long)]
        probabilities: Option<PathBuf>,
        /// Predict several times (see --method) and write the voxel uncertainty (normalised
        /// entropy, 0–1) here; the case's score is printed and recorded in uncertainty.json
        /// beside --out.
        #[arg(long)]
        uncertainty: Option<PathBuf>,
        /// Predictions behind --uncertainty: all-axes (test-time mirroring, 8 predictions),
        /// each-axis (mirroring, 4) or mc-dropout (Monte-Carlo dropout, 8; needs a model trained
        /// with dropout).
        #[arg(long, alias = "mirroring", default_value = "all-axes", value_parser = crate::infer::UncertaintyMethod::parse)]
        method: crate::infer::UncertaintyMethod,
        /// LLM folder, when it moved since training.
        #[arg(long)]
        llm: Option<PathBuf>,
        /// cpu, cuda or wgpu (default: CUDA, then a wgpu GPU, else the CPU).
        #[arg(long, value_parser = crate::device::parse_device)]
        device: Option<crate::device::DeviceKind>,
        /// Precision of the frozen Llama block: f32 or bf16 (everything else stays f32).
        #[arg(long, default_value = "f32", value_parser = crate::device::Precision::parse)]
        dtype: crate::device::Precision,
    },
    /// Activation maps (V_E(X), VD1, LLM, VD2, V_D(Q), probability, attention) as NIfTI and PNG.
    Activations {
        /// Checkpoint folder.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The scan.
        #[arg(long)]
        input: PathBuf,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Slice for the PNGs, e.g. axial:40, coronal, sagittal:12 (RAS+ voxel index).
        #[arg(long)]
        slice: Option<String>,
        /// ViT block of the attention map (encoder blocks first).
        #[arg(long, default_value_t = 0)]
        block: usize,
        /// Head of the attention map.
        #[arg(long, default_value_t = 0)]
        head: usize,
        /// Channel reduction: l2, mean or pca.
        #[arg(long, default_value = "l2", value_parser = parse_reduction)]
        reduce: crate::infer::Reduction,
        /// Colour map: inferno, viridis or grey.
        #[arg(long, default_value = "inferno", value_parser = parse_colormap)]
        colormap: crate::infer::Colormap,
        /// LLM folder, when it moved since training.
        #[arg(long)]
        llm: Option<PathBuf>,
        /// cpu, cuda or wgpu.
        #[arg(long, value_parser = crate::device::parse_device)]
        device: Option<crate::device::DeviceKind>,
        /// Precision of the frozen Llama block: f32 or bf16 (everything else stays f32).
        #[arg(long, default_value = "f32", value_parser = crate::device::Precision::parse)]
        dtype: crate::device::Precision,
    },
    /// Train a preset on a fold of an MSD task (few-shot with --fraction or --cases; on the
    /// hand-corrected cases with --corrected).
    Train {
        #[command(flatten)]
        common: TrainCommon,
        /// Train on exactly the cases with a corrected label in TASK/labelsCorrected/<id>.nii.gz,
        /// using those labels; validate on the fold's other cases.
        #[arg(long, conflicts_with_all = ["fraction", "cases"])]
        corrected: bool,
        /// With --corrected: train on corrected cases even when they belong to the held-out test
        /// set (they are then left out of every test report of the run).
        #[arg(long, requires = "corrected")]
        allow_test_cases: bool,
        /// Cross-validation fold.
        #[arg(long, default_value_t = 0)]
        fold: usize,
        /// Run folder (best/, last/, history.json, splits.json); without it, the next free
        /// TASK/.medvisionllama/runs/<preset>-<fold or subset>-NNN, where the app lists runs.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from RUN/last (give the run with --out).
        #[arg(long, requires = "out")]
        resume: bool,
        /// Start from this checkpoint's parameters (fine-tuning).
        #[arg(long)]
        init_from: Option<PathBuf>,
    },
    /// Cross-validation: every fold of every preset given, trained then evaluated on its
    /// validation cases (folds already done are skipped), with a summary comparing the presets;
    /// `mvl cv summarize DIR` gathers finished folds.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Cv {
        #[command(subcommand)]
        action: Option<CvAction>,
        /// Presets to compare, e.g. --config configs/demo-cpu.toml --config configs/demo-cpu-baseline.toml.
        #[arg(long = "config", required = true)]
        configs: Vec<PathBuf>,
        /// The MSD task folder.
        #[arg(long, required = true)]
        data: Option<PathBuf>,
        /// Folds to run.
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Parent folder of the runs (PRESET/foldK).
        #[arg(long, required = true)]
        out: Option<PathBuf>,
        /// Override the presets' epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Few-shot fraction of each fold's training cases.
        #[arg(long)]
        fraction: Option<f64>,
        /// cpu, cuda or wgpu (default: CUDA, then a wgpu GPU, else the CPU).
        #[arg(long, value_parser = crate::device::parse_device)]
        device: Option<crate::device::DeviceKind>,
        /// Folds run at once, each as its own `mvl` process (log in PRESET/foldK.log).
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// GPUs handed round-robin to the parallel folds, e.g. --gpus 0,1 (CUDA_VISIBLE_DEVICES).
        #[arg(long, value_delimiter = ',')]
        gpus: Vec<String>,
        /// Write a job script instead of running: `slurm` writes OUT/cv.slurm, a job array with
        /// one fold × preset per task.
        #[arg(long)]
        emit: Option<String>,
        /// The mvl executable the parallel folds and the script run (default: this one).
        #[arg(long)]
        mvl: Option<PathBuf>,
    },
    /// Per-case, per-class metrics of a run's best checkpoint on its val or test cases.
    Eval {
        /// Run folder.
        #[arg(long)]
        run: PathBuf,
        /// val or test.
        #[arg(long, default_value = "test")]
        split: String,
        /// NSD tolerance in mm.
        #[arg(long, default_value_t = crate::metrics::DEFAULT_TOLERANCE_MM)]
        tolerance_mm: f64,
        /// cpu, cuda or wgpu (default: CUDA, then a wgpu GPU, else the CPU).
        #[arg(long, value_parser = crate::device::parse_device)]
        device: Option<crate::device::DeviceKind>,
    },
    /// The runs of a task that have a best checkpoint (those the app and `mvl train` without
    /// --out keep in TASK/.medvisionllama/runs/), newest first.
    Runs {
        /// The MSD task folder.
        #[arg(long)]
        data: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Paired comparison of evaluated runs: the first against each of the others (mean ± SD,
    /// t-test and Wilcoxon p-values), in one table.
    Compare {
        /// Run folders: the first is compared with each of the others.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<PathBuf>,
        /// val or test.
        #[arg(long, default_value = "test")]
        split: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What `mvl cv` can do besides running folds.
#[derive(Subcommand, Debug)]
enum CvAction {
    /// Gather the finished folds under DIR (written by `mvl cv --out DIR`) into the summary and
    /// the comparison of every preset against the first; writes DIR/cv_summary.json.
    Summarize {
        /// The folder `mvl cv --out` wrote.
        dir: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by `train`.
#[derive(clap::Args)]
struct TrainCommon {
    /// A preset, e.g. configs/demo-cpu.toml.
    #[arg(long)]
    config: PathBuf,
    /// The MSD task folder.
    #[arg(long)]
    data: PathBuf,
    /// Few-shot: this fraction of the fold's training cases.
    #[arg(long)]
    fraction: Option<f64>,
    /// Few-shot: this many training cases.
    #[arg(long)]
    cases: Option<usize>,
    /// Override the preset's epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the training seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Hugging Face LLM folder.
    #[arg(long)]
    llm: Option<PathBuf>,
    /// LLM layer.
    #[arg(long)]
    layer: Option<usize>,
    /// cpu, cuda or wgpu (default: CUDA, then a wgpu GPU, else the CPU).
    #[arg(long, value_parser = crate::device::parse_device)]
    device: Option<crate::device::DeviceKind>,
    /// Precision of the frozen block: f32 or bf16 (trainable weights, gradients and Adam stay
    /// f32); default: the preset's `[training] dtype`, else f32.
    #[arg(long, value_parser = crate::device::Precision::parse)]
    dtype: Option<crate::device::Precision>,
}

fn parse_reduction(text: &str) -> Result<crate::infer::Reduction, String> {
    serde_json::from_value(serde_json::Value::from(text))
        .map_err(|_| format!("{text:?}: use l2, mean or pca"))
}

fn parse_colormap(text: &str) -> Result<crate::infer::Colormap, String> {
    serde_json::from_value(serde_json::Value::from(text))
        .map_err(|_| format!("{text:?}: use inferno, viridis or grey"))
}

/// Parses `args` (the first is the program name) and runs the command, writing results to `output`
/// and errors to standard error. Returns the process exit code.
pub fn run<I, T>(args: I, output: &mut Output) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version are "errors" to clap but successes to the user.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.max_volume_bytes {
        Some(bytes) => crate::memory::set_budget_override(bytes),
        None => {
            if let Some(Err(reason)) = crate::memory::budget_from_environment() {
                eprintln!("error: {reason}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match cli.command {
        Command::Bench(args) => bench_cmd::bench(output, args),
        Command::Train {
            common,
            corrected,
            allow_test_cases,
            fold,
            out,
            resume,
            init_from,
        } => train_cmd::train(
            output,
            train_cmd::TrainArgs {
                config: common.config,
                data: common.data,
                fold,
                fraction: common.fraction,
                cases: common.cases,
                corrected,
                allow_test_cases,
                out,
                resume,
                epochs: common.epochs,
                seed: common.seed,
                llm: common.llm,
                layer: common.layer,
                init_from,
                device: common.device,
                dtype: common.dtype,
            },
        ),
        Command::Cv {
            action: Some(CvAction::Summarize { dir, json }),
            ..
        } => cv_cmd::summarize_cmd(output, &dir, json),
        Command::Cv {
            action: None,
            configs,
            data,
            folds,
            out,
            epochs,
            fraction,
            device,
            parallel,
            gpus,
            emit,
            mvl,
        } => match (data, out) {
            (Some(data), Some(out)) => cv_cmd::cv(
                output,
                cv_cmd::CvArgs {
                    configs,
                    data,
                    folds,
                    out,
                    epochs,
                    fraction,
                    device,
                    parallel,
                    gpus,
                    emit,
                    mvl,
                },
            ),
            _ => Err(anyhow::anyhow!("mvl cv needs --data TASK and --out DIR")),
        },
        Command::Eval {
            run,
            split,
            tolerance_mm,
            device,
        } => train_cmd::eval(output, run, split, tolerance_mm, device),
        Command::Compare { runs, split, json } => train_cmd::compare(output, runs, split, json),
        Command::Runs { data, json } => train_cmd::runs(output, &data, json),
        Command::Info { file, series, json } if file.is_dir() => {
            dicom_cmd::info(output, &file, series.as_deref(), json)
        }
        Command::Info { file, json, .. } => commands::info(output, &file, json),
        Command::Convert { dir, out, series } => dicom_cmd::convert(output, &dir, &out, series.as_deref()),
        Command::DemoData {
            out,
            cases,
            test_cases,
            seed,
            size,
            mri_channels,
            lesion_radius_mm,
        } => commands::demo_data(
            output,
            &out,
            PhantomOptions {
                training_cases: cases,
                test_cases,
                seed,
                size,
                lesion_radius_mm: lesion_radius_mm.unwrap_or(LESION_RADIUS_MM),
                ..PhantomOptions::default()
            },
            mri_channels,
        ),
        Command::Dataset { dir, json } => commands::dataset(output, &dir, json),
        Command::Preprocess {
            dir,
            out,
            size,
            channels,
        } => commands::preprocess(output, &dir, &out, size, channels),
        Command::Splits {
            dir,
            folds,
            test,
            seed,
            few_shot,
            few_shot_cases,
            out,
        } => commands::splits(
            output,
            &dir,
            SplitOptions {
                folds,
                test_fraction: test,
                seed,
                few_shot_fractions: few_shot,
                few_shot_counts: few_shot_cases,
            },
            out,
        ),
        Command::Metrics {
            pred,
            gt,
            tolerance_mm,
            json,
        } => metrics_cmd::metrics(output, &pred, &gt, tolerance_mm, json),
        Command::Stats {
            label,
            image,
            channel,
            json,
        } => metrics_cmd::stats(output, &label, &image, channel, json),
        Command::Mesh {
            label,
            out,
            value,
            sigma,
            json,
        } => metrics_cmd::mesh(
            output,
            &metrics_cmd::MeshArgs {
                label,
                out,
                value,
                sigma,
            },
            json,
        ),
        Command::Model {
            config,
            llm,
            layer,
            json,
            init_checkpoint,
        } => model_cmd::model(output, &config, llm, layer, json, init_checkpoint),
        Command::Predict {
            checkpoint,
            input,
            series,
            out,
            probabilities,
            uncertainty,
            method,
            llm,
            device,
            dtype,
        } => model_cmd::predict(
            output,
            model_cmd::PredictJob {
                checkpoint,
                input: dicom_cmd::ScanArg { path: input, series },
                out,
                probabilities,
                uncertainty: uncertainty.map(|path| (path, method)),
                llm,
                dtype,
            },
            device,
        ),
        Command::Activations {
            checkpoint,
            input,
            out,
            slice,
            block,
            head,
            reduce,
            colormap,
            llm,
            device,
            dtype,
        } => model_cmd::activations(
            output,
            model_cmd::ActivationOptions {
                checkpoint,
                input,
                out,
                slice,
                block,
                head,
                reduction: reduce,
                colormap,
                llm,
                dtype,
            },
            device,
        ),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
