//! What the features share and nothing else: slice geometry, the label type and the clock. Imports only the
//! engine, so every other folder may depend on it.

pub mod clock;
pub mod label;
pub mod slice_geometry;
