//! MedVisionLlama Studio engine: everything numerical behind the app and the `mvl` CLI.
//!
//! Data flows one way: files → [`volume`] → [`data`] → model / training / inference. The engine
//! never depends on a GUI toolkit; the app drives it through the same public API the CLI uses.

pub mod allocator;
pub mod atomic;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod device;
pub mod edit;
pub mod error;
pub mod fault;
pub mod infer;
pub mod kernel_cache;
pub mod memory;
pub mod mesh;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod train;
pub mod volume;
pub mod weights;
pub mod worker;

pub use error::{Error, Result};
