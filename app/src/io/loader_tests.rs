//! Loader tests: a phantom task with a prediction, labels on another grid or beyond a byte
//! refused with a message naming the files, and panics turned into messages.

use super::*;
use engine::data::{self, PhantomOptions};

#[test]
fn task_cases_find_predictions_beside_the_task() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = PhantomOptions {
        training_cases: 2,
        test_cases: 1,
        size: [12, 12, 8],
        ..PhantomOptions::default()
    };
    data::write_phantom_task(dir.path(), &options)?;
    let source = open(&OpenRequest {
        path: Some(dir.path().to_path_buf()),
        ..OpenRequest::default()
    })?;
    assert_eq!(source.cases.len(), 3);
    assert!(source.cases.iter().all(|c| c.prediction.is_none()));
    // Use the first case's ground truth as its "prediction".
    let first = &source.cases[0];
    std::fs::create_dir_all(dir.path().join("labelsPred"))?;
    let ground_truth = first
        .ground_truth
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no label"))?;
    std::fs::copy(
        &ground_truth,
        dir.path().join("labelsPred").join(format!("{}.nii.gz", first.id)),
    )?;
    let source = open(&source.request)?;
    assert!(source.cases[0].prediction.is_some());
    let case = load_case(&source, 0)?;
    assert!(case.prediction.is_some() && case.ground_truth.is_some());
    assert!(case.is_ct);
    assert!(!case.label_values.is_empty());
    assert!(case.warnings.is_empty(), "{:?}", case.warnings);
    Ok(())
}

#[test]
fn a_scan_with_non_finite_voxels_says_so() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("scan.nii.gz");
    let mut voxels = vec![1.0f32; 4 * 4 * 4];
    voxels[0] = f32::NAN;
    voxels[9] = f32::INFINITY;
    voxels[10] = f32::NEG_INFINITY;
    let volume = Volume::new([4, 4, 4], 1, voxels, engine::volume::Affine::identity())?;
    let options = engine::volume::WriteOptions::new(engine::volume::DataType::F32);
    engine::volume::write_nifti(&path, &volume, None, options)?;
    let source = open(&OpenRequest {
        path: Some(path),
        ..OpenRequest::default()
    })?;
    let case = load_case(&source, 0)?;
    assert!(
        case.warnings.iter().any(|w| w.contains("3 voxels are NaN or ±∞")),
        "{:?}",
        case.warnings
    );
    Ok(())
}

/// Writes a 6×5×4 scan and a label whose origin is moved by `shift_mm` along x; loads them.
fn load_with_shifted_label(
    dir: &std::path::Path,
    shift_mm: f64,
) -> anyhow::Result<(LoadedCase, PathBuf, PathBuf)> {
    load_label_of(dir, shift_mm, 1.0)
}

/// As [`load_with_shifted_label`], with every label voxel holding `value`.
fn load_label_of(
    dir: &std::path::Path,
    shift_mm: f64,
    value: f32,
) -> anyhow::Result<(LoadedCase, PathBuf, PathBuf)> {
    let (scan_path, label_path) = (dir.join("scan.nii.gz"), dir.join("label.nii.gz"));
    let scan_affine = engine::volume::Affine::from_diagonal([0.8, 0.8, 2.0]);
    let mut label_affine = scan_affine;
    label_affine.0[0][3] += shift_mm;
    let options = engine::volume::WriteOptions::new(engine::volume::DataType::F32);
    let scan = Volume::new([6, 5, 4], 1, vec![100.0; 120], scan_affine)?;
    engine::volume::write_nifti(&scan_path, &scan, None, options)?;
    let options = engine::volume::WriteOptions::new(engine::volume::DataType::I32);
    let label = Volume::new([6, 5, 4], 1, vec![value; 120], label_affine)?;
    engine::volume::write_nifti(&label_path, &label, None, options)?;
    let source = open(&OpenRequest {
        path: Some(scan_path.clone()),
        label: Some(label_path.clone()),
        prediction: None,
    })?;
    Ok((load_case(&source, 0)?, scan_path, label_path))
}

#[test]
fn a_label_on_another_grid_is_refused_naming_both_files() -> anyhow::Result<()> {
    // 2 mm is far beyond the tolerance: refused, with both paths in the message.
    let dir = tempfile::tempdir()?;
    let (case, scan, label) = load_with_shifted_label(dir.path(), 2.0)?;
    assert!(case.ground_truth.is_none());
    let warning = case.warnings.join("; ");
    assert!(warning.contains(&label.display().to_string()), "{warning}");
    assert!(warning.contains(&scan.display().to_string()), "{warning}");
    assert!(warning.contains("2.0000 mm"), "{warning}");
    // A tenth of the tolerance is rounding, not another grid: shown, no warning.
    let (case, _, _) = load_with_shifted_label(dir.path(), AFFINE_TOLERANCE_MM / 10.0)?;
    assert!(case.ground_truth.is_some());
    assert!(case.warnings.is_empty(), "{:?}", case.warnings);
    Ok(())
}

#[test]
fn labels_above_255_load_as_two_bytes_and_beyond_u16_are_refused_naming_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (case, _, label) = load_label_of(dir.path(), 0.0, 70_000.0)?;
    assert!(case.ground_truth.is_none());
    let warning = case.warnings.join("; ");
    assert!(warning.contains(&label.display().to_string()), "{warning}");
    assert!(
        warning.contains("70000") && warning.contains("renumber"),
        "{warning}"
    );
    let (case, _, _) = load_label_of(dir.path(), 0.0, 300.0)?;
    assert!(case.label_values.contains(&300), "{:?}", case.label_values);
    let label = case
        .ground_truth
        .ok_or_else(|| anyhow::anyhow!("300 fits two bytes"))?;
    assert!(matches!(label, crate::common::label::Label::U16(_)));
    assert!(label.iter().all(|v| v == 300));
    let (case, _, _) = load_label_of(dir.path(), 0.0, 255.0)?;
    let label = case
        .ground_truth
        .ok_or_else(|| anyhow::anyhow!("255 fits a byte"))?;
    assert!(matches!(label, crate::common::label::Label::U8(_)));
    assert!(label.iter().all(|v| v == 255));
    Ok(())
}

#[test]
fn a_panic_while_loading_becomes_a_message() {
    let answer: Result<(), String> = guarded(|| panic!("decoder bug"));
    let message = answer.expect_err("the panic is caught");
    assert!(message.contains("decoder bug"), "{message}");
    let fine: Result<u8, String> = guarded(|| Ok(3));
    assert_eq!(fine, Ok(3));
}
