//! The label type the app edits and shows: integer voxels in chunked copy-on-write storage
//! (`engine::edit::ChunkedLabel`), so a snapshot for the metrics or the writer thread is a copy
//! of chunk pointers and a stroke copies only the chunks it touches.

use engine::edit::{ChunkedLabel, EditError};
use engine::volume::{Geometry, Volume};

/// A label voxel. `u8`: tasks with more than 255 labels are refused with a message when their
/// label is read (`u16` would double the memory of every label for a rare case; the engine's
/// edit code already takes it, so widening is this one line plus the renderer's colour table).
pub type LabelVoxel = u8;

/// A label volume on the image's grid.
pub type Label = ChunkedLabel<LabelVoxel>;

/// The label of a volume read from a file (channel 0).
///
/// # Errors
/// A label number above what [`LabelVoxel`] holds, or a wrong voxel count.
pub fn label_from_volume(volume: &Volume) -> Result<Label, EditError> {
    Label::from_values(volume.shape(), volume.channel(0))
}

/// The label as a one-channel `f32` volume on `geometry` (for the metrics), or `None` when
/// the shapes differ. Whole-volume work: call it off the UI thread.
pub fn label_to_volume(label: &Label, geometry: &Geometry) -> Option<Volume> {
    if label.shape() != geometry.shape {
        return None;
    }
    Volume::new(geometry.shape, 1, label.to_f32(), geometry.world_from_voxel).ok()
}
