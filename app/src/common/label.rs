//! The label type the app edits and shows: integer voxels (one byte, or two for tasks with more
//! than 255 labels) in chunked copy-on-write storage (`engine::edit::EditLabel`), so a snapshot
//! for the metrics or the writer thread is a copy of chunk pointers and a stroke copies only the
//! chunks it touches.

use engine::edit::{EditError, EditLabel};
use engine::volume::{Geometry, Volume};

/// A label number as the editors, the undo history and the renderer handle it: up to 65 535,
/// for tasks with more than 255 labels.
pub type LabelVoxel = u16;

/// A label volume on the image's grid: one byte per voxel while every label number fits, two
/// beyond ([`EditLabel`]).
pub type Label = EditLabel;

/// The label of a volume read from a file (channel 0).
///
/// # Errors
/// A label number above 65 535, or a wrong voxel count.
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
