//! The model side: training and prediction jobs on the worker ([`training`], with what the
//! Training tab shows in [`run_state`] and the task's runs in [`runs`]), activation maps
//! ([`activations`]), metrics and the Metrics tab ([`metrics_panel`]), presets, the Training tab
//! ([`panels`]) and the Activations tab ([`activations_panel`]).

pub mod activations;
pub mod activations_panel;
pub mod metrics_panel;
pub mod panels;
pub mod presets;
pub mod run_state;
pub mod runs;
pub mod training;
