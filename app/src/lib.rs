//! MedVisionLlama Studio, the review viewer: a task's cases with their review state, three linked
//! planes with window/level, ground-truth / prediction / difference overlays, annotation, and the
//! training, activation and metrics panels.
//!
//! Folders by concern, dependencies pointing one way (`shell` → features → `common` → `engine`):
//! - [`common`]: what every feature shares (slice geometry, the clock).
//! - [`io`]: sources, the loader thread, label files and the review sidecar.
//! - [`viewer`]: the case on screen, the three planes, slice rendering, overlays, PNG export.
//! - [`annotation`]: brush, undo, fill between slices, the edit session and the Edit tab.
//! - [`review`]: review sheets and the case list.
//! - [`model`]: training, prediction, activations and metrics, with their tabs.
//! - [`shell`]: the eframe app ([`Studio`]): the one place where commands become state changes.
//!
//! Panels draw from borrowed state and return their own command enums; feature modules never
//! import [`shell`].

pub mod annotation;
pub mod common;
pub mod io;
pub mod model;
pub mod review;
pub mod shell;
pub mod viewer;

pub use shell::Studio;
