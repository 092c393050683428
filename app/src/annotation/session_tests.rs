//! Tests of the edit session: strokes copy only the label chunks they touch while a snapshot is
//! held (never the whole label), only the views whose slice changed draw again, and undo / redo / "start from prediction" round trip.

use super::*;
use crate::annotation::brush::{BrushShape, PaintOver, Tool};
use crate::viewer::render::Window;
use engine::edit::CHUNK_SLICES;
use engine::volume::{Affine, Geometry, NiftiHeader, Volume};
use std::time::Instant;

fn case(shape: [usize; 3], spacing: [f64; 3], with_label: bool) -> LoadedCase {
    let geometry = Geometry {
        shape,
        world_from_voxel: Affine::from_diagonal(spacing),
    };
    let image = Arc::new(Volume::from_fn(&geometry, |x, _, _| x as f32));
    let window = Window {
        width: 1.0,
        level: 0.0,
    };
    LoadedCase {
        id: "case".into(),
        ground_truth: with_label.then(|| Label::zeros(shape)),
        prediction: Some(
            Label::from_values(
                shape,
                Volume::from_fn(&geometry, |x, y, _| f32::from(x < 4 && y < 4)).voxels(),
            )
            .expect("labels 0 and 1"),
        ),
        channels: vec![Arc::clone(&image)],
        channel_names: vec!["MRI".into()],
        auto_windows: vec![window],
        channel: 0,
        image,
        is_ct: false,
        corrected: false,
        auto_window: window,
        focus: [0; 3],
        label_values: Default::default(),
        uncertainty: None,
        warnings: Vec::new(),
        scan_header: NiftiHeader::default(),
        scan_grid: geometry,
        scheme: engine::metrics::LabelScheme::Classes(Vec::new()),
    }
}

fn brush(tool: Tool, radius_mm: f64) -> BrushSettings {
    BrushSettings {
        tool,
        shape: BrushShape::Disc,
        radius_mm,
        label: 2,
        paint_over: PaintOver::AnyLabel,
        intensity_range: None,
        min_island_ml: 0.1,
        grow_range: None,
        grow_in_3d: false,
    }
}

fn label(case: &LoadedCase) -> Vec<LabelVoxel> {
    case.ground_truth.as_ref().map(Label::to_vec).unwrap_or_default()
}

#[test]
fn painting_label_300_widens_the_label_and_undo_gives_back_every_voxel() {
    let mut case = case([12, 10, 6], [1.0, 1.0, 1.0], true);
    let mut session = EditSession::default();
    let crosshair = [0, 0, 0];
    let mut settings = brush(Tool::Brush, 1.0);
    session
        .paint_to(&mut case, &settings, Axis::Axial, [3, 3, 2], crosshair)
        .expect("within the brush bound");
    session.end_stroke();
    let before = label(&case);
    assert!(
        matches!(case.ground_truth, Some(Label::U8(_))),
        "label 2 fits a byte"
    );
    let snapshot = case.ground_truth.clone().expect("painted");
    settings.label = 300;
    session
        .paint_to(&mut case, &settings, Axis::Axial, [7, 6, 2], crosshair)
        .expect("within the brush bound");
    session.end_stroke();
    assert!(
        matches!(case.ground_truth, Some(Label::U16(_))),
        "label 300 needs two bytes"
    );
    let painted = label(&case);
    let index = |[x, y, z]: [usize; 3]| (z * 10 + y) * 12 + x;
    assert_eq!(painted[index([7, 6, 2])], 300);
    assert_eq!(painted[index([3, 3, 2])], 2, "the earlier stroke is kept");
    // Outside the new stroke every voxel is what it was.
    let changed: Vec<usize> = (0..painted.len()).filter(|&i| painted[i] != before[i]).collect();
    assert!(changed.iter().all(|&i| painted[i] == 300));
    assert!(case.label_values.contains(&300));
    assert_eq!(snapshot.to_vec(), before, "a snapshot keeps the label as it was");
    assert!(session.undo(&mut case, crosshair));
    assert_eq!(label(&case), before);
    assert!(session.redo(&mut case, crosshair));
    assert_eq!(label(&case), painted);
}

#[test]
fn a_stroke_copies_only_its_chunk_and_redraws_only_the_views_it_touches() {
    let mut case = case([40, 30, 10], [1.0, 1.0, 3.0], true);
    // What the metrics or the writer thread would hold while the user paints.
    let snapshot = case.ground_truth.clone().expect("the case has a label");
    let mut session = EditSession::default();
    let crosshair = [20, 15, 5];
    // A 2 mm disc on axial slice 5, far from the crosshair's row and column.
    let settings = brush(Tool::Brush, 2.0);
    session
        .paint_to(&mut case, &settings, Axis::Axial, [3, 3, 5], crosshair)
        .expect("within the brush bound");
    session
        .paint_to(&mut case, &settings, Axis::Axial, [8, 3, 5], crosshair)
        .expect("within the brush bound");
    let edited = case.ground_truth.as_ref().expect("still there");
    let painted_chunk = 5 / CHUNK_SLICES;
    for chunk in 0..edited.chunk_count() {
        assert_eq!(
            edited.shares_chunk(&snapshot, chunk),
            chunk != painted_chunk,
            "only the chunk of slice 5 is copied (chunk {chunk})"
        );
    }
    assert!(
        snapshot.iter().all(|v| v == 0),
        "the snapshot keeps the label as it was"
    );
    assert!(session.is_painting());
    session.end_stroke();
    assert_eq!(session.undo.undo_len(), 1, "one stroke, one step");
    // Axial shows slice 5: redrawn. Coronal shows y = 15 and sagittal x = 20: untouched.
    assert!(session.view_generation[Axis::Axial.index()] > 0);
    assert_eq!(session.view_generation[Axis::Coronal.index()], 0);
    assert_eq!(session.view_generation[Axis::Sagittal.index()], 0);
    assert!(session.is_dirty());
    assert!(case.label_values.contains(&2));
    let painted = label(&case);
    // The line from x = 3 to 8 along y = 3, 2 mm wide on each side, on slice 5 only.
    let at = |x: usize, y: usize, z: usize| painted[(z * 30 + y) * 40 + x];
    assert!((3..=8).all(|x| at(x, 3, 5) == 2 && at(x, 1, 5) == 2 && at(x, 5, 5) == 2));
    assert_eq!(at(3, 6, 5), 0);
    assert!((0..10).filter(|z| *z != 5).all(|z| at(5, 3, z) == 0));

    // A stroke across the crosshair's column redraws the sagittal view too.
    session
        .paint_to(&mut case, &settings, Axis::Axial, [20, 3, 5], crosshair)
        .expect("within the brush bound");
    session.end_stroke();
    assert!(session.view_generation[Axis::Sagittal.index()] > 0);
}

#[test]
fn undo_redo_and_start_from_prediction_round_trip() {
    let mut case = case([12, 10, 6], [0.8, 0.8, 2.0], false);
    let mut session = EditSession::default();
    let crosshair = [6, 5, 3];
    // No label yet: the first stroke creates one on the image grid.
    session
        .paint_to(
            &mut case,
            &brush(Tool::Brush, 1.0),
            Axis::Axial,
            [6, 5, 3],
            crosshair,
        )
        .expect("within the brush bound");
    session.end_stroke();
    let painted = label(&case);
    assert_eq!(
        painted.iter().filter(|v| **v == 2).count(),
        5,
        "a plus-shaped 1 mm disc"
    );
    // The eraser with "background only" removes only the selected label: label 3 stays.
    let mut eraser = brush(Tool::Eraser, 1.0);
    eraser.label = 3;
    eraser.paint_over = PaintOver::Background;
    session
        .paint_to(&mut case, &eraser, Axis::Axial, [6, 5, 3], crosshair)
        .expect("within the brush bound");
    session.end_stroke();
    assert_eq!(label(&case), painted);
    assert_eq!(
        session.undo.undo_len(),
        1,
        "an edit that changed nothing is no step"
    );

    assert_eq!(session.start_from_prediction(&mut case), Some(4 * 4 * 6 + 5));
    let prediction = case.prediction.as_ref().map(Label::to_vec);
    assert_eq!(Some(label(&case)), prediction);
    assert!(session.undo(&mut case, crosshair));
    assert_eq!(label(&case), painted);
    assert!(session.undo(&mut case, crosshair));
    assert!(label(&case).iter().all(|v| *v == 0));
    assert!(!session.undo(&mut case, crosshair));
    assert!(session.redo(&mut case, crosshair) && session.redo(&mut case, crosshair));
    assert_eq!(Some(label(&case)), prediction);
}

#[test]
fn fill_between_works_along_the_views_axis() {
    let mut case = case([10, 10, 10], [1.0; 3], true);
    let mut session = EditSession::default();
    let settings = brush(Tool::Brush, 2.0);
    for z in [2, 7] {
        session
            .paint_to(&mut case, &settings, Axis::Axial, [5, 5, z], [0; 3])
            .expect("within the brush bound");
        session.end_stroke();
    }
    let filled = session
        .fill_between(&mut case, &settings, Axis::Axial)
        .expect("drawn on slices 2 and 7");
    assert_eq!(filled, 4 * 13, "four slices of the same 13-voxel disc");
    assert_eq!(session.undo.undo_len(), 3);
    // The strokes missed every view's slice (crosshair at the origin); the fill redraws all.
    assert_eq!(session.view_generation, [1, 1, 1]);
}

#[test]
fn fill_needs_the_label_drawn_in_this_view_and_huge_brushes_are_refused() {
    let mut case = case([10, 10, 10], [1.0; 3], true);
    let mut session = EditSession::default();
    let settings = brush(Tool::Brush, 2.0);
    for z in [2, 7] {
        session
            .paint_to(&mut case, &settings, Axis::Axial, [5, 5, z], [0; 3])
            .expect("within the brush bound");
        session.end_stroke();
    }
    // Drawn on axial slices only: the coronal view has nothing to fill between.
    let error = session
        .fill_between(&mut case, &settings, Axis::Coronal)
        .expect_err("not drawn in the coronal view");
    assert!(
        error.to_string().contains("label 2 was drawn on 0 slices"),
        "{error}"
    );
    // Another label was never drawn at all.
    let other = BrushSettings {
        label: 3,
        ..settings.clone()
    };
    assert!(session.fill_between(&mut case, &other, Axis::Axial).is_err());
    // A 100 mm ball on 0.1 mm voxels is refused before anything is allocated or painted.
    let mut fine = self::case([10, 10, 10], [0.1; 3], true);
    let huge = BrushSettings {
        shape: BrushShape::Ball,
        ..brush(Tool::Brush, 100.0)
    };
    let before = label(&fine);
    let error = session
        .paint_to(&mut fine, &huge, Axis::Axial, [5, 5, 5], [0; 3])
        .expect_err("beyond the bound");
    assert!(error.to_string().contains("limit"), "{error}");
    assert!(!session.is_painting());
    assert_eq!(label(&fine), before);
}

/// Measures a brush stroke on a 512 × 512 × 400 scan (run with `--ignored --nocapture`).
#[test]
#[ignore = "allocates 1.7 GB; a timing, not a check"]
fn stroke_timing_on_a_large_volume() {
    let mut case = case([512, 512, 400], [0.7, 0.7, 1.5], true);
    let mut session = EditSession::default();
    let settings = BrushSettings {
        shape: BrushShape::Ball,
        ..brush(Tool::Brush, 5.0)
    };
    let crosshair = [256, 256, 200];
    let segments = 50;
    let start = Instant::now();
    for step in 0..segments {
        session
            .paint_to(
                &mut case,
                &settings,
                Axis::Axial,
                [150 + 4 * step, 256, 200],
                crosshair,
            )
            .expect("within the brush bound");
    }
    session.end_stroke();
    let stroke = start.elapsed();
    let changed = session.undo.bytes() / engine::edit::change_bytes::<LabelVoxel>();
    let start = Instant::now();
    let layers = crate::viewer::render::SliceLayers {
        image: &case.image,
        ground_truth: case.ground_truth.as_ref(),
        prediction: None,
        heat: None,
    };
    let window = case.auto_window;
    let _ = crate::viewer::render::render_slice(layers, Axis::Axial, 200, window, &Default::default());
    let render = start.elapsed();
    let start = Instant::now();
    session.undo(&mut case, crosshair);
    let undo = start.elapsed();
    #[expect(clippy::print_stdout, reason = "the timing is the output of this test")]
    {
        println!(
            "5 mm ball stroke, {segments} segments: {:.3} ms per segment ({} voxels changed); \
             axial slice render {:.1} ms; undo {:.1} ms",
            stroke.as_secs_f64() * 1e3 / segments as f64,
            changed,
            render.as_secs_f64() * 1e3,
            undo.as_secs_f64() * 1e3
        );
    }
}
