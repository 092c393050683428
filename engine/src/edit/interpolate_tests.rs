//! Fill-between-slices tests: signed distances against a brute-force search, interpolated discs
//! against the closed-form radius, and what must stay untouched.

use super::*;
use crate::edit::brush::PaintOver;

/// Distance (mm) from pixel `p` to the nearest pixel where `mask == target`, by trying them all.
fn brute_distance(mask: &[bool], size: [usize; 2], spacing: [f64; 2], p: usize, target: bool) -> f64 {
    (0..mask.len())
        .filter(|i| mask[*i] == target)
        .map(|i| {
            let dc = (i % size[0]) as f64 - (p % size[0]) as f64;
            let dr = (i / size[0]) as f64 - (p / size[0]) as f64;
            ((dc * spacing[0]).powi(2) + (dr * spacing[1]).powi(2)).sqrt()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn signed_distances_match_a_brute_force_search() {
    let size = [13, 9];
    let spacing = [0.7, 1.9];
    let mask: Vec<bool> = (0..117)
        .map(|i| (i * 37 + i / 5) % 11 == 0 || i % 13 > 9)
        .collect();
    let signed = signed_distance_2d(&mask, size, spacing);
    for (pixel, distance) in signed.iter().enumerate() {
        let expected = brute_distance(&mask, size, spacing, pixel, true)
            - brute_distance(&mask, size, spacing, pixel, false);
        assert!(
            (distance - expected).abs() < 1e-9,
            "pixel {pixel}: {distance} vs {expected}"
        );
    }
    assert!(
        signed_distance_2d(&[false; 4], [2, 2], [1.0, 1.0])
            .iter()
            .all(|d| *d == f64::INFINITY)
    );
    assert!(
        signed_distance_2d(&[true; 4], [2, 2], [1.0, 1.0])
            .iter()
            .all(|d| *d == f64::NEG_INFINITY)
    );
}

const FILL: PaintRule = PaintRule {
    value: 1,
    selected_label: 1,
    paint_over: PaintOver::Background,
    intensity_range: None,
};

#[test]
fn two_discs_interpolate_to_discs_of_intermediate_radius() -> Result<(), EditError> {
    let shape = [41, 31, 7];
    let spacing = [0.8, 1.2, 3.0];
    let centre_mm = [20.0 * 0.8, 15.0 * 1.2];
    let radius_at = |z: usize| 4.0 + 6.0 * z as f64 / 6.0; // 4 mm at z = 0, 10 mm at z = 6
    let distance = |x: usize, y: usize| {
        ((x as f64 * spacing[0] - centre_mm[0]).powi(2) + (y as f64 * spacing[1] - centre_mm[1]).powi(2))
            .sqrt()
    };
    let count: usize = shape.iter().product();
    let mut label = vec![0u8; count];
    for z in [0, 6] {
        for y in 0..31 {
            for x in 0..41 {
                if distance(x, y) <= radius_at(z) {
                    label[(z * 31 + y) * 41 + x] = 1;
                }
            }
        }
    }
    let image = vec![0.0; count];
    let mut recorder = StepRecorder::default();
    let filled = fill_between_slices(
        &mut label,
        &image,
        shape,
        spacing,
        2,
        &[6, 0],
        &FILL,
        &mut recorder,
        &|| false,
    )?;
    assert!(filled > 0);
    // Within one voxel (the larger in-plane spacing) of the disc of interpolated radius.
    let tolerance = 1.2;
    for z in 1..6 {
        let radius = radius_at(z);
        for y in 0..31 {
            for x in 0..41 {
                let value = label[(z * 31 + y) * 41 + x];
                let d = distance(x, y);
                if d < radius - tolerance {
                    assert_eq!(value, 1, "z {z}: ({x}, {y}) at {d:.2} mm < {radius} mm");
                }
                if d > radius + tolerance {
                    assert_eq!(value, 0, "z {z}: ({x}, {y}) at {d:.2} mm > {radius} mm");
                }
            }
        }
    }
    assert_eq!(recorder.finish("fill").map(|s| s.changes.len()), Some(filled));
    Ok(())
}

#[test]
fn only_the_active_label_between_its_drawn_slices_changes() -> Result<(), EditError> {
    // Along x, 9 slices of 6 × 6. Label 1 drawn on x = 0 and x = 4 (rows 0..3); a voxel of label 3
    // between them that the background-only rule keeps; label 2 (loaded, never drawn) on x = 0
    // and x = 2 (rows 4..6); and label 1 again on x = 8, present but not drawn.
    let shape = [9, 6, 6];
    let count: usize = shape.iter().product();
    let mut label = vec![0u8; count];
    let at = |x: usize, y: usize, z: usize| (z * 6 + y) * 9 + x;
    for (x, value, ys) in [
        (0, 1, 0..3),
        (4, 1, 0..3),
        (0, 2, 4..6),
        (2, 2, 4..6),
        (8, 1, 0..3),
    ] {
        for y in ys.clone() {
            for z in 0..3 {
                label[at(x, y, z)] = value;
            }
        }
    }
    label[at(2, 1, 1)] = 3;
    let before = label.clone();
    let image = vec![0.0; count];
    let mut recorder = StepRecorder::default();
    let filled = fill_between_slices(
        &mut label,
        &image,
        shape,
        [1.0; 3],
        0,
        &[0, 4],
        &FILL,
        &mut recorder,
        &|| false,
    )?;
    // 3 slices × 3 rows × 3 depths, less the protected voxel.
    assert_eq!(filled, 3 * 3 * 3 - 1);
    for x in 1..4 {
        for y in 0..3 {
            for z in 0..3 {
                let expected = if (x, y, z) == (2, 1, 1) { 3 } else { 1 };
                assert_eq!(label[at(x, y, z)], expected, "({x}, {y}, {z})");
            }
        }
    }
    // Label 2 was not drawn: x = 1 stays empty there. Label 1 is not bridged from x = 4 to 8.
    for (index, (now, was)) in label.iter().zip(&before).enumerate() {
        let x = index % 9;
        if !(1..4).contains(&x) || index / 9 % 6 >= 3 || index / 54 >= 3 {
            assert_eq!(now, was, "voxel {index} changed");
        }
    }
    Ok(())
}

#[test]
fn fewer_than_two_drawn_slices_with_a_gap_is_refused() {
    let shape = [4, 4, 5];
    let mut label = vec![0u8; 80];
    label[0] = 1; // z = 0
    label[16] = 1; // z = 1
    let image = vec![0.0; 80];
    let mut recorder = StepRecorder::default();
    // Adjacent slices leave nothing between them; a slice that lost its label does not count.
    let error = fill_between_slices(
        &mut label,
        &image,
        shape,
        [1.0; 3],
        2,
        &[0, 1, 4],
        &FILL,
        &mut recorder,
        &|| false,
    )
    .expect_err("nothing to fill");
    assert_eq!(
        error,
        EditError::NothingToFill {
            label: 1,
            drawn: 2,
            plural: "slices"
        }
    );
    let error = fill_between_slices(
        &mut label,
        &image[..7],
        shape,
        [1.0; 3],
        2,
        &[0, 4],
        &FILL,
        &mut recorder,
        &|| false,
    )
    .expect_err("wrong size");
    assert!(matches!(error, EditError::ShapeMismatch { image: 7, .. }));
}

#[test]
fn a_stop_request_ends_the_fill_between_slices_with_only_the_recorded_changes() {
    // Full squares on slices 0 and 6 of an 8 × 8 × 7 label: five slices to fill.
    let shape = [8, 8, 7];
    let count: usize = shape.iter().product();
    let drawn = |label: &mut [u8]| {
        for z in [0, 6] {
            label[z * 64..(z + 1) * 64].fill(1);
        }
    };
    let image = vec![0.0; count];
    // Asked before each slice: stop when asked the third time, after two slices were filled.
    let asked = std::cell::Cell::new(0);
    let stop = || {
        asked.set(asked.get() + 1);
        asked.get() == 3
    };
    let mut label = vec![0u8; count];
    drawn(&mut label);
    let mut recorder = StepRecorder::default();
    let result = fill_between_slices(
        &mut label,
        &image,
        shape,
        [1.0; 3],
        2,
        &[0, 6],
        &FILL,
        &mut recorder,
        &stop,
    );
    assert_eq!(result, Err(EditError::Cancelled));
    assert_eq!(asked.get(), 3);
    // Slices 1 and 2 were filled, 3 to 5 untouched, and the recorder holds exactly those changes.
    for z in 1..6 {
        let expected = u8::from(z <= 2);
        assert!(
            label[z * 64..(z + 1) * 64].iter().all(|v| *v == expected),
            "slice {z}"
        );
    }
    assert_eq!(recorder.len(), 2 * 64);
    // Told to stop at once: nothing changes.
    let mut untouched = vec![0u8; count];
    drawn(&mut untouched);
    let before = untouched.clone();
    let mut recorder = StepRecorder::default();
    let result = fill_between_slices(
        &mut untouched,
        &image,
        shape,
        [1.0; 3],
        2,
        &[0, 6],
        &FILL,
        &mut recorder,
        &|| true,
    );
    assert_eq!(result, Err(EditError::Cancelled));
    assert_eq!(untouched, before);
}
