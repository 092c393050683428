//! Faults while a task is open become messages, and no edit is lost: a label save that fails
//! (its folder cannot be created: the same path as a full or read-only disk, the write fails
//! and the previous file stays) and a scan removed from the task while it is open.

use crate::shell::Studio;
use crate::shell::command::Notice;
use crate::shell::tests::support::{button, frames, label, open_edit_task, settle};
use eframe::egui::{Key, Modifiers, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Paints label 2 across the middle of the axial view; returns the label afterwards.
fn paint(harness: &mut Harness<'static, Studio>) -> anyhow::Result<Vec<f32>> {
    harness.state_mut().edit.brush.label = 2;
    harness.state_mut().edit.brush.radius_mm = 20.0;
    harness.key_press(Key::B);
    harness.step();
    let before = label(harness);
    let rect = harness.state().views.planes[crate::common::slice_geometry::Axis::Axial.index()]
        .last_rect
        .ok_or_else(|| anyhow::anyhow!("the axial view was not drawn"))?;
    let start = rect.center() + vec2(-rect.width() * 0.1, 0.0);
    let end = rect.center() + vec2(rect.width() * 0.1, 0.0);
    harness.hover_at(start);
    harness.step();
    button(harness, start, true);
    harness.step();
    for t in [0.5, 1.0] {
        harness.hover_at(start + (end - start) * t);
        harness.step();
    }
    button(harness, end, false);
    frames(harness, 2);
    let after = label(harness);
    anyhow::ensure!(after != before, "the stroke painted nothing");
    Ok(after)
}

fn is_dirty(harness: &Harness<'static, Studio>) -> bool {
    harness.state().view.as_ref().is_some_and(|v| v.edit.is_dirty())
}

fn error_notice(harness: &Harness<'static, Studio>) -> Option<String> {
    match &harness.state().notice {
        Some(Notice::Error(message)) => Some(message.clone()),
        _ => None,
    }
}

#[test]
fn a_failed_save_is_a_message_and_keeps_every_edit() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    // A file where the corrected-labels folder goes: the save cannot create it.
    let blocker = fixture.task.path().join("labelsCorrected");
    std::fs::write(&blocker, "not a folder")?;
    let harness = &mut fixture.harness;
    let painted = paint(harness)?;
    harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    settle(harness)?;
    let message = error_notice(harness).ok_or_else(|| anyhow::anyhow!("no error shown"))?;
    assert!(message.contains("labelsCorrected"), "names the path: {message}");
    assert!(is_dirty(harness), "the edit is still unsaved");
    assert_eq!(label(harness), painted, "every painted voxel is kept");

    // Once the cause is gone, the same edit saves.
    std::fs::remove_file(&blocker)?;
    harness.key_press_modifiers(Modifiers::COMMAND, Key::S);
    settle(harness)?;
    assert!(!is_dirty(harness));
    assert!(blocker.join("phantom_000.nii.gz").is_file());
    Ok(())
}

#[test]
fn a_scan_removed_while_the_task_is_open_is_a_message_and_keeps_the_edit() -> anyhow::Result<()> {
    let mut fixture = open_edit_task()?;
    let removed = fixture.task.path().join("imagesTr").join("phantom_001.nii.gz");
    let harness = &mut fixture.harness;
    let painted = paint(harness)?;
    std::fs::remove_file(&removed)?;
    harness.get_by_label("phantom_001").click();
    // The unsaved-changes question appears after its sizing pass; keep the edit by saving it.
    frames(harness, 3);
    harness.get_by_label("Save").click();
    settle(harness)?;
    let message = error_notice(harness).ok_or_else(|| anyhow::anyhow!("no error shown"))?;
    assert!(
        message.contains("phantom_001"),
        "names the missing scan: {message}"
    );
    let saved = fixture
        .task
        .path()
        .join("labelsCorrected")
        .join("phantom_000.nii.gz");
    assert!(saved.is_file(), "the edit was saved before switching");
    let harness = &mut fixture.harness;
    // The app goes on: the first case opens again with the saved edit.
    harness.get_by_label("phantom_000").click();
    settle(harness)?;
    let id = harness.state().view.as_ref().map(|v| v.case.id.clone());
    assert_eq!(id.as_deref(), Some("phantom_000"));
    assert_eq!(label(harness), painted);
    Ok(())
}

#[test]
fn a_long_refusal_of_a_prediction_job_wraps_inside_the_side_panel() -> anyhow::Result<()> {
    // The worker's refusal of "Predict all" with Monte-Carlo dropout for a model without dropout
    // names no case: it is shown in full, wrapped, and the side panel stays inside the window
    // (in a grid cell it did not wrap and pushed the panel past the window's edge).
    let mut fixture = open_edit_task()?;
    let harness = &mut fixture.harness;
    let message = "/home/someone/tasks/Task01/.medvisionllama/runs/demo-cpu-fold0-001/best: \
                   Monte-Carlo dropout needs a model trained with dropout, and this one has dropout \
                   = 0 in its config: every prediction would be the same. Choose test-time \
                   mirroring (all-axes or each-axis), or train with dropout > 0";
    harness
        .state_mut()
        .jobs
        .outcomes
        .push(crate::model::run_state::CaseOutcome {
            id: String::new(),
            before: None,
            after: None,
            error: Some(message.to_string()),
            trained_on: false,
        });
    harness.state_mut().tab = crate::shell::Tab::Training;
    frames(harness, 3);
    let shown = harness.get_by_label(message).rect();
    let window = harness.ctx.content_rect();
    assert!(
        shown.right() <= window.right() + 0.5,
        "the message reaches x = {} in a window {} wide",
        shown.right(),
        window.width()
    );
    assert!(shown.height() > 30.0, "wrapped onto several lines: {shown:?}");
    Ok(())
}
