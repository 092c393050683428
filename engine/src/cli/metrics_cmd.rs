//! `mvl metrics`: per-class Dice, Jaccard, sensitivity, specificity, HD95 and NSD between a
//! predicted and a ground-truth label file on the same grid.

use super::output::Output;
use crate::metrics::{ClassMetrics, LabelScheme, score_case};
use crate::volume::read_nifti;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The six metrics of one class as `--json` prints them; undefined values become `null`.
#[derive(Serialize)]
struct ClassJson {
    dice: Option<f64>,
    jaccard: Option<f64>,
    sensitivity: Option<f64>,
    specificity: Option<f64>,
    hd95_mm: Option<f64>,
    nsd: Option<f64>,
}

#[derive(Serialize)]
struct MetricsJson {
    /// Keyed by the label value as a string.
    classes: BTreeMap<String, ClassJson>,
}

impl From<&ClassMetrics> for ClassJson {
    fn from(class: &ClassMetrics) -> Self {
        Self {
            dice: class.dice,
            jaccard: class.jaccard,
            sensitivity: class.sensitivity,
            specificity: class.specificity,
            hd95_mm: class.hd95_mm,
            nsd: class.nsd,
        }
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
}

/// `mvl metrics`.
pub fn metrics(
    output: &mut Output,
    prediction_path: &Path,
    ground_truth_path: &Path,
    tolerance_mm: f64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let prediction = read_nifti(prediction_path)?.volume;
    let ground_truth = read_nifti(ground_truth_path)?.volume;
    // Scored as the app scores it: under the label scheme recorded beside the prediction by
    // `mvl predict` or the app (the merged foreground for a one-channel sigmoid model).
    let scheme = LabelScheme::of_prediction(prediction_path);
    let report = score_case(&prediction, &ground_truth, &scheme, tolerance_mm).with_context(|| {
        format!(
            "cannot compare prediction {} with ground truth {}",
            prediction_path.display(),
            ground_truth_path.display()
        )
    })?;
    if json {
        let classes = report
            .classes
            .iter()
            .map(|class| (class.label.to_string(), ClassJson::from(class)))
            .collect();
        output.json(&MetricsJson { classes })?;
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!("prediction    {}", prediction_path.display()));
    output.line(format!("ground truth  {}", ground_truth_path.display()));
    if scheme == LabelScheme::MergedForeground {
        output.line(format!(
            "label scheme  every foreground label merged into 1 ({}), as recorded beside the prediction",
            crate::metrics::MERGED_FOREGROUND_NAME
        ));
    }
    output.line(format!(
        "NSD tolerance {} mm; HD95 of a class missing from one file = image diagonal {:.2} mm",
        report.tolerance_mm, report.diagonal_mm
    ));
    if report.classes.is_empty() {
        output.line("no foreground labels in either file");
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!(
        "{:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}",
        "label", "Dice", "Jaccard", "sens", "spec", "HD95 mm", "NSD"
    ));
    for class in &report.classes {
        output.line(format!(
            "{:>5} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8}",
            class.label,
            cell(class.dice),
            cell(class.jaccard),
            cell(class.sensitivity),
            cell(class.specificity),
            cell(class.hd95_mm),
            cell(class.nsd)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `mvl stats`: per-label voxel count, volume in mL and intensity inside.
pub fn stats(
    output: &mut Output,
    label_path: &Path,
    image_path: &Path,
    channel: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let label = read_nifti(label_path)?.volume;
    let image = read_nifti(image_path)?.volume;
    let stats = crate::metrics::label_statistics(&label, &image, channel).with_context(|| {
        format!(
            "cannot measure label {} over image {}",
            label_path.display(),
            image_path.display()
        )
    })?;
    if json {
        output.json(&serde_json::json!({
            "label": label_path.display().to_string(),
            "image": image_path.display().to_string(),
            "channel": channel,
            "labels": stats,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!("label  {}", label_path.display()));
    output.line(format!("image  {} (channel {channel})", image_path.display()));
    if stats.is_empty() {
        output.line("no foreground labels");
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!(
        "{:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "label", "voxels", "mL", "mean", "SD", "min", "max"
    ));
    let number = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"));
    for label in &stats {
        output.line(format!(
            "{:>5} {:>10} {:>10.3} {:>10} {:>10} {:>10} {:>10}",
            label.label,
            label.voxels,
            label.volume_ml,
            number(label.mean),
            number(label.sd),
            number(label.min),
            number(label.max)
        ));
        if label.non_finite > 0 {
            output.line(format!(
                "      label {}: {} voxel(s) with a NaN or infinite intensity left out of mean, SD, min and max",
                label.label, label.non_finite
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Affine, DataType, Geometry, Volume, WriteOptions, write_nifti};

    fn write_labels(dir: &Path, name: &str, shape: [usize; 3], translation: [f64; 3]) -> std::path::PathBuf {
        let linear = [[0.8, 0.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 2.5]];
        let geometry = Geometry {
            shape,
            world_from_voxel: Affine::from_parts(linear, translation),
        };
        let volume = Volume::from_fn(&geometry, |x, y, _| f32::from(x > 1 && y > 1));
        let path = dir.join(name);
        write_nifti(&path, &volume, None, WriteOptions::new(DataType::U8)).expect("writes");
        path
    }

    fn refusal(prediction: &Path, ground_truth: &Path) -> String {
        let mut output = Output::to_writer(Box::new(std::io::sink()));
        let error = metrics(&mut output, prediction, ground_truth, 1.0, true).expect_err("refused");
        format!("{error:#}")
    }

    #[test]
    fn different_grids_are_refused_naming_both_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reference = write_labels(dir.path(), "reference.nii", [5, 4, 3], [0.0; 3]);
        let smaller = write_labels(dir.path(), "smaller.nii", [5, 4, 2], [0.0; 3]);
        let shifted = write_labels(dir.path(), "shifted.nii", [5, 4, 3], [0.0, 0.01, 0.0]);
        let nudged = write_labels(dir.path(), "nudged.nii", [5, 4, 3], [0.0, 0.0005, 0.0]);
        for (other, needle) in [(&smaller, "shapes differ"), (&shifted, "affines differ")] {
            let message = refusal(other, &reference);
            for name in [
                "reference.nii",
                other.file_name().and_then(|n| n.to_str()).expect("name"),
            ] {
                assert!(message.contains(name), "{name} not named in: {message}");
            }
            assert!(message.contains(needle), "{message}");
        }
        let mut output = Output::to_writer(Box::new(std::io::sink()));
        assert!(
            metrics(&mut output, &nudged, &reference, 1.0, false).is_ok(),
            "within 1e-3 mm"
        );
    }
}
