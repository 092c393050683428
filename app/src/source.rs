//! What can be opened: an MSD task folder, one NIfTI scan with optional label and prediction,
//! or the built-in demo task; and the list of cases each one holds. Runs on the loader thread.

use engine::data::{self, PhantomOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to open: a task folder, a scan with optional label and prediction, or the demo task.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OpenRequest {
    /// An MSD task folder or a NIfTI file; `None` opens the built-in demo task.
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
pub const USAGE: &str =
    "usage: medvisionllama-studio [TASK_FOLDER | SCAN.nii.gz [--label FILE] [--prediction FILE]]";

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
}

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

/// Opens what `request` names (generating the demo task on first use).
pub fn open(request: &OpenRequest) -> anyhow::Result<Source> {
    let path = match &request.path {
        Some(path) => path.clone(),
        None => ensure_demo_task()?,
    };
    if path.is_dir() {
        open_task(&path, request)
    } else if path.is_file() {
        Ok(open_scan(&path, request))
    } else {
        anyhow::bail!(
            "{}: no such file or folder; open an MSD task folder or a .nii/.nii.gz scan",
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
        })
        .collect();
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
        is_ct: task
            .modalities
            .get(&0)
            .map(|m| m.trim().eq_ignore_ascii_case("ct")),
    })
}

fn open_scan(path: &Path, request: &OpenRequest) -> Source {
    let id = engine::data::case_id(path);
    let corrected = crate::label_io::corrected_beside_scan(path.parent().unwrap_or(Path::new("")), &id);
    Source {
        request: request.clone(),
        name: id.clone(),
        cases: vec![CaseEntry {
            id,
            image: path.to_path_buf(),
            ground_truth: request.label.clone(),
            prediction: request.prediction.clone(),
            corrected: corrected.is_file().then_some(corrected),
        }],
        label_names: BTreeMap::new(),
        is_ct: None,
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
}
