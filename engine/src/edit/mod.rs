//! Label editing, shared by the app and any tool that edits labels: the mm brush with its bound on
//! voxel count ([`brush`]), the rules deciding which voxels paint may change, sparse undo diffs
//! ([`undo`]) and shape-based interpolation between the slices a label was drawn on
//! ([`interpolate`], built on the metrics' exact distance transform), island removal
//! ([`islands`]) and seeded region growing ([`grow`]).
//!
//! Everything works on any [`LabelVoxels`] storage (a flat slice, x fastest, or the chunked
//! copy-on-write [`ChunkedLabel`] the app edits) of any [`LabelValue`]: `u8` for tasks with up
//! to 255 labels, `u16` beyond ([`label_type_for`] says which), and `f32` for labels read as a
//! [`Volume`].
//!
//! [`Volume`]: crate::volume::Volume

pub mod brush;
pub mod chunked;
pub mod edit_label;
pub mod grow;
pub mod interpolate;
pub mod islands;
pub mod label;
pub mod undo;

pub use brush::{
    BrushShape, Canvas, MAX_BRUSH_VOXELS, PaintOver, PaintRule, brush_offsets, brush_voxel_estimate,
};
pub use chunked::{CHUNK_SLICES, ChunkedLabel, label_type_for};
pub use edit_label::EditLabel;
pub use grow::{GrowError, GrowExtent, GrowRequest, grow_region};
pub use interpolate::{fill_between_slices, signed_distance_2d};
pub use islands::{IslandRule, island_removals, islands};
pub use label::{LabelValue, LabelVoxels};
pub use undo::{Change, EditStep, StepRecorder, UndoStack, VoxelBox, change_bytes};

/// What label editing refuses, each with what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    /// The brush would cover more voxels than [`MAX_BRUSH_VOXELS`].
    #[error(
        "a {radius_mm} mm {shape} covers about {voxels} voxels at this spacing, more than the \
         brush's limit of {MAX_BRUSH_VOXELS}; use at most {largest_radius_mm:.1} mm here{hint}"
    )]
    BrushTooLarge {
        /// The radius asked for.
        radius_mm: f64,
        /// "disc" or "ball".
        shape: &'static str,
        /// Voxels it would cover (estimated from its volume).
        voxels: u64,
        /// The largest radius within the limit at this spacing.
        largest_radius_mm: f64,
        /// ", or the 2-D disc" for a ball, else empty.
        hint: &'static str,
    },
    /// The label and the image do not have the voxel count of `shape`.
    #[error("the label has {label} voxels and the image {image}, but the grid {shape:?} has {expected}")]
    ShapeMismatch {
        /// Voxels in the label.
        label: usize,
        /// Voxels in the image.
        image: usize,
        /// The grid.
        shape: [usize; 3],
        /// Voxels the grid holds.
        expected: usize,
    },
    /// A label number larger than the label's voxel type holds.
    #[error(
        "the label holds label number {label}, but this label type holds at most {max}; \
         labels above {max} are not supported yet: renumber the labels in the file"
    )]
    TooManyLabels {
        /// The label number found.
        label: u32,
        /// The largest the type holds.
        max: u32,
    },
    /// Fill between slices needs the label drawn on two slices with a gap between them.
    #[error(
        "label {label} was drawn on {drawn} {plural} of this view; draw it on two slices with \
         unlabelled slices between them, then fill"
    )]
    NothingToFill {
        /// The label to fill.
        label: u32,
        /// On how many slices it was drawn.
        drawn: usize,
        /// "slice" or "slices".
        plural: &'static str,
    },
    /// The user cancelled a long edit before it finished.
    #[error("cancelled before it finished")]
    Cancelled,
}
