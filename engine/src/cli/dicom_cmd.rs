//! `mvl info DICOM_DIR` and `mvl convert DICOM_DIR --out scan.nii.gz`.

use super::output::Output;
use crate::volume::dicom::{
    DicomSeries, DicomVolume, FolderScan, SkippedFile, choose_series, load_series, scan_folder,
};
use crate::volume::{DataType, NiftiHeader, WriteOptions, orientation_string, write_nifti};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A scan given on the command line: a NIfTI file, or a DICOM folder and optionally a series.
#[derive(Debug, Clone)]
pub struct ScanArg {
    /// The file or folder.
    pub path: PathBuf,
    /// SeriesInstanceUID to pick in a folder holding several.
    pub series: Option<String>,
}

#[derive(Serialize)]
struct SeriesListJson<'a> {
    dir: &'a Path,
    series: Vec<SeriesJson<'a>>,
    skipped: &'a [SkippedFile],
}

#[derive(Serialize)]
struct SeriesJson<'a> {
    #[serde(flatten)]
    series: &'a DicomSeries,
    size: [usize; 3],
}

#[derive(Serialize)]
struct SeriesInfoJson<'a> {
    dir: &'a Path,
    #[serde(flatten)]
    series: &'a DicomSeries,
    shape: [usize; 3],
    spacing_mm: [f64; 3],
    affine: [[f64; 4]; 4],
    orientation: String,
    rescale: Option<(f64, f64)>,
    min: f64,
    max: f64,
    mean: f64,
}

fn report_skipped(output: &mut Output, skipped: &[SkippedFile]) {
    for skipped in skipped {
        output.line(format!(
            "skipped      {} ({})",
            skipped.path.display(),
            skipped.reason
        ));
    }
}

/// The one rescale all images share, or `None` when they differ.
fn common_rescale(series: &DicomSeries) -> Option<(f64, f64)> {
    let first = series.images.first()?.rescale;
    series
        .images
        .iter()
        .all(|image| image.rescale == first)
        .then_some(first)
}

/// `mvl info DIR`: the series of a folder, or one series in full.
pub fn info(output: &mut Output, dir: &Path, uid: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let scan = scan_folder(dir)?;
    if uid.is_none() && scan.series.len() > 1 {
        return list(output, dir, &scan, json);
    }
    let skipped = scan.skipped.clone();
    let loaded = load_series(dir, choose_series(dir, scan, uid)?)?;
    let volume = &loaded.volume;
    let series = &loaded.series;
    let stats = volume.stats();
    let report = SeriesInfoJson {
        dir,
        series,
        shape: volume.shape(),
        spacing_mm: volume.spacing_mm(),
        affine: volume.world_from_voxel().0,
        orientation: orientation_string(volume.world_from_voxel()),
        rescale: common_rescale(series),
        min: stats.min,
        max: stats.max,
        mean: stats.mean,
    };
    if json {
        output.json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!("folder       {}", dir.display()));
    output.line(format!("series       {}", series.series_uid));
    output.line(format!(
        "patient      {} ({})",
        series.patient_name, series.patient_id
    ));
    output.line(format!("study        {}", series.study_description));
    output.line(format!("description  {}", series.series_description));
    output.line(format!(
        "modality     {}   {} image(s) in {} file(s)",
        series.modality,
        series.images.len(),
        series.files
    ));
    output.line(format!("syntax       {}", series.transfer_syntaxes.join(", ")));
    let [nx, ny, nz] = report.shape;
    output.line(format!("shape        {nx} × {ny} × {nz}"));
    let s = report.spacing_mm;
    output.line(format!("spacing      {:.4} × {:.4} × {:.4} mm", s[0], s[1], s[2]));
    output.line(format!("orientation  {}", report.orientation));
    output.line("world_from_voxel");
    for row in &report.affine {
        output.line(format!(
            "  [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
            row[0], row[1], row[2], row[3]
        ));
    }
    let scaling = match report.rescale {
        Some((slope, intercept)) => format!("slope {slope}, intercept {intercept}"),
        None => "per image (RescaleSlope/RescaleIntercept differ)".to_string(),
    };
    output.line(format!("scaling      {scaling}"));
    output.line(format!(
        "intensity    min {:.4}  max {:.4}  mean {:.4}",
        stats.min, stats.max, stats.mean
    ));
    report_skipped(output, &skipped);
    Ok(ExitCode::SUCCESS)
}

fn list(output: &mut Output, dir: &Path, scan: &FolderScan, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let series = scan
            .series
            .iter()
            .map(|series| SeriesJson {
                series,
                size: series.size(),
            })
            .collect();
        output.json(&SeriesListJson {
            dir,
            series,
            skipped: &scan.skipped,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    output.line(format!("{}: {} series", dir.display(), scan.series.len()));
    output.line(format!(
        "{:<20} {:<24} {:<24} {:<4} {:>6}  {:<12} {}",
        "patient", "study", "series description", "mod", "images", "size", "series UID"
    ));
    for series in &scan.series {
        let [columns, rows, images] = series.size();
        output.line(format!(
            "{:<20} {:<24} {:<24} {:<4} {:>6}  {:<12} {}",
            series.patient_name,
            series.study_description,
            series.series_description,
            series.modality,
            images,
            format!("{columns}×{rows}"),
            series.series_uid
        ));
    }
    report_skipped(output, &scan.skipped);
    output.line("open one with --series UID");
    Ok(ExitCode::SUCCESS)
}

/// The narrowest NIfTI datatype that holds the volume exactly: int16 for whole numbers in its
/// range (CT in HU), float32 otherwise.
fn datatype_for(loaded: &DicomVolume) -> DataType {
    let stats = loaded.volume.stats();
    let fits_i16 = stats.min >= f64::from(i16::MIN) && stats.max <= f64::from(i16::MAX);
    if loaded.integer_valued && fits_i16 {
        DataType::I16
    } else {
        DataType::F32
    }
}

/// `mvl convert DIR --out FILE`.
pub fn convert(output: &mut Output, dir: &Path, out: &Path, uid: Option<&str>) -> anyhow::Result<ExitCode> {
    let scan = scan_folder(dir)?;
    let skipped = scan.skipped.clone();
    let loaded = load_series(dir, choose_series(dir, scan, uid)?)?;
    let datatype = datatype_for(&loaded);
    let mut header = NiftiHeader::default();
    let series = &loaded.series;
    header.set_description(format!("DICOM {} {}", series.modality, series.series_description).trim());
    write_nifti(out, &loaded.volume, Some(&header), WriteOptions::new(datatype))?;
    let [nx, ny, nz] = loaded.volume.shape();
    let s = loaded.volume.spacing_mm();
    report_skipped(output, &skipped);
    output.line(format!(
        "wrote {} ({nx}×{ny}×{nz}, {:.3}×{:.3}×{:.3} mm, {}, {}) from series {}",
        out.display(),
        s[0],
        s[1],
        s[2],
        orientation_string(loaded.volume.world_from_voxel()),
        datatype.name(),
        series.series_uid
    ));
    Ok(ExitCode::SUCCESS)
}
