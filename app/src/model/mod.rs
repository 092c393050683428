//! The model side: training and prediction jobs on the worker ([`training`]), activation maps
//! ([`activations`]), metrics ([`metrics_panel`]), presets, and the Training, Activations and
//! Metrics tabs ([`panels`]).

pub mod activations;
pub mod activations_panel;
pub mod metrics_panel;
pub mod panels;
pub mod presets;
pub mod run_state;
pub mod runs;
pub mod training;
