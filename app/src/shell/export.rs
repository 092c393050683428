//! PNG export of the active view.

use super::{Notice, Studio};
use crate::common::slice_geometry::Axis;
use crate::viewer::export::{ExportJob, spawn_export};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

impl Studio {
    /// The view PNG export takes: the maximised one, else the last one used.
    pub fn export_axis(&self) -> Axis {
        self.views.maximised.unwrap_or(self.views.active)
    }

    pub(super) fn export_file_name(&self) -> Option<String> {
        let view = self.view.as_ref()?;
        let axis = self.export_axis();
        let slice = view.crosshair[axis.normal()];
        Some(format!(
            "{}_{}_{slice:03}.png",
            view.case.id,
            axis.name().to_lowercase()
        ))
    }

    /// Starts writing the active view to `path` on the export thread.
    pub(super) fn export_png(&mut self, path: PathBuf) {
        if self.exporting.is_some() {
            self.notice = Some(Notice::Error("an export is under way; wait for it".into()));
            return;
        }
        let heat = self
            .view
            .as_ref()
            .and_then(|v| self.jobs.activations.heat(0, v.case.image.shape()));
        let Some(view) = &self.view else {
            self.notice = Some(Notice::Error("nothing to export: no case is open".into()));
            return;
        };
        let axis = self.export_axis();
        let job = ExportJob {
            image: Arc::clone(&view.case.image),
            ground_truth: view.case.ground_truth.clone(),
            prediction: view.case.prediction.clone(),
            heat,
            axis,
            slice: view.crosshair[axis.normal()],
            window: view.window,
            overlays: self.settings.overlays.clone(),
            path,
        };
        let waker = self.ctx.clone();
        self.exporting = Some((axis, spawn_export(job, move || waker.request_repaint())));
    }

    /// Takes the export thread's answer, once it has come.
    pub(super) fn poll_export(&mut self) {
        let Some((axis, receiver)) = &self.exporting else {
            return;
        };
        let axis = *axis;
        let answer = match receiver.try_recv() {
            Ok(answer) => answer,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => Err("the export thread stopped".into()),
        };
        self.exporting = None;
        self.notice = Some(match answer {
            Ok(path) => {
                self.settings.export_folder = path.parent().map(PathBuf::from);
                Notice::Info(format!("{} view exported to {}", axis.name(), path.display()))
            }
            Err(message) => Notice::Error(message),
        });
    }
}
