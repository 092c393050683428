//! Slice geometry of a RAS+ volume, in radiological convention: which voxel each screen pixel of
//! an axial, coronal or sagittal slice shows, the way back, the physical size of a slice and the
//! orientation letters on each side. Pure functions, no egui state.
//!
//! Conventions (as ITK-SNAP and 3D Slicer show them):
//! - axial: patient right on screen left, anterior at the top;
//! - coronal: patient right on screen left, superior at the top;
//! - sagittal: anterior on screen left, superior at the top.
//!
//! On a RAS+ volume every in-plane axis therefore runs from the screen's right (or bottom) to its
//! left (or top): screen column `c` shows voxel index `n - 1 - c` along the column axis, and
//! likewise for rows.

use engine::edit::{ChunkedLabel, EditLabel, LabelValue};
use engine::volume::Volume;

/// One of the three orthogonal planes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Axis {
    /// Transverse plane: slices step along z (inferior → superior).
    #[default]
    Axial,
    /// Frontal plane: slices step along y (posterior → anterior).
    Coronal,
    /// Side plane: slices step along x (left → right).
    Sagittal,
}

impl Axis {
    /// The three planes in display order.
    pub const ALL: [Axis; 3] = [Axis::Axial, Axis::Coronal, Axis::Sagittal];

    /// Name shown in the UI.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Axial => "Axial",
            Axis::Coronal => "Coronal",
            Axis::Sagittal => "Sagittal",
        }
    }

    /// Position in [`Axis::ALL`].
    pub fn index(self) -> usize {
        match self {
            Axis::Axial => 0,
            Axis::Coronal => 1,
            Axis::Sagittal => 2,
        }
    }

    /// The voxel axis (0 = x, 1 = y, 2 = z) that slices step along.
    pub fn normal(self) -> usize {
        match self {
            Axis::Axial => 2,
            Axis::Coronal => 1,
            Axis::Sagittal => 0,
        }
    }

    /// The voxel axes shown along screen columns and rows.
    pub fn in_plane(self) -> [usize; 2] {
        match self {
            Axis::Axial => [0, 1],
            Axis::Coronal => [0, 2],
            Axis::Sagittal => [1, 2],
        }
    }

    /// Orientation letters on the left, right, top and bottom side of the view.
    pub fn orientation_letters(self) -> [&'static str; 4] {
        match self {
            Axis::Axial => ["R", "L", "A", "P"],
            Axis::Coronal => ["R", "L", "S", "I"],
            Axis::Sagittal => ["A", "P", "S", "I"],
        }
    }
}

/// Size of a slice in pixels: `[columns, rows]`.
pub fn slice_size(shape: [usize; 3], axis: Axis) -> [usize; 2] {
    let [column_axis, row_axis] = axis.in_plane();
    [shape[column_axis], shape[row_axis]]
}

/// Physical size of a slice in millimetres: `[width, height]`, so views keep the true aspect ratio.
pub fn slice_size_mm(shape: [usize; 3], spacing_mm: [f64; 3], axis: Axis) -> [f32; 2] {
    let [column_axis, row_axis] = axis.in_plane();
    [
        (shape[column_axis] as f64 * spacing_mm[column_axis]) as f32,
        (shape[row_axis] as f64 * spacing_mm[row_axis]) as f32,
    ]
}

/// The voxel shown at screen pixel `[column, row]` of slice `slice` (all indices in range).
pub fn voxel_at_pixel(shape: [usize; 3], axis: Axis, slice: usize, pixel: [usize; 2]) -> [usize; 3] {
    let [column_axis, row_axis] = axis.in_plane();
    let mut voxel = [0; 3];
    voxel[axis.normal()] = slice;
    voxel[column_axis] = shape[column_axis] - 1 - pixel[0];
    voxel[row_axis] = shape[row_axis] - 1 - pixel[1];
    voxel
}

/// The screen pixel `[column, row]` that shows `voxel` in its slice of `axis`.
pub fn pixel_of_voxel(shape: [usize; 3], axis: Axis, voxel: [usize; 3]) -> [usize; 2] {
    let [column_axis, row_axis] = axis.in_plane();
    [
        shape[column_axis] - 1 - voxel[column_axis],
        shape[row_axis] - 1 - voxel[row_axis],
    ]
}

/// Copies slice `slice` (clamped to the volume) of channel 0 out in screen order: row by row,
/// top row first. Empty when the volume has no voxels.
pub fn extract_slice(volume: &Volume, axis: Axis, slice: usize) -> Vec<f32> {
    let mut out = Vec::new();
    gather_slice(volume.channel(0), volume.shape(), axis, slice, &mut out);
    out
}

/// Most threads a sagittal gather uses (more stop paying once memory is saturated).
const MAX_GATHER_THREADS: usize = 8;
/// Smaller sagittal slices are gathered on the calling thread (spawning would cost more).
const MIN_THREADED_GATHER_VOXELS: usize = 1 << 16;

/// Copies slice `slice` (clamped) of a chunked label into `out` in screen order, like
/// [`gather_slice`]. Every screen row of every axis lies in one z-slice (the column axis is never
/// z), so each row is read from that z-slice alone: contiguous for axial and coronal, at a
/// stride of one x-row for sagittal. `out` is cleared first.
pub fn gather_label_slice(label: &EditLabel, axis: Axis, slice: usize, out: &mut Vec<u16>) {
    match label {
        EditLabel::U8(label) => gather_chunked_slice(label, axis, slice, out),
        EditLabel::U16(label) => gather_chunked_slice(label, axis, slice, out),
    }
}

/// [`gather_label_slice`] for one storage width; label numbers come out as `u16`. Sagittal rows
/// (one voxel per cache line) are gathered by bands of rows on several threads, as
/// [`gather_slice`] does.
fn gather_chunked_slice<L: LabelValue>(
    label: &ChunkedLabel<L>,
    axis: Axis,
    slice: usize,
    out: &mut Vec<u16>,
) {
    out.clear();
    let shape = label.shape();
    if shape.contains(&0) {
        return;
    }
    let [column_axis, row_axis] = axis.in_plane();
    let [columns, rows] = slice_size(shape, axis);
    let slice = slice.min(shape[axis.normal()] - 1);
    let nx = shape[0];
    let column_stride = if column_axis == 0 { 1 } else { nx };
    // Fills screen row `row` into `line`; false when the label's storage is shorter than its shape.
    let gather_row = |row: usize, line: &mut [u16]| -> bool {
        // Screen rows run from the last voxel along the row axis to the first.
        let mut voxel = [0; 3];
        voxel[axis.normal()] = slice;
        voxel[row_axis] = rows - 1 - row;
        let first = voxel[1] * nx + voxel[0];
        let last = first + (columns - 1) * column_stride;
        let Some(voxels) = label.z_slice(voxel[2]).get(first..=last) else {
            return false;
        };
        for (pixel, v) in line.iter_mut().zip(voxels.iter().rev().step_by(column_stride)) {
            *pixel = v.label() as u16;
        }
        true
    };
    if column_stride == 1 {
        // Axial and coronal rows are contiguous in memory, only reversed: one pass, no threads.
        out.reserve(columns * rows);
        for row in 0..rows {
            let mut voxel = [0; 3];
            voxel[axis.normal()] = slice;
            voxel[row_axis] = rows - 1 - row;
            let first = voxel[1] * nx + voxel[0];
            let Some(line) = label.z_slice(voxel[2]).get(first..first + columns) else {
                out.clear();
                return;
            };
            out.extend(line.iter().rev().map(|v| v.label() as u16));
        }
        return;
    }
    out.resize(columns * rows, 0);
    let gather_band = |first_row: usize, band: &mut [u16]| {
        band.chunks_exact_mut(columns)
            .enumerate()
            .all(|(offset, line)| gather_row(first_row + offset, line))
    };
    let bands = if columns * rows < MIN_THREADED_GATHER_VOXELS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_GATHER_THREADS)
            .min(rows)
    };
    let complete = if bands <= 1 {
        gather_band(0, out)
    } else {
        let rows_per_band = rows.div_ceil(bands);
        std::thread::scope(|scope| {
            let workers: Vec<_> = out
                .chunks_mut(rows_per_band * columns)
                .enumerate()
                .map(|(index, band)| {
                    let gather_band = &gather_band;
                    scope.spawn(move || gather_band(index * rows_per_band, band))
                })
                .collect();
            workers.into_iter().all(|w| w.join().unwrap_or(false))
        })
    };
    if !complete {
        out.clear();
    }
}

/// Copies slice `slice` (clamped) of the first channel of `voxels` (x fastest, then y, then z)
/// into `out` in screen order: row by row, top row first, each row from screen left to right.
/// `out` is cleared first; it stays empty when the shape has no voxels or `voxels` is too short.
pub fn gather_slice<T: Copy + Send + Sync>(
    voxels: &[T],
    shape: [usize; 3],
    axis: Axis,
    slice: usize,
    out: &mut Vec<T>,
) {
    out.clear();
    if shape.contains(&0) || voxels.len() < shape.iter().product::<usize>() {
        return;
    }
    let strides = [1, shape[0], shape[0] * shape[1]];
    let [column_axis, row_axis] = axis.in_plane();
    let [columns, rows] = slice_size(shape, axis);
    let slice = slice.min(shape[axis.normal()] - 1);
    let column_stride = strides[column_axis];
    let row_stride = strides[row_axis];
    // The top-left pixel is the last voxel along both in-plane axes; walk backwards from it.
    let top_left = slice * strides[axis.normal()] + (columns - 1) * column_stride + (rows - 1) * row_stride;
    if column_stride == 1 {
        out.reserve(columns * rows);
        for row in 0..rows {
            // Axial and coronal rows are contiguous in memory, only reversed.
            let row_start = top_left - row * row_stride;
            out.extend(voxels[row_start + 1 - columns..=row_start].iter().rev());
        }
        return;
    }
    // Sagittal: every voxel of the slice lies on its own cache line and every second one on its
    // own page, so the gather waits on memory (TLB walks) rather than on arithmetic. Threads
    // over bands of rows overlap those waits.
    out.resize(columns * rows, voxels[top_left]);
    let bands = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_GATHER_THREADS)
        .min(rows);
    let rows_per_band = rows.div_ceil(bands);
    let gather_rows = |first_row: usize, band: &mut [T]| {
        for (offset, line) in band.chunks_exact_mut(columns).enumerate() {
            let row_start = top_left - (first_row + offset) * row_stride;
            let row_voxels = &voxels[row_start - (columns - 1) * column_stride..=row_start];
            for (pixel, voxel) in line
                .iter_mut()
                .zip(row_voxels.iter().rev().step_by(column_stride))
            {
                *pixel = *voxel;
            }
        }
    };
    if bands <= 1 || columns * rows < MIN_THREADED_GATHER_VOXELS {
        gather_rows(0, out);
        return;
    }
    std::thread::scope(|scope| {
        for (band_index, band) in out.chunks_mut(rows_per_band * columns).enumerate() {
            let gather_rows = &gather_rows;
            scope.spawn(move || gather_rows(band_index * rows_per_band, band));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::volume::{Affine, Geometry};

    /// A volume whose voxel (x, y, z) holds 100 x + 10 y + z, so every value names its voxel.
    fn numbered(shape: [usize; 3]) -> Volume {
        let geometry = Geometry {
            shape,
            world_from_voxel: Affine::from_diagonal([1.0, 2.0, 3.0]),
        };
        Volume::from_fn(&geometry, |x, y, z| (100 * x + 10 * y + z) as f32)
    }

    #[test]
    fn axial_slice_puts_patient_right_left_and_anterior_on_top() {
        // x = 0..3 (towards R), y = 0..2 (towards A), z = 0..2.
        let slice = extract_slice(&numbered([3, 2, 2]), Axis::Axial, 1);
        // Top row is y = 1 (anterior); its first pixel is x = 2 (most right).
        assert_eq!(slice, vec![211.0, 111.0, 11.0, 201.0, 101.0, 1.0]);
    }

    #[test]
    fn coronal_slice_puts_patient_right_left_and_superior_on_top() {
        let slice = extract_slice(&numbered([3, 2, 2]), Axis::Coronal, 1);
        // Top row is z = 1 (superior), columns x = 2, 1, 0.
        assert_eq!(slice, vec![211.0, 111.0, 11.0, 210.0, 110.0, 10.0]);
    }

    #[test]
    fn sagittal_slice_puts_anterior_left_and_superior_on_top() {
        let slice = extract_slice(&numbered([3, 2, 2]), Axis::Sagittal, 2);
        // Top row is z = 1, columns y = 1 (anterior), 0.
        assert_eq!(slice, vec![211.0, 201.0, 210.0, 200.0]);
    }

    #[test]
    fn pixel_and_voxel_mappings_invert_each_other_and_match_extraction() {
        let volume = numbered([4, 3, 5]);
        let shape = volume.shape();
        for axis in Axis::ALL {
            let slice = 1;
            let pixels = extract_slice(&volume, axis, slice);
            let [columns, rows] = slice_size(shape, axis);
            assert_eq!(pixels.len(), columns * rows);
            for row in 0..rows {
                for column in 0..columns {
                    let voxel = voxel_at_pixel(shape, axis, slice, [column, row]);
                    assert_eq!(
                        pixels[row * columns + column],
                        volume.at(voxel[0], voxel[1], voxel[2])
                    );
                    assert_eq!(pixel_of_voxel(shape, axis, voxel), [column, row]);
                }
            }
        }
    }

    #[test]
    fn large_sagittal_slices_gathered_on_threads_match_voxel_lookup() {
        // 300 × 250 pixels: above the threaded-gather threshold, with a row count that does not
        // divide evenly into bands.
        let volume = numbered([3, 300, 250]);
        let shape = volume.shape();
        for slice in 0..3 {
            let pixels = extract_slice(&volume, Axis::Sagittal, slice);
            let [columns, rows] = slice_size(shape, Axis::Sagittal);
            assert!(columns * rows >= MIN_THREADED_GATHER_VOXELS);
            assert_eq!(pixels.len(), columns * rows);
            for row in 0..rows {
                for column in 0..columns {
                    let [x, y, z] = voxel_at_pixel(shape, Axis::Sagittal, slice, [column, row]);
                    assert_eq!(
                        pixels[row * columns + column],
                        volume.at(x, y, z),
                        "({column}, {row})"
                    );
                }
            }
        }
    }

    #[test]
    fn label_slices_of_both_widths_match_voxel_lookup_on_every_axis_threaded_or_not() {
        // Sagittal slices of 300 × 250 pixels take the threaded path; the other axes and the
        // small volume the single-threaded one. Label numbers name their voxel (modulo the type).
        for shape in [[3, 300, 250], [4, 3, 5]] {
            let geometry = Geometry {
                shape,
                world_from_voxel: Affine::identity(),
            };
            let numbers = |modulus: usize| {
                Volume::from_fn(&geometry, |x, y, z| ((x * 7 + y * 13 + z * 29) % modulus) as f32)
            };
            for volume in [numbers(251), numbers(4001)] {
                let label = EditLabel::from_values(shape, volume.voxels()).expect("fits in u16");
                for axis in Axis::ALL {
                    let [columns, rows] = slice_size(shape, axis);
                    for slice in [0, shape[axis.normal()] - 1] {
                        let mut gathered = Vec::new();
                        gather_label_slice(&label, axis, slice, &mut gathered);
                        assert_eq!(gathered.len(), columns * rows);
                        for row in 0..rows {
                            for column in 0..columns {
                                let [x, y, z] = voxel_at_pixel(shape, axis, slice, [column, row]);
                                assert_eq!(
                                    f32::from(gathered[row * columns + column]),
                                    volume.at(x, y, z),
                                    "{axis:?} slice {slice} ({column}, {row})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn slice_index_is_clamped_and_physical_size_uses_spacing() {
        let volume = numbered([3, 2, 2]);
        assert_eq!(
            extract_slice(&volume, Axis::Axial, 99),
            extract_slice(&volume, Axis::Axial, 1)
        );
        assert_eq!(slice_size_mm([3, 2, 2], [1.0, 2.0, 3.0], Axis::Axial), [3.0, 4.0]);
        assert_eq!(
            slice_size_mm([3, 2, 2], [1.0, 2.0, 3.0], Axis::Coronal),
            [3.0, 6.0]
        );
        assert_eq!(
            slice_size_mm([3, 2, 2], [1.0, 2.0, 3.0], Axis::Sagittal),
            [4.0, 6.0]
        );
    }

    #[test]
    fn letters_follow_radiological_convention() {
        assert_eq!(Axis::Axial.orientation_letters(), ["R", "L", "A", "P"]);
        assert_eq!(Axis::Coronal.orientation_letters(), ["R", "L", "S", "I"]);
        assert_eq!(Axis::Sagittal.orientation_letters(), ["A", "P", "S", "I"]);
    }
}
