//! DICOM series in: a folder of CT or MR files becomes a [`Volume`] with the geometry dcm2niix
//! would give it. Parsing and pixel decoding are dicom-rs's (`dicom-object`,
//! `dicom-pixeldata`); this module finds the series, checks that they form a regular volume
//! ([`geometry`]), and stacks the rescaled slices.

mod geometry;
mod jpeg;
mod lengths;
mod pixels;
mod rle;
mod scan;

pub use geometry::{Plane, SPACING_TOLERANCE, SliceStack, stack_slices};
pub use lengths::{HARMLESS_LENGTH, check_declared_lengths};
pub use pixels::{SUPPORTED_SYNTAXES, syntax_name};
pub use scan::{DicomImage, DicomSeries, FolderScan, SkippedFile, scan_folder};

use crate::volume::{MAX_VOXELS, Volume};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading DICOM. Each message names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The folder or a file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The folder holds no DICOM image.
    #[error(
        "{}: no DICOM images found{}; point to the folder of an exported CT or MR series",
        dir.display(),
        skipped_summary(skipped)
    )]
    NoImages {
        /// The folder.
        dir: PathBuf,
        /// The files looked at and skipped, with why.
        skipped: Vec<SkippedFile>,
    },
    /// Several series and none chosen, or the chosen one is not there.
    #[error("{}: {problem}; choose one with --series UID:\n{listing}", dir.display())]
    ChooseSeries {
        /// The folder.
        dir: PathBuf,
        /// "4 series found" or "no series 1.2.3".
        problem: String,
        /// One line per series found.
        listing: String,
    },
    /// The file could not be parsed (truncated, damaged).
    #[error("{}: cannot read it as DICOM: {reason}; the file is truncated or damaged — copy or export it again", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// An image without its pixels.
    #[error("{}: the file has no pixel data (PixelData is missing); export the series again", path.display())]
    MissingPixelData {
        /// The file.
        path: PathBuf,
    },
    /// A transfer syntax we do not decode.
    #[error("{}: unsupported transfer syntax {name} ({uid}): {hint}; convert the series to an uncompressed syntax (e.g. `dcmconv +te`)", path.display())]
    UnsupportedSyntax {
        /// The file.
        path: PathBuf,
        /// The syntax's name.
        name: String,
        /// Its UID.
        uid: String,
        /// Why it is not supported.
        hint: &'static str,
    },
    /// A pixel format or file kind we do not handle.
    #[error("{}: unsupported DICOM image: {what}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not supported.
        what: String,
    },
    /// A header claims more voxels than we agree to load.
    #[error("{}: the header claims {voxels} voxels, more than the limit of {MAX_VOXELS}; the file is damaged or not a CT/MR volume", path.display())]
    TooLarge {
        /// The file (or the folder for a whole series).
        path: PathBuf,
        /// Voxels claimed.
        voxels: u64,
    },
    /// The decoded series would not fit the memory budget ([`crate::memory`]).
    #[error("{}: too large to load: {reason}", path.display())]
    OverBudget {
        /// The folder of the series.
        path: PathBuf,
        /// The size, the budget and how to raise it.
        reason: String,
    },
    /// The pixel data could not be decoded.
    #[error("{}: cannot decode the pixel data: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// The images do not form a regular volume (message names the images).
    #[error("{0}")]
    Geometry(String),
}

/// Skipped files listed in a message (the first few).
fn skipped_summary(skipped: &[SkippedFile]) -> String {
    const LISTED: usize = 3;
    if skipped.is_empty() {
        return String::new();
    }
    let mut text = format!(" ({} file(s) skipped:", skipped.len());
    for file in skipped.iter().take(LISTED) {
        text.push_str(&format!(" {}: {};", file.path.display(), file.reason));
    }
    if skipped.len() > LISTED {
        text.push_str(" …");
    }
    text.push(')');
    text
}

/// A series loaded as a volume, with what describes it.
#[derive(Debug, Clone)]
pub struct DicomVolume {
    /// Voxels (rescaled) and geometry; x = column, y = row, z = slice along the normal.
    pub volume: Volume,
    /// The series it came from.
    pub series: DicomSeries,
    /// Whether every voxel is a whole number (stored integers with integer rescale).
    pub integer_valued: bool,
}

/// One line describing a series, as `mvl info` and error messages list them.
pub fn series_line(series: &DicomSeries) -> String {
    let [columns, rows, images] = series.size();
    format!(
        "{}  {}  {:?}  {}×{}×{}  {}",
        series.series_uid,
        series.modality,
        series.series_description,
        columns,
        rows,
        images,
        series.patient_name
    )
}

/// Picks a series of a scanned folder: the one with `uid`, or the only one.
pub fn choose_series(dir: &Path, scan: FolderScan, uid: Option<&str>) -> Result<DicomSeries, DicomError> {
    if scan.series.is_empty() {
        return Err(DicomError::NoImages {
            dir: dir.to_path_buf(),
            skipped: scan.skipped,
        });
    }
    let listing = || {
        scan.series
            .iter()
            .map(|s| format!("  {}", series_line(s)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let problem = match uid {
        Some(uid) => match scan.series.iter().position(|s| s.series_uid == uid) {
            Some(index) => return Ok(scan.series[index].clone()),
            None => format!("no series {uid}"),
        },
        None if scan.series.len() == 1 => {
            let mut series = scan.series;
            return Ok(series.remove(0));
        }
        None => format!("{} series found", scan.series.len()),
    };
    Err(DicomError::ChooseSeries {
        dir: dir.to_path_buf(),
        problem,
        listing: listing(),
    })
}

/// Reads one series of a folder (the only one, or the one with SeriesInstanceUID `uid`).
/// Files that are not DICOM are skipped; [`scan_folder`] lists them.
pub fn read_dicom_series(dir: &Path, uid: Option<&str>) -> Result<DicomVolume, DicomError> {
    let scan = scan_folder(dir)?;
    let series = choose_series(dir, scan, uid)?;
    load_series(dir, series)
}

/// Sorts, checks and decodes a series found by [`scan_folder`] (`dir` names it in messages).
pub fn load_series(dir: &Path, series: DicomSeries) -> Result<DicomVolume, DicomError> {
    let planes: Vec<Plane> = series.images.iter().map(|i| i.plane.clone()).collect();
    let stack = stack_slices(&planes)?;
    let [columns, rows, slices] = series.size();
    let slice_len = columns * rows;
    let voxels = (slice_len as u64).saturating_mul(slices as u64);
    if voxels > MAX_VOXELS {
        let path = series.images.first().map_or(dir, |image| image.file.as_path());
        return Err(DicomError::TooLarge {
            path: path.to_path_buf(),
            voxels,
        });
    }
    // Checked before allocating, like a NIfTI volume: the sizes come from the files' headers.
    crate::memory::budget()
        .check(
            voxels.saturating_mul(std::mem::size_of::<f32>() as u64),
            &format!("decoding its {voxels} voxels ({columns}×{rows}×{slices}) as f32"),
        )
        .map_err(|reason| DicomError::OverBudget {
            path: dir.to_path_buf(),
            reason,
        })?;
    let mut data = vec![0f32; slice_len * slices];
    // Hand each file the slices its frames go to, then decode files in parallel.
    let mut slots: Vec<Option<&mut [f32]>> = data.chunks_mut(slice_len.max(1)).map(Some).collect();
    type Targets<'a> = Vec<(u32, (f64, f64), &'a mut [f32])>;
    let mut by_file: BTreeMap<&Path, Targets> = BTreeMap::new();
    for (k, image_index) in stack.order.iter().enumerate() {
        let image = &series.images[*image_index];
        if let Some(slice) = slots.get_mut(k).and_then(Option::take) {
            by_file
                .entry(image.file.as_path())
                .or_default()
                .push((image.frame, image.rescale, slice));
        }
    }
    let mut jobs: Vec<(&Path, Targets)> = by_file.into_iter().collect();
    jobs.par_iter_mut()
        .map(|(path, targets)| pixels::decode_into(path, targets))
        .collect::<Result<Vec<()>, DicomError>>()?;
    let integer_valued = data.iter().all(|v| v.fract() == 0.0);
    let volume = Volume::new([columns, rows, slices], 1, data, stack.world_from_voxel)
        .map_err(|e| DicomError::Geometry(format!("{}: {e}", dir.display())))?;
    Ok(DicomVolume {
        volume,
        series,
        integer_valued,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(uid: &str) -> DicomSeries {
        DicomSeries {
            series_uid: uid.into(),
            patient_name: "P".into(),
            patient_id: String::new(),
            study_description: String::new(),
            study_uid: "1".into(),
            series_description: format!("series {uid}"),
            series_number: None,
            modality: "CT".into(),
            transfer_syntaxes: Vec::new(),
            files: 0,
            images: Vec::new(),
        }
    }

    fn scan(uids: &[&str]) -> FolderScan {
        FolderScan {
            series: uids.iter().map(|uid| series(uid)).collect(),
            skipped: Vec::new(),
        }
    }

    #[test]
    fn a_series_is_chosen_by_uid_or_because_it_is_the_only_one() {
        let dir = Path::new("export");
        assert_eq!(
            choose_series(dir, scan(&["1.2"]), None)
                .map(|s| s.series_uid)
                .ok(),
            Some("1.2".into())
        );
        let both = || scan(&["1.2", "1.3"]);
        assert_eq!(
            choose_series(dir, both(), Some("1.3")).map(|s| s.series_uid).ok(),
            Some("1.3".into())
        );
        let message = choose_series(dir, both(), None)
            .expect_err("ambiguous")
            .to_string();
        assert!(
            message.contains("2 series found")
                && message.contains("series 1.3")
                && message.contains("--series"),
            "{message}"
        );
        let message = choose_series(dir, both(), Some("9.9"))
            .expect_err("absent")
            .to_string();
        assert!(message.contains("no series 9.9"), "{message}");
        let mut empty = scan(&[]);
        empty.skipped = (0..5)
            .map(|i| SkippedFile {
                path: PathBuf::from(format!("f{i}.txt")),
                reason: "not a DICOM file".into(),
            })
            .collect();
        let message = choose_series(dir, empty, None).expect_err("empty").to_string();
        // The first three skipped files are named, the rest summarised.
        assert!(
            message.contains("5 file(s) skipped")
                && message.contains("f2.txt")
                && !message.contains("f3.txt"),
            "{message}"
        );
    }
}
