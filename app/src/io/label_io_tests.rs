//! Tests of label saving: the inverse reorientation, the written header against the scan's, and
//! atomicity when a write fails.

use super::*;
use crate::common::label::label_from_volume;
use engine::volume::{Affine, DataType, WriteOptions, write_atomically, write_nifti};

/// Voxel axes pointing L, P, S (the DICOM convention) and a permuted P, L, S grid.
fn non_ras_affines() -> [Affine; 2] {
    [
        Affine::from_parts(
            [[-0.8, 0.0, 0.0], [0.0, -1.1, 0.0], [0.0, 0.0, 2.5]],
            [30.0, 40.0, -20.0],
        ),
        Affine::from_parts(
            [[0.0, -0.8, 0.0], [-1.1, 0.0, 0.0], [0.0, 0.0, 2.5]],
            [12.0, -7.0, 3.0],
        ),
    ]
}

const SHAPE: [usize; 3] = [9, 7, 5];

/// A label defined by world position, so it can be computed on any grid independently.
fn label_at_world([x, y, z]: [f64; 3]) -> f32 {
    // Stripes 0, 1, 2 across world space, oblique to every voxel axis.
    (0.37 * x + 0.53 * y + 0.29 * z).rem_euclid(3.0).floor() as f32
}

fn label_on(geometry: &Geometry) -> Volume {
    let affine = geometry.world_from_voxel;
    Volume::from_fn(geometry, |x, y, z| {
        label_at_world(affine.apply([x as f64, y as f64, z as f64]))
    })
}

#[test]
fn original_grid_inverts_canonical_reorientation() -> anyhow::Result<()> {
    for affine in non_ras_affines() {
        let geometry = Geometry {
            shape: SHAPE,
            world_from_voxel: affine,
        };
        let numbered = Volume::from_fn(&geometry, |x, y, z| (x + 10 * y + 100 * z) as f32);
        let canonical = reorient_to_canonical(&numbered);
        assert_ne!(
            canonical.voxels(),
            numbered.voxels(),
            "the grid really is not RAS+"
        );
        let back = to_original_grid(&canonical, &geometry)?;
        assert_eq!(back.voxels(), numbered.voxels());
        assert_eq!(back.world_from_voxel(), &affine);
        // A label of the wrong shape is refused, not scrambled.
        let wrong = Volume::zeros(&Geometry {
            shape: [SHAPE[0], SHAPE[1], SHAPE[2] + 1],
            world_from_voxel: affine,
        });
        assert!(to_original_grid(&wrong, &geometry).is_err());
    }
    Ok(())
}

#[test]
fn saved_label_reloads_in_the_scans_grid_with_its_exact_header() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (n, affine) in non_ras_affines().into_iter().enumerate() {
        let geometry = Geometry {
            shape: SHAPE,
            world_from_voxel: affine,
        };
        let scan_path = dir.path().join(format!("scan{n}.nii.gz"));
        let scan = Volume::from_fn(&geometry, |x, y, z| (x * y + z) as f32 - 40.0);
        write_nifti(&scan_path, &scan, None, WriteOptions::new(DataType::F32))?;
        let scan = read_nifti(&scan_path)?;
        let scan_grid = scan.volume.geometry();
        // The viewer's label: on the RAS+ grid, defined by world position.
        let canonical_grid = reorient_to_canonical(&scan.volume).geometry();
        // Labels 0, 1, 2 (one byte) and 0, 150, 300 (two bytes: a task with > 255 labels).
        for (scale, datatype) in [(1.0, DataType::U8), (150.0, DataType::U16)] {
            let scaled = |mut volume: Volume| {
                volume.voxels_mut().iter_mut().for_each(|v| *v *= scale);
                volume
            };
            let label = scaled(label_on(&canonical_grid));
            assert!(label.voxels().contains(&scale) && label.voxels().contains(&(2.0 * scale)));

            let label_path = dir.path().join("out").join(format!("label{n}-{scale}.nii.gz"));
            save_label(&label_path, &label_from_volume(&label)?, &scan_grid, &scan.header)?;
            let saved = read_nifti(&label_path)?;
            // Same voxels as the label computed directly on the scan's own grid.
            assert_eq!(saved.volume.shape(), SHAPE);
            assert_eq!(saved.volume.voxels(), scaled(label_on(&scan_grid)).voxels());
            assert_eq!(saved.datatype, datatype);
            let (a, b) = (&saved.header, &scan.header);
            assert_eq!((a.srow_x, a.srow_y, a.srow_z), (b.srow_x, b.srow_y, b.srow_z));
            assert_eq!((a.sform_code, a.qform_code), (b.sform_code, b.qform_code));
            assert_eq!(
                (a.quatern_b, a.quatern_c, a.quatern_d),
                (b.quatern_b, b.quatern_c, b.quatern_d)
            );
            assert_eq!(
                (a.qoffset_x, a.qoffset_y, a.qoffset_z),
                (b.qoffset_x, b.qoffset_y, b.qoffset_z)
            );
            assert_eq!(a.pixdim[..4], b.pixdim[..4]);
            // And back on the RAS+ grid it is the label we saved.
            assert_eq!(
                read_label_canonical(&label_path, label.shape())?.voxels(),
                label.voxels()
            );
        }
    }
    Ok(())
}

#[test]
fn a_failed_save_leaves_the_previous_file_intact() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let geometry = Geometry {
        shape: SHAPE,
        world_from_voxel: non_ras_affines()[0],
    };
    let header = {
        let path = dir.path().join("scan.nii.gz");
        write_nifti(
            &path,
            &Volume::zeros(&geometry),
            None,
            WriteOptions::new(DataType::F32),
        )?;
        read_nifti(&path)?.header
    };
    let path = dir.path().join("label.nii.gz");
    let first = reorient_to_canonical(&label_on(&geometry));
    save_label(&path, &label_from_volume(&first)?, &geometry, &header)?;
    let before = std::fs::read(&path)?;

    // 1. The temporary file cannot be created: a folder sits where it would go.
    let temporary = dir
        .path()
        .join(format!(".label.nii.gz.tmp-{}", std::process::id()));
    std::fs::create_dir(&temporary)?;
    let mut second = first.clone();
    second.voxels_mut().fill(1.0);
    assert!(save_label(&path, &label_from_volume(&second)?, &geometry, &header).is_err());
    assert_eq!(std::fs::read(&path)?, before);
    std::fs::remove_dir(&temporary)?;

    // 2. The writer dies half-way through (a crash or a full disk).
    let crashed = write_atomically(&path, |file| {
        use std::io::Write;
        file.write_all(b"half a file")?;
        Err(std::io::Error::other("simulated crash"))
    });
    assert!(crashed.is_err());
    assert_eq!(std::fs::read(&path)?, before);
    assert!(!temporary.exists(), "the temporary file is cleaned up");

    // 3. Values the label type cannot hold are refused when the label is read, so they never
    // reach a save.
    second.voxels_mut().fill(1e9);
    let error = label_from_volume(&second).expect_err("1e9 is no u16 label");
    assert!(error.to_string().contains("renumber"), "{error}");
    assert_eq!(
        read_label_canonical(&path, first.shape())?.voxels(),
        first.voxels()
    );
    Ok(())
}

#[test]
fn default_paths_never_point_at_the_ground_truth() {
    use crate::io::source::{CaseEntry, OpenRequest};
    let dir = std::env::temp_dir().join("mvl-no-such-task");
    let task = Source {
        request: OpenRequest::default(),
        name: "demo".into(),
        cases: vec![CaseEntry {
            id: "case_001".into(),
            image: dir.join("imagesTr/case_001.nii.gz"),
            ground_truth: Some(dir.join("labelsTr/case_001.nii.gz")),
            prediction: None,
            corrected: None,
            series: None,
            uncertainty: None,
        }],
        label_names: Default::default(),
        is_ct: None,
        channel_names: Default::default(),
    };
    let corrected = corrected_label_path(&task, "case_001");
    assert_eq!(
        corrected,
        Some(demo_task_dir().join("labelsCorrected").join("case_001.nii.gz"))
    );
    assert_ne!(corrected, task.cases[0].ground_truth);
    let scan = Source {
        request: OpenRequest {
            path: Some(dir.join("scan.nii.gz")),
            ..OpenRequest::default()
        },
        ..task
    };
    assert_eq!(
        corrected_label_path(&scan, "scan"),
        Some(dir.join("scan_corrected.nii.gz"))
    );
    assert_eq!(
        autosave_path(&scan, "scan"),
        Some(dir.join(".medvisionllama/autosave/scan.nii.gz"))
    );
}

#[test]
fn series_json_names_every_saved_dicom_series() -> anyhow::Result<()> {
    use crate::io::source::SeriesNote;
    let dir = tempfile::tempdir()?;
    let note = |uid: &str, description: &str| SeriesNote {
        series_uid: uid.into(),
        description: description.into(),
        modality: "CT".into(),
        patient: "P".into(),
        study: "S".into(),
        images: 4,
        size: [8, 6, 4],
    };
    let labels = dir.path().join("labelsCorrected");
    std::fs::create_dir_all(&labels)?;
    note_series(&labels.join("1.2.nii.gz"), &note("1.2", "abdomen"))?;
    note_series(&labels.join("1.3.nii.gz"), &note("1.3", "thorax"))?;
    let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(labels.join(SERIES_JSON))?)?;
    assert_eq!(index["1.2"]["description"], "abdomen");
    assert_eq!(index["1.3"]["description"], "thorax");
    Ok(())
}
