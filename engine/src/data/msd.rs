//! Medical Segmentation Decathlon task folders: `dataset.json`, `imagesTr/`, `labelsTr/`,
//! `imagesTs/`, and a check of every case that reports each problem it finds.

use super::DataError;
use crate::volume::{NiftiImage, read_nifti};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Label-to-image affine differences above this (mm) are reported as misalignment.
const AFFINE_TOLERANCE_MM: f64 = 1e-3;

/// One case: an image and, for training cases, its label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// Identifier: the image file name without `.nii.gz` / `.nii`.
    pub id: String,
    /// The image file.
    pub image: PathBuf,
    /// The label file, for training cases.
    pub label: Option<PathBuf>,
}

/// An MSD task as dataset.json describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    /// The task folder.
    pub root: PathBuf,
    /// `name` from dataset.json (the folder name when absent).
    pub name: String,
    /// Channel index → modality name ("CT", "FLAIR", …).
    pub modalities: BTreeMap<usize, String>,
    /// Label value → name ("background", "liver", …).
    pub labels: BTreeMap<u32, String>,
    /// Labelled cases.
    pub training: Vec<Case>,
    /// Unlabelled cases.
    pub test: Vec<Case>,
}

impl Task {
    /// Every case, training first.
    pub fn cases(&self) -> impl Iterator<Item = &Case> {
        self.training.iter().chain(&self.test)
    }

    /// Looks a case up by id.
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases().find(|c| c.id == id)
    }
}

/// The case id of an image path: its file name without `.nii.gz` or `.nii`.
pub fn case_id(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .unwrap_or(&name)
        .to_string()
}

/// macOS writes `._name` resource-fork files into copied folders; MSD archives contain them.
fn is_resource_fork(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("._"))
}

/// Opens a task folder: parses dataset.json and resolves every path in it. Files that do not
/// exist are not an error here (see [`check_task`]); a missing or malformed dataset.json is.
pub fn open_task(dir: &Path) -> Result<Task, DataError> {
    let json_path = dir.join("dataset.json");
    if !json_path.is_file() {
        return Err(DataError::NoDatasetJson {
            dir: dir.to_path_buf(),
        });
    }
    let text =
        std::fs::read_to_string(&json_path).map_err(|e| DataError::io("cannot read", &json_path, e))?;
    parse_dataset_json(&text, dir)
}

/// Parses the text of a task's dataset.json, resolving its paths against `dir` (nothing is read
/// from disk).
pub fn parse_dataset_json(text: &str, dir: &Path) -> Result<Task, DataError> {
    let json_path = dir.join("dataset.json");
    let bad = |reason: String| DataError::BadDatasetJson {
        path: json_path.clone(),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let object = json
        .as_object()
        .ok_or_else(|| bad("the top level must be a JSON object".into()))?;
    let name = object
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let modalities = parse_index_map(object.get("modality"), "modality")
        .map_err(bad)?
        .into_iter()
        .map(|(k, v)| (k as usize, v))
        .collect::<BTreeMap<_, _>>();
    if modalities.is_empty() {
        return Err(bad(
            "\"modality\" is missing or empty; it maps channel indices to names, e.g. {\"0\": \"CT\"}".into(),
        ));
    }
    let labels = parse_index_map(object.get("labels"), "labels").map_err(bad)?;
    if labels.is_empty() {
        return Err(bad("\"labels\" is missing or empty; it maps label values to names, e.g. {\"0\": \"background\", \"1\": \"liver\"}".into()));
    }
    let resolve = |relative: &str| dir.join(relative.trim_start_matches("./"));
    let mut training = Vec::new();
    for (index, entry) in object
        .get("training")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let image = entry.get("image").and_then(|v| v.as_str());
        let label = entry.get("label").and_then(|v| v.as_str());
        let (Some(image), Some(label)) = (image, label) else {
            return Err(bad(format!(
                "training entry {index} needs both \"image\" and \"label\" paths"
            )));
        };
        let image = resolve(image);
        if is_resource_fork(&image) {
            continue;
        }
        training.push(Case {
            id: case_id(&image),
            image,
            label: Some(resolve(label)),
        });
    }
    let mut test = Vec::new();
    for (index, entry) in object
        .get("test")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        // MSD lists test images as plain strings; accept {"image": ...} objects too.
        let path = entry
            .as_str()
            .or_else(|| entry.get("image").and_then(|v| v.as_str()));
        let Some(path) = path else {
            return Err(bad(format!("test entry {index} must be a path string")));
        };
        let image = resolve(path);
        if is_resource_fork(&image) {
            continue;
        }
        test.push(Case {
            id: case_id(&image),
            image,
            label: None,
        });
    }
    let mut seen = BTreeSet::new();
    for case in training.iter().chain(&test) {
        if !seen.insert(case.id.clone()) {
            return Err(bad(format!("case id {:?} appears twice", case.id)));
        }
    }
    Ok(Task {
        root: dir.to_path_buf(),
        name,
        modalities,
        labels,
        training,
        test,
    })
}

/// Parses `{"0": "CT"}`-style maps, with integer keys, and string (or numeric-string) values.
fn parse_index_map(value: Option<&serde_json::Value>, field: &str) -> Result<BTreeMap<u32, String>, String> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| format!("\"{field}\" must be an object like {{\"0\": \"name\"}}"))?;
    let mut out = BTreeMap::new();
    for (key, name) in map {
        let index: u32 = key
            .trim()
            .parse()
            .map_err(|_| format!("\"{field}\" key {key:?} is not a non-negative integer"))?;
        let name = name
            .as_str()
            .ok_or_else(|| format!("\"{field}\" entry {key:?} must be a string"))?;
        out.insert(index, name.to_string());
    }
    Ok(out)
}

/// What `mvl dataset` reports about one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case id.
    pub id: String,
    /// "training" or "test".
    pub split: &'static str,
    /// Spatial shape of the image, when readable.
    pub shape: Option<[usize; 3]>,
    /// Channels of the image, when readable.
    pub channels: Option<usize>,
    /// Voxel spacing in mm, when readable.
    pub spacing_mm: Option<[f64; 3]>,
    /// Orientation letters, when readable.
    pub orientation: Option<String>,
    /// Label values present in the label file.
    pub label_values: Vec<u32>,
    /// Everything wrong with this case; empty when it is usable.
    pub problems: Vec<String>,
}

/// What `mvl dataset` reports about a task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    /// Task name.
    pub name: String,
    /// Channel → modality.
    pub modalities: BTreeMap<usize, String>,
    /// Label value → name.
    pub labels: BTreeMap<u32, String>,
    /// One report per case.
    pub cases: Vec<CaseReport>,
    /// Problems not tied to one listed case (e.g. files dataset.json does not list).
    pub problems: Vec<String>,
}

impl TaskReport {
    /// Number of problems across the task.
    pub fn problem_count(&self) -> usize {
        self.problems.len() + self.cases.iter().map(|c| c.problems.len()).sum::<usize>()
    }
}

/// Reads every case of a task (in parallel) and reports shapes, spacings and every problem:
/// missing or unreadable files, image/label shape or affine mismatch, undeclared label values,
/// channel counts that contradict `modality`, and files on disk that dataset.json does not list.
pub fn check_task(task: &Task) -> TaskReport {
    let jobs: Vec<(&Case, &'static str)> = task
        .training
        .iter()
        .map(|c| (c, "training"))
        .chain(task.test.iter().map(|c| (c, "test")))
        .collect();
    let cases = jobs
        .par_iter()
        .map(|(case, split)| check_case(task, case, split))
        .collect();
    let mut problems = Vec::new();
    let listed: BTreeSet<PathBuf> = task
        .cases()
        .flat_map(|c| std::iter::once(c.image.clone()).chain(c.label.clone()))
        .collect();
    for folder in ["imagesTr", "labelsTr", "imagesTs"] {
        let Ok(entries) = std::fs::read_dir(task.root.join(folder)) else {
            continue;
        };
        let mut unlisted: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !is_resource_fork(p))
            .filter(|p| p.to_string_lossy().ends_with(".nii.gz") || p.to_string_lossy().ends_with(".nii"))
            .filter(|p| !listed.contains(p))
            .collect();
        unlisted.sort();
        for path in unlisted {
            problems.push(format!(
                "{}: on disk but not listed in dataset.json (it will be ignored)",
                path.display()
            ));
        }
    }
    TaskReport {
        name: task.name.clone(),
        modalities: task.modalities.clone(),
        labels: task.labels.clone(),
        cases,
        problems,
    }
}

fn check_case(task: &Task, case: &Case, split: &'static str) -> CaseReport {
    let mut report = CaseReport {
        id: case.id.clone(),
        split,
        shape: None,
        channels: None,
        spacing_mm: None,
        orientation: None,
        label_values: Vec::new(),
        problems: Vec::new(),
    };
    let image = load_listed(&case.image, &mut report.problems);
    if let Some(image) = &image {
        let volume = &image.volume;
        report.shape = Some(volume.shape());
        report.channels = Some(volume.channels());
        report.spacing_mm = Some(volume.spacing_mm());
        report.orientation = Some(crate::volume::orientation_string(volume.world_from_voxel()));
        if volume.channels() != task.modalities.len() {
            report.problems.push(format!(
                "{}: has {} channel(s) but dataset.json declares {} modalities",
                case.image.display(),
                volume.channels(),
                task.modalities.len()
            ));
        }
    }
    let Some(label_path) = &case.label else {
        return report;
    };
    let Some(label) = load_listed(label_path, &mut report.problems) else {
        return report;
    };
    let mut values = BTreeSet::new();
    let mut non_integer = false;
    for v in label.volume.voxels() {
        if v.fract() != 0.0 || *v < 0.0 {
            non_integer = true;
        } else {
            values.insert(*v as u32);
        }
    }
    report.label_values = values.iter().copied().collect();
    if non_integer {
        report.problems.push(format!(
            "{}: holds non-integer or negative values; a label must hold integer class values",
            label_path.display()
        ));
    }
    let undeclared: Vec<u32> = values
        .iter()
        .copied()
        .filter(|v| !task.labels.contains_key(v))
        .collect();
    if !undeclared.is_empty() {
        report.problems.push(format!(
            "{}: label values {undeclared:?} are not declared in dataset.json \"labels\"",
            label_path.display()
        ));
    }
    if label.volume.channels() != 1 {
        report.problems.push(format!(
            "{}: a label must be 3-D, this one has {} volumes",
            label_path.display(),
            label.volume.channels()
        ));
    }
    if let Some(image) = &image {
        if image.volume.shape() != label.volume.shape() {
            report.problems.push(format!(
                "{}: shape {:?} differs from its image's {:?}",
                label_path.display(),
                label.volume.shape(),
                image.volume.shape()
            ));
        } else {
            let difference = image
                .volume
                .world_from_voxel()
                .max_abs_diff(label.volume.world_from_voxel());
            if difference > AFFINE_TOLERANCE_MM {
                report.problems.push(format!(
                    "{}: affine differs from its image's by up to {difference:.4} mm; the label is not aligned",
                    label_path.display()
                ));
            }
        }
    }
    report
}

fn load_listed(path: &Path, problems: &mut Vec<String>) -> Option<NiftiImage> {
    if !path.is_file() {
        problems.push(
            DataError::MissingFile {
                path: path.to_path_buf(),
            }
            .to_string(),
        );
        return None;
    }
    match read_nifti(path) {
        Ok(image) => Some(image),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_ids_strip_nifti_extensions() {
        assert_eq!(case_id(Path::new("a/imagesTr/liver_3.nii.gz")), "liver_3");
        assert_eq!(case_id(Path::new("x.nii")), "x");
        assert!(is_resource_fork(Path::new("imagesTr/._liver_3.nii.gz")));
    }

    #[test]
    fn malformed_dataset_json_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            open_task(dir.path()),
            Err(DataError::NoDatasetJson { .. })
        ));
        let write = |text: &str| std::fs::write(dir.path().join("dataset.json"), text).expect("write");
        write("{not json");
        assert!(
            open_task(dir.path())
                .expect_err("bad")
                .to_string()
                .contains("not valid JSON")
        );
        write(r#"{"modality": {"0": "CT"}, "labels": {"zero": "background"}}"#);
        assert!(
            open_task(dir.path())
                .expect_err("bad key")
                .to_string()
                .contains("\"zero\"")
        );
        write(
            r#"{"modality": {"0": "CT"}, "labels": {"0": "bg"}, "training": [{"image": "./imagesTr/a.nii.gz"}]}"#,
        );
        assert!(
            open_task(dir.path())
                .expect_err("no label")
                .to_string()
                .contains("training entry 0")
        );
        write(
            r#"{"modality": {"0": "CT"}, "labels": {"0": "bg", "1": "organ"},
                 "training": [{"image": "./imagesTr/a.nii.gz", "label": "./labelsTr/a.nii.gz"},
                              {"image": "./imagesTr/._a.nii.gz", "label": "./labelsTr/._a.nii.gz"}],
                 "test": ["./imagesTs/b.nii.gz"]}"#,
        );
        let task = open_task(dir.path()).expect("valid");
        assert_eq!(task.training.len(), 1, "resource forks are skipped");
        assert_eq!(task.test[0].id, "b");
        let report = check_task(&task);
        assert_eq!(report.cases.len(), 2);
        assert!(report.cases[0].problems[0].contains("listed in dataset.json but missing"));
    }
}
