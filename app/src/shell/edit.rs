//! Annotation at the app level: the edit commands, saving and autosaving through the writer
//! thread, the questions asked before unsaved edits are lost (switching case, opening another
//! task, closing the window), and keeping the review sidecar in step.

use super::edit_jobs::EditJobKind;
use super::{Command, Notice, Studio};
use crate::annotation::brush::PaintRule;
use crate::annotation::brush::{BrushSettings, Tool};
use crate::annotation::panel::{EditCommand, UnsavedChoice};
use crate::io::label_io::{
    AUTOSAVE_INTERVAL_SECS, WriteDone, WriteJob, WriteKind, autosave_path, corrected_label_path,
};
use crate::io::sidecar::{SidecarSync, WRITE_INTERVAL};
use crate::review::sheet::ReviewState;
use eframe::egui;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Instant;

#[path = "edit_writes.rs"]
mod writes;

/// What was about to happen when unsaved edits stopped it.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// Carry out this command.
    Command(Box<Command>),
    /// Close the window.
    Close,
}

/// A question waiting for the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// Unsaved edits would be lost by `After`.
    Unsaved(After),
    /// Overwrite the original ground-truth file?
    OverwriteGroundTruth(PathBuf),
    /// An autosave of this case exists: restore it?
    RestoreAutosave(PathBuf),
}

/// Annotation state that outlives a case.
#[derive(Default)]
pub struct EditState {
    /// Brush and eraser settings.
    pub brush: BrushSettings,
    /// The question on screen, if any.
    pub confirm: Option<Confirm>,
    writer: Option<mpsc::Receiver<WriteDone>>,
    queued_save: Option<PathBuf>,
    after_save: Option<After>,
    autosave_due: Option<Instant>,
    close_allowed: bool,
    /// The review sidecar of the open source.
    pub sidecar: SidecarSync,
}

impl EditState {
    /// Whether a label is being written.
    pub fn is_writing(&self) -> bool {
        self.writer.is_some() || self.queued_save.is_some()
    }
}

impl Studio {
    /// Stops a command that would lose unsaved edits and asks first; returns whether it did.
    pub(crate) fn intercept_unsaved(&mut self, command: &Command) -> bool {
        let dirty = self.view.as_ref().is_some_and(|v| v.edit.is_dirty());
        let loses_case = match command {
            Command::SelectCase(index) => self.selected != Some(*index),
            Command::StepCase(_) | Command::Open(_) => true,
            _ => false,
        };
        if dirty && loses_case {
            self.edit.confirm = Some(Confirm::Unsaved(After::Command(Box::new(command.clone()))));
        }
        dirty && loses_case
    }

    /// Reads the review sidecar of the source just opened.
    pub(crate) fn open_reviews(&mut self) {
        let Some(source) = self.source.clone() else { return };
        let (sync, sheet, error) = SidecarSync::open(&source);
        self.reviews.insert(source.request.title(), sheet);
        self.edit.sidecar = sync;
        if let Some(message) = error {
            self.notice = Some(Notice::Error(message));
        }
    }

    /// Offers the autosave of the case just shown, if there is one.
    pub(crate) fn offer_autosave(&mut self) {
        let (Some(source), Some(view)) = (&self.source, &self.view) else {
            return;
        };
        if let Some(path) = autosave_path(source, &view.case.id).filter(|p| p.is_file()) {
            self.edit.confirm = Some(Confirm::RestoreAutosave(path));
        }
    }

    /// Per-frame upkeep: finished writes, autosave, the review sidecar and close requests.
    pub(crate) fn edit_frame(&mut self, ctx: &egui::Context) {
        if let Some(receiver) = &self.edit.writer {
            match receiver.try_recv() {
                Ok(done) => {
                    self.edit.writer = None;
                    self.write_finished(done);
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.edit.writer = None;
                    self.notice = Some(Notice::Error(
                        "the label could not be written: the writer thread stopped".into(),
                    ));
                }
            }
        }
        if self.edit.writer.is_none()
            && let Some(path) = self.edit.queued_save.take()
        {
            self.start_write(WriteKind::Save, path);
        }
        self.autosave_tick(ctx);
        self.sync_reviews(ctx, false);
        if ctx.input(|i| i.viewport().close_requested()) {
            self.sync_reviews(ctx, true);
            let dirty = self.view.as_ref().is_some_and(|v| v.edit.is_dirty());
            if dirty && !self.edit.close_allowed {
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                self.edit.confirm = Some(Confirm::Unsaved(After::Close));
            }
        }
    }

    fn sync_reviews(&mut self, ctx: &egui::Context, now: bool) {
        let Some(title) = self.source.as_ref().map(|s| s.request.title()) else {
            return;
        };
        let Some(sheet) = self.reviews.get(&title) else {
            return;
        };
        match self.edit.sidecar.sync(sheet, now) {
            Ok(true) => ctx.request_repaint_after(WRITE_INTERVAL),
            Ok(false) => {}
            Err(message) => self.notice = Some(Notice::Error(message)),
        }
    }

    fn carry_out(&mut self, after: After) {
        match after {
            After::Command(command) => self.apply(*command),
            After::Close => {
                self.edit.close_allowed = true;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Carries out one annotation command.
    pub fn apply_edit(&mut self, command: EditCommand) {
        let axis = self.views.maximised.unwrap_or(self.views.active);
        let brush = self.edit.brush.clone();
        match command {
            EditCommand::SetBrush(settings) => self.edit.brush = settings,
            EditCommand::ToggleTool(tool) => {
                let current = &mut self.edit.brush.tool;
                *current = if *current == tool { Tool::Navigate } else { tool };
            }
            EditCommand::ResizeBrush(steps) => self.edit.brush.resize(steps),
            EditCommand::Undo | EditCommand::Redo => {
                if let Some(view) = &mut self.view {
                    let crosshair = view.crosshair;
                    let done = if command == EditCommand::Undo {
                        view.edit.undo(&mut view.case, crosshair)
                    } else {
                        view.edit.redo(&mut view.case, crosshair)
                    };
                    if !done {
                        self.notice = Some(Notice::Info("nothing to undo or redo".into()));
                    }
                }
            }
            EditCommand::Save => {
                let path = self
                    .source
                    .as_ref()
                    .zip(self.view.as_ref())
                    .and_then(|(s, v)| corrected_label_path(s, &v.case.id));
                if let Some(path) = path {
                    self.start_write(WriteKind::Save, path);
                }
            }
            EditCommand::AskOverwriteGroundTruth => {
                let entry = self.selected.and_then(|i| self.source.as_ref()?.cases.get(i));
                match entry.map(|e| (e.ground_truth.clone(), e.corrected.clone())) {
                    // The case would keep opening with its (older) corrected label.
                    Some((Some(_), Some(corrected))) => {
                        self.notice = Some(Notice::Error(format!(
                            "this case opens with its corrected label {}; Save updates that file                              (move it away first to overwrite the ground truth instead)",
                            corrected.display()
                        )))
                    }
                    Some((Some(path), None)) => self.edit.confirm = Some(Confirm::OverwriteGroundTruth(path)),
                    _ => {
                        self.notice = Some(Notice::Error(
                            "this case has no ground-truth file to overwrite; use Save".into(),
                        ))
                    }
                }
            }
            EditCommand::OverwriteGroundTruth => {
                if let Some(Confirm::OverwriteGroundTruth(path)) = self.edit.confirm.take() {
                    self.start_write(WriteKind::Save, path);
                }
            }
            EditCommand::StartFromPrediction => self.start_edit_job(EditJobKind::StartFromPrediction),
            EditCommand::RemoveIslands(rule) => {
                self.start_edit_job(EditJobKind::RemoveIslands(brush.label, rule))
            }
            EditCommand::CancelJob => self.cancel_edit_job(),
            EditCommand::ClearRuler => {
                if let Some(view) = &mut self.view {
                    view.ruler = None;
                }
            }
            EditCommand::FillBetween => {
                let rule = PaintRule {
                    value: brush.label,
                    selected_label: brush.label,
                    paint_over: brush.paint_over,
                    intensity_range: brush.intensity_range,
                };
                self.start_edit_job(EditJobKind::FillBetween(axis, rule));
            }
            EditCommand::RestoreAutosave | EditCommand::DiscardAutosave => {
                let Some(Confirm::RestoreAutosave(path)) = self.edit.confirm.take() else {
                    return;
                };
                if command == EditCommand::DiscardAutosave {
                    let _ = std::fs::remove_file(&path);
                } else {
                    self.start_edit_job(EditJobKind::RestoreAutosave(path));
                }
            }
            EditCommand::Unsaved(choice) => {
                // Cancel answers any question (it also closes "overwrite ground truth?").
                let confirm = self.edit.confirm.take();
                let Some(Confirm::Unsaved(after)) = confirm else {
                    return;
                };
                match choice {
                    UnsavedChoice::Cancel => {}
                    UnsavedChoice::Discard => {
                        if let Some(view) = &mut self.view {
                            view.edit.saved_generation = view.edit.generation;
                            let id = view.case.id.clone();
                            self.remove_autosave(&id);
                        }
                        self.carry_out(after);
                    }
                    UnsavedChoice::Save => {
                        self.edit.after_save = Some(after);
                        self.apply_edit(EditCommand::Save);
                    }
                }
            }
        }
    }
}

/// Shows the question waiting in `confirm`, if any; answers become commands.
pub(crate) fn confirm_ui(ctx: &egui::Context, confirm: Option<&Confirm>, commands: &mut Vec<Command>) {
    let Some(confirm) = confirm else { return };
    let edit = |command| Command::Edit(command);
    let (title, text, buttons): (&str, String, Vec<(&str, EditCommand)>) = match confirm {
        Confirm::Unsaved(_) => (
            "Unsaved changes",
            "The label of this case has changes that are not saved.".into(),
            vec![
                ("Save", EditCommand::Unsaved(UnsavedChoice::Save)),
                ("Discard", EditCommand::Unsaved(UnsavedChoice::Discard)),
                ("Cancel", EditCommand::Unsaved(UnsavedChoice::Cancel)),
            ],
        ),
        Confirm::OverwriteGroundTruth(path) => (
            "Overwrite ground truth?",
            format!(
                "{} will be replaced by the edited label. This cannot be undone.",
                path.display()
            ),
            vec![
                ("Overwrite", EditCommand::OverwriteGroundTruth),
                ("Cancel", EditCommand::Unsaved(UnsavedChoice::Cancel)),
            ],
        ),
        Confirm::RestoreAutosave(path) => (
            "Restore autosave?",
            format!(
                "An autosaved edit session of this case was found ({}).",
                path.display()
            ),
            vec![
                ("Restore", EditCommand::RestoreAutosave),
                ("Discard", EditCommand::DiscardAutosave),
            ],
        ),
    };
    egui::Modal::new(egui::Id::unique("annotation confirm")).show(ctx, |ui| {
        ui.heading(title);
        ui.label(text);
        ui.horizontal(|ui| {
            for (label, command) in buttons {
                if ui.button(label).clicked() {
                    commands.push(edit(command));
                }
            }
        });
    });
}
