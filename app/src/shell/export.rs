//! PNG export of the active view.

use super::{Notice, Studio};
use crate::common::slice_geometry::{Axis, slice_size_mm};
use crate::viewer::export::{to_physical_aspect, write_png};
use crate::viewer::render::{SliceLayers, render_slice};
use std::path::PathBuf;

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

    pub(super) fn export_png(&mut self, path: PathBuf) {
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
            picture = crate::viewer::export::with_colour_bar(&picture, heat);
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
