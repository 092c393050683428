//! `mvl metrics`: per-class Dice, Jaccard, sensitivity, specificity, HD95 and NSD between a
//! predicted and a ground-truth label file on the same grid.

use super::output::Output;
use crate::metrics::{ClassMetrics, LabelScheme, score_case};
use crate::volume::read_nifti;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// What `mvl mesh` makes.
pub struct MeshArgs {
    /// The label file.
    pub label: PathBuf,
    /// The mesh file (per label when there are several).
    pub out: PathBuf,
    /// Only this label value.
    pub value: Option<u32>,
    /// Gaussian smoothing, voxels.
    pub sigma: f64,
}

/// One surface written by `mvl mesh`.
#[derive(serde::Serialize)]
struct MeshWritten {
    label: u32,
    file: String,
    vertices: usize,
    triangles: usize,
    area_mm2: f64,
    enclosed_volume_ml: f64,
}

/// Writes the surfaces `args` asks for and says what each holds.
fn write_label_meshes(args: &MeshArgs) -> anyhow::Result<Vec<MeshWritten>> {
    crate::mesh::MeshFormat::from_path(&args.out).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.sigma.is_finite() && (0.0..=10.0).contains(&args.sigma),
        "--sigma {} is outside 0 to 10 voxels",
        args.sigma
    );
    let volume = read_nifti(&args.label)?.volume;
    let label =
        crate::edit::EditLabel::from_values(volume.shape(), volume.channel(0)).with_context(|| {
            format!(
                "{} is not a label (whole numbers 0 to 65535)",
                args.label.display()
            )
        })?;
    let values: Vec<u32> = match args.value {
        Some(value) => vec![value],
        None => label.label_numbers().into_iter().filter(|&v| v != 0).collect(),
    };
    anyhow::ensure!(
        !values.is_empty(),
        "{} has no foreground label",
        args.label.display()
    );
    let options = crate::mesh::SurfaceOptions {
        sigma_voxels: args.sigma,
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    let mut written = Vec::new();
    for &value in &values {
        let mesh = crate::mesh::label_surface(
            &label,
            volume.shape(),
            value,
            volume.world_from_voxel(),
            &options,
            &never,
        )?
        .with_context(|| format!("{} has no voxel of label {value}", args.label.display()))?;
        let file = if values.len() > 1 {
            per_label_path(&args.out, value)
        } else {
            args.out.clone()
        };
        crate::mesh::write_mesh(&file, &mesh).map_err(anyhow::Error::msg)?;
        written.push(MeshWritten {
            label: value,
            file: file.display().to_string(),
            vertices: mesh.positions.len(),
            triangles: mesh.triangles.len(),
            area_mm2: mesh.area_mm2(),
            enclosed_volume_ml: mesh.enclosed_volume_mm3() / 1000.0,
        });
    }
    Ok(written)
}

/// `mvl mesh`: a label's surfaces as STL or OBJ files, in the scan's world millimetres.
pub fn mesh(output: &mut Output, args: &MeshArgs, json: bool) -> anyhow::Result<ExitCode> {
    let written = write_label_meshes(args)?;
    if json {
        output.json(&serde_json::json!({
            "label": args.label.display().to_string(),
            "sigma_voxels": args.sigma,
            "surfaces": written,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!(
        "{:>5} {:>10} {:>12} {:>12}  file",
        "label", "triangles", "area mm²", "volume mL"
    ));
    for surface in &written {
        output.line(format!(
            "{:>5} {:>10} {:>12.1} {:>12.3}  {}",
            surface.label, surface.triangles, surface.area_mm2, surface.enclosed_volume_ml, surface.file
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `liver.stl` → `liver_label2.stl`.
fn per_label_path(out: &Path, value: u32) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("surface");
    let extension = out.extension().and_then(|e| e.to_str()).unwrap_or("stl");
    out.with_file_name(format!("{stem}_label{value}.{extension}"))
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

    /// The volume an STL file's triangles enclose, mm³, read back from its bytes.
    fn stl_volume(path: &Path) -> (usize, f64) {
        let bytes = std::fs::read(path).expect("stl");
        let count = u32::from_le_bytes(bytes[80..84].try_into().expect("count")) as usize;
        let float = |at: usize| f64::from(f32::from_le_bytes(bytes[at..at + 4].try_into().expect("f32")));
        let volume = (0..count)
            .map(|t| {
                let base = 84 + 50 * t + 12;
                let v: Vec<[f64; 3]> = (0..3)
                    .map(|k| {
                        [
                            float(base + 12 * k),
                            float(base + 12 * k + 4),
                            float(base + 12 * k + 8),
                        ]
                    })
                    .collect();
                let cross = [
                    v[1][1] * v[2][2] - v[1][2] * v[2][1],
                    v[1][2] * v[2][0] - v[1][0] * v[2][2],
                    v[1][0] * v[2][1] - v[1][1] * v[2][0],
                ];
                (v[0][0] * cross[0] + v[0][1] * cross[1] + v[0][2] * cross[2]) / 6.0
            })
            .sum();
        (count, volume)
    }

    #[test]
    fn mesh_writes_one_surface_per_label_that_encloses_the_labels_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Two blocks of 0.8 × 0.8 × 2.5 mm voxels: label 1 of 8 × 8 × 6 voxels, label 2 of
        // 4 × 4 × 4, apart.
        let geometry = Geometry {
            shape: [24, 14, 10],
            world_from_voxel: Affine::from_parts(
                [[0.8, 0.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 2.5]],
                [5.0, 6.0, 7.0],
            ),
        };
        let block = |x: usize, y: usize, z: usize, low: [usize; 3], size: [usize; 3]| {
            (0..3).all(|a| [x, y, z][a] >= low[a] && [x, y, z][a] < low[a] + size[a])
        };
        let volume = Volume::from_fn(&geometry, |x, y, z| {
            if block(x, y, z, [2, 3, 2], [8, 8, 6]) {
                1.0
            } else if block(x, y, z, [15, 4, 3], [4, 4, 4]) {
                2.0
            } else {
                0.0
            }
        });
        let label = dir.path().join("label.nii.gz");
        write_nifti(&label, &volume, None, WriteOptions::new(DataType::U8)).expect("writes");
        let out = dir.path().join("surface.stl");
        let args = MeshArgs {
            label: label.clone(),
            out: out.clone(),
            value: None,
            sigma: 0.0,
        };
        let written = write_label_meshes(&args).expect("meshes");
        let report = serde_json::to_value(&written).expect("json");
        let surfaces = report.as_array().expect("surfaces");
        assert_eq!(surfaces.len(), 2);
        let voxel_ml = 0.8 * 0.8 * 2.5 / 1000.0;
        for (surface, (value, sizes)) in surfaces.iter().zip([(1u64, [8usize, 8, 6]), (2, [4, 4, 4])]) {
            assert_eq!(surface["label"].as_u64(), Some(value));
            let file = dir.path().join(format!("surface_label{value}.stl"));
            assert_eq!(
                surface["file"].as_str(),
                Some(file.display().to_string().as_str())
            );
            let (triangles, read_volume) = stl_volume(&file);
            assert_eq!(surface["triangles"].as_u64(), Some(triangles as u64));
            let reported = surface["enclosed_volume_ml"].as_f64().expect("volume");
            assert!(
                (read_volume / 1000.0 - reported).abs() < 1e-4 * reported,
                "{read_volume} vs {reported}"
            );
            // Unsmoothed, the surface cuts every edge from a labelled voxel to an unlabelled one
            // halfway: it encloses the box through the block's outer voxel centres and lies inside
            // the box of the voxels' faces.
            let [a, b, c] = sizes;
            let inner = ((a - 1) * (b - 1) * (c - 1)) as f64 * voxel_ml;
            let outer = (a * b * c) as f64 * voxel_ml;
            assert!(
                reported > inner && reported < outer,
                "label {value}: {reported} mL, not in {inner}..{outer}"
            );
        }
        let wrong = MeshArgs {
            label,
            out: dir.path().join("surface.ply"),
            value: Some(1),
            sigma: 1.0,
        };
        let error = format!("{:#}", write_label_meshes(&wrong).err().expect("refused"));
        assert!(error.contains("surface.ply") && error.contains(".stl"), "{error}");
    }
}
