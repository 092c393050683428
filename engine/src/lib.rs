//! MedVisionLlama Studio engine: everything numerical behind the app and the `mvl` CLI.
//!
//! Data flows one way: files → [`volume`] → [`data`] → model / training / inference. The engine
//! never depends on a GUI toolkit; the app drives it through the same public API the CLI uses.

pub mod cli;
pub mod data;
pub mod error;
pub mod metrics;
pub mod rng;
pub mod volume;

pub use error::{Error, Result};
