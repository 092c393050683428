//! UI tests: the real app state driven through egui_kittest on a small phantom task written to a
//! temporary folder. Widgets are found by their labels; the tests check what changed in the state.

use crate::common::slice_geometry::Axis;
use crate::review::sheet::ReviewState;
use crate::shell::tests::support::{Fixture, frames, settle};
use crate::shell::{Command, Notice, Studio};
use crate::viewer::render::{Window, WindowPreset};
use eframe::egui::{self, Key, Modifiers, Pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Phantom size: small enough to load instantly, anisotropic like the real thing.
const PHANTOM_SIZE: [usize; 3] = [24, 20, 12];

fn open_phantom_task() -> anyhow::Result<Fixture> {
    crate::shell::tests::support::open_phantom_task(3, 1, PHANTOM_SIZE, [1400.0, 900.0])
}

fn plane_centre(harness: &Harness<'static, Studio>, axis: Axis) -> anyhow::Result<Pos2> {
    let rect = harness.state().views.planes[axis.index()].last_rect;
    rect.map(|r| r.center())
        .ok_or_else(|| anyhow::anyhow!("{} view was not drawn", axis.name()))
}

fn wheel(harness: &Harness<'static, Studio>, lines: f32, modifiers: Modifiers) {
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: vec2(0.0, lines),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers,
    });
}

fn current_window(harness: &Harness<'static, Studio>) -> Option<(Window, Option<WindowPreset>)> {
    harness.state().view.as_ref().map(|v| (v.window, v.preset))
}

#[test]
fn opening_a_task_lists_its_cases_and_shows_the_first() -> anyhow::Result<()> {
    let fixture = open_phantom_task()?;
    let harness = &fixture.harness;
    for id in ["phantom_000", "phantom_001", "phantom_002", "phantom_003"] {
        harness.get_by_label(id);
    }
    let studio = harness.state();
    assert_eq!(studio.selected, Some(0));
    let view = studio
        .view
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no case shown"))?;
    assert_eq!(view.case.id, "phantom_000");
    assert!(view.case.ground_truth.is_some());
    // CT phantom: the soft-tissue window by default.
    assert_eq!(view.preset, Some(WindowPreset::SoftTissue));
    // Every view drew its texture exactly once.
    assert!(studio.views.planes.iter().all(|p| p.uploads == 1));
    harness.get_by_label("Axial");
    harness.get_by_label("Coronal");
    harness.get_by_label("Sagittal");
    Ok(())
}

#[test]
fn wheel_scrolls_only_the_hovered_view_and_reuploads_only_its_texture() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    let before = harness.state().view.as_ref().map(|v| v.crosshair);
    let uploads = |h: &Harness<'static, Studio>| h.state().views.planes.each_ref().map(|p| p.uploads);
    let uploads_before = uploads(harness);
    // Idle frames upload nothing.
    frames(harness, 3);
    assert_eq!(uploads(harness), uploads_before);

    harness.hover_at(plane_centre(harness, Axis::Axial)?);
    harness.step();
    wheel(harness, -1.0, Modifiers::NONE);
    frames(harness, 2);
    let after = harness.state().view.as_ref().map(|v| v.crosshair);
    let (Some(before), Some(after)) = (before, after) else {
        anyhow::bail!("no case shown");
    };
    assert_eq!(after[2] as i64 - before[2] as i64, -1, "{before:?} → {after:?}");
    assert_eq!(after[..2], before[..2]);
    let uploads_after = uploads(harness);
    assert_eq!(uploads_after[0], uploads_before[0] + 1, "the axial slice changed");
    assert_eq!(
        uploads_after[1..],
        uploads_before[1..],
        "coronal and sagittal did not change"
    );

    // Ctrl+wheel zooms instead of scrolling.
    wheel(harness, 2.0, Modifiers::COMMAND);
    frames(harness, 2);
    assert!(harness.state().views.planes[0].zoom > 1.0);
    assert_eq!(harness.state().view.as_ref().map(|v| v.crosshair), Some(after));
    Ok(())
}

#[test]
fn clicking_a_view_moves_the_crosshair_in_all_three() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    let centre = plane_centre(harness, Axis::Axial)?;
    let [nx, ny, _] = PHANTOM_SIZE;
    // Click a little up and left of the centre: towards patient right (+x) and anterior (+y).
    let image_height = harness.state().views.planes[0]
        .last_rect
        .map_or(0.0, |r| r.height());
    let pixel = image_height / ny as f32;
    let target = centre + vec2(-3.2 * pixel, -2.2 * pixel);
    harness.hover_at(target);
    harness.step();
    harness.event(egui::Event::PointerButton {
        pos: target,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    harness.step();
    harness.event(egui::Event::PointerButton {
        pos: target,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    frames(harness, 2);
    let crosshair = harness.state().view.as_ref().map(|v| v.crosshair);
    let Some([x, y, _]) = crosshair else {
        anyhow::bail!("no case shown")
    };
    // Screen column c shows x = nx - 1 - c: left of centre means larger x (patient right).
    assert!((nx / 2 + 2..=nx / 2 + 4).contains(&x), "x = {x}");
    assert!((ny / 2 + 1..=ny / 2 + 3).contains(&y), "y = {y}");
    // The status line reports the voxel under the pointer.
    // The coronal view now shows slice y and the sagittal view slice x (headers count from 1).
    harness.get_by_label(&format!("slice {} / {ny}", y + 1));
    harness.get_by_label(&format!("slice {} / {nx}", x + 1));
    harness.get_by_label_contains(&format!("voxel ({x}, {y},"));
    harness.get_by_label_contains(") mm   intensity ");
    Ok(())
}

#[test]
fn window_presets_apply_cycle_and_are_remembered_per_case() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    harness.get_by_label("Lung").click();
    frames(harness, 2);
    let lung = Window {
        width: 1500.0,
        level: -600.0,
    };
    assert_eq!(current_window(harness), Some((lung, Some(WindowPreset::Lung))));
    harness.key_press(Key::W);
    frames(harness, 2);
    let bone = Window {
        width: 2000.0,
        level: 300.0,
    };
    assert_eq!(current_window(harness), Some((bone, Some(WindowPreset::Bone))));

    harness.get_by_label("phantom_001").click();
    settle(harness)?;
    assert_eq!(
        harness.state().view.as_ref().map(|v| v.case.id.as_str()),
        Some("phantom_001")
    );
    assert_eq!(
        current_window(harness).and_then(|w| w.1),
        Some(WindowPreset::SoftTissue)
    );
    harness.get_by_label("phantom_000").click();
    settle(harness)?;
    assert_eq!(current_window(harness), Some((bone, Some(WindowPreset::Bone))));
    Ok(())
}

#[test]
fn overlay_switches_change_the_settings_and_the_textures() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    let axial_uploads = |h: &Harness<'static, Studio>| h.state().views.planes[0].uploads;
    let before = axial_uploads(harness);
    harness.get_by_label("Ground truth").click();
    frames(harness, 2);
    assert!(!harness.state().settings.overlays.ground_truth.visible);
    assert_eq!(axial_uploads(harness), before + 1);
    harness.key_press(Key::O);
    frames(harness, 2);
    assert!(!harness.state().settings.overlays.enabled);
    // The per-label legend lists dataset.json's names.
    harness.key_press(Key::O);
    frames(harness, 2);
    harness.get_by_label_contains("1: ");
    Ok(())
}

#[test]
fn review_state_filter_and_maximise_work_from_the_ui() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    harness.get_by_label("Accepted").click();
    frames(harness, 2);
    let state = |h: &mut Harness<'static, Studio>, id: &str| h.state_mut().sheet_mut().map(|s| s.state(id));
    assert_eq!(state(harness, "phantom_000"), Some(ReviewState::Accepted));
    assert_eq!(state(harness, "phantom_001"), Some(ReviewState::NotReviewed));

    harness.state_mut().filter.state = Some(ReviewState::Accepted);
    frames(harness, 2);
    assert!(harness.query_by_label("phantom_001").is_none());
    harness.get_by_label("phantom_000");
    harness.get_by_label("1 of 4 cases");

    harness.key_press(Key::Num2);
    frames(harness, 2);
    assert_eq!(harness.state().views.maximised, Some(Axis::Coronal));
    harness.get_by_label("Coronal").click();
    frames(harness, 2);
    assert_eq!(harness.state().views.maximised, None);
    Ok(())
}

#[test]
fn export_writes_a_png_of_the_active_view() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let out = tempfile::tempdir()?;
    let path = out.path().join("axial.png");
    fixture
        .harness
        .state_mut()
        .apply(Command::ExportPng(path.clone()));
    // Written on the export thread: wait for its answer.
    settle(&mut fixture.harness)?;
    let bytes = std::fs::read(&path)?;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(matches!(fixture.harness.state().notice, Some(Notice::Info(_))));
    Ok(())
}

#[test]
fn home_and_end_go_to_the_first_and_last_slice_and_plus_minus_zoom() -> anyhow::Result<()> {
    let mut fixture = open_phantom_task()?;
    let harness = &mut fixture.harness;
    let axis = harness.state().views.active;
    let count = harness
        .state()
        .view
        .as_ref()
        .map(|v| v.case.image.shape()[axis.normal()])
        .ok_or_else(|| anyhow::anyhow!("no case"))?;
    let slice = |h: &Harness<'static, Studio>| h.state().view.as_ref().map(|v| v.crosshair[axis.normal()]);
    harness.key_press(Key::End);
    frames(harness, 2);
    assert_eq!(slice(harness), Some(count - 1));
    harness.key_press(Key::Home);
    frames(harness, 2);
    assert_eq!(slice(harness), Some(0));
    let zoom = |h: &Harness<'static, Studio>| h.state().views.planes[axis.index()].zoom;
    assert_eq!(zoom(harness), 1.0);
    harness.key_press(Key::Plus);
    frames(harness, 2);
    assert!(
        (zoom(harness) - 1.15).abs() < 1e-6,
        "one wheel step in: {}",
        zoom(harness)
    );
    harness.key_press(Key::Minus);
    harness.key_press(Key::Minus);
    frames(harness, 2);
    assert!((zoom(harness) - 1.0 / 1.15).abs() < 1e-6, "{}", zoom(harness));
    // Other views keep their zoom.
    let other = Axis::ALL.into_iter().find(|a| *a != axis).unwrap_or(axis);
    assert_eq!(harness.state().views.planes[other.index()].zoom, 1.0);
    Ok(())
}

fn case<'a>(harness: &'a Harness<'static, Studio>) -> Option<&'a crate::io::loader::LoadedCase> {
    harness.state().view.as_ref().map(|v| &v.case)
}

#[test]
fn a_multi_channel_scan_shows_each_channel_by_its_modality_name_with_its_own_window() -> anyhow::Result<()> {
    use engine::data::{PhantomModality, PhantomOptions};
    let options = PhantomOptions {
        training_cases: 2,
        test_cases: 0,
        size: PHANTOM_SIZE,
        modality: PhantomModality::Mri { channels: 2 },
        ..PhantomOptions::default()
    };
    let mut fixture = crate::shell::tests::support::open_phantom_task_with(&options, [1400.0, 900.0])?;
    let harness = &mut fixture.harness;
    // dataset.json names the phantom's channels T1 and T2: the picker lists them.
    harness.get_by_label("Channel").click();
    frames(harness, 2);
    harness.get_by_label("0: T1");
    let channels = case(harness).map(|c| c.channels.len());
    assert_eq!(channels, Some(2));
    // Each channel holds the file's channel: reorientation only moves voxels, so the sums of
    // the file's channels, read here, are the sums of what the app shows.
    let path = fixture.task.path().join("imagesTr/phantom_000.nii.gz");
    let file = engine::volume::read_nifti(&path)?.volume;
    let sum = |values: &[f32]| values.iter().map(|v| f64::from(*v)).sum::<f64>();
    for c in 0..2 {
        let shown = case(harness).map(|case| sum(case.channels[c].voxels()));
        assert_eq!(shown, Some(sum(file.channel(c))), "channel {c}");
    }
    assert_ne!(sum(file.channel(0)), sum(file.channel(1)), "the contrasts differ");

    let uploads = harness.state().views.planes[0].uploads;
    harness.get_by_label("1: T2").click();
    frames(harness, 2);
    let shown = case(harness).ok_or_else(|| anyhow::anyhow!("no case"))?;
    assert_eq!(shown.channel, 1);
    assert!(std::sync::Arc::ptr_eq(&shown.image, &shown.channels[1]));
    let auto_1 = shown.auto_windows[1];
    assert_eq!(current_window(harness), Some((auto_1, Some(WindowPreset::Auto))));
    assert!(
        harness.state().views.planes[0].uploads > uploads,
        "the texture was redrawn"
    );
    // A window set on channel 1 stays with channel 1.
    harness.get_by_label("Brain").click();
    frames(harness, 2);
    harness.key_press(Key::C);
    frames(harness, 2);
    let auto_0 = case(harness).map(|c| c.auto_windows[0]);
    assert_eq!(case(harness).map(|c| c.channel), Some(0));
    assert_eq!(current_window(harness).map(|w| w.0), auto_0);
    harness.key_press(Key::C);
    frames(harness, 2);
    let brain = Window {
        width: 80.0,
        level: 40.0,
    };
    assert_eq!(current_window(harness), Some((brain, Some(WindowPreset::Brain))));
    Ok(())
}
