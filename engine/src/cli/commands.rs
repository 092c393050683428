//! One function per `mvl` subcommand.

use super::output::Output;
use crate::data::{self, PhantomModality, PhantomOptions, PreprocessOptions, SplitOptions};
use crate::volume::{orientation_string, scan_nifti};
use anyhow::Context;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Serialize)]
struct InfoJson {
    file: PathBuf,
    shape: Vec<usize>,
    datatype: &'static str,
    byte_order: &'static str,
    spacing_mm: [f64; 3],
    affine: [[f64; 4]; 4],
    orientation: String,
    sform_code: i16,
    qform_code: i16,
    scl_slope: f32,
    scl_inter: f32,
    min: f64,
    max: f64,
    mean: f64,
    /// Voxels that are NaN or ±∞ (min, max and mean are over the others).
    non_finite: u64,
    description: String,
}

const XFORM_NAMES: [&str; 5] = ["unknown", "scanner", "aligned", "talairach", "mni152"];

fn xform_name(code: i16) -> &'static str {
    usize::try_from(code)
        .ok()
        .and_then(|c| XFORM_NAMES.get(c))
        .copied()
        .unwrap_or("invalid")
}

/// `mvl info`: the statistics are computed while streaming the voxels, so any file is summarised
/// with a bounded buffer, whatever its size and the memory budget.
pub fn info(output: &mut Output, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let image = scan_nifti(file)?;
    let header = &image.header;
    let ndim = header.dim[0].clamp(1, 7) as usize;
    let shape: Vec<usize> = (1..=ndim).map(|a| header.dim[a] as usize).collect();
    let unit = header.millimetres_per_unit();
    let spacing_mm = [1, 2, 3].map(|a| f64::from(header.pixdim[a]).abs() * unit);
    let stats = image.stats;
    let report = InfoJson {
        file: file.to_path_buf(),
        shape,
        datatype: image.datatype.name(),
        byte_order: header.byte_order.name(),
        spacing_mm,
        affine: image.world_from_voxel.0,
        orientation: orientation_string(&image.world_from_voxel),
        sform_code: header.sform_code,
        qform_code: header.qform_code,
        scl_slope: header.scl_slope,
        scl_inter: header.scl_inter,
        min: stats.min,
        max: stats.max,
        mean: stats.mean,
        non_finite: stats.non_finite,
        description: header.description(),
    };
    if json {
        output.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let dims: Vec<String> = report.shape.iter().map(|d| d.to_string()).collect();
    output.line(format!("file         {}", file.display()));
    output.line(format!("shape        {}", dims.join(" × ")));
    output.line(format!(
        "datatype     {} ({})",
        report.datatype, report.byte_order
    ));
    output.line(format!(
        "spacing      {:.4} × {:.4} × {:.4} mm",
        spacing_mm[0], spacing_mm[1], spacing_mm[2]
    ));
    output.line(format!("orientation  {}", report.orientation));
    output.line(format!(
        "sform_code   {} ({})   qform_code {} ({})",
        header.sform_code,
        xform_name(header.sform_code),
        header.qform_code,
        xform_name(header.qform_code)
    ));
    output.line("world_from_voxel");
    for row in &report.affine {
        output.line(format!(
            "  [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
            row[0], row[1], row[2], row[3]
        ));
    }
    let scaling = match header.scaling() {
        Some((slope, inter)) => format!("slope {slope}, intercept {inter}"),
        None => format!(
            "none (scl_slope {}, scl_inter {})",
            header.scl_slope, header.scl_inter
        ),
    };
    output.line(format!("scaling      {scaling}"));
    output.line(format!(
        "intensity    min {:.4}  max {:.4}  mean {:.4}",
        stats.min, stats.max, stats.mean
    ));
    if stats.non_finite > 0 {
        output.line(format!(
            "non-finite   {} voxels are NaN or ±∞ (left out of min/max/mean; preprocessing sets them to the minimum)",
            stats.non_finite
        ));
    }
    if !report.description.is_empty() {
        output.line(format!("description  {}", report.description));
    }
    Ok(ExitCode::SUCCESS)
}

/// `mvl demo-data`.
pub fn demo_data(
    output: &mut Output,
    out: &Path,
    options: PhantomOptions,
    mri_channels: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let options = PhantomOptions {
        modality: match mri_channels {
            Some(channels) if channels > 0 => PhantomModality::Mri { channels },
            _ => PhantomModality::Ct,
        },
        ..options
    };
    let (cases, test_cases, size) = (options.training_cases, options.test_cases, options.size);
    let started = std::time::Instant::now();
    let json = data::write_phantom_task(out, &options)?;
    output.line(format!(
        "wrote {cases} training and {test_cases} test phantoms ({}×{}×{}) to {} in {:.1} s",
        size[0],
        size[1],
        size[2],
        json.parent().unwrap_or(out).display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `mvl dataset`: exits with 1 when problems were found.
pub fn dataset(output: &mut Output, dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let task = data::open_task(dir)?;
    let report = data::check_task(&task);
    let code = if report.problem_count() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if json {
        output.json(&report)?;
        return Ok(code);
    }
    output.line(format!("task        {}", report.name));
    let modalities: Vec<String> = report
        .modalities
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    output.line(format!("modalities  {}", modalities.join(", ")));
    let labels: Vec<String> = report.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    output.line(format!("labels      {}", labels.join(", ")));
    output.line(format!(
        "cases       {} training, {} test",
        task.training.len(),
        task.test.len()
    ));
    output.line("");
    output.line(format!(
        "{:<24} {:<9} {:<16} {:>3} {:<24} {:<4} {}",
        "case", "split", "shape", "ch", "spacing (mm)", "ori", "labels"
    ));
    for case in &report.cases {
        let shape = case
            .shape
            .map(|s| format!("{}×{}×{}", s[0], s[1], s[2]))
            .unwrap_or_else(|| "?".into());
        let spacing = case
            .spacing_mm
            .map(|s| format!("{:.3}×{:.3}×{:.3}", s[0], s[1], s[2]))
            .unwrap_or_else(|| "?".into());
        let channels = case.channels.map(|c| c.to_string()).unwrap_or_else(|| "?".into());
        let values: Vec<String> = case.label_values.iter().map(|v| v.to_string()).collect();
        output.line(format!(
            "{:<24} {:<9} {:<16} {:>3} {:<24} {:<4} {}",
            case.id,
            case.split,
            shape,
            channels,
            spacing,
            case.orientation.as_deref().unwrap_or("?"),
            values.join(",")
        ));
    }
    let problems: Vec<&String> = report
        .problems
        .iter()
        .chain(report.cases.iter().flat_map(|c| &c.problems))
        .collect();
    output.line("");
    if problems.is_empty() {
        output.line("no problems found");
    } else {
        output.line(format!("{} problem(s):", problems.len()));
        for problem in problems {
            output.line(format!("  - {problem}"));
        }
    }
    Ok(code)
}

/// `mvl preprocess`.
pub fn preprocess(
    output: &mut Output,
    dir: &Path,
    out: &Path,
    size: [usize; 3],
    channels: Option<Vec<usize>>,
) -> anyhow::Result<ExitCode> {
    let task = data::open_task(dir)?;
    let started = std::time::Instant::now();
    let report = data::preprocess_task(&task, out, &PreprocessOptions { size, channels })?;
    output.line(format!(
        "preprocessed {} case(s), reused {} from the cache, in {:.1} s; manifest: {}",
        report.processed,
        report.reused,
        started.elapsed().as_secs_f64(),
        report.manifest.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `mvl splits`.
pub fn splits(
    output: &mut Output,
    dir: &Path,
    options: SplitOptions,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let task = data::open_task(dir)?;
    let ids: Vec<String> = task.training.iter().map(|c| c.id.clone()).collect();
    let splits = data::make_splits(&ids, &options)?;
    let path = out.unwrap_or_else(|| dir.join(data::SPLITS_FILE));
    splits
        .save(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    output.line(format!(
        "{} test case(s) held out; {} folds of {} validation cases; {} few-shot subsets; wrote {}",
        splits.test.len(),
        splits.folds.len(),
        splits
            .folds
            .iter()
            .map(|f| f.val.len().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        splits.few_shot.len(),
        path.display()
    ));
    Ok(ExitCode::SUCCESS)
}
