//! UI tests of the whole app, driven through egui_kittest. They sit inside `shell` so they can
//! read the app's private state to check what a click changed.

mod annotation_ui_tests;
mod fault_ui_tests;
mod model_ui_tests;
pub(crate) mod support;
mod ui_tests;
mod view3d_ui_tests;
