//! Our NIfTI reader against files nibabel wrote (every datatype, both byte orders, sform, qform,
//! no form, scaling, 4-D), and our writer against our reader: round trips preserve values and
//! affines exactly.

use engine::volume::{ByteOrder, DataType, WriteOptions, orientation_string, read_nifti, write_nifti};
use serde_json::Value;
use tests::fixtures_dir;

/// nibabel stores affines as float32 in the header; both sides read the same float32s, so they
/// agree to float32 rounding of the quaternion maths.
const AFFINE_TOLERANCE: f64 = 1e-5;

fn expected() -> serde_json::Map<String, Value> {
    let path = fixtures_dir().join("nibabel/expected.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/nibabel/expected.json is committed");
    match serde_json::from_str::<Value>(&text).expect("valid JSON") {
        Value::Object(map) => map,
        _ => panic!("expected.json holds an object"),
    }
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    let dir = fixtures_dir().join("nibabel");
    let gz = dir.join(format!("{name}.nii.gz"));
    if gz.exists() {
        gz
    } else {
        dir.join(format!("{name}.nii"))
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[test]
fn reader_agrees_with_nibabel_on_every_fixture() {
    let records = expected();
    assert_eq!(records.len(), 22, "fixture count");
    for (name, record) in &records {
        let image = read_nifti(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let volume = &image.volume;
        let shape: Vec<usize> = numbers(&record["shape"]).iter().map(|v| *v as usize).collect();
        assert_eq!(&volume.shape()[..], &shape[..3], "{name} shape");
        assert_eq!(
            volume.channels(),
            shape.get(3).copied().unwrap_or(1),
            "{name} channels"
        );
        let affine: Vec<f64> = record["affine"]
            .as_array()
            .expect("rows")
            .iter()
            .flat_map(numbers)
            .collect();
        for (i, want) in affine.iter().enumerate() {
            let got = volume.world_from_voxel().0[i / 4][i % 4];
            assert!(
                (got - want).abs() < AFFINE_TOLERANCE,
                "{name} affine[{i}]: {got} vs {want}"
            );
        }
        assert_eq!(
            orientation_string(volume.world_from_voxel()),
            record["axcodes"].as_str().expect("str"),
            "{name}"
        );
        assert_eq!(
            image.datatype.name(),
            record["datatype"].as_str().expect("str"),
            "{name} datatype"
        );
        let big = record["big_endian"].as_bool().expect("bool");
        assert_eq!(
            image.header.byte_order == ByteOrder::Big,
            big,
            "{name} byte order"
        );
        let voxels = numbers(&record["voxels"]);
        assert_eq!(voxels.len(), volume.voxels().len(), "{name} voxel count");
        for (i, (got, want)) in volume.voxels().iter().zip(&voxels).enumerate() {
            // f32 holds every fixture integer exactly; float64 fixtures round to f32.
            let tolerance = want.abs() * 1e-6 + 1e-6;
            assert!(
                (f64::from(*got) - want).abs() <= tolerance,
                "{name} voxel {i}: {got} vs {want}"
            );
        }
        assert_eq!(
            i64::from(image.header.sform_code),
            record["sform_code"].as_i64().expect("int"),
            "{name}"
        );
        assert_eq!(
            i64::from(image.header.qform_code),
            record["qform_code"].as_i64().expect("int"),
            "{name}"
        );
    }
}

#[test]
fn every_datatype_and_byte_order_round_trips_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for datatype in DataType::ALL {
        for (order, suffix) in [(ByteOrder::Little, "le"), (ByteOrder::Big, "be")] {
            let name = format!("{}_{suffix}", datatype.name());
            let source = read_nifti(&fixture_path(&name)).expect("fixture reads");
            for extension in ["nii", "nii.gz"] {
                let path = dir.path().join(format!("{name}.{extension}"));
                write_nifti(
                    &path,
                    &source.volume,
                    Some(&source.header),
                    WriteOptions {
                        datatype,
                        byte_order: order,
                    },
                )
                .expect("writes");
                let back = read_nifti(&path).expect("reads back");
                assert_eq!(back.datatype, datatype);
                assert_eq!(back.header.byte_order, order);
                assert_eq!(
                    back.volume.voxels(),
                    source.volume.voxels(),
                    "{name}.{extension} voxels"
                );
                // The reference header's sform and qform are copied, so the affine is identical.
                assert_eq!(
                    back.volume.world_from_voxel(),
                    source.volume.world_from_voxel(),
                    "{name} affine"
                );
                assert_eq!(back.header.srow_x, source.header.srow_x);
                assert_eq!(back.header.quatern_b, source.header.quatern_b);
            }
        }
    }
}

#[test]
fn scaled_and_four_d_files_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["scaled_int16", "four_d", "qform_only", "no_form"] {
        let source = read_nifti(&fixture_path(name)).expect("reads");
        let path = dir.path().join(format!("{name}.nii.gz"));
        write_nifti(
            &path,
            &source.volume,
            Some(&source.header),
            WriteOptions::new(DataType::F32),
        )
        .expect("writes");
        let back = read_nifti(&path).expect("reads back");
        assert_eq!(back.volume.voxels(), source.volume.voxels(), "{name}");
        assert_eq!(back.volume.channels(), source.volume.channels());
        let drift = back
            .volume
            .world_from_voxel()
            .max_abs_diff(source.volume.world_from_voxel());
        assert!(drift < 1e-4, "{name} affine drift {drift}");
    }
}

#[test]
fn integer_overflow_on_write_is_refused() {
    let source = read_nifti(&fixture_path("int16_le")).expect("reads");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("narrow.nii");
    let error = write_nifti(&path, &source.volume, None, WriteOptions::new(DataType::U8))
        .expect_err("int16 values do not fit uint8");
    let message = error.to_string();
    assert!(
        message.contains("narrow.nii") && message.contains("uint8"),
        "{message}"
    );
    assert!(!path.exists(), "nothing half-written");
}
