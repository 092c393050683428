//! Volumes: voxels plus geometry, NIfTI-1 I/O, DICOM series in, reorientation, resampling and
//! intensity normalisation.

mod affine;
mod datatype;
pub mod dicom;
mod display;
mod header;
mod intensity;
mod nifti;
mod nifti_error;
mod orientation;
mod resample;
mod scan_input;
mod stats;
mod stream;
pub mod vec3;

pub use affine::{Affine, determinant};
pub use datatype::{DataType, encode_voxels, voxels_from_file_order, whole_numbers_as_u8};
pub use dicom::DicomError;
pub use display::{
    AUTO_WINDOW_PERCENTILES, CT_AIR_THRESHOLD, DisplayWindow, MIN_WINDOW_WIDTH, label_centroid,
    looks_like_ct, percentile_window,
};
pub use header::{ByteOrder, HEADER_SIZE, NiftiHeader};
pub use intensity::{CtStatistics, Modality, normalize_mri, percentile, replace_non_finite};
pub use nifti::{
    DataLayout, MAX_VOXELS, NiftiError, NiftiImage, WriteOptions, read_header, validate_header,
    write_atomically, write_label_like, write_nifti, write_u8_label_like, write_u16_label_like,
};
pub use orientation::{
    Quaternion, axis_codes, orientation_string, quaternion_from_affine, reorient_to_canonical,
    voxels_from_canonical,
};
pub use resample::{Interpolation, model_grid, resample};
pub use scan_input::{Scan, read_scan};
pub use stats::{StatsAccumulator, VoxelStats};
pub use stream::{NiftiScan, read_nifti, read_nifti_bytes, read_nifti_within, scan_nifti};

/// Where a volume's voxels are: its shape and the affine from voxel indices to world millimetres.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// Voxels along x, y, z (the first three axes of the file).
    pub shape: [usize; 3],
    /// Maps a voxel index (i, j, k) to world coordinates in mm.
    pub world_from_voxel: Affine,
}

impl Geometry {
    /// Voxel spacing in mm along each voxel axis.
    pub fn spacing_mm(&self) -> [f64; 3] {
        self.world_from_voxel.column_norms()
    }

    /// Number of voxels.
    pub fn voxel_count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Why a volume could not be built from its parts.
#[derive(Debug, thiserror::Error)]
#[error("volume of shape {shape:?} × {channels} channels needs {expected} voxels, got {actual}")]
pub struct ShapeMismatch {
    shape: [usize; 3],
    channels: usize,
    expected: usize,
    actual: usize,
}

/// A 3-D image with one or more channels and its geometry.
///
/// Voxels are stored `[channel][z][y][x]` (x fastest) as `f32`, already scaled by the file's
/// `scl_slope`/`scl_inter`. Integer data beyond ±2^24 loses precision; images and labels never
/// come near that.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    shape: [usize; 3],
    channels: usize,
    voxels: Vec<f32>,
    world_from_voxel: Affine,
}

impl Volume {
    /// Builds a volume, checking that the voxel count matches the shape.
    pub fn new(
        shape: [usize; 3],
        channels: usize,
        voxels: Vec<f32>,
        world_from_voxel: Affine,
    ) -> Result<Self, ShapeMismatch> {
        let expected = shape.iter().product::<usize>() * channels;
        if voxels.len() != expected || channels == 0 {
            return Err(ShapeMismatch {
                shape,
                channels,
                expected,
                actual: voxels.len(),
            });
        }
        Ok(Self {
            shape,
            channels,
            voxels,
            world_from_voxel,
        })
    }

    /// A single-channel volume of zeros on a geometry.
    pub fn zeros(geometry: &Geometry) -> Self {
        Self {
            shape: geometry.shape,
            channels: 1,
            voxels: vec![0.0; geometry.voxel_count()],
            world_from_voxel: geometry.world_from_voxel,
        }
    }

    /// A single-channel volume whose voxel (x, y, z) holds `f(x, y, z)`.
    pub fn from_fn(geometry: &Geometry, mut f: impl FnMut(usize, usize, usize) -> f32) -> Self {
        let [nx, ny, nz] = geometry.shape;
        let mut voxels = Vec::with_capacity(geometry.voxel_count());
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    voxels.push(f(x, y, z));
                }
            }
        }
        Self {
            shape: geometry.shape,
            channels: 1,
            voxels,
            world_from_voxel: geometry.world_from_voxel,
        }
    }

    /// Spatial shape (x, y, z).
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of channels (the NIfTI 4th axis).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// All voxels, `[channel][z][y][x]`.
    pub fn voxels(&self) -> &[f32] {
        &self.voxels
    }

    /// All voxels, mutable.
    pub fn voxels_mut(&mut self) -> &mut [f32] {
        &mut self.voxels
    }

    /// Takes the voxels out.
    pub fn into_voxels(self) -> Vec<f32> {
        self.voxels
    }

    /// The voxel-to-world affine.
    pub fn world_from_voxel(&self) -> &Affine {
        &self.world_from_voxel
    }

    /// Shape and affine.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            shape: self.shape,
            world_from_voxel: self.world_from_voxel,
        }
    }

    /// Voxel spacing in mm.
    pub fn spacing_mm(&self) -> [f64; 3] {
        self.world_from_voxel.column_norms()
    }

    /// Voxels per channel.
    pub fn channel_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// One channel's voxels.
    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.channel_len();
        &self.voxels[c * n..(c + 1) * n]
    }

    /// A new single-channel volume holding channel `c`.
    pub fn select_channel(&self, c: usize) -> Volume {
        Volume {
            shape: self.shape,
            channels: 1,
            voxels: self.channel(c).to_vec(),
            world_from_voxel: self.world_from_voxel,
        }
    }

    /// Index of voxel (x, y, z) in channel 0.
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        (z * self.shape[1] + y) * self.shape[0] + x
    }

    /// Value at (x, y, z) of channel 0.
    pub fn at(&self, x: usize, y: usize, z: usize) -> f32 {
        self.voxels[self.index(x, y, z)]
    }

    /// Minimum, maximum and mean over all finite voxels (NaN when there are none) and the
    /// number of non-finite voxels.
    pub fn stats(&self) -> VoxelStats {
        use rayon::prelude::*;
        self.voxels
            .par_chunks(1 << 16)
            .map(|chunk| {
                let mut acc = StatsAccumulator::default();
                acc.push(chunk);
                acc
            })
            .reduce(StatsAccumulator::default, StatsAccumulator::merge)
            .finish()
    }
}
