//! What can be opened: an MSD task folder, a folder of DICOM files (one case per series), one
//! NIfTI scan with optional label and prediction, or the built-in demo task; and the list of
//! cases each one holds. Runs on the loader thread.

use engine::data::{self, PhantomOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to open: a task folder, a scan with optional label and prediction, or the demo task.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OpenRequest {
    /// An MSD task folder, a folder of DICOM files or a NIfTI file; `None` opens the demo task.
    pub path: Option<PathBuf>,
    /// Ground-truth label of a single scan.
    pub label: Option<PathBuf>,
    /// Predicted label of a single scan.
    pub prediction: Option<PathBuf>,
}

impl OpenRequest {
    /// Parses `[PATH] [--label FILE] [--prediction FILE]` (program name excluded).
    pub fn from_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Self, String> {
        let mut request = OpenRequest::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("{flag} needs a file after it"))
            };
            match arg.to_str() {
                Some("--label") => request.label = Some(value("--label")?),
                Some("--prediction") => request.prediction = Some(value("--prediction")?),
                Some(flag) if flag.starts_with("--") => {
                    return Err(format!("unknown option {flag}; {USAGE}"));
                }
                _ if request.path.is_none() => request.path = Some(PathBuf::from(arg)),
                _ => return Err(format!("more than one path given; {USAGE}")),
            }
        }
        if request.path.is_none() && (request.label.is_some() || request.prediction.is_some()) {
            return Err(format!("--label and --prediction need a scan; {USAGE}"));
        }
        Ok(request)
    }

    /// How the request reads in the recent-files menu.
    pub fn title(&self) -> String {
        match &self.path {
            None => "Demo task".to_string(),
            Some(path) => path.display().to_string(),
        }
    }
}

/// Command-line usage, shown when the arguments are wrong.
pub const USAGE: &str = "usage: medvisionllama-studio [TASK_FOLDER | DICOM_FOLDER | SCAN.nii.gz [--label FILE] [--prediction FILE]]";

/// One case of an opened source: where its files are.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEntry {
    /// Case id (the image file name without `.nii.gz`).
    pub id: String,
    /// The scan.
    pub image: PathBuf,
    /// The ground-truth label, when there is one.
    pub ground_truth: Option<PathBuf>,
    /// The predicted label, when there is one.
    pub prediction: Option<PathBuf>,
    /// The user's corrected label (`labelsCorrected/`), when there is one: shown and edited
    /// instead of the ground truth, which stays as it was.
    pub corrected: Option<PathBuf>,
    /// The DICOM series, when `image` is a folder of DICOM files (the case id is its UID).
    pub series: Option<SeriesNote>,
    /// The prediction's uncertainty score (`uncertainty.json` beside it), when it was predicted
    /// under test-time mirroring.
    pub uncertainty: Option<f64>,
}

/// What names a DICOM series: written to `labelsCorrected/series.json` beside its labels.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeriesNote {
    /// SeriesInstanceUID (also the case id and the label's file name).
    pub series_uid: String,
    /// SeriesDescription.
    pub description: String,
    /// Modality.
    pub modality: String,
    /// PatientName.
    pub patient: String,
    /// StudyDescription.
    pub study: String,
    /// Images (slices or frames) in the series.
    pub images: usize,
    /// Its size in voxels (columns, rows, images).
    pub size: [usize; 3],
}

impl SeriesNote {
    /// How the case list names the series: what a clinician recognises it by.
    pub fn title(&self) -> String {
        let [x, y, z] = self.size;
        let description = if self.description.is_empty() {
            "(no description)"
        } else {
            &self.description
        };
        format!(
            "{description} · {} · {} · {} · {} images · {x}×{y}×{z}",
            self.modality, self.patient, self.study, self.images
        )
    }
}

impl CaseEntry {
    /// The label the viewer shows and edits: the corrected one when there is one.
    pub fn label_shown(&self) -> Option<&PathBuf> {
        self.corrected.as_ref().or(self.ground_truth.as_ref())
    }
}

/// An opened task (or a single scan, as a task of one case).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// What was asked for (for the recent-files list and reopening).
    pub request: OpenRequest,
    /// Task name, or the scan's file name.
    pub name: String,
    /// The cases, training first.
    pub cases: Vec<CaseEntry>,
    /// Label value → name from dataset.json (empty for a bare scan).
    pub label_names: BTreeMap<u32, String>,
    /// Whether channel 0 is CT; `None` when unknown (decided per scan from its intensities).
    pub is_ct: Option<bool>,
    /// Channel names from dataset.json's `modality` ("FLAIR", "T1w", …), by channel index;
    /// empty for a bare scan or DICOM.
    pub channel_names: BTreeMap<usize, String>,
}

/// The file that makes a folder an MSD task.
const DATASET_JSON: &str = "dataset.json";

/// Phantoms written on first launch: enough for the demo preset to learn (a fold trains on 17),
/// quick to generate (under a second). `mvl demo-data` writes the same task by default.
const DEMO_CASES: usize = 24;
const DEMO_TEST_CASES: usize = 2;

/// The folder the demo task lives in (`$XDG_DATA_HOME/medvisionllama-studio/demo-task`).
pub fn demo_task_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("medvisionllama-studio")
        .join("demo-task")
}

/// A single scan's corrected label: `<case>_corrected.nii.gz` in the scan's folder.
pub fn corrected_beside_scan(folder: &Path, case_id: &str) -> PathBuf {
    folder.join(format!("{case_id}_corrected.nii.gz"))
}

/// Opens what `request` names (generating the demo task on first use).
pub fn open(request: &OpenRequest) -> anyhow::Result<Source> {
    let path = match &request.path {
        Some(path) => path.clone(),
        None => ensure_demo_task()?,
    };
    if path.is_dir() && !path.join(DATASET_JSON).is_file() {
        // No dataset.json: a folder of DICOM files, if it holds a series.
        let scan = engine::volume::dicom::scan_folder(&path)?;
        if !scan.series.is_empty() {
            return Ok(open_dicom(&path, request, scan));
        }
        open_task(&path, request)
    } else if path.is_dir() {
        open_task(&path, request)
    } else if path.is_file() {
        Ok(open_scan(&path, request))
    } else {
        anyhow::bail!(
            "{}: no such file or folder; open an MSD task folder, a folder of DICOM files or a .nii/.nii.gz scan",
            path.display()
        )
    }
}

fn ensure_demo_task() -> anyhow::Result<PathBuf> {
    let dir = demo_task_dir();
    if !dir.join("dataset.json").is_file() {
        data::write_phantom_task(
            &dir,
            &PhantomOptions {
                training_cases: DEMO_CASES,
                test_cases: DEMO_TEST_CASES,
                ..PhantomOptions::default()
            },
        )?;
    }
    Ok(dir)
}

/// Folders of a task where predictions are looked for, in order: the app's own (written after
/// training), then ones the user put there.
const PREDICTION_FOLDERS: [&str; 3] = [".medvisionllama/predictions", "labelsPred", "predictions"];

/// The cases with the uncertainty scores recorded beside their predictions (a folder's file
/// that cannot be read leaves its cases unscored).
fn with_uncertainty(mut cases: Vec<CaseEntry>) -> Vec<CaseEntry> {
    let mut folders: BTreeMap<PathBuf, engine::infer::UncertaintyScores> = BTreeMap::new();
    for case in &mut cases {
        let Some(folder) = case.prediction.as_deref().and_then(Path::parent) else {
            continue;
        };
        let scores = folders
            .entry(folder.to_path_buf())
            .or_insert_with(|| engine::infer::UncertaintyScores::load(folder).unwrap_or_default());
        case.uncertainty = scores.scores.get(&case.id).copied();
    }
    cases
}

fn find_prediction(root: &Path, id: &str) -> Option<PathBuf> {
    PREDICTION_FOLDERS
        .iter()
        .flat_map(|folder| [".nii.gz", ".nii"].map(|ext| root.join(folder).join(format!("{id}{ext}"))))
        .find(|path| path.is_file())
}

fn open_task(dir: &Path, request: &OpenRequest) -> anyhow::Result<Source> {
    let task = data::open_task(dir)?;
    let mut corrected = data::corrected_labels(dir);
    let cases: Vec<CaseEntry> = task
        .cases()
        .map(|case| CaseEntry {
            id: case.id.clone(),
            image: case.image.clone(),
            ground_truth: case.label.clone(),
            prediction: find_prediction(dir, &case.id),
            corrected: corrected.remove(&case.id),
            series: None,
            uncertainty: None,
        })
        .collect();
    let cases = with_uncertainty(cases);
    if cases.is_empty() {
        anyhow::bail!("{}: dataset.json lists no cases", dir.display());
    }
    Ok(Source {
        request: OpenRequest {
            path: request.path.clone(),
            ..OpenRequest::default()
        },
        name: task.name.clone(),
        cases,
        label_names: task.labels.clone(),
        channel_names: task.modalities.clone(),
        is_ct: task
            .modalities
            .get(&0)
            .map(|m| m.trim().eq_ignore_ascii_case("ct")),
    })
}

fn open_scan(path: &Path, request: &OpenRequest) -> Source {
    let id = engine::data::case_id(path);
    let corrected = corrected_beside_scan(path.parent().unwrap_or(Path::new("")), &id);
    Source {
        request: request.clone(),
        name: id.clone(),
        cases: vec![CaseEntry {
            id,
            image: path.to_path_buf(),
            ground_truth: request.label.clone(),
            prediction: request.prediction.clone(),
            corrected: corrected.is_file().then_some(corrected),
            series: None,
            uncertainty: None,
        }],
        label_names: BTreeMap::new(),
        is_ct: None,
        channel_names: BTreeMap::new(),
    }
}

/// A folder of DICOM files: one case per series, labels in `labelsCorrected/<series UID>.nii.gz`.
fn open_dicom(dir: &Path, request: &OpenRequest, scan: engine::volume::dicom::FolderScan) -> Source {
    let corrected_folder = dir.join(data::CORRECTED_FOLDER);
    let cases = scan
        .series
        .into_iter()
        .map(|series| {
            let corrected = corrected_folder.join(format!("{}.nii.gz", series.series_uid));
            CaseEntry {
                id: series.series_uid.clone(),
                image: dir.to_path_buf(),
                ground_truth: None,
                prediction: None,
                corrected: corrected.is_file().then_some(corrected),
                series: Some(SeriesNote {
                    images: series.images.len(),
                    size: series.size(),
                    series_uid: series.series_uid,
                    description: series.series_description,
                    modality: series.modality,
                    patient: series.patient_name,
                    study: series.study_description,
                }),
                uncertainty: None,
            }
        })
        .collect::<Vec<_>>();
    let all_ct = cases.iter().all(|c| {
        c.series
            .as_ref()
            .is_some_and(|s| s.modality.eq_ignore_ascii_case("CT"))
    });
    Source {
        request: OpenRequest {
            path: request.path.clone(),
            ..OpenRequest::default()
        },
        name: format!(
            "DICOM {}",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        cases,
        label_names: BTreeMap::new(),
        is_ct: all_ct.then_some(true),
        channel_names: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn arguments_name_a_path_label_and_prediction() {
        let request = OpenRequest::from_args(args(&["scan.nii.gz", "--label", "lab.nii.gz"]));
        assert_eq!(
            request,
            Ok(OpenRequest {
                path: Some("scan.nii.gz".into()),
                label: Some("lab.nii.gz".into()),
                prediction: None,
            })
        );
        assert_eq!(OpenRequest::from_args(args(&[])), Ok(OpenRequest::default()));
        assert!(OpenRequest::from_args(args(&["a", "--label"])).is_err());
        assert!(OpenRequest::from_args(args(&["a", "b"])).is_err());
        assert!(OpenRequest::from_args(args(&["--label", "x"])).is_err());
        assert!(OpenRequest::from_args(args(&["--bogus"])).is_err());
    }

    #[test]
    fn missing_paths_are_reported_with_the_path() {
        let request = OpenRequest {
            path: Some("/no/such/task".into()),
            ..OpenRequest::default()
        };
        let message = open(&request).map(|_| ()).map_err(|e| e.to_string());
        assert!(message.is_err_and(|m| m.contains("/no/such/task")));
    }

    #[test]
    fn a_dicom_folder_opens_one_case_per_series() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom/two_series");
        let request = OpenRequest {
            path: Some(dir),
            ..OpenRequest::default()
        };
        let source = open(&request).expect("a DICOM folder opens");
        let descriptions: Vec<&str> = source
            .cases
            .iter()
            .filter_map(|c| c.series.as_ref().map(|s| s.description.as_str()))
            .collect();
        assert_eq!(descriptions, ["first series", "second series"]);
        assert_eq!(source.cases[1].id, "1.2.826.0.1.3680043.8.498.11");
        assert_eq!(source.is_ct, Some(true));
        // The case list names it by description, modality, patient, study, images and size.
        let second = source.cases[1].series.as_ref().expect("a series");
        assert_eq!((second.images, second.size), (4, [8, 6, 4]));
        let title = second.title();
        assert!(
            title.starts_with("second series · CT · ") && title.ends_with("4 images · 8×6×4"),
            "{title}"
        );
        // The second series: 8 columns × 6 rows × 4 coronal slices, shown on the RAS+ grid.
        let loaded = crate::io::loader::load_case(&source, 1).expect("the series loads");
        let mut shape = loaded.image.shape();
        shape.sort_unstable();
        assert_eq!(shape, [4, 6, 8]);
    }
}
