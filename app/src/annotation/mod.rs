//! Annotation: the brush and eraser settings ([`brush`]), the edit session of the case on screen
//! ([`session`]: strokes, undo, fill between slices, on `engine::edit`'s numerics) and the Edit
//! tab ([`panel`]).

pub mod brush;
pub mod panel;
pub mod pending;
pub mod session;

/// The label's voxel type while labels are kept as `engine::volume::Volume`s (the engine's edit
/// code also takes `u8` and `u16`).
pub type LabelVoxel = f32;
