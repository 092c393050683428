//! Tests of the model-grid input: non-finite voxels become the channel's minimum.

use super::*;
use crate::volume::Affine;

#[test]
fn non_finite_voxels_become_the_channel_minimum_before_resampling() -> anyhow::Result<()> {
    // Two channels on a RAS grid of the model size, so resampling keeps every voxel in place.
    let shape = [4, 4, 4];
    let n = 64;
    let mut voxels: Vec<f32> = (0..2 * n).map(|i| 10.0 + i as f32).collect();
    voxels[3] = f32::NAN; // channel 0, minimum finite 10
    voxels[n + 9] = f32::INFINITY; // channel 1, minimum finite 10 + 64 = 74
    voxels[n + 10] = f32::NEG_INFINITY;
    let image = Volume::new(shape, 2, voxels.clone(), Affine::identity())?;
    let model = model_grid_input(&image, &[0, 1], shape);
    assert_eq!(model.shape(), shape);
    assert!(model.voxels().iter().all(|v| v.is_finite()));
    for (i, (got, source)) in model.voxels().iter().zip(&voxels).enumerate() {
        let want = match i {
            3 => 10.0,
            i if i == n + 9 || i == n + 10 => 74.0,
            _ => *source,
        };
        assert!((got - want).abs() < 1e-4, "voxel {i}: {got} vs {want}");
    }
    Ok(())
}

#[test]
fn single_scan_ct_statistics_ignore_non_finite_voxels() {
    let with_nan = crate::data::single_scan_ct_statistics(&[0.0, 100.0, f32::NAN, 200.0, f32::INFINITY]);
    let clean = crate::data::single_scan_ct_statistics(&[0.0, 100.0, 200.0]);
    assert_eq!(with_nan, clean);
    let clean = clean.expect("finite values");
    assert!(clean.mean.is_finite() && clean.std.is_finite());
}
