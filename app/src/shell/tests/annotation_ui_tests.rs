//! UI tests of annotation, driven through egui_kittest on a phantom task (its scans are
//! LPS-like and rotated, so saving really has to map the label back): paint with the mouse,
//! undo and redo with the keyboard, save, the unsaved-changes question and autosave restore.

use crate::annotation::brush::Tool;
use crate::common::slice_geometry::Axis;
use crate::io::label_io::{autosave_path, save_label};
use crate::review::sheet::ReviewState;
use crate::shell::Studio;
use crate::shell::tests::support::{button, label, open_edit_task, settle, wait_until};
use eframe::egui::{Key, Modifiers, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine::volume::{Volume, read_nifti};

/// Drags with the primary button across the middle of the axial view.
fn paint_stroke(harness: &mut Harness<'static, Studio>) -> anyhow::Result<()> {
    let rect = harness.state().views.planes[Axis::Axial.index()]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the axial view was not drawn"))?;
    let start = rect.center() + vec2(-rect.width() * 0.1, 0.0);
    let end = rect.center() + vec2(rect.width() * 0.1, rect.height() * 0.05);
    harness.hover_at(start);
    harness.step();
    button(harness, start, true);
    harness.step();
    for t in [0.25, 0.5, 0.75, 1.0] {
        harness.hover_at(start + (end - start) * t);
        harness.step();
    }
    button(harness, end, false);
    harness.step();
    harness.step();
    Ok(())
}

fn painted_count(harness: &Harness<'static, Studio>, value: f32) -> usize {
    label(harness).iter().filter(|v| **v == value).count()
}

#[test]
fn painting_with_the_mouse_then_undo_and_redo() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    let original = label(harness);
    assert!(!original.is_empty(), "the phantom has a ground truth");
    // Paint label 2 (a label the phantom does not hold on its own in this slice region).
    harness.state_mut().edit.brush.label = 2;
    // The phantom's voxels are about 10 mm wide in-plane.
    harness.state_mut().edit.brush.radius_mm = 20.0;
    harness.key_press(Key::B);
    harness.step();
    assert_eq!(harness.state().edit.brush.tool, Tool::Brush);
    let uploads_before = harness.state().views.planes.each_ref().map(|p| p.uploads);
    let twos_before = painted_count(harness, 2.0);
    paint_stroke(harness)?;
    let painted = label(harness);
    assert!(
        painted_count(harness, 2.0) > twos_before + 10,
        "the stroke painted label 2: {twos_before} → {}, {:?} steps",
        painted_count(harness, 2.0),
        harness.state().view.as_ref().map(|v| v.edit.undo.undo_len())
    );
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    assert_eq!(view.edit.undo.undo_len(), 1, "one drag, one undo step");
    assert!(view.edit.is_dirty());
    assert!(
        studio.views.planes[0].uploads > uploads_before[0],
        "the axial view redrew"
    );
    harness.get_by_label("Unsaved changes");

    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(label(harness), original, "undo restores every voxel");
    harness.key_press_modifiers(Modifiers::COMMAND.plus(Modifiers::SHIFT), Key::Z);
    harness.step();
    assert_eq!(label(harness), painted, "redo paints it again");
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Y);
    harness.step();
    assert_eq!(label(harness), painted);
    // The brush size keys.
    let radius = harness.state().edit.brush.radius_mm;
    harness.key_press(Key::CloseBracket);
    harness.step();
    assert!(harness.state().edit.brush.radius_mm > radius);
    Ok(())
}

#[test]
fn saving_writes_the_label_in_the_scans_grid_and_marks_the_case_corrected() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let ground_truth_path = fixture.task.path().join("labelsTr").join("phantom_000.nii.gz");
    let ground_truth_bytes = std::fs::read(&ground_truth_path)?;
    let harness = &mut fixture.harness;
    harness.state_mut().edit.brush.label = 2;
    harness.key_press(Key::B);
    harness.step();
    paint_stroke(harness)?;
    harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    settle(harness)?;

    let path = fixture
        .task
        .path()
        .join("labelsCorrected")
        .join("phantom_000.nii.gz");
    let saved = read_nifti(&path)?;
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    let label = view
        .case
        .ground_truth
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no label"))?;
    // Checked through the forward reorientation, not the inverse that wrote the file: the saved
    // label brought to RAS+ again is the label on screen.
    let reoriented = engine::volume::reorient_to_canonical(&saved.volume);
    assert_eq!(reoriented.shape(), label.shape());
    assert_eq!(reoriented.voxels(), label.to_f32());
    assert_eq!(saved.header.srow_x, view.case.scan_header.srow_x);
    assert_eq!(saved.header.srow_z, view.case.scan_header.srow_z);
    assert!(!view.edit.is_dirty());
    // The original ground truth is untouched.
    assert_eq!(std::fs::read(&ground_truth_path)?, ground_truth_bytes);

    let state = harness.state_mut().sheet_mut().map(|s| s.state("phantom_000"));
    assert_eq!(state, Some(ReviewState::Corrected));
    // The sidecar follows within its write interval.
    let sidecar = fixture.task.path().join("reviews.json");
    wait_until(
        harness,
        crate::io::sidecar::WRITE_INTERVAL * 3,
        "reviews.json to say corrected",
        |_| std::fs::read_to_string(&sidecar).is_ok_and(|t| t.contains("\"corrected\"")),
    )
}

#[test]
fn switching_case_with_unsaved_edits_asks_first() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    harness.key_press(Key::B);
    harness.step();
    paint_stroke(harness)?;
    harness.get_by_label("phantom_001").click();
    harness.step();
    harness.step();
    // The modal appears after its sizing pass.
    harness.step();
    harness.get_by_label("The label of this case has changes that are not saved.");
    harness.get_by_label("Cancel").click();
    settle(harness)?;
    let id = |h: &Harness<'static, Studio>| h.state().view.as_ref().map(|v| v.case.id.clone());
    assert_eq!(id(harness).as_deref(), Some("phantom_000"));

    harness.get_by_label("phantom_001").click();
    for _ in 0..3 {
        harness.step();
    }
    harness.get_by_label("Discard").click();
    settle(harness)?;
    assert_eq!(id(harness).as_deref(), Some("phantom_001"));
    assert!(
        !fixture.task.path().join("labelsCorrected").exists(),
        "discarding saves nothing"
    );
    Ok(())
}

#[test]
fn an_autosave_is_offered_and_restored_when_the_case_opens() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    // Write an autosave for phantom_001 as the app would: a label of 3s in the scan's grid.
    let source = harness
        .state()
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no task"))?;
    let case = crate::io::loader::load_case(&source, 1)?;
    let mut restored = Volume::zeros(&case.image.geometry());
    restored.voxels_mut()[..50].fill(3.0);
    let path = autosave_path(&source, "phantom_001").ok_or_else(|| anyhow::anyhow!("no path"))?;
    let as_label = crate::common::label::label_from_volume(&restored)?;
    save_label(&path, &as_label, &case.scan_grid, &case.scan_header)?;

    harness.get_by_label("phantom_001").click();
    settle(harness)?;
    harness.get_by_label("Restore autosave?");
    harness.get_by_label("Restore").click();
    // Read and compared on the edit thread: wait for its answer.
    settle(harness)?;
    assert_eq!(label(harness), restored.voxels());
    let dirty = harness.state().view.as_ref().is_some_and(|v| v.edit.is_dirty());
    assert!(dirty, "a restored session still has to be saved");
    Ok(())
}

#[test]
fn cancelling_a_whole_label_edit_leaves_the_label_as_it_was() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    let source = harness
        .state()
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no task"))?;
    let case = crate::io::loader::load_case(&source, 1)?;
    let mut restored = Volume::zeros(&case.image.geometry());
    restored.voxels_mut()[..50].fill(3.0);
    let path = autosave_path(&source, "phantom_001").ok_or_else(|| anyhow::anyhow!("no path"))?;
    let as_label = crate::common::label::label_from_volume(&restored)?;
    save_label(&path, &as_label, &case.scan_grid, &case.scan_header)?;

    harness.get_by_label("phantom_001").click();
    settle(harness)?;
    let before = label(harness);
    harness.get_by_label("Restore").click();
    // This frame starts the restore on the edit thread; its answer is read next frame at the
    // earliest, so the cancel below always comes first, however fast the thread is.
    harness.step();
    assert!(harness.state().edit_job.is_some(), "the restore is under way");
    harness.state_mut().apply(crate::shell::Command::Edit(
        crate::annotation::panel::EditCommand::CancelJob,
    ));
    settle(harness)?;
    assert_eq!(label(harness), before, "the cancelled restore changed nothing");
    let notice = format!("{:?}", harness.state().notice);
    assert!(notice.contains("cancelled"), "{notice}");
    Ok(())
}

/// One click (press and release) at `pos`.
fn click_at(harness: &mut Harness<'static, Studio>, pos: eframe::egui::Pos2) {
    harness.hover_at(pos);
    harness.step();
    button(harness, pos, true);
    harness.step();
    button(harness, pos, false);
    harness.step();
    harness.step();
}

#[test]
fn keep_largest_island_and_remove_small_islands_are_one_undoable_step_each() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    // Two separate blobs of label 3 (the phantom has none): a stroke and a click far from it.
    harness.state_mut().edit.brush.label = 3;
    harness.state_mut().edit.brush.radius_mm = 20.0;
    harness.key_press(eframe::egui::Key::B);
    harness.step();
    let original = label(harness);
    paint_stroke(harness)?;
    let stroke = painted_count(harness, 3.0);
    let rect = harness.state().views.planes[Axis::Axial.index()]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the axial view was not drawn"))?;
    click_at(
        harness,
        rect.left_top() + vec2(rect.width() * 0.12, rect.height() * 0.12),
    );
    let both = painted_count(harness, 3.0);
    let (large, small) = (stroke.max(both - stroke), stroke.min(both - stroke));
    assert!(
        small > 0 && large > small,
        "two blobs of different sizes: {stroke} and {}",
        both - stroke
    );
    harness.key_press(eframe::egui::Key::B); // back to navigating
    harness.step();
    let painted = label(harness);

    harness.get_by_label("Keep largest island").click();
    settle(harness)?;
    let kept = label(harness);
    assert_eq!(painted_count(harness, 3.0), large, "only the larger blob stays");
    for (i, (before, after)) in painted.iter().zip(&kept).enumerate() {
        assert!(
            before == after || (*before == 3.0 && *after == 0.0),
            "voxel {i}: {before} → {after}; only label 3 may become background"
        );
    }
    let view = harness
        .state()
        .view
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no case"))?;
    assert_eq!(view.edit.undo.undo_name(), Some("keep largest island"));
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(label(harness), painted, "undo brings the small blob back");

    // Every island is under a million mL: all of label 3 goes, and undo brings it back.
    harness.state_mut().edit.brush.min_island_ml = 1.0e6;
    harness.step();
    harness.get_by_label("Remove islands under").click();
    settle(harness)?;
    assert_eq!(painted_count(harness, 3.0), 0);
    let cleared = label(harness);
    for (i, ((before, after), first)) in painted.iter().zip(&cleared).zip(&original).enumerate() {
        let expected = if *before == 3.0 { 0.0 } else { *first };
        assert_eq!(*after, expected, "voxel {i}");
    }
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(label(harness), painted);
    Ok(())
}

/// The crosshair voxel after a click at `pos` with the Navigate tool.
fn voxel_at(harness: &mut Harness<'static, Studio>, pos: eframe::egui::Pos2) -> anyhow::Result<[usize; 3]> {
    harness.state_mut().edit.brush.tool = Tool::Navigate;
    click_at(harness, pos);
    Ok(harness
        .state()
        .view
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no case"))?
        .crosshair)
}

#[test]
fn region_growing_from_a_click_takes_the_4_connected_in_window_pixels_of_the_slice() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    let rect = harness.state().views.planes[Axis::Axial.index()]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the axial view was not drawn"))?;
    let pos = rect.center();
    let seed = voxel_at(harness, pos)?;
    let before = label(harness);
    harness.state_mut().edit.brush.label = 3;
    harness.key_press(Key::G);
    harness.step();
    assert_eq!(harness.state().edit.brush.tool, Tool::Grow);
    click_at(harness, pos);
    settle(harness)?;
    let view = harness
        .state()
        .view
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no case"))?;
    // No window was set: the first seed took the display window, which the panel now shows.
    let window = view.window;
    let (low, high) = (
        window.level - window.width / 2.0,
        window.level + window.width / 2.0,
    );
    assert_eq!(harness.state().edit.brush.grow_range, Some((low, high)));
    // The region computed here by a breadth-first search over the seed's axial slice.
    let image = view.case.image.channel(0);
    let [nx, ny, _] = view.case.image.shape();
    let z = seed[2];
    let at = |x: usize, y: usize| image[x + nx * (y + ny * z)];
    let mut expected = vec![false; nx * ny];
    let mut queue = std::collections::VecDeque::from([(seed[0], seed[1])]);
    expected[seed[0] + nx * seed[1]] = true;
    while let Some((x, y)) = queue.pop_front() {
        let neighbours = [
            (x.wrapping_sub(1), y),
            (x + 1, y),
            (x, y.wrapping_sub(1)),
            (x, y + 1),
        ];
        for (a, b) in neighbours {
            if a < nx && b < ny && !expected[a + nx * b] && (low..=high).contains(&at(a, b)) {
                expected[a + nx * b] = true;
                queue.push_back((a, b));
            }
        }
    }
    let grown = expected.iter().filter(|e| **e).count();
    assert!(
        grown > 1 && grown < nx * ny,
        "a real region: {grown} of {} pixels",
        nx * ny
    );
    let after = label(harness);
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        let in_region = i / (nx * ny) == z && expected[i % (nx * ny)];
        let wanted = if in_region { 3.0 } else { *old };
        assert_eq!(*new, wanted, "voxel {i} (in region: {in_region})");
    }
    assert_eq!(view.edit.undo.undo_name(), Some("grow region"));
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    harness.step();
    assert_eq!(label(harness), before, "one undo takes the whole region back");
    Ok(())
}

#[test]
fn the_ruler_measures_two_clicks_in_mm_and_clears() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    let rect = harness.state().views.planes[Axis::Axial.index()]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the axial view was not drawn"))?;
    let (a, b) = (
        rect.center() + vec2(-rect.width() * 0.2, -rect.height() * 0.1),
        rect.center() + vec2(rect.width() * 0.15, rect.height() * 0.2),
    );
    harness.key_press(Key::M);
    harness.step();
    // The voxel under each point as the view reports it while hovering, just before the click
    // (the side panel's width, hence the view's rectangle, depends on the tool).
    let mut hovered_click = |at: eframe::egui::Pos2| -> anyhow::Result<[usize; 3]> {
        harness.hover_at(at);
        harness.step();
        let voxel = harness.state().views.hover.as_ref().map(|h| h.voxel);
        click_at(harness, at);
        voxel.ok_or_else(|| anyhow::anyhow!("nothing under {at:?}"))
    };
    let (voxel_a, voxel_b) = (hovered_click(a)?, hovered_click(b)?);
    let view = harness
        .state()
        .view
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no case"))?;
    let ruler = view.ruler.ok_or_else(|| anyhow::anyhow!("no ruler"))?;
    assert_eq!((ruler.start, ruler.end), (voxel_a, Some(voxel_b)));
    // The phantom's grid is rotated but not sheared: the length is the voxel steps times the
    // spacing, by Pythagoras.
    let spacing = view.case.image.spacing_mm();
    let expected = (0..3)
        .map(|i| ((voxel_a[i] as f64 - voxel_b[i] as f64) * spacing[i]).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(expected > 10.0, "the clicks are apart: {expected} mm");
    let text = format!("Ruler: {expected:.1} mm");
    harness.get_by_label(&text);
    harness.get_by_label("Clear ruler").click();
    harness.step();
    harness.step();
    assert!(harness.state().view.as_ref().is_some_and(|v| v.ruler.is_none()));
    Ok(())
}
