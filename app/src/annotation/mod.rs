//! Annotation: the mm brush and eraser ([`brush`]), fill between slices ([`interpolate`]),
//! [`undo`], the edit session of the case on screen ([`session`]), and the Edit tab ([`panel`]).

pub mod brush;
pub mod interpolate;
pub mod panel;
pub mod session;
pub mod undo;
