//! What the viewer's panels ask for: the views and the display controls return these, and the
//! shell carries them out after drawing, so drawing never writes the case's state.

use crate::common::slice_geometry::Axis;
use crate::viewer::render::{OverlaySettings, Window, WindowPreset};

/// A request from the three views or the display controls.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewCommand {
    /// Show one view alone, or all three when it already is.
    ToggleMaximise(Axis),
    /// Show the 3D view alone, or all four views when it already is.
    ToggleMaximise3d,
    /// Show this channel of a multi-channel scan (with its own window).
    SetChannel(usize),
    /// Apply a window preset to the current case.
    SetPreset(WindowPreset),
    /// A window set by hand (drag values or right-drag); forgets the preset.
    SetWindow(Window),
    /// Move the crosshair to this voxel.
    SetCrosshair([usize; 3]),
    /// New overlay settings (switches, opacity, colours).
    SetOverlays(OverlaySettings),
    /// Paint with the current brush at `voxel` of the view across `axis` (continues the stroke).
    Paint {
        /// The view painted in.
        axis: Axis,
        /// The voxel under the pointer.
        voxel: [usize; 3],
    },
    /// Grow the brush's label from the seed `voxel` clicked in the view across `axis`.
    Grow {
        /// The view clicked in (the slice of a 2-D grow).
        axis: Axis,
        /// The seed.
        voxel: [usize; 3],
    },
    /// A ruler point clicked at `voxel` in the view across `axis`.
    RulerPoint {
        /// The view clicked in.
        axis: Axis,
        /// The point.
        voxel: [usize; 3],
    },
    /// The primary button is up: the stroke under way (if any) is one undo step now.
    EndStroke,
}
