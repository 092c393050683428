//! Evaluation: overlap and surface metrics per case and class, and paired statistics between
//! two runs (DESIGN.md §5).
//!
//! Surface metrics follow DeepMind's `surface-distance` definitions exactly (surfels from the
//! 2×2×2 marching-cubes table, area-weighted HD95 and surface Dice), with anisotropic spacing.
//! Empty masks: both empty → Dice, Jaccard, HD95 and NSD undefined (`None`, flagged, left out of
//! means); one empty → Dice 0, NSD 0, HD95 the image diagonal.

mod case;
mod distance_transform;
mod label_stats;
mod report;
mod scoring;
mod special;
mod stats;
mod surface;
mod surfel_table;

#[cfg(test)]
mod tests;

pub use case::{
    AFFINE_TOLERANCE_MM, CaseMetrics, ClassMetrics, DEFAULT_TOLERANCE_MM, HAUSDORFF_PERCENT, MAX_LABEL,
    both_empty_class, case_metrics, check_same_grid,
};
pub use distance_transform::squared_distance_to_sites;
pub use label_stats::{LABEL_STATISTICS_CSV_HEADER, LabelStatistics, label_statistics, label_statistics_csv};
pub use report::{REPORT_CSV_HEADER, class_values, column_means, report_csv, report_json};
pub use scoring::{
    LabelScheme, MERGED_FOREGROUND_NAME, SCHEME_FILE, dice_from_counts, dice_per_label, mean_per_label,
    score_case,
};
pub use special::{ln_gamma, normal_sf, regularized_incomplete_beta, regularized_upper_gamma, student_t_sf};
pub use stats::{MeanSd, TTest, Wilcoxon, WilcoxonMethod, mean_sd, paired_t_test, wilcoxon_signed_rank};
pub use surface::{
    BoundingBox, SurfaceDistances, bounding_box, compute_surface_distances, neighbour_bit, surfel_area_table,
};

/// Everything that can go wrong while computing metrics or statistics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Prediction and ground truth are not on the same voxel grid.
    #[error("prediction and ground truth are not on the same grid: {reason}")]
    GridMismatch {
        /// What differs, with both values.
        reason: String,
    },
    /// A label map is not on its scan's voxel grid.
    #[error("the label is not on the image's grid: {reason}; resample the label onto the scan")]
    LabelOffImageGrid {
        /// What differs, with both values.
        reason: String,
    },
    /// A voxel holds something other than a whole, non-negative label.
    #[error(
        "the {volume} holds the value {value}, which is not a label (labels are whole numbers from 0 to 65535); pass a label map, not probabilities or an image"
    )]
    NotALabel {
        /// "prediction" or "ground truth".
        volume: &'static str,
        /// The offending value.
        value: f32,
    },
    /// The NSD tolerance is negative or not a number.
    #[error("NSD tolerance must be a finite number of mm ≥ 0, got {0}")]
    InvalidTolerance(f64),
    /// A paired test cannot run on these values.
    #[error("{0}")]
    Statistics(String),
}
