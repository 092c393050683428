//! Annotation: the brush and eraser settings ([`brush`]), the edit session of the case on screen
//! ([`session`]: strokes, undo, fill between slices, on `engine::edit`'s numerics) and the Edit
//! tab ([`panel`]).

pub mod brush;
pub mod panel;
pub mod pending;
pub mod session;

pub use crate::common::label::LabelVoxel;
