//! The 3D view through the real app: surfaces appear for the phantom's labels, drag and wheel
//! move the camera, a click on a surface moves the crosshair to that point of the label, and an
//! edit makes the label's surfaces again.

use crate::shell::Studio;
use crate::shell::tests::support::{button, open_phantom_task, wait_until};
use crate::viewer::surface_render::BACKGROUND;
use eframe::egui::{self, Key, Modifiers, Pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn open() -> anyhow::Result<crate::shell::tests::support::Fixture> {
    let mut fixture = open_phantom_task(2, 0, [32, 28, 14], [1400.0, 900.0])?;
    wait_until(&mut fixture.harness, LIMIT, "the 3D view's surfaces", |s| {
        s.views.view3d.is_settled() && s.views.view3d.shown().is_some()
    })?;
    Ok(fixture)
}

/// Where pixel (x, y) of the 3D picture is on screen.
fn screen_of(harness: &Harness<'static, Studio>, x: f64, y: f64) -> anyhow::Result<Pos2> {
    let view3d = &harness.state().views.view3d;
    let rect = view3d
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the 3D view was not drawn"))?;
    let shown = view3d.shown().ok_or_else(|| anyhow::anyhow!("no picture"))?;
    let per_point = shown.image.size[0] as f32 / rect.width();
    Ok(rect.min + vec2(x as f32, y as f32) / per_point)
}

#[test]
fn the_labels_surfaces_are_drawn_and_a_click_on_one_moves_the_crosshair_onto_the_label() -> anyhow::Result<()>
{
    let mut fixture = open()?;
    let harness = &mut fixture.harness;
    let (label, aim, before) = {
        let studio = harness.state();
        let [label_triangles, _] = studio.views.view3d.triangles();
        assert!(label_triangles.is_some_and(|t| t > 100), "{label_triangles:?}");
        let shown = studio
            .views
            .view3d
            .shown()
            .ok_or_else(|| anyhow::anyhow!("no picture"))?;
        let drawn = shown.image.pixels.iter().filter(|p| **p != BACKGROUND).count();
        assert!(drawn > 500, "{drawn} pixels show a surface");
        // Aim at the centre of the label's voxels, as the picture projects it.
        let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
        let label = view
            .case
            .ground_truth
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no label"))?;
        let shape = label.shape();
        let labelled: Vec<[usize; 3]> = (0..label.len())
            .map(|i| [i % shape[0], i / shape[0] % shape[1], i / (shape[0] * shape[1])])
            .filter(|v| label.at(*v).unwrap_or(0) != 0)
            .collect();
        let mean: [f64; 3] = std::array::from_fn(|a| {
            labelled.iter().map(|v| v[a] as f64).sum::<f64>() / labelled.len() as f64
        });
        let [px, py, _] = shown
            .projection
            .project(view.case.image.world_from_voxel().apply(mean));
        (label, screen_of(harness, px, py)?, view.crosshair)
    };
    let shape = label.shape();
    harness.hover_at(aim);
    harness.step();
    button(harness, aim, true);
    harness.step();
    button(harness, aim, false);
    harness.step();
    harness.step();
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    let after = view.crosshair;
    assert_ne!(after, before, "the click moved the crosshair");
    // The surface lies on the label's border: within two voxels of a labelled voxel and of an
    // unlabelled one (brute force over the grid).
    let nearest = |wanted: bool| {
        (0..label.len())
            .map(|i| [i % shape[0], i / shape[0] % shape[1], i / (shape[0] * shape[1])])
            .filter(|v| (label.at(*v).unwrap_or(0) != 0) == wanted)
            .map(|v| {
                (0..3)
                    .map(|a| (v[a] as f64 - after[a] as f64).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .fold(f64::INFINITY, f64::min)
    };
    assert!(
        nearest(true) <= 2.0,
        "{after:?} is {} voxels from the label",
        nearest(true)
    );
    assert!(
        nearest(false) <= 2.0,
        "{after:?} is {} voxels inside the label",
        nearest(false)
    );
    Ok(())
}

#[test]
fn drag_rotates_the_wheel_zooms_and_reset_and_4_work() -> anyhow::Result<()> {
    let mut fixture = open()?;
    let harness = &mut fixture.harness;
    let rect = harness
        .state()
        .views
        .view3d
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("no 3D view"))?;
    let camera = harness.state().views.view3d.camera;
    let crosshair = harness
        .state()
        .view
        .as_ref()
        .map(|v| v.crosshair)
        .ok_or_else(|| anyhow::anyhow!("no case"))?;
    let start = rect.center();
    harness.hover_at(start);
    harness.step();
    button(harness, start, true);
    harness.step();
    for step in 1..=4 {
        harness.hover_at(start + vec2(10.0 * step as f32, 5.0 * step as f32));
        harness.step();
    }
    button(harness, start + vec2(40.0, 20.0), false);
    harness.step();
    let turned = harness.state().views.view3d.camera;
    // 40 points right and 20 down at 0.01 rad per point.
    assert!((turned.yaw - camera.yaw - 0.4).abs() < 1e-6, "{turned:?}");
    assert!((turned.pitch - camera.pitch - 0.2).abs() < 1e-6, "{turned:?}");
    assert_eq!(
        harness.state().view.as_ref().map(|v| v.crosshair),
        Some(crosshair),
        "a drag is not a click"
    );
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: vec2(0.0, 2.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    let zoomed = harness.state().views.view3d.camera.zoom;
    assert!((zoomed - camera.zoom * 1.15f64.powi(2)).abs() < 1e-9, "{zoomed}");
    harness.get_by_label("Reset").click();
    harness.step();
    assert_eq!(harness.state().views.view3d.camera, camera);
    harness.key_press_modifiers(Modifiers::NONE, Key::Num4);
    harness.step();
    assert!(harness.state().views.view3d.maximised);
    harness.key_press(Key::Escape);
    harness.step();
    assert!(!harness.state().views.view3d.maximised);
    Ok(())
}

#[test]
fn an_edit_makes_the_labels_surfaces_again_after_the_stroke() -> anyhow::Result<()> {
    let mut fixture = open()?;
    let harness = &mut fixture.harness;
    let [before, _] = harness.state().views.view3d.triangles();
    // Paint a far corner of the axial slice with a new label: a new surface appears.
    harness.state_mut().tab = crate::shell::Tab::Edit;
    harness.state_mut().edit.brush.label = 5;
    harness.state_mut().edit.brush.radius_mm = 15.0;
    harness.key_press(Key::B);
    harness.step();
    let rect = harness.state().views.planes[0]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("no axial view"))?;
    let corner = rect.min + vec2(rect.width() * 0.15, rect.height() * 0.2);
    harness.hover_at(corner);
    harness.step();
    button(harness, corner, true);
    harness.step();
    button(harness, corner, false);
    harness.step();
    let fives = harness
        .state()
        .view
        .as_ref()
        .and_then(|v| v.case.ground_truth.as_ref())
        .map(|l| l.iter().filter(|&v| v == 5).count())
        .unwrap_or(0);
    assert!(fives > 0, "the click painted label 5");
    wait_until(harness, LIMIT, "the new surfaces", |s| {
        s.views.view3d.is_settled() && s.views.view3d.triangles()[0] != before
    })?;
    let [after, _] = harness.state().views.view3d.triangles();
    assert!(
        after > before,
        "{before:?} → {after:?}: a surface for label 5 was added"
    );
    Ok(())
}
