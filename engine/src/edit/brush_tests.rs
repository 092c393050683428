//! Brush tests: footprints against world-space distances and lattice-point counts, the bound,
//! and the paint rules on hand-made volumes.

use super::*;
use crate::volume::Affine;

const SHAPE: [usize; 3] = [40, 30, 12];
const SPACING_MM: [f64; 3] = [0.7, 1.3, 2.9];

/// A rotated, anisotropic voxel-to-world affine: distances are measured in world space.
fn oblique() -> Affine {
    let (sin, cos) = 0.3f64.sin_cos();
    let [sx, sy, sz] = SPACING_MM;
    Affine::from_parts(
        [
            [cos * sx, -sin * sy, 0.0],
            [sin * sx, cos * sy, 0.0],
            [0.0, 0.0, sz],
        ],
        [-12.0, 40.0, 7.0],
    )
}

fn world_distance(affine: &Affine, a: [usize; 3], b: [usize; 3]) -> f64 {
    let [p, q] = [a, b].map(|v| affine.apply(v.map(|i| i as f64)));
    (0..3).map(|i| (p[i] - q[i]).powi(2)).sum::<f64>().sqrt()
}

fn paint(centre: [usize; 3], radius_mm: f64, shape: BrushShape, rule: &PaintRule) -> Vec<u8> {
    let count: usize = SHAPE.iter().product();
    let mut label = vec![0u8; count];
    let image = vec![0.0; count];
    let offsets = brush_offsets(oblique().column_norms(), radius_mm, shape, 2).expect("within the bound");
    let mut canvas = Canvas {
        label: &mut label,
        image: &image,
        shape: SHAPE,
    };
    canvas.stamp(centre, &offsets, rule, &mut StepRecorder::default());
    label
}

const PAINT_ONE: PaintRule = PaintRule {
    value: 1,
    selected_label: 1,
    paint_over: PaintOver::AnyLabel,
    intensity_range: None,
};

#[test]
fn a_ball_is_round_in_millimetres_under_anisotropic_spacing() {
    let affine = oblique();
    let radius_mm = 10.0;
    // In the middle, and against a corner (clipped, never wrapped round).
    for centre in [[20, 15, 6], [1, 28, 0]] {
        let label = paint(centre, radius_mm, BrushShape::Ball, &PAINT_ONE);
        let mut painted = 0;
        for z in 0..SHAPE[2] {
            for y in 0..SHAPE[1] {
                for x in 0..SHAPE[0] {
                    let distance = world_distance(&affine, [x, y, z], centre);
                    let value = label[(z * SHAPE[1] + y) * SHAPE[0] + x];
                    if distance < radius_mm - 1e-9 {
                        assert_eq!(value, 1, "({x}, {y}, {z}) at {distance} mm not painted");
                        painted += 1;
                    } else if distance > radius_mm + 1e-9 {
                        assert_eq!(value, 0, "({x}, {y}, {z}) at {distance} mm painted");
                    }
                }
            }
        }
        assert!(painted > 100, "{painted}");
    }
}

#[test]
fn a_disc_stays_in_its_slice() {
    let centre = [20, 15, 6];
    let label = paint(centre, 4.0, BrushShape::Disc, &PAINT_ONE);
    let affine = oblique();
    for (index, value) in label.iter().enumerate() {
        let voxel = [index % 40, index / 40 % 30, index / 1200];
        let inside = voxel[2] == 6 && world_distance(&affine, voxel, centre) <= 4.0 + 1e-9;
        assert_eq!(*value == 1, inside, "{voxel:?}");
    }
}

#[test]
fn footprints_count_the_lattice_points_of_the_circle_and_sphere() -> Result<(), EditError> {
    // Gauss's circle problem N(5) = 81; lattice points with x² + y² + z² ≤ 4: 1 + 6 + 12 + 8 + 6.
    assert_eq!(brush_offsets([1.0; 3], 5.0, BrushShape::Disc, 2)?.len(), 81);
    assert_eq!(brush_offsets([1.0; 3], 2.0, BrushShape::Ball, 0)?.len(), 33);
    // Half-millimetre columns: the disc across y spans ±2 columns at row 0 and 1 column at ±1.
    assert_eq!(
        brush_offsets([0.5, 1.0, 1.0], 1.0, BrushShape::Disc, 2)?.len(),
        5 + 2
    );
    Ok(())
}

#[test]
fn brushes_beyond_the_bound_are_refused_with_the_largest_radius_allowed() -> Result<(), EditError> {
    // The case: a 100 mm ball on 0.5 mm voxels, 4/3 π 200³ ≈ 33.5 M voxels.
    let error = brush_offsets([0.5; 3], 100.0, BrushShape::Ball, 2).expect_err("refused");
    let EditError::BrushTooLarge {
        voxels,
        largest_radius_mm,
        ..
    } = error.clone()
    else {
        panic!("{error}");
    };
    assert!((voxels as f64 - 33_510_321.6).abs() < 1.0, "{voxels}");
    // r = ∛(3 · 2²⁰ · 0.125 / 4π) ≈ 31.5 mm; a ball just inside fits, and counts under the bound.
    let expected = (3.0 * MAX_BRUSH_VOXELS as f64 * 0.125 / (4.0 * std::f64::consts::PI)).cbrt();
    assert!((largest_radius_mm - expected).abs() < 1e-9, "{largest_radius_mm}");
    assert!(error.to_string().contains("31.5 mm"), "{error}");
    let fits = brush_offsets([0.5; 3], 0.99 * largest_radius_mm, BrushShape::Ball, 2)?;
    assert!(fits.len() as u64 <= MAX_BRUSH_VOXELS, "{}", fits.len());
    // The same radius as a disc is small.
    assert!(brush_offsets([0.5; 3], 100.0, BrushShape::Disc, 2)?.len() < 130_000);
    Ok(())
}

#[test]
fn rules_protect_labels_and_limit_intensity() {
    let only_background = PaintRule {
        value: 2,
        selected_label: 2,
        paint_over: PaintOver::Background,
        intensity_range: Some((-10.0, 50.0)),
    };
    assert!(only_background.allows(0u8, 0.0));
    assert!(!only_background.allows(1u8, 0.0), "another label is protected");
    assert!(only_background.allows(0u8, -10.0) && only_background.allows(0u8, 50.0));
    assert!(!only_background.allows(0u8, 50.5) && !only_background.allows(0u8, f32::NAN));
    let any = PaintRule {
        paint_over: PaintOver::AnyLabel,
        intensity_range: None,
        ..only_background
    };
    assert!(any.allows(1u16, 1e6));
    // A protective eraser removes only the selected label.
    let eraser = PaintRule {
        value: 0,
        ..only_background
    };
    assert!(eraser.allows(2u8, 0.0));
    assert!(!eraser.allows(1u8, 0.0));

    // On a volume: intensity ramp along x, label 1 on the left half.
    let shape = [10, 1, 1];
    let image: Vec<f32> = (0..10).map(|x| x as f32 * 10.0).collect();
    let mut label: Vec<u8> = (0..10).map(|x| u8::from(x < 5)).collect();
    let offsets: Vec<[i64; 3]> = (0..10).map(|x| [x, 0, 0]).collect();
    let mut canvas = Canvas {
        label: &mut label,
        image: &image,
        shape,
    };
    let mut recorder = StepRecorder::default();
    canvas.stamp([0, 0, 0], &offsets, &only_background, &mut recorder);
    // x 0..5 hold label 1 (protected); x 5 (50) is in range; x ≥ 6 (60+) are too bright.
    assert_eq!(label, [1, 1, 1, 1, 1, 2, 0, 0, 0, 0]);
    assert_eq!(recorder.len(), 1);
}

#[test]
fn lines_have_no_gaps() {
    let shape = [20, 20, 1];
    let mut label = vec![0u8; 400];
    let image = vec![0.0; 400];
    let mut canvas = Canvas {
        label: &mut label,
        image: &image,
        shape,
    };
    canvas.line(
        [1, 2, 0],
        [17, 9, 0],
        &[[0, 0, 0]],
        &PAINT_ONE,
        &mut StepRecorder::default(),
    );
    // One voxel per column from x = 1 to 17.
    for x in 1..=17 {
        let column: u8 = (0..20).map(|y| label[y * 20 + x]).sum();
        assert_eq!(column, 1, "column {x}");
    }
}
