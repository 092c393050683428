//! The case on screen: the three linked planes ([`views`], [`plane`]), slice rendering
//! ([`render`], pure and tested against hand-computed pixels), overlays, the display controls, the
//! ruler and PNG export.

pub mod case_view;
pub mod command;
pub mod controls;
pub mod export;
pub mod overlays;
pub mod plane;
pub mod render;
pub mod ruler;
pub mod slice_pixels;
pub mod surface_gpu;
pub mod surface_render;
pub mod view3d;
pub mod view_info;
pub mod views;
