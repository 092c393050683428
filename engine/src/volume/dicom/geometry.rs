//! Where the images of a DICOM series lie: sorting along the slice normal, spacing from the
//! positions, and the voxel-to-world affine in RAS millimetres.
//!
//! DICOM PS3.3 C.7.6.2.1.1 places pixel (column i, row j) of an image at
//! `P = S + X·Δc·i + Y·Δr·j` in LPS patient coordinates, with `S` = ImagePositionPatient,
//! `X`/`Y` = the row/column direction cosines of ImageOrientationPatient and `Δr`/`Δc` =
//! PixelSpacing (row spacing first). Slices are sorted by `S · (X × Y)` and the third axis of the
//! affine steps from the first position to the last; SliceThickness is never used for spacing.
//! LPS becomes our RAS world by negating the x and y rows, as nibabel and dcm2niix do. Our voxel
//! x is the DICOM column, y the row (ITK's order; dcm2niix stores rows bottom-up but puts every
//! voxel at the same world position).

use super::DicomError;
use crate::volume::Affine;
use crate::volume::vec3::{cross, dot, norm, sub};

/// Direction cosines of one series must agree to this (unitless): scanners write them with
/// 6–10 digits, so genuine differences are far larger.
const ORIENTATION_TOLERANCE: f64 = 1e-4;
/// Row and column cosines must be unit length and orthogonal to this.
const COSINE_TOLERANCE: f64 = 1e-3;
/// Slice steps may differ from the mean step by this fraction of it (plus [`POSITION_SLACK_MM`]).
pub const SPACING_TOLERANCE: f64 = 0.01;
/// Positions are decimal strings of at most 16 characters: allow this much rounding (mm).
const POSITION_SLACK_MM: f64 = 1e-3;
/// The slice-to-slice step may leave the slice normal by this angle's tangent (≈ 0.29°) before
/// the series counts as tilted.
const TILT_TOLERANCE: f64 = 0.005;

/// The geometry one 2-D image carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    /// Names the image in messages: file, and frame for multi-frame files.
    pub label: String,
    /// Rows × columns of the image.
    pub rows: u32,
    /// Columns of the image.
    pub columns: u32,
    /// ImageOrientationPatient: row cosine then column cosine (LPS).
    pub orientation: [f64; 6],
    /// ImagePositionPatient: the centre of the first pixel (LPS mm).
    pub position: [f64; 3],
    /// PixelSpacing: between rows, then between columns (mm).
    pub pixel_spacing_mm: [f64; 2],
    /// SpacingBetweenSlices, else SliceThickness: used only for a single-slice series.
    pub single_slice_thickness_mm: Option<f64>,
}

/// The images of a series in slice order, with the affine of the stacked volume.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceStack {
    /// `order[k]` is the index (into the planes given) of slice k.
    pub order: Vec<usize>,
    /// Voxel (column, row, slice) to RAS mm.
    pub world_from_voxel: Affine,
}

fn geometry_error(text: String) -> DicomError {
    DicomError::Geometry(text)
}

/// Checks that every plane has the first one's size, orientation and pixel spacing.
fn check_consistent(planes: &[Plane]) -> Result<(), DicomError> {
    let Some(first) = planes.first() else {
        return Err(geometry_error("the series has no images".into()));
    };
    for plane in &planes[1..] {
        if (plane.rows, plane.columns) != (first.rows, first.columns) {
            return Err(geometry_error(format!(
                "images of one series differ in size: {} is {}×{} (columns × rows) but {} is {}×{}; \
                 the folder mixes series or holds a localizer — export the series on its own",
                first.label, first.columns, first.rows, plane.label, plane.columns, plane.rows
            )));
        }
        let worst = (0..6)
            .map(|i| (plane.orientation[i] - first.orientation[i]).abs())
            .fold(0.0, f64::max);
        if worst > ORIENTATION_TOLERANCE {
            return Err(geometry_error(format!(
                "images of one series have different orientations: {} has ImageOrientationPatient \
                 {:?} but {} has {:?}; a volume needs parallel slices — export each stack as its own series",
                first.label, first.orientation, plane.label, plane.orientation
            )));
        }
        let spacing_differs = (0..2).any(|i| {
            (plane.pixel_spacing_mm[i] - first.pixel_spacing_mm[i]).abs()
                > ORIENTATION_TOLERANCE * first.pixel_spacing_mm[i].max(1.0)
        });
        if spacing_differs {
            return Err(geometry_error(format!(
                "images of one series have different pixel spacings: {} has {:?} mm, {} has {:?} mm",
                first.label, first.pixel_spacing_mm, plane.label, plane.pixel_spacing_mm
            )));
        }
    }
    Ok(())
}

/// Unit row and column cosines of a plane, checked.
fn cosines(plane: &Plane) -> Result<([f64; 3], [f64; 3]), DicomError> {
    let o = plane.orientation;
    let (row, column) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let unit = |v: [f64; 3]| (norm(v) - 1.0).abs() <= COSINE_TOLERANCE;
    if !unit(row) || !unit(column) || dot(row, column).abs() > COSINE_TOLERANCE {
        return Err(geometry_error(format!(
            "{}: ImageOrientationPatient {:?} is not two orthogonal unit vectors",
            plane.label, o
        )));
    }
    if plane.pixel_spacing_mm.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err(geometry_error(format!(
            "{}: PixelSpacing {:?} must be two positive numbers",
            plane.label, plane.pixel_spacing_mm
        )));
    }
    Ok((row, column))
}

/// Sorts the planes of one series along their normal and computes the volume's affine.
///
/// Refuses, naming the images concerned: mixed sizes, orientations or pixel spacings, two images
/// at one position, uneven steps (beyond [`SPACING_TOLERANCE`]) and gantry tilt.
pub fn stack_slices(planes: &[Plane]) -> Result<SliceStack, DicomError> {
    check_consistent(planes)?;
    let first = &planes[0];
    let (row, column) = cosines(first)?;
    let normal = cross(row, column);
    let mut order: Vec<usize> = (0..planes.len()).collect();
    let along = |i: usize| dot(planes[i].position, normal);
    order.sort_by(|a, b| along(*a).total_cmp(&along(*b)));

    let [row_spacing, column_spacing] = first.pixel_spacing_mm;
    let slice_step: [f64; 3] = if order.len() == 1 {
        let thickness = first
            .single_slice_thickness_mm
            .filter(|t| t.is_finite() && *t > 0.0)
            .unwrap_or(1.0);
        normal.map(|n| n * thickness)
    } else {
        check_steps(planes, &order, normal)?
    };
    let origin = planes[order[0]].position;
    // Columns of the LPS affine: one step along a row (next column), down a column (next row),
    // to the next slice.
    let lps_columns = [
        row.map(|v| v * column_spacing),
        column.map(|v| v * row_spacing),
        slice_step,
    ];
    let mut linear = [[0.0; 3]; 3];
    let mut translation = [0.0; 3];
    for axis in 0..3 {
        // LPS → RAS: negate x and y.
        let sign = if axis < 2 { -1.0 } else { 1.0 };
        for (voxel_axis, column_vector) in lps_columns.iter().enumerate() {
            // `+ 0.0` turns the -0.0 of negated zeros into 0.0 for printing.
            linear[axis][voxel_axis] = sign * column_vector[axis] + 0.0;
        }
        translation[axis] = sign * origin[axis] + 0.0;
    }
    Ok(SliceStack {
        order,
        world_from_voxel: Affine::from_parts(linear, translation),
    })
}

/// Checks duplicates, even spacing and tilt; returns the mean step from slice to slice (LPS mm).
fn check_steps(planes: &[Plane], order: &[usize], normal: [f64; 3]) -> Result<[f64; 3], DicomError> {
    let first = &planes[order[0]];
    let last = &planes[order[order.len() - 1]];
    let intervals = (order.len() - 1) as f64;
    let mean_step = sub(last.position, first.position).map(|d| d / intervals);
    let mean_spacing = dot(mean_step, normal);
    // Duplicates first: they also make the spacing uneven, but this is the message that helps.
    for pair in order.windows(2) {
        let (a, b) = (&planes[pair[0]], &planes[pair[1]]);
        if dot(sub(b.position, a.position), normal).abs() <= POSITION_SLACK_MM {
            return Err(geometry_error(format!(
                "{} and {} lie at the same position {:?}; the series holds repeated images \
                 (several echoes, phases or time points) — export one of them as its own series",
                a.label, b.label, a.position
            )));
        }
    }
    for pair in order.windows(2) {
        let (a, b) = (&planes[pair[0]], &planes[pair[1]]);
        let step = sub(b.position, a.position);
        let spacing = dot(step, normal);
        if (spacing - mean_spacing).abs() > SPACING_TOLERANCE * mean_spacing + POSITION_SLACK_MM {
            return Err(geometry_error(format!(
                "uneven slice spacing: {:.4} mm between {} and {}, but {:.4} mm on average \
                 (tolerance {} %); slices are missing or the series mixes stacks — \
                 a regular volume cannot be made from it",
                spacing,
                a.label,
                b.label,
                mean_spacing,
                SPACING_TOLERANCE * 100.0
            )));
        }
        let off_normal = norm(sub(step, normal.map(|n| n * spacing)));
        if off_normal > TILT_TOLERANCE * spacing + POSITION_SLACK_MM {
            return Err(geometry_error(format!(
                "gantry tilt: from {} to {} the position moves {:.4} mm across the slice plane \
                 for {:.4} mm along its normal ({:.2}°); tilted CT needs resampling \
                 (e.g. dcm2niix's tilt correction) before it can be used",
                a.label,
                b.label,
                off_normal,
                spacing,
                off_normal.atan2(spacing).to_degrees()
            )));
        }
    }
    Ok(mean_step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(label: &str, orientation: [f64; 6], position: [f64; 3]) -> Plane {
        Plane {
            label: label.into(),
            rows: 6,
            columns: 8,
            orientation,
            position,
            pixel_spacing_mm: [0.8, 0.7],
            single_slice_thickness_mm: Some(5.0),
        }
    }

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    #[test]
    fn axial_slices_sort_by_position_and_flip_to_ras() {
        // Given out of order: z = 10, 5, 7.5.
        let planes = [
            plane("c", AXIAL, [-100.0, -50.0, 10.0]),
            plane("a", AXIAL, [-100.0, -50.0, 5.0]),
            plane("b", AXIAL, [-100.0, -50.0, 7.5]),
        ];
        let stack = stack_slices(&planes).expect("valid");
        assert_eq!(stack.order, vec![1, 2, 0]);
        // Written out by hand: x = -0.7 i + 100, y = -0.8 j + 50, z = 2.5 k + 5.
        let want = Affine::from_parts(
            [[-0.7, 0.0, 0.0], [0.0, -0.8, 0.0], [0.0, 0.0, 2.5]],
            [100.0, 50.0, 5.0],
        );
        assert!(stack.world_from_voxel.max_abs_diff(&want) < 1e-12);
    }

    #[test]
    fn sagittal_normal_is_the_cross_product() {
        // Rows along +y (P), columns along -z (I): normal = (0,1,0) × (0,0,-1) = (-1,0,0).
        let sagittal = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
        let planes = [
            plane("p0", sagittal, [3.0, 0.0, 0.0]),
            plane("p1", sagittal, [0.0, 0.0, 0.0]),
        ];
        let stack = stack_slices(&planes).expect("valid");
        // Along the normal (-1,0,0), x = 3 comes first (-3 < 0).
        assert_eq!(stack.order, vec![0, 1]);
        let m = stack.world_from_voxel.0;
        // Slice step LPS (-3,0,0) → RAS (3,0,0); origin LPS (3,0,0) → RAS (-3,0,0).
        assert_eq!([m[0][2], m[1][2], m[2][2]], [3.0, 0.0, 0.0]);
        assert_eq!(stack.world_from_voxel.translation(), [-3.0, 0.0, 0.0]);
    }

    #[test]
    fn single_slice_uses_thickness_along_the_normal() {
        let stack = stack_slices(&[plane("only", AXIAL, [0.0, 0.0, 0.0])]).expect("valid");
        assert_eq!(stack.world_from_voxel.column_norms(), [0.7, 0.8, 5.0]);
    }

    #[test]
    fn refuses_bad_stacks_by_name() {
        let z = |k: f64| [0.0, 0.0, k];
        let uneven = [
            plane("s0", AXIAL, z(0.0)),
            plane("s1", AXIAL, z(2.0)),
            plane("s2", AXIAL, z(6.0)),
        ];
        let message = stack_slices(&uneven).expect_err("uneven").to_string();
        assert!(message.contains("uneven slice spacing"), "{message}");
        let duplicate = [plane("d0", AXIAL, z(0.0)), plane("d1", AXIAL, z(0.0))];
        let message = stack_slices(&duplicate).expect_err("duplicate").to_string();
        assert!(
            message.contains("d0") && message.contains("same position"),
            "{message}"
        );
        let tilted = [plane("t0", AXIAL, z(0.0)), plane("t1", AXIAL, [0.0, 0.5, 2.0])];
        let message = stack_slices(&tilted).expect_err("tilt").to_string();
        // atan(0.5 / 2) = 14.04°.
        assert!(
            message.contains("gantry tilt") && message.contains("14.04°"),
            "{message}"
        );
        let mut turned = plane("r1", [1.0, 0.0, 0.0, 0.0, 0.0, -1.0], z(2.0));
        let mixed = [plane("r0", AXIAL, z(0.0)), turned.clone()];
        let message = stack_slices(&mixed).expect_err("orientation").to_string();
        assert!(
            message.contains("different orientations") && message.contains("r1"),
            "{message}"
        );
        turned.orientation = AXIAL;
        turned.rows = 5;
        let message = stack_slices(&[plane("r0", AXIAL, z(0.0)), turned])
            .expect_err("size")
            .to_string();
        assert!(message.contains("differ in size"), "{message}");
        let skewed = [plane("k", [1.0, 0.0, 0.0, 0.5, 0.5, 0.0], z(0.0))];
        assert!(stack_slices(&skewed).is_err());
        assert!(stack_slices(&[]).is_err());
    }
}
