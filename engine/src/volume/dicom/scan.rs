//! Finding the series in a folder: every file's header is read (never its pixels), files that are
//! not DICOM are skipped and listed, and images are grouped by SeriesInstanceUID.

use super::DicomError;
use super::geometry::Plane;
use super::lengths::check_declared_lengths;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Folders deeper than this below the one given are not searched (PACS exports nest 3–4 deep).
const MAX_DEPTH: usize = 8;

/// One 2-D image of a series: a file, and a frame of it for multi-frame files.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomImage {
    /// The file holding it.
    pub file: PathBuf,
    /// Frame index within the file (0 for single-frame files).
    pub frame: u32,
    /// Where it lies.
    pub plane: Plane,
    /// RescaleSlope and RescaleIntercept (per frame for enhanced files).
    pub rescale: (f64, f64),
}

/// A series found in a folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DicomSeries {
    /// SeriesInstanceUID: what `--series` selects.
    pub series_uid: String,
    /// PatientName.
    pub patient_name: String,
    /// PatientID.
    pub patient_id: String,
    /// StudyDescription.
    pub study_description: String,
    /// StudyInstanceUID.
    pub study_uid: String,
    /// SeriesDescription.
    pub series_description: String,
    /// SeriesNumber, when given.
    pub series_number: Option<i64>,
    /// Modality (CT, MR, …).
    pub modality: String,
    /// Transfer syntaxes of its files, by name.
    pub transfer_syntaxes: Vec<String>,
    /// Number of files.
    pub files: usize,
    /// Its images (frames), in the order found.
    #[serde(skip)]
    pub images: Vec<DicomImage>,
}

impl DicomSeries {
    /// Columns × rows × images, as stored (before checks).
    pub fn size(&self) -> [usize; 3] {
        let (columns, rows) = self
            .images
            .first()
            .map(|i| (i.plane.columns as usize, i.plane.rows as usize))
            .unwrap_or((0, 0));
        [columns, rows, self.images.len()]
    }
}

/// A file that was not used, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// What a folder holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FolderScan {
    /// Series, ordered by study, series number and UID.
    pub series: Vec<DicomSeries>,
    /// Files that were not DICOM images.
    pub skipped: Vec<SkippedFile>,
}

/// Lists the files below `dir` (hidden files and DICOMDIR indexes left out), sorted.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, DicomError> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| DicomError::Io {
            path: folder.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.eq_ignore_ascii_case("DICOMDIR") {
                continue;
            }
            match entry.file_type() {
                Ok(kind) if kind.is_dir() && depth < MAX_DEPTH => pending.push((path, depth + 1)),
                Ok(kind) if kind.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the headers of every file below `dir` and groups the images into series.
pub fn scan_folder(dir: &Path) -> Result<FolderScan, DicomError> {
    if !dir.is_dir() {
        let problem = if dir.is_file() {
            "a file, not a folder: give the folder holding the series' files"
        } else {
            "no such folder"
        };
        return Err(DicomError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, problem),
        });
    }
    let mut by_uid: BTreeMap<String, DicomSeries> = BTreeMap::new();
    let mut skipped = Vec::new();
    for path in list_files(dir)? {
        // dicom-rs would zero-fill a damaged file's declared lengths before failing.
        let checked = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| check_declared_lengths(&bytes));
        if let Err(reason) = checked {
            skipped.push(SkippedFile {
                path,
                reason: format!("not read: {reason}"),
            });
            continue;
        }
        let header = match OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(&path)
        {
            Ok(header) => header,
            Err(error) => {
                skipped.push(SkippedFile {
                    path,
                    reason: format!("not a DICOM file ({error})"),
                });
                continue;
            }
        };
        let images = match images_of(&path, &header) {
            Ok(images) => images,
            Err(reason) => {
                skipped.push(SkippedFile { path, reason });
                continue;
            }
        };
        let uid = text(&header, tags::SERIES_INSTANCE_UID);
        let series = by_uid.entry(uid.clone()).or_insert_with(|| DicomSeries {
            series_uid: uid,
            patient_name: text(&header, tags::PATIENT_NAME),
            patient_id: text(&header, tags::PATIENT_ID),
            study_description: text(&header, tags::STUDY_DESCRIPTION),
            study_uid: text(&header, tags::STUDY_INSTANCE_UID),
            series_description: text(&header, tags::SERIES_DESCRIPTION),
            series_number: header
                .get(tags::SERIES_NUMBER)
                .and_then(|e| e.to_int::<i64>().ok()),
            modality: text(&header, tags::MODALITY),
            transfer_syntaxes: Vec::new(),
            files: 0,
            images: Vec::new(),
        });
        let syntax = super::pixels::syntax_name(header.meta().transfer_syntax());
        if !series.transfer_syntaxes.contains(&syntax) {
            series.transfer_syntaxes.push(syntax);
        }
        series.files += 1;
        series.images.extend(images);
    }
    let mut series: Vec<DicomSeries> = by_uid.into_values().collect();
    series.sort_by(|a, b| {
        (&a.study_uid, a.series_number, &a.series_uid).cmp(&(&b.study_uid, b.series_number, &b.series_uid))
    });
    Ok(FolderScan { series, skipped })
}

/// A text attribute, trimmed; empty when absent.
fn text(object: &InMemDicomObject, tag: dicom_object::Tag) -> String {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| {
            s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .to_string()
        })
        .unwrap_or_default()
}

fn floats(object: &InMemDicomObject, tag: dicom_object::Tag) -> Option<Vec<f64>> {
    object.get(tag).and_then(|e| e.to_multi_float64().ok())
}

fn first_item(object: &InMemDicomObject, tag: dicom_object::Tag) -> Option<&InMemDicomObject> {
    object
        .get(tag)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
}

/// Looks a value up in a frame's functional group, then the shared groups, then the top level:
/// `group` names the functional-group macro's sequence (e.g. PlanePositionSequence).
struct Lookup<'a> {
    top: &'a InMemDicomObject,
    shared: Option<&'a InMemDicomObject>,
    frame: Option<&'a InMemDicomObject>,
}

impl Lookup<'_> {
    fn floats(&self, group: dicom_object::Tag, tag: dicom_object::Tag) -> Option<Vec<f64>> {
        let in_group = |groups: Option<&InMemDicomObject>| {
            groups
                .and_then(|g| first_item(g, group))
                .and_then(|item| floats(item, tag))
        };
        in_group(self.frame)
            .or_else(|| in_group(self.shared))
            .or_else(|| floats(self.top, tag))
    }
}

/// The images a file holds, or why it holds none we can use.
fn images_of(path: &Path, object: &DefaultDicomObject) -> Result<Vec<DicomImage>, String> {
    let top: &InMemDicomObject = object;
    let rows = top.get(tags::ROWS).and_then(|e| e.to_int::<u32>().ok());
    let columns = top.get(tags::COLUMNS).and_then(|e| e.to_int::<u32>().ok());
    let (Some(rows), Some(columns)) = (rows, columns) else {
        return Err("no image in it (no Rows/Columns: a report, structure set or index)".into());
    };
    if rows == 0 || columns == 0 {
        return Err(format!("an empty image ({columns} columns × {rows} rows)"));
    }
    let frames = top
        .get(tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let per_frame: Vec<&InMemDicomObject> = top
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items())
        .map(|items| items.iter().collect())
        .unwrap_or_default();
    if frames > 1 && per_frame.len() != frames as usize {
        return Err(format!(
            "{frames} frames without a per-frame position for each (classic multi-frame, e.g. NM \
             or RT dose); only enhanced CT/MR multi-frame files can be stacked"
        ));
    }
    let shared = first_item(top, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let name = path.display().to_string();
    let mut images = Vec::with_capacity(frames as usize);
    for frame in 0..frames {
        let lookup = Lookup {
            top,
            shared,
            frame: per_frame.get(frame as usize).copied(),
        };
        let label = if frames > 1 {
            format!("{name} (frame {})", frame + 1)
        } else {
            name.clone()
        };
        let orientation = lookup.floats(tags::PLANE_ORIENTATION_SEQUENCE, tags::IMAGE_ORIENTATION_PATIENT);
        let position = lookup.floats(tags::PLANE_POSITION_SEQUENCE, tags::IMAGE_POSITION_PATIENT);
        let spacing = lookup.floats(tags::PIXEL_MEASURES_SEQUENCE, tags::PIXEL_SPACING);
        let (Some(orientation), Some(position)) = (orientation, position) else {
            return Err(format!(
                "{label}: no ImageOrientationPatient/ImagePositionPatient, so it cannot be placed \
                 in space (not a cross-sectional image)"
            ));
        };
        let (Ok(orientation), Ok(position)) = (
            <[f64; 6]>::try_from(orientation.as_slice()),
            <[f64; 3]>::try_from(position.as_slice()),
        ) else {
            return Err(format!(
                "{label}: ImageOrientationPatient needs 6 numbers and ImagePositionPatient 3"
            ));
        };
        // Required for CT and MR; guessing 1 mm would silently give a wrongly sized volume.
        let pixel_spacing_mm = match spacing.as_deref() {
            Some([row, column, ..]) => [*row, *column],
            _ => return Err(format!("{label}: no PixelSpacing, so its pixel size is unknown")),
        };
        let thickness = lookup
            .floats(tags::PIXEL_MEASURES_SEQUENCE, tags::SPACING_BETWEEN_SLICES)
            .or_else(|| lookup.floats(tags::PIXEL_MEASURES_SEQUENCE, tags::SLICE_THICKNESS))
            .and_then(|v| v.first().copied());
        let slope = lookup
            .floats(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_SLOPE)
            .and_then(|v| v.first().copied())
            .unwrap_or(1.0);
        let intercept = lookup
            .floats(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, tags::RESCALE_INTERCEPT)
            .and_then(|v| v.first().copied())
            .unwrap_or(0.0);
        images.push(DicomImage {
            file: path.to_path_buf(),
            frame,
            plane: Plane {
                label,
                rows,
                columns,
                orientation,
                position,
                pixel_spacing_mm,
                single_slice_thickness_mm: thickness,
            },
            rescale: (slope, intercept),
        });
    }
    Ok(images)
}
