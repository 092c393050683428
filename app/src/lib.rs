//! MedVisionLlama Studio, the review viewer: a task's cases with their review state, three linked
//! planes with window/level, and ground-truth / prediction / difference overlays.
//!
//! Annotation: [`brush`] (mm brush and eraser), [`interpolate`] (fill between slices), [`undo`],
//! [`annotation`] (the edit session), [`editing`] (commands, saving, autosave, questions),
//! [`label_io`] (saving in the scan's own geometry) and [`sidecar`] (`reviews.json`).
//!
//! Rendering ([`slice_view`], [`render`], [`export`]) is pure and tested against hand-computed
//! pixels; the UI modules draw from [`studio::Studio`]'s state and send [`studio::Command`]s.

pub mod activations;
pub mod annotation;
pub mod annotation_ui;
pub mod brush;
pub mod case_list;
pub mod controls;
pub mod dialogs;
pub mod editing;
pub mod export;
mod frame;
pub mod interpolate;
pub mod label_io;
pub mod loader;
pub mod metrics_panel;
pub mod model_ui;
pub mod overlays;
pub mod plane;
pub mod presets;
pub mod render;
pub mod review;
pub mod settings;
pub mod shortcuts;
pub mod sidecar;
pub mod slice_view;
pub mod source;
pub mod studio;
pub mod training;
pub mod undo;
pub mod views;

#[cfg(test)]
mod annotation_ui_tests;
#[cfg(test)]
mod model_ui_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod ui_tests;

pub use studio::Studio;
