//! The application: runtime state, the commands the UI sends, and how they are applied. The
//! panels draw from the state and push [`Command`]s; the frame applies them at its end.

use crate::dialogs::{DialogAnswer, DialogRequest, spawn_dialog};
use crate::export::{to_physical_aspect, write_png};
use crate::loader::{LoadCommand, LoadEvent, LoadedCase, Loader};
use crate::model_ui::ModelCommand;
use crate::plane::step_index;
use crate::render::{SliceLayers, Window, WindowPreset, render_slice};
use crate::review::{CaseFilter, ReviewSheet};
use crate::settings::Settings;
use crate::slice_view::{Axis, slice_size_mm};
use crate::source::{OpenRequest, Source};
use crate::training::Outcome;
use crate::views::ViewsState;
use eframe::egui;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

/// Something the user asked for; applied once per frame, after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open a task, scan or the demo task.
    Open(OpenRequest),
    /// Show the folder dialog, then open the folder.
    PickTaskFolder,
    /// Show the file dialog for a scan (and its label), then open it.
    PickScan,
    /// Show the folder dialog for DICOM files, then open their series.
    PickDicomFolder,
    /// Show the save dialog, then export the active view.
    PickExportPath,
    /// Load case `index` of the open source.
    SelectCase(usize),
    /// Move by this many cases through the filtered list.
    StepCase(i64),
    /// Apply a window preset to the current case.
    SetPreset(WindowPreset),
    /// The next preset in the settings' cycle.
    CyclePreset,
    /// All overlays on or off.
    ToggleOverlays,
    /// Scroll the active view by this many slices.
    StepSlice(i64),
    /// Show one view alone, or all three when it already is.
    ToggleMaximise(Axis),
    /// Show all three views.
    ShowAllViews,
    /// Fit every view again.
    ResetZoom,
    /// Write the active view to this PNG file.
    ExportPng(PathBuf),
    /// Show or hide the shortcut help.
    ToggleHelp,
    /// An annotation command.
    Edit(crate::editing::EditCommand),
    /// A training, prediction, activation or metrics command.
    Model(crate::model_ui::ModelCommand),
    /// Show this tab of the side panel.
    ShowTab(Tab),
}

/// The tabs of the side panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    /// Window, overlays, legend.
    #[default]
    Display,
    /// Brush, eraser, fill between slices, save.
    Edit,
    /// Per-case and all-case metrics.
    Metrics,
    /// Activation maps.
    Activations,
    /// Training, prediction, the current model.
    Training,
}

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 5] = [
        Tab::Display,
        Tab::Edit,
        Tab::Metrics,
        Tab::Activations,
        Tab::Training,
    ];

    /// The tab's title.
    pub fn name(self) -> &'static str {
        match self {
            Tab::Display => "Display",
            Tab::Edit => "Edit",
            Tab::Metrics => "Metrics",
            Tab::Activations => "Activations",
            Tab::Training => "Training",
        }
    }
}

/// The case on screen and how it is being looked at.
pub struct CaseView {
    /// The volumes.
    pub case: LoadedCase,
    /// The load's ticket: part of every texture key, so a new case never shows old textures.
    pub ticket: u64,
    /// The voxel all three views go through.
    pub crosshair: [usize; 3],
    /// The display window.
    pub window: Window,
    /// The preset the window came from (`None` once adjusted by hand).
    pub preset: Option<WindowPreset>,
    /// Label edits and their undo history.
    pub edit: crate::annotation::EditSession,
}

/// A message for the status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Something went wrong; says what to do.
    Error(String),
    /// Something worked (e.g. where a PNG went).
    Info(String),
}

/// The app.
pub struct Studio {
    /// Remembered between runs.
    pub settings: Settings,
    loader: Loader,
    pub(crate) ctx: egui::Context,
    /// The open task or scan.
    pub source: Option<Arc<Source>>,
    /// The request being opened, while the loader works on it.
    pub opening: Option<OpenRequest>,
    /// The case selected in the list.
    pub selected: Option<usize>,
    /// `(ticket, index)` of the case being loaded.
    pub loading_case: Option<(u64, usize)>,
    next_ticket: u64,
    /// The case on screen.
    pub view: Option<CaseView>,
    /// Review sheets by source title, kept while the app runs.
    pub reviews: HashMap<String, ReviewSheet>,
    /// The case list's filter.
    pub filter: CaseFilter,
    /// Window and preset remembered per case (`source title / case id`).
    pub windows: HashMap<String, (Window, Option<WindowPreset>)>,
    /// The three views.
    pub views: ViewsState,
    /// The latest message for the status line.
    pub notice: Option<Notice>,
    /// Whether the shortcut help is open.
    pub show_help: bool,
    dialog: Option<mpsc::Receiver<Option<DialogAnswer>>>,
    /// Brush settings, label writes, open questions and the review sidecar.
    pub edit: crate::editing::EditState,
    /// The side panel's tab.
    pub tab: Tab,
    /// Metrics of the case on screen and of every case.
    pub metrics: crate::metrics_panel::MetricsPanel,
    /// The worker: training, prediction, activation capture.
    pub jobs: crate::training::ModelJobs,
}

impl Studio {
    /// Starts the loader and opens `request` (the demo task when it names no path).
    pub fn new(ctx: &egui::Context, storage: Option<&dyn eframe::Storage>, request: OpenRequest) -> Self {
        let waker = ctx.clone();
        let mut studio = Self {
            settings: Settings::load(storage),
            loader: Loader::spawn(move || waker.request_repaint()),
            ctx: ctx.clone(),
            source: None,
            opening: None,
            selected: None,
            loading_case: None,
            next_ticket: 0,
            view: None,
            reviews: HashMap::new(),
            filter: CaseFilter::default(),
            windows: HashMap::new(),
            views: ViewsState::default(),
            notice: None,
            show_help: false,
            dialog: None,
            edit: crate::editing::EditState::default(),
            tab: Tab::default(),
            metrics: Default::default(),
            jobs: Default::default(),
        };
        studio.apply(Command::Open(request));
        studio
    }

    /// Whether a task, case or dialog is still on its way.
    pub fn is_busy(&self) -> bool {
        self.opening.is_some()
            || self.loading_case.is_some()
            || self.dialog.is_some()
            || self.edit.is_writing()
            || self.metrics.is_busy()
    }

    /// The review sheet of the open source.
    pub fn sheet_mut(&mut self) -> Option<&mut ReviewSheet> {
        let source = self.source.as_ref()?;
        Some(
            self.reviews
                .entry(source.request.title())
                .or_insert_with(|| ReviewSheet::new(source.name.clone())),
        )
    }

    /// Handles what the loader thread and the dialog thread sent.
    pub fn poll(&mut self) {
        self.poll_jobs();
        let waker = self.ctx.clone();
        self.metrics
            .update(self.view.as_ref(), move || waker.request_repaint());
        while let Some(event) = self.loader.try_event() {
            match event {
                LoadEvent::Opened(Ok(source)) => {
                    self.opening = None;
                    self.settings.remember_opened(&source.request);
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
        let was_predicting = matches!(self.jobs.job, Some(crate::training::Job::Predicting { .. }));
        let source = self.source.clone();
        for outcome in self.jobs.poll(&self.ctx, source.as_deref()) {
            match outcome {
                Outcome::Predicted { id, path } => {
                    if let Some(source) = self.source.as_mut() {
                        let source = Arc::make_mut(source);
                        if let Some(entry) = source.cases.iter_mut().find(|c| c.id == id) {
                            entry.prediction = Some(path);
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

    fn window_key(&self, id: &str) -> String {
        let title = self
            .source
            .as_ref()
            .map(|s| s.request.title())
            .unwrap_or_default();
        format!("{title} / {id}")
    }

    fn show_case(&mut self, case: LoadedCase, ticket: u64) {
        self.remember_window();
        if !case.warnings.is_empty() {
            self.notice = Some(Notice::Error(case.warnings.join("; ")));
        }
        let (window, preset) = self
            .windows
            .get(&self.window_key(&case.id))
            .copied()
            .unwrap_or_else(|| {
                let preset = if case.is_ct {
                    WindowPreset::SoftTissue
                } else {
                    WindowPreset::Auto
                };
                (preset.window(case.auto_window), Some(preset))
            });
        self.views.reset_zoom();
        self.jobs.activations.clear();
        self.view = Some(CaseView {
            crosshair: case.focus,
            case,
            ticket,
            window,
            preset,
            edit: crate::annotation::EditSession::default(),
        });
        self.offer_autosave();
    }

    /// Stores the current case's window so it comes back when the case is shown again.
    fn remember_window(&mut self) {
        if let Some(view) = &self.view {
            let key = self.window_key(&view.case.id);
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
                let visible = crate::case_list::visible_cases(&source, &sheet, &self.filter);
                let position = visible.iter().position(|i| *i == current).unwrap_or(0);
                if let Some(next) = visible.get(step_index(position, steps, visible.len())) {
                    self.select_case(*next);
                }
            }
            Command::SetPreset(preset) => {
                if let Some(view) = &mut self.view {
                    view.window = preset.window(view.case.auto_window);
                    view.preset = Some(preset);
                }
            }
            Command::CyclePreset => {
                let current = self.view.as_ref().and_then(|v| v.preset);
                if let Some(next) = self.settings.next_preset(current) {
                    self.apply(Command::SetPreset(next));
                }
            }
            Command::ToggleOverlays => self.settings.overlays.enabled = !self.settings.overlays.enabled,
            Command::StepSlice(steps) => {
                if let Some(view) = &mut self.view {
                    let axis = self.views.maximised.unwrap_or(self.views.active).normal();
                    let count = view.case.image.shape()[axis];
                    view.crosshair[axis] = step_index(view.crosshair[axis], steps, count);
                }
            }
            Command::ToggleMaximise(axis) => {
                self.views.maximised = (self.views.maximised != Some(axis)).then_some(axis);
                self.views.active = axis;
            }
            Command::ShowAllViews => self.views.maximised = None,
            Command::ResetZoom => self.views.reset_zoom(),
            Command::ExportPng(path) => self.export_png(path),
            Command::ToggleHelp => self.show_help = !self.show_help,
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

    /// The view PNG export takes: the maximised one, else the last one used.
    pub fn export_axis(&self) -> Axis {
        self.views.maximised.unwrap_or(self.views.active)
    }

    fn export_file_name(&self) -> Option<String> {
        let view = self.view.as_ref()?;
        let axis = self.export_axis();
        let slice = view.crosshair[axis.normal()];
        Some(format!(
            "{}_{}_{slice:03}.png",
            view.case.id,
            axis.name().to_lowercase()
        ))
    }

    fn export_png(&mut self, path: PathBuf) {
        let heat = self
            .view
            .as_ref()
            .and_then(|v| self.jobs.activations.heat(0, v.case.image.shape()));
        let Some(view) = &self.view else {
            self.notice = Some(Notice::Error("nothing to export: no case is open".into()));
            return;
        };
        let axis = self.export_axis();
        let layers = SliceLayers {
            image: &view.case.image,
            ground_truth: view.case.ground_truth.as_deref(),
            prediction: view.case.prediction.as_deref(),
            heat: heat.as_ref(),
        };
        let slice = render_slice(
            layers,
            axis,
            view.crosshair[axis.normal()],
            view.window,
            &self.settings.overlays,
        );
        let size_mm = slice_size_mm(view.case.image.shape(), view.case.image.spacing_mm(), axis);
        let mut picture = to_physical_aspect(&slice, size_mm);
        if let Some(heat) = &heat {
            picture = crate::export::with_colour_bar(&picture, heat);
        }
        self.notice = Some(match write_png(&path, &picture) {
            Ok(()) => {
                self.settings.export_folder = path.parent().map(PathBuf::from);
                Notice::Info(format!("{} view exported to {}", axis.name(), path.display()))
            }
            Err(message) => Notice::Error(message),
        });
    }
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.save(storage);
    }
}
