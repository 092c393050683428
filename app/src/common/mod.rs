//! What the features share and nothing else: slice geometry and the clock. Imports only the
//! engine, so every other folder may depend on it.

pub mod clock;
pub mod slice_geometry;
