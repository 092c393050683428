//! The case on screen and how it is being looked at: shared by the viewer, the annotation panel
//! and the metrics panel, written only by the shell.

use crate::annotation::session::EditSession;
use crate::io::loader::LoadedCase;
use crate::viewer::render::{Window, WindowPreset};
use crate::viewer::ruler::Ruler;

/// The case on screen and how it is being looked at.
pub struct CaseView {
    /// The volumes.
    pub case: LoadedCase,
    /// The load's ticket: part of every texture key, so a new case never shows old textures.
    pub ticket: u64,
    /// The voxel all three views go through.
    pub crosshair: [usize; 3],
    /// The display window.
    pub window: Window,
    /// The preset the window came from (`None` once adjusted by hand).
    pub preset: Option<WindowPreset>,
    /// Label edits and their undo history.
    pub edit: EditSession,
    /// The ruler's measurement, kept until cleared.
    pub ruler: Option<Ruler>,
}
