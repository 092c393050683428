//! Native file dialogs (through the XDG desktop portal on Linux), run on their own thread so the
//! UI keeps drawing while one is open. The answer comes back over a channel and wakes the UI.

use crate::io::source::OpenRequest;
use std::path::PathBuf;
use std::sync::mpsc;

/// Which dialog to show.
#[derive(Debug, Clone)]
pub enum DialogRequest {
    /// Pick an MSD task folder.
    TaskFolder {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
    },
    /// Pick a folder of DICOM files (its series become the cases).
    DicomFolder {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
    },
    /// Pick a NIfTI scan, then (optionally) its label.
    Scan {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
    },
    /// Choose where to save a PNG.
    ExportPng {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
        /// Suggested file name.
        file_name: String,
    },
    /// Choose where to save the metrics CSV.
    ExportCsv {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
        /// Suggested file name.
        file_name: String,
    },
    /// Pick a checkpoint folder for model slot `slot`.
    Checkpoint {
        /// Folder the dialog starts in.
        start: Option<PathBuf>,
        /// 0: the current model (and activations model A); 1: activations model B.
        slot: usize,
    },
}

/// What the user chose (nothing when they cancelled).
#[derive(Debug, Clone, PartialEq)]
pub enum DialogAnswer {
    /// Open this.
    Open(OpenRequest),
    /// Save the PNG here.
    ExportPng(PathBuf),
    /// Save the metrics CSV here.
    ExportCsv(PathBuf),
    /// Use this checkpoint folder in a model slot.
    Checkpoint(usize, PathBuf),
}

const NIFTI_EXTENSIONS: [&str; 2] = ["nii", "gz"];

/// Shows the dialog on a `file-dialog` thread; `wake` is called when it closes.
pub fn spawn_dialog(
    request: DialogRequest,
    wake: impl Fn() + Send + 'static,
) -> mpsc::Receiver<Option<DialogAnswer>> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("file-dialog".into())
        .spawn(move || {
            let _ = sender.send(show(request));
            wake();
        });
    // When the thread cannot start, the sender is dropped with it and the receiver reports
    // "disconnected", which the UI shows as an error: nothing to do here.
    drop(spawned);
    receiver
}

fn starting_folder(start: Option<PathBuf>) -> Option<PathBuf> {
    let start = start?;
    if start.is_dir() {
        Some(start)
    } else {
        start.parent().map(PathBuf::from)
    }
}

fn show(request: DialogRequest) -> Option<DialogAnswer> {
    let dialog = |start: Option<PathBuf>| {
        let dialog = rfd::FileDialog::new();
        match starting_folder(start) {
            Some(folder) => dialog.set_directory(folder),
            None => dialog,
        }
    };
    match request {
        DialogRequest::TaskFolder { start } => {
            let folder = dialog(start).set_title("Open MSD task folder").pick_folder()?;
            Some(DialogAnswer::Open(OpenRequest {
                path: Some(folder),
                ..OpenRequest::default()
            }))
        }
        DialogRequest::DicomFolder { start } => {
            let folder = dialog(start)
                .set_title("Open a folder of DICOM files")
                .pick_folder()?;
            Some(DialogAnswer::Open(OpenRequest {
                path: Some(folder),
                ..OpenRequest::default()
            }))
        }
        DialogRequest::Scan { start } => {
            let scan = dialog(start.clone())
                .set_title("Open NIfTI scan")
                .add_filter("NIfTI", &NIFTI_EXTENSIONS)
                .pick_file()?;
            let label = dialog(Some(scan.clone()))
                .set_title("Optional: its label file (cancel for none)")
                .add_filter("NIfTI", &NIFTI_EXTENSIONS)
                .pick_file();
            Some(DialogAnswer::Open(OpenRequest {
                path: Some(scan),
                label,
                prediction: None,
            }))
        }
        DialogRequest::ExportPng { start, file_name } => {
            let path = dialog(start)
                .set_title("Export view as PNG")
                .set_file_name(file_name)
                .add_filter("PNG", &["png"])
                .save_file()?;
            Some(DialogAnswer::ExportPng(path))
        }
        DialogRequest::ExportCsv { start, file_name } => {
            let path = dialog(start)
                .set_title("Export metrics as CSV")
                .set_file_name(file_name)
                .add_filter("CSV", &["csv"])
                .save_file()?;
            Some(DialogAnswer::ExportCsv(path))
        }
        DialogRequest::Checkpoint { start, slot } => {
            let folder = dialog(start)
                .set_title("Choose a checkpoint folder (a run's best/)")
                .pick_folder()?;
            Some(DialogAnswer::Checkpoint(slot, folder))
        }
    }
}
