//! What the user can ask for from the menus, keys and panels ([`Command`]), the side panel's tabs
//! and the status line's message. Each feature's own command enum is wrapped here; only the shell
//! turns them into state changes.

use crate::annotation::panel::EditCommand;
use crate::io::source::OpenRequest;
use crate::model::panels::ModelCommand;
use crate::review::case_list::CaseListCommand;
use crate::viewer::command::ViewCommand;
use std::path::PathBuf;

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
    /// The next preset in the settings' cycle.
    CyclePreset,
    /// All overlays on or off.
    ToggleOverlays,
    /// Show the next channel of a multi-channel scan (after the last: the first).
    NextChannel,
    /// Scroll the active view by this many slices.
    StepSlice(i64),
    /// Show all three views.
    ShowAllViews,
    /// Fit every view again.
    ResetZoom,
    /// Zoom the active view in (positive) or out by this many steps.
    Zoom(i32),
    /// Write the active view to this PNG file.
    ExportPng(PathBuf),
    /// Show or hide the shortcut help.
    ToggleHelp,
    /// A request from the views or the display controls.
    View(ViewCommand),
    /// A request from the case list.
    Cases(CaseListCommand),
    /// An annotation command.
    Edit(EditCommand),
    /// A training, prediction, activation or metrics command.
    Model(ModelCommand),
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

/// A message for the status line.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Something went wrong; says what to do.
    Error(String),
    /// Something worked (e.g. where a PNG went).
    Info(String),
}
