//! Corrected labels: the label files a user fixed by hand, kept in `labelsCorrected/` beside
//! `labelsTr/` so the originals stay untouched, and their use in place of the labels
//! dataset.json names.

use super::{DataError, Task, case_id};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The folder of a task that holds corrected labels, one `<case id>.nii.gz` (or `.nii`) each.
pub const CORRECTED_FOLDER: &str = "labelsCorrected";

/// Case id → corrected label file, for every `labelsCorrected/<id>.nii.gz` or `<id>.nii` of the
/// task folder. macOS `._*` files, folders and other files are skipped; a missing or unreadable
/// folder gives an empty map (no case has been corrected).
pub fn corrected_labels(task_dir: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(task_dir.join(CORRECTED_FOLDER)) else {
        return BTreeMap::new();
    };
    let mut labels = BTreeMap::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_nifti = name.ends_with(".nii.gz") || name.ends_with(".nii");
        if !is_nifti || name.starts_with("._") || !path.is_file() {
            continue;
        }
        // Both `a.nii` and `a.nii.gz` present: keep one, the same one on every call.
        labels
            .entry(case_id(&path))
            .and_modify(|kept: &mut PathBuf| {
                if path < *kept {
                    *kept = path.clone();
                }
            })
            .or_insert(path);
    }
    labels
}

/// Replaces the labels of training cases by the files in `overrides` (case id → label file).
/// An id that is not a training case of the task, or a file that does not exist, is an error
/// naming both.
pub fn apply_label_overrides(
    task: &mut Task,
    overrides: &BTreeMap<String, PathBuf>,
) -> Result<(), DataError> {
    for (id, path) in overrides {
        let Some(case) = task.training.iter_mut().find(|c| &c.id == id) else {
            return Err(DataError::Invalid(format!(
                "label override {}: case {id:?} is not a training case of {}; rename the file after a training case or remove it",
                path.display(),
                task.root.display()
            )));
        };
        if !path.is_file() {
            return Err(DataError::Invalid(format!(
                "label override {}: no such file for case {id:?}; save the corrected label again",
                path.display()
            )));
        }
        case.label = Some(path.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrected_labels_finds_nifti_files_and_skips_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(corrected_labels(dir.path()).is_empty(), "no folder, no labels");
        let folder = dir.path().join(CORRECTED_FOLDER);
        std::fs::create_dir_all(folder.join("sub.nii.gz")).expect("folder");
        for name in ["a.nii.gz", "b.nii", "._x.nii.gz", "notes.txt", "c.nii.gz.tmp"] {
            std::fs::write(folder.join(name), b"").expect("write");
        }
        let found = corrected_labels(dir.path());
        let expected: BTreeMap<String, PathBuf> = [
            ("a".to_string(), folder.join("a.nii.gz")),
            ("b".to_string(), folder.join("b.nii")),
        ]
        .into_iter()
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn overrides_replace_training_labels_and_refuse_unknown_cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let corrected = dir.path().join("a.nii.gz");
        std::fs::write(&corrected, b"").expect("write");
        let case = |id: &str, label: bool| super::super::Case {
            id: id.into(),
            image: dir.path().join(format!("imagesTr/{id}.nii.gz")),
            label: label.then(|| dir.path().join(format!("labelsTr/{id}.nii.gz"))),
        };
        let mut task = Task {
            root: dir.path().to_path_buf(),
            name: "t".into(),
            modalities: BTreeMap::new(),
            labels: BTreeMap::new(),
            training: vec![case("a", true), case("b", true)],
            test: vec![case("t", false)],
        };
        let overrides = |id: &str, path: &Path| BTreeMap::from([(id.to_string(), path.to_path_buf())]);
        apply_label_overrides(&mut task, &overrides("a", &corrected)).expect("applies");
        assert_eq!(task.training[0].label.as_deref(), Some(corrected.as_path()));
        assert_eq!(task.training[1], case("b", true), "other cases untouched");
        for (id, path) in [("t", corrected.clone()), ("zz", corrected.clone())] {
            let message = apply_label_overrides(&mut task, &overrides(id, &path))
                .expect_err("not a training case")
                .to_string();
            assert!(message.contains(id) && message.contains("a.nii.gz"), "{message}");
        }
        let missing = dir.path().join("gone.nii.gz");
        let message = apply_label_overrides(&mut task, &overrides("b", &missing))
            .expect_err("missing file")
            .to_string();
        assert!(message.contains("gone.nii.gz"), "{message}");
    }
}
