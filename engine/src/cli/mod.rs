//! The `mvl` command line, as a library module so that tests drive it in-process. It uses the
//! same engine API as the app.

mod args;
mod commands;
mod metrics_cmd;
mod output;

pub use output::Output;

use crate::data::SplitOptions;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// MedVisionLlama Studio command line: inspect volumes, make and check datasets, preprocess.
#[derive(Parser)]
#[command(name = "mvl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Header, geometry and intensity summary of a NIfTI file.
    Info {
        /// A .nii or .nii.gz file.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a complete MSD-layout phantom task (the demo and test data).
    DemoData {
        /// Output folder (created).
        #[arg(long)]
        out: PathBuf,
        /// Labelled training cases.
        #[arg(long, default_value_t = 20)]
        cases: usize,
        /// Unlabelled test cases (imagesTs).
        #[arg(long, default_value_t = 4)]
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
    let result = match cli.command {
        Command::Info { file, json } => commands::info(output, &file, json),
        Command::DemoData {
            out,
            cases,
            test_cases,
            seed,
            size,
            mri_channels,
        } => commands::demo_data(output, &out, cases, test_cases, seed, size, mri_channels),
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
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
