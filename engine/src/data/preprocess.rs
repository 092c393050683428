//! Preprocessing, cached: reorient to RAS+, resample to the model grid (trilinear for images,
//! nearest for labels), select channels. Outputs go to a folder with a manifest; cases whose
//! source files and settings have not changed are reused, so training never redoes this work.
//! Intensities are stored as read: a run normalises them (`normalise.rs`) with statistics from
//! its own training cases, so the cache is shared by every fold without leaking across them.
//!
//! Non-finite voxels (NaN, ±∞) are set to their channel's smallest finite value (0 when none is
//! finite) before resampling, so they become background instead of spreading through the
//! interpolation (and never reach the CT statistics).

use super::{DataError, Task, create_dir, write_json_atomically};
use crate::volume::{
    DataType, Geometry, Interpolation, NiftiImage, Volume, WriteOptions, model_grid, read_nifti,
    reorient_to_canonical, replace_non_finite, resample, write_nifti,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name in the output folder.
pub const PREPROCESS_MANIFEST: &str = "preprocess.json";
/// Bump when the outputs of the same settings would change; old caches are then rebuilt.
const PREPROCESS_VERSION: u32 = 2; // 2: intensities as read (normalised per run), non-finite voxels replaced

/// Preprocessing settings; part of the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessOptions {
    /// Model grid size (x, y, z).
    pub size: [usize; 3],
    /// Channels to keep, in order; `None` keeps all.
    pub channels: Option<Vec<usize>>,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self {
            size: [128, 128, 128],
            channels: None,
        }
    }
}

/// A source file's identity for the cache: size and modification time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprint {
    bytes: u64,
    modified_ns: u128,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(Fingerprint {
        bytes: metadata.len(),
        modified_ns: modified.as_nanos(),
    })
}

/// One preprocessed case in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessedCase {
    /// Case id.
    pub id: String,
    /// "training" or "test".
    pub split: String,
    /// Model-grid image (float32, channels on the 4th axis), relative to the output folder.
    pub image: PathBuf,
    /// Model-grid label (uint8), relative to the output folder.
    pub label: Option<PathBuf>,
    /// The original image file.
    pub source_image: PathBuf,
    /// The original label file.
    pub source_label: Option<PathBuf>,
    /// The scan's own grid: predictions are resampled back onto it.
    pub source_geometry: Geometry,
    /// The model grid (RAS+, `size` voxels covering the scan's field of view).
    pub model_geometry: Geometry,
    source_fingerprints: Vec<Option<Fingerprint>>,
}

/// `preprocess.json`: settings, statistics and cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreprocessedTask {
    version: u32,
    /// The settings used.
    pub options: PreprocessOptions,
    /// Modality of each kept channel.
    pub modalities: Vec<String>,
    /// Label value → name, from dataset.json.
    pub labels: BTreeMap<u32, String>,
    /// Every case.
    pub cases: Vec<PreprocessedCase>,
    /// The folder the manifest was read from (not stored).
    #[serde(skip)]
    pub root: PathBuf,
}

impl PreprocessedTask {
    /// Reads the manifest of a preprocessed folder.
    pub fn open(dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(PREPROCESS_MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io("cannot read", &path, e))?;
        Self::parse(&text, dir)
    }

    /// Parses the text of a `preprocess.json` found in `dir` (nothing is read from disk).
    pub fn parse(text: &str, dir: &Path) -> Result<Self, DataError> {
        let path = dir.join(PREPROCESS_MANIFEST);
        let mut task: PreprocessedTask = serde_json::from_str(text).map_err(|e| DataError::BadFile {
            path: path.clone(),
            reason: format!("not a preprocessing manifest ({e}); run `mvl preprocess` again"),
        })?;
        task.root = dir.to_path_buf();
        Ok(task)
    }

    /// Loads a case's model-grid image and label.
    pub fn load(&self, case: &PreprocessedCase) -> Result<(Volume, Option<Volume>), DataError> {
        let image = read_nifti(&self.root.join(&case.image))?.volume;
        let label = match &case.label {
            Some(path) => Some(read_nifti(&self.root.join(path))?.volume),
            None => None,
        };
        Ok((image, label))
    }
}

/// What a preprocessing run did.
#[derive(Debug, Clone, Serialize)]
pub struct PreprocessReport {
    /// Cases computed now.
    pub processed: usize,
    /// Cases reused from the cache.
    pub reused: usize,
    /// The manifest written.
    pub manifest: PathBuf,
}

/// Preprocesses every case of a task into `out` (see the module documentation), reusing
/// outputs whose sources and settings are unchanged.
pub fn preprocess_task(
    task: &Task,
    out: &Path,
    options: &PreprocessOptions,
) -> Result<PreprocessReport, DataError> {
    if options.size.iter().any(|n| *n == 0 || *n > 1024) {
        return Err(DataError::Invalid(format!(
            "model grid size {:?}: each dimension must be 1–1024",
            options.size
        )));
    }
    let channels: Vec<usize> = match &options.channels {
        Some(list) => list.clone(),
        None => task.modalities.keys().copied().collect(),
    };
    if let Some(missing) = channels.iter().find(|c| !task.modalities.contains_key(c)) {
        return Err(DataError::Invalid(format!(
            "channel {missing} is not in dataset.json's modalities {:?}",
            task.modalities
        )));
    }
    let modalities: Vec<String> = channels.iter().map(|c| task.modalities[c].clone()).collect();
    let grid_bytes = options.size.iter().product::<usize>() as u64 * channels.len() as u64 * 4;
    crate::memory::budget()
        .check(
            grid_bytes,
            &format!(
                "one case on the {:?} grid with {} channel(s)",
                options.size,
                channels.len()
            ),
        )
        .map_err(DataError::Invalid)?;
    for folder in ["imagesTr", "labelsTr", "imagesTs"] {
        create_dir(&out.join(folder))?;
    }
    let previous = PreprocessedTask::open(out)
        .ok()
        .filter(|p| p.version == PREPROCESS_VERSION && p.options == *options && p.modalities == modalities);
    let source_prints = |case: &super::Case| {
        std::iter::once(fingerprint(&case.image))
            .chain(case.label.as_deref().map(fingerprint))
            .collect::<Vec<_>>()
    };
    let jobs: Vec<(&super::Case, &str)> = task
        .training
        .iter()
        .map(|c| (c, "training"))
        .chain(task.test.iter().map(|c| (c, "test")))
        .collect();
    let reusable: Vec<Option<PreprocessedCase>> = jobs
        .iter()
        .map(|(case, split)| {
            previous
                .as_ref()
                .and_then(|p| p.cases.iter().find(|c| c.id == case.id))
                .filter(|cached| {
                    cached.source_fingerprints == source_prints(case)
                        && same_label_source(cached.source_label.as_deref(), case.label.as_deref())
                        && cached.split == *split
                        && out.join(&cached.image).is_file()
                        && cached.label.as_ref().is_none_or(|l| out.join(l).is_file())
                })
                .cloned()
        })
        .collect();
    // The case files are replaced under the names an older manifest lists (with other settings,
    // say). Remove that manifest first, so a crash or `kill -9` part-way never leaves one that
    // vouches for files it did not write; the next run then rebuilds the cache.
    let manifest_path = out.join(PREPROCESS_MANIFEST);
    if reusable.iter().any(Option::is_none) && manifest_path.exists() {
        std::fs::remove_file(&manifest_path)
            .map_err(|e| DataError::io("cannot remove", &manifest_path, e))?;
        crate::atomic::sync_folder(out).map_err(|e| DataError::io("cannot sync", out, e))?;
    }
    let results: Vec<Result<(PreprocessedCase, bool), DataError>> = jobs
        .par_iter()
        .zip(reusable)
        .map(|((case, split), reused)| match reused {
            Some(cached) => Ok((cached, true)),
            None => {
                let prints = source_prints(case);
                let processed = preprocess_case(case, split, out, options, &channels, prints)?;
                Ok((processed, false))
            }
        })
        .collect();
    let mut cases = Vec::with_capacity(results.len());
    let mut reused = 0;
    for result in results {
        let (case, was_reused) = result?;
        reused += usize::from(was_reused);
        cases.push(case);
    }
    let manifest = PreprocessedTask {
        version: PREPROCESS_VERSION,
        options: options.clone(),
        modalities,
        labels: task.labels.clone(),
        cases,
        root: out.to_path_buf(),
    };
    write_json_atomically(&manifest_path, &manifest)?;
    Ok(PreprocessReport {
        processed: jobs.len() - reused,
        reused,
        manifest: manifest_path,
    })
}

/// Whether two label paths name the same file as far as the cache is concerned: the same file
/// name in a folder of the same name. A moved task folder keeps its cache; a label swapped for
/// one in another folder (a corrected label in `labelsCorrected/`) is preprocessed again even if
/// its size and time happen to match.
fn same_label_source(cached: Option<&Path>, current: Option<&Path>) -> bool {
    let key = |path: Option<&Path>| {
        path.map(|p| {
            (
                p.file_name().map(ToOwned::to_owned),
                p.parent().and_then(Path::file_name).map(ToOwned::to_owned),
            )
        })
    };
    key(cached) == key(current)
}

/// Reads a case's image (and label) in the scan's own grid, checking they match.
fn load_pair(case: &super::Case) -> Result<(NiftiImage, Option<NiftiImage>), DataError> {
    let image = read_nifti(&case.image)?;
    let label = match &case.label {
        Some(path) => {
            let label = read_nifti(path)?;
            if label.volume.shape() != image.volume.shape() {
                return Err(DataError::Mismatch {
                    path: path.clone(),
                    reason: format!(
                        "label shape {:?} differs from image shape {:?} ({}); re-export the label on the image's grid",
                        label.volume.shape(),
                        image.volume.shape(),
                        case.image.display()
                    ),
                });
            }
            Some(label)
        }
        None => None,
    };
    Ok((image, label))
}

/// Selects `channels`, sets non-finite voxels to the channel's minimum ([`replace_non_finite`]),
/// reorients to RAS+ and resamples (trilinear) onto the model grid of `size` voxels covering the
/// scan's field of view. The caller has checked the channels exist.
pub fn model_grid_input(image: &Volume, channels: &[usize], size: [usize; 3]) -> Volume {
    let channel_len = image.channel_len();
    let mut selected = Vec::with_capacity(channel_len * channels.len());
    for c in channels {
        let start = selected.len();
        selected.extend_from_slice(image.channel((*c).min(image.channels() - 1)));
        replace_non_finite(&mut selected[start..]);
    }
    let selected = match Volume::new(image.shape(), channels.len(), selected, *image.world_from_voxel()) {
        Ok(v) => v,
        Err(_) => unreachable!("channels × channel length voxels were copied"),
    };
    let canonical = reorient_to_canonical(&selected);
    let grid = model_grid(&canonical.geometry(), size);
    resample(&canonical, &grid, Interpolation::Linear, 0.0)
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
fn preprocess_case(
    case: &super::Case,
    split: &str,
    out: &Path,
    options: &PreprocessOptions,
    channels: &[usize],
    source_fingerprints: Vec<Option<Fingerprint>>,
) -> Result<PreprocessedCase, DataError> {
    let (image, label) = load_pair(case)?;
    let source_geometry = image.volume.geometry();
    if let Some(missing) = channels.iter().find(|c| **c >= image.volume.channels()) {
        return Err(DataError::Mismatch {
            path: case.image.clone(),
            reason: format!(
                "has {} channel(s); channel {missing} was asked for",
                image.volume.channels()
            ),
        });
    }
    // Intensities stay as they are: their normalisation depends on the run (CT statistics come
    // from its training cases only) and happens when a run loads the cases.
    let resampled = model_grid_input(&image.volume, channels, options.size);
    let grid = resampled.geometry();
    let image_relative = PathBuf::from(if split == "training" {
        "imagesTr"
    } else {
        "imagesTs"
    })
    .join(format!("{}.nii", case.id));
    write_nifti(
        &out.join(&image_relative),
        &resampled,
        None,
        WriteOptions::new(DataType::F32),
    )?;
    let label_relative = match &label {
        Some(label) => {
            let canonical_label = reorient_to_canonical(&label.volume);
            let model_label = resample(&canonical_label, &grid, Interpolation::Nearest, 0.0);
            let relative = PathBuf::from("labelsTr").join(format!("{}.nii", case.id));
            write_nifti(
                &out.join(&relative),
                &model_label,
                None,
                WriteOptions::new(DataType::U8),
            )?;
            Some(relative)
        }
        None => None,
    };
    Ok(PreprocessedCase {
        id: case.id.clone(),
        split: split.to_string(),
        image: image_relative,
        label: label_relative,
        source_image: case.image.clone(),
        source_label: case.label.clone(),
        source_geometry,
        model_geometry: grid,
        source_fingerprints,
    })
}

#[cfg(test)]
#[path = "preprocess_tests.rs"]
mod tests;
