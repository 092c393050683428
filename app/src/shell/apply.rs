//! Where commands and background events become state changes: opening, selecting cases,
//! windows, views, and what the loader, the dialog thread and the worker send back.

use super::{Command, Notice, Studio};
use crate::io::loader::{LoadCommand, LoadEvent, LoadedCase};
use crate::model::panels::ModelCommand;
use crate::model::training::Outcome;
use crate::review::case_list::CaseListCommand;
use crate::review::sheet::CaseFilter;
use crate::shell::dialogs::{DialogAnswer, DialogRequest, spawn_dialog};
use crate::viewer::case_view::CaseView;
use crate::viewer::command::ViewCommand;
use crate::viewer::plane::step_index;
use crate::viewer::render::{Window, WindowPreset};
use crate::viewer::ruler::Ruler;
use std::sync::{Arc, mpsc};

impl Studio {
    /// Handles what the loader thread and the dialog thread sent.
    pub fn poll(&mut self) {
        self.poll_jobs();
        self.poll_export();
        self.poll_edit_job();
        let waker = self.ctx.clone();
        self.metrics
            .update(self.view.as_ref(), move || waker.request_repaint());
        loop {
            let event = match self.loader.try_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(message) => {
                    // Whatever was on its way will not come: stop waiting, say so once.
                    if self.opening.take().is_some() | self.loading_case.take().is_some() {
                        self.notice = Some(Notice::Error(message));
                    }
                    break;
                }
            };
            match event {
                LoadEvent::Opened(Ok(source)) => {
                    self.opening = None;
                    self.settings.remember_opened(&source.request);
                    self.settings.open_task(&source.request.title());
                    // The old case belongs to the old source: keep its window, then let it go.
                    self.remember_window();
                    self.view = None;
                    self.loading_case = None;
                    self.source = Some(source);
                    self.selected = None;
                    self.filter = CaseFilter::default();
                    self.task_opened();
                    self.open_reviews();
                    self.apply(Command::SelectCase(0));
                }
                LoadEvent::Opened(Err(message)) => {
                    self.opening = None;
                    self.notice = Some(Notice::Error(message));
                }
                LoadEvent::CaseLoaded { ticket, result } => {
                    if self.loading_case.is_none_or(|(wanted, _)| wanted != ticket) {
                        continue; // an older request, overtaken by a newer one
                    }
                    self.loading_case = None;
                    match result {
                        Ok(case) => self.show_case(*case, ticket),
                        Err(message) => self.notice = Some(Notice::Error(message)),
                    }
                }
            }
        }
        if let Some(receiver) = &self.dialog {
            match receiver.try_recv() {
                Ok(answer) => {
                    self.dialog = None;
                    match answer {
                        Some(DialogAnswer::Open(request)) => self.apply(Command::Open(request)),
                        Some(DialogAnswer::ExportPng(path)) => self.apply(Command::ExportPng(path)),
                        Some(DialogAnswer::ExportCsv(path)) => {
                            self.apply(Command::Model(ModelCommand::ExportMetricsCsv(path)));
                        }
                        Some(DialogAnswer::Checkpoint(slot, path)) => {
                            self.apply(Command::Model(ModelCommand::UseCheckpoint(slot, Some(path))));
                        }
                        None => {}
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.dialog = None;
                    self.notice = Some(Notice::Error("the file dialog could not be shown".into()));
                }
            }
        }
    }

    /// Handles the worker's events: new predictions are shown, messages reach the status line.
    fn poll_jobs(&mut self) {
        let was_predicting = matches!(
            self.jobs.job,
            Some(crate::model::training::Job::Predicting { .. })
        );
        let source = self.source.clone();
        for outcome in self.jobs.poll(&self.ctx, source.as_deref()) {
            match outcome {
                Outcome::Predicted {
                    id,
                    path,
                    uncertainty,
                } => {
                    if let Some(source) = self.source.as_mut() {
                        let source = Arc::make_mut(source);
                        if let Some(entry) = source.cases.iter_mut().find(|c| c.id == id) {
                            entry.prediction = Some(path);
                            entry.uncertainty = uncertainty;
                        }
                    }
                    self.metrics.forget_all();
                }
                Outcome::Notice(Ok(message)) => self.notice = Some(Notice::Info(message)),
                Outcome::Notice(Err(message)) => self.notice = Some(Notice::Error(message)),
            }
        }
        let finished = was_predicting && self.jobs.job.is_none();
        // Show the new prediction of the case on screen, unless that would drop unsaved edits.
        if finished && let (Some(view), Some(index)) = (&self.view, self.selected) {
            if view.edit.is_dirty() {
                self.notice = Some(Notice::Info(
                    "predictions updated; save your edits and reopen the case to see its new prediction"
                        .into(),
                ));
            } else {
                self.select_case(index);
            }
        }
    }

    /// The key a case's window is remembered under, per channel.
    fn window_key(&self, id: &str, channel: usize) -> String {
        let title = self
            .source
            .as_ref()
            .map(|s| s.request.title())
            .unwrap_or_default();
        format!("{title} / {id} / {channel}")
    }

    /// The remembered window of the channel on screen, or its default: soft tissue for CT,
    /// the percentile window otherwise.
    fn window_of(&self, case: &LoadedCase) -> (Window, Option<WindowPreset>) {
        self.windows
            .get(&self.window_key(&case.id, case.channel))
            .copied()
            .unwrap_or_else(|| {
                let preset = if case.is_ct && case.channel == 0 {
                    WindowPreset::SoftTissue
                } else {
                    WindowPreset::Auto
                };
                (preset.window(case.auto_window), Some(preset))
            })
    }

    /// Shows another channel of the case's scan, each with its own window.
    fn show_channel(&mut self, channel: usize) {
        self.remember_window();
        let Some(mut view) = self.view.take() else { return };
        if view.case.show_channel(channel) {
            (view.window, view.preset) = self.window_of(&view.case);
        }
        self.view = Some(view);
    }

    fn show_case(&mut self, case: LoadedCase, ticket: u64) {
        self.remember_window();
        if !case.warnings.is_empty() {
            self.notice = Some(Notice::Error(case.warnings.join("; ")));
        }
        let (window, preset) = self.window_of(&case);
        self.views.reset_zoom();
        self.jobs.activations.clear();
        self.view = Some(CaseView {
            crosshair: case.focus,
            case,
            ticket,
            window,
            preset,
            edit: crate::annotation::session::EditSession::default(),
            ruler: None,
        });
        self.offer_autosave();
    }

    /// Stores the current case's window so it comes back when the case is shown again.
    fn remember_window(&mut self) {
        if let Some(view) = &self.view {
            let key = self.window_key(&view.case.id, view.case.channel);
            self.windows.insert(key, (view.window, view.preset));
        }
    }

    pub(crate) fn dialog(&mut self, request: DialogRequest) {
        if self.dialog.is_some() {
            return; // one dialog at a time
        }
        let waker = self.ctx.clone();
        self.dialog = Some(spawn_dialog(request, move || waker.request_repaint()));
    }

    /// Carries out one command.
    pub fn apply(&mut self, command: Command) {
        if self.intercept_unsaved(&command) {
            return;
        }
        match command {
            Command::Open(request) => match self.loader.send(LoadCommand::Open(request.clone())) {
                Ok(()) => self.opening = Some(request),
                Err(message) => self.notice = Some(Notice::Error(message)),
            },
            Command::PickTaskFolder => self.dialog(DialogRequest::TaskFolder {
                start: self.settings.last_opened.clone(),
            }),
            Command::PickDicomFolder => self.dialog(DialogRequest::DicomFolder {
                start: self.settings.last_opened.clone(),
            }),
            Command::PickScan => self.dialog(DialogRequest::Scan {
                start: self.settings.last_opened.clone(),
            }),
            Command::PickExportPath => {
                if let Some(file_name) = self.export_file_name() {
                    self.dialog(DialogRequest::ExportPng {
                        start: self.settings.export_folder.clone(),
                        file_name,
                    });
                }
            }
            Command::SelectCase(index) => self.select_case(index),
            Command::StepCase(steps) => {
                let (Some(source), Some(current)) = (self.source.clone(), self.selected) else {
                    return;
                };
                let sheet = self.sheet_mut().map(|s| s.clone()).unwrap_or_default();
                let visible = crate::review::case_list::visible_cases(&source, &sheet, &self.filter);
                let position = visible.iter().position(|i| *i == current).unwrap_or(0);
                if let Some(next) = visible.get(step_index(position, steps, visible.len())) {
                    self.select_case(*next);
                }
            }
            Command::CyclePreset => {
                let current = self.view.as_ref().and_then(|v| v.preset);
                if let Some(next) = self.settings.next_preset(current) {
                    self.apply(Command::View(ViewCommand::SetPreset(next)));
                }
            }
            Command::ToggleOverlays => self.settings.overlays.enabled = !self.settings.overlays.enabled,
            Command::NextChannel => {
                if let Some(view) = &self.view {
                    let count = view.case.channels.len().max(1);
                    self.show_channel((view.case.channel + 1) % count);
                }
            }
            Command::StepSlice(steps) => {
                if let Some(view) = &mut self.view {
                    let axis = self.views.maximised.unwrap_or(self.views.active).normal();
                    let count = view.case.image.shape()[axis];
                    view.crosshair[axis] = step_index(view.crosshair[axis], steps, count);
                }
            }
            Command::ShowAllViews => {
                self.views.maximised = None;
                self.views.view3d.maximised = false;
            }
            Command::ResetZoom => self.views.reset_zoom(),
            Command::Zoom(steps) => {
                let axis = self.views.maximised.unwrap_or(self.views.active);
                self.views.zoom_view(axis, steps);
            }
            Command::ExportPng(path) => self.export_png(path),
            Command::ToggleHelp => self.show_help = !self.show_help,
            Command::View(command) => self.apply_view(command),
            Command::Cases(command) => self.apply_cases(command),
            Command::Edit(command) => self.apply_edit(command),
            Command::Model(command) => self.apply_model(command),
            Command::ShowTab(tab) => self.tab = tab,
        }
    }

    fn select_case(&mut self, index: usize) {
        let Some(source) = self.source.clone() else { return };
        if index >= source.cases.len() {
            return;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        match self.loader.send(LoadCommand::LoadCase {
            source,
            index,
            ticket,
        }) {
            Ok(()) => {
                self.selected = Some(index);
                self.loading_case = Some((ticket, index));
            }
            Err(message) => self.notice = Some(Notice::Error(message)),
        }
    }

    /// Carries out a request of the views or the display controls.
    fn apply_view(&mut self, command: ViewCommand) {
        match command {
            ViewCommand::ToggleMaximise(axis) => {
                self.views.maximised = (self.views.maximised != Some(axis)).then_some(axis);
                self.views.view3d.maximised = false;
                self.views.active = axis;
            }
            ViewCommand::ToggleMaximise3d => {
                self.views.view3d.maximised = !self.views.view3d.maximised;
                self.views.maximised = None;
            }
            ViewCommand::SetOverlays(overlays) => {
                let task = self.source.as_ref().map(|s| s.request.title());
                self.settings.set_overlays(overlays, task.as_deref());
            }
            ViewCommand::SetChannel(channel) => self.show_channel(channel),
            ViewCommand::SetPreset(preset) => {
                if let Some(view) = &mut self.view {
                    view.window = preset.window(view.case.auto_window);
                    view.preset = Some(preset);
                }
            }
            ViewCommand::SetWindow(window) => {
                if let Some(view) = &mut self.view {
                    view.window = window;
                    view.preset = None;
                }
            }
            ViewCommand::SetCrosshair(voxel) => {
                if let Some(view) = &mut self.view {
                    let shape = view.case.image.shape();
                    view.crosshair = std::array::from_fn(|a| voxel[a].min(shape[a].saturating_sub(1)));
                }
            }
            ViewCommand::Paint { axis, voxel } => {
                if let Some(job) = &self.edit_job {
                    // The label is about to change as a whole: paint after it.
                    self.notice = Some(Notice::Info(format!("wait: {} is under way", job.what)));
                    return;
                }
                if let Some(view) = &mut self.view {
                    let crosshair = view.crosshair;
                    let painted =
                        view.edit
                            .paint_to(&mut view.case, &self.edit.brush, axis, voxel, crosshair);
                    if let Err(error) = painted {
                        self.notice = Some(Notice::Error(format!("not painted: {error}")));
                    }
                }
            }
            ViewCommand::Grow { axis, voxel } => self.start_grow(axis, voxel),
            ViewCommand::RulerPoint { axis, voxel } => {
                if let Some(view) = &mut self.view {
                    view.ruler = Some(Ruler::click(view.ruler, axis, voxel));
                }
            }
            ViewCommand::EndStroke => {
                if let Some(view) = &mut self.view {
                    view.edit.end_stroke();
                }
            }
        }
    }

    /// Carries out a request of the case list.
    fn apply_cases(&mut self, command: CaseListCommand) {
        match command {
            CaseListCommand::Select(index) => self.apply(Command::SelectCase(index)),
            CaseListCommand::SetState { case_id, state } => {
                if let Some(sheet) = self.sheet_mut() {
                    crate::review::sheet::set_state(sheet, &case_id, state);
                }
            }
            CaseListCommand::SetComment { case_id, comment } => {
                if let Some(sheet) = self.sheet_mut() {
                    sheet.review_mut(&case_id).comment = comment;
                }
            }
        }
    }
}
