//! The eframe app: [`Studio`] owns every piece of runtime state (its fields are private) and the
//! remembered [`Settings`]. Panels draw from borrowed state and return commands; `apply` is
//! where they are carried out, after drawing.

mod apply;
mod command;
pub mod dialogs;
mod edit;
mod edit_jobs;
mod export;
mod frame;
pub mod icon;
mod model;
pub mod renderer;
pub mod settings;
pub mod shortcuts;
#[cfg(test)]
mod tests;

pub use command::{Command, Notice, Tab};
pub use edit::{After, Confirm};

use crate::io::loader::Loader;
use crate::io::source::{OpenRequest, Source};
use crate::review::sheet::{CaseFilter, ReviewSheet};
use crate::shell::dialogs::DialogAnswer;
use crate::viewer::case_view::CaseView;
use crate::viewer::render::{Window, WindowPreset};
use crate::viewer::views::ViewsState;
use eframe::egui;
use settings::Settings;
use std::collections::HashMap;
use std::sync::{Arc, mpsc};

/// The app.
pub struct Studio {
    /// Remembered between runs.
    settings: Settings,
    loader: Loader,
    ctx: egui::Context,
    /// The open task or scan.
    source: Option<Arc<Source>>,
    /// The request being opened, while the loader works on it.
    opening: Option<OpenRequest>,
    /// The case selected in the list.
    selected: Option<usize>,
    /// `(ticket, index)` of the case being loaded.
    loading_case: Option<(u64, usize)>,
    next_ticket: u64,
    /// The case on screen.
    view: Option<CaseView>,
    /// Review sheets by source title, kept while the app runs.
    reviews: HashMap<String, ReviewSheet>,
    /// The case list's filter.
    filter: CaseFilter,
    /// Window and preset remembered per case (`source title / case id`).
    windows: HashMap<String, (Window, Option<WindowPreset>)>,
    /// The three views.
    views: ViewsState,
    /// The latest message for the status line.
    notice: Option<Notice>,
    /// Whether the shortcut help is open.
    show_help: bool,
    dialog: Option<mpsc::Receiver<Option<DialogAnswer>>>,
    /// Brush settings, label writes, open questions and the review sidecar.
    edit: crate::shell::edit::EditState,
    /// The side panel's tab.
    tab: Tab,
    /// Metrics of the case on screen and of every case.
    metrics: crate::model::metrics_panel::MetricsPanel,
    /// The worker: training, prediction, activation capture.
    jobs: crate::model::training::ModelJobs,
    /// The whole-label edit under way (fill, start from prediction, restore autosave).
    edit_job: Option<edit_jobs::EditJob>,
    /// The PNG export under way: its view and the thread's answer.
    exporting: Option<(
        crate::common::slice_geometry::Axis,
        mpsc::Receiver<Result<std::path::PathBuf, String>>,
    )>,
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
            edit: crate::shell::edit::EditState::default(),
            tab: Tab::default(),
            metrics: Default::default(),
            jobs: Default::default(),
            edit_job: None,
            exporting: None,
        };
        studio.apply(Command::Open(request));
        studio
    }

    /// Draws the 3D view's surfaces with `render_state`'s GPU (eframe's wgpu renderer), or on the
    /// CPU without one; `note` says which and why.
    pub fn use_surface_renderer(
        &mut self,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
        note: String,
    ) {
        self.views.view3d.set_renderer(render_state, note);
    }

    /// Whether a task, case or dialog is still on its way.
    pub fn is_busy(&self) -> bool {
        self.opening.is_some()
            || self.loading_case.is_some()
            || self.dialog.is_some()
            || self.edit.is_writing()
            || self.metrics.is_busy()
            || self.exporting.is_some()
            || self.edit_job.is_some()
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
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.save(storage);
    }
}
