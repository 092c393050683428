//! The NIfTI-1 header: all 348 bytes parsed into fields, in either byte order, and written back.
//!
//! We keep every field (not only the ones we use) so that a label written for a scan carries that
//! scan's header, and so reopens aligned in ITK-SNAP, 3D Slicer and nibabel.

use super::affine::Affine;
use super::nifti_error::NiftiError;

/// Size of a NIfTI-1 header in bytes.
pub const HEADER_SIZE: usize = 348;
/// Size of a NIfTI-2 header, recognised only to refuse it clearly.
const NIFTI2_HEADER_SIZE: i32 = 540;
/// Magic of a single-file NIfTI-1 (`.nii`).
pub const MAGIC_SINGLE: [u8; 4] = *b"n+1\0";
/// Magic of a header/image pair (`.hdr` + `.img`), which we do not read.
const MAGIC_PAIR: [u8; 4] = *b"ni1\0";

/// Byte order of a file's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ByteOrder {
    /// Least significant byte first (x86, ARM; what almost every tool writes).
    Little,
    /// Most significant byte first (old SPARC/PowerPC files).
    Big,
}

impl ByteOrder {
    /// Name as `mvl info` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little-endian",
            ByteOrder::Big => "big-endian",
        }
    }
}

/// Every field of a NIfTI-1 header. Field names follow `nifti1.h`.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are documented in nifti1.h; repeating it here adds nothing
pub struct NiftiHeader {
    pub data_type: [u8; 10],
    pub db_name: [u8; 18],
    pub extents: i32,
    pub session_error: i16,
    pub regular: u8,
    pub dim_info: u8,
    pub dim: [i16; 8],
    pub intent_p1: f32,
    pub intent_p2: f32,
    pub intent_p3: f32,
    pub intent_code: i16,
    pub datatype: i16,
    pub bitpix: i16,
    pub slice_start: i16,
    pub pixdim: [f32; 8],
    pub vox_offset: f32,
    pub scl_slope: f32,
    pub scl_inter: f32,
    pub slice_end: i16,
    pub slice_code: u8,
    pub xyzt_units: u8,
    pub cal_max: f32,
    pub cal_min: f32,
    pub slice_duration: f32,
    pub toffset: f32,
    pub glmax: i32,
    pub glmin: i32,
    pub descrip: [u8; 80],
    pub aux_file: [u8; 24],
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern_b: f32,
    pub quatern_c: f32,
    pub quatern_d: f32,
    pub qoffset_x: f32,
    pub qoffset_y: f32,
    pub qoffset_z: f32,
    pub srow_x: [f32; 4],
    pub srow_y: [f32; 4],
    pub srow_z: [f32; 4],
    pub intent_name: [u8; 16],
    pub magic: [u8; 4],
    /// Byte order the header was read in (and is written in).
    pub byte_order: ByteOrder,
}

impl Default for NiftiHeader {
    fn default() -> Self {
        Self {
            data_type: [0; 10],
            db_name: [0; 18],
            extents: 0,
            session_error: 0,
            regular: b'r',
            dim_info: 0,
            dim: [3, 1, 1, 1, 1, 1, 1, 1],
            intent_p1: 0.0,
            intent_p2: 0.0,
            intent_p3: 0.0,
            intent_code: 0,
            datatype: 16,
            bitpix: 32,
            slice_start: 0,
            pixdim: [1.0; 8],
            vox_offset: 352.0,
            scl_slope: 1.0,
            scl_inter: 0.0,
            slice_end: 0,
            slice_code: 0,
            xyzt_units: 2 | 8, // millimetres, seconds
            cal_max: 0.0,
            cal_min: 0.0,
            slice_duration: 0.0,
            toffset: 0.0,
            glmax: 0,
            glmin: 0,
            descrip: [0; 80],
            aux_file: [0; 24],
            qform_code: 0,
            sform_code: 0,
            quatern_b: 0.0,
            quatern_c: 0.0,
            quatern_d: 0.0,
            qoffset_x: 0.0,
            qoffset_y: 0.0,
            qoffset_z: 0.0,
            srow_x: [1.0, 0.0, 0.0, 0.0],
            srow_y: [0.0, 1.0, 0.0, 0.0],
            srow_z: [0.0, 0.0, 1.0, 0.0],
            intent_name: [0; 16],
            magic: MAGIC_SINGLE,
            byte_order: ByteOrder::Little,
        }
    }
}

/// Reads fixed-size fields from a header buffer in a given byte order.
struct FieldReader<'a> {
    bytes: &'a [u8; HEADER_SIZE],
    pos: usize,
    order: ByteOrder,
}

impl FieldReader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn ordered<const N: usize>(&mut self) -> [u8; N] {
        let mut raw = self.take::<N>();
        if self.order == ByteOrder::Big {
            raw.reverse();
        }
        raw
    }
    fn i16(&mut self) -> i16 {
        i16::from_le_bytes(self.ordered())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.ordered())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.ordered())
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn i16s<const N: usize>(&mut self) -> [i16; N] {
        std::array::from_fn(|_| self.i16())
    }
    fn f32s<const N: usize>(&mut self) -> [f32; N] {
        std::array::from_fn(|_| self.f32())
    }
}

/// Writes fixed-size fields into a header buffer in a given byte order.
struct FieldWriter {
    bytes: Vec<u8>,
    order: ByteOrder,
}

impl FieldWriter {
    fn raw(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }
    fn ordered<const N: usize>(&mut self, mut little: [u8; N]) {
        if self.order == ByteOrder::Big {
            little.reverse();
        }
        self.bytes.extend_from_slice(&little);
    }
    fn i16(&mut self, v: i16) {
        self.ordered(v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.ordered(v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.ordered(v.to_le_bytes());
    }
}

impl NiftiHeader {
    /// Parses a header, detecting the byte order from `sizeof_hdr` (348 in the file's order).
    pub fn parse(bytes: &[u8; HEADER_SIZE]) -> Result<Self, NiftiError> {
        let size_le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let size_be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let order = if size_le == HEADER_SIZE as i32 {
            ByteOrder::Little
        } else if size_be == HEADER_SIZE as i32 {
            ByteOrder::Big
        } else if size_le == NIFTI2_HEADER_SIZE || size_be == NIFTI2_HEADER_SIZE {
            return Err(NiftiError::Unsupported(
                "this is a NIfTI-2 file; only NIfTI-1 is supported: convert it with \
                 `nibabel` (nib.Nifti1Image) or `c3d`"
                    .into(),
            ));
        } else {
            return Err(NiftiError::NotNifti(format!(
                "the first 4 bytes should hold the header size 348, found {size_le}"
            )));
        };
        let mut r = FieldReader { bytes, pos: 4, order };
        let header = NiftiHeader {
            data_type: r.take(),
            db_name: r.take(),
            extents: r.i32(),
            session_error: r.i16(),
            regular: r.u8(),
            dim_info: r.u8(),
            dim: r.i16s(),
            intent_p1: r.f32(),
            intent_p2: r.f32(),
            intent_p3: r.f32(),
            intent_code: r.i16(),
            datatype: r.i16(),
            bitpix: r.i16(),
            slice_start: r.i16(),
            pixdim: r.f32s(),
            vox_offset: r.f32(),
            scl_slope: r.f32(),
            scl_inter: r.f32(),
            slice_end: r.i16(),
            slice_code: r.u8(),
            xyzt_units: r.u8(),
            cal_max: r.f32(),
            cal_min: r.f32(),
            slice_duration: r.f32(),
            toffset: r.f32(),
            glmax: r.i32(),
            glmin: r.i32(),
            descrip: r.take(),
            aux_file: r.take(),
            qform_code: r.i16(),
            sform_code: r.i16(),
            quatern_b: r.f32(),
            quatern_c: r.f32(),
            quatern_d: r.f32(),
            qoffset_x: r.f32(),
            qoffset_y: r.f32(),
            qoffset_z: r.f32(),
            srow_x: r.f32s(),
            srow_y: r.f32s(),
            srow_z: r.f32s(),
            intent_name: r.take(),
            magic: r.take(),
            byte_order: order,
        };
        debug_assert_eq!(r.pos, HEADER_SIZE);
        if header.magic == MAGIC_PAIR {
            return Err(NiftiError::Unsupported(
                "this is the header of a .hdr/.img pair; save it as a single .nii or .nii.gz file".into(),
            ));
        }
        if header.magic != MAGIC_SINGLE {
            return Err(NiftiError::NotNifti(format!(
                "wrong magic {:?} at byte 344 (expected \"n+1\"); an Analyze 7.5 file or not NIfTI",
                String::from_utf8_lossy(&header.magic)
            )));
        }
        Ok(header)
    }

    /// The 348 header bytes in the header's byte order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = FieldWriter {
            bytes: Vec::with_capacity(HEADER_SIZE),
            order: self.byte_order,
        };
        w.i32(HEADER_SIZE as i32);
        w.raw(&self.data_type);
        w.raw(&self.db_name);
        w.i32(self.extents);
        w.i16(self.session_error);
        w.raw(&[self.regular, self.dim_info]);
        self.dim.iter().for_each(|d| w.i16(*d));
        w.f32(self.intent_p1);
        w.f32(self.intent_p2);
        w.f32(self.intent_p3);
        w.i16(self.intent_code);
        w.i16(self.datatype);
        w.i16(self.bitpix);
        w.i16(self.slice_start);
        self.pixdim.iter().for_each(|p| w.f32(*p));
        w.f32(self.vox_offset);
        w.f32(self.scl_slope);
        w.f32(self.scl_inter);
        w.i16(self.slice_end);
        w.raw(&[self.slice_code, self.xyzt_units]);
        w.f32(self.cal_max);
        w.f32(self.cal_min);
        w.f32(self.slice_duration);
        w.f32(self.toffset);
        w.i32(self.glmax);
        w.i32(self.glmin);
        w.raw(&self.descrip);
        w.raw(&self.aux_file);
        w.i16(self.qform_code);
        w.i16(self.sform_code);
        for v in [
            self.quatern_b,
            self.quatern_c,
            self.quatern_d,
            self.qoffset_x,
            self.qoffset_y,
            self.qoffset_z,
        ] {
            w.f32(v);
        }
        for row in [self.srow_x, self.srow_y, self.srow_z] {
            row.iter().for_each(|v| w.f32(*v));
        }
        w.raw(&self.intent_name);
        w.raw(&self.magic);
        debug_assert_eq!(w.bytes.len(), HEADER_SIZE);
        w.bytes
    }

    /// The world_from_voxel affine exactly as nibabel's `img.affine` computes it:
    /// the sform when `sform_code != 0`, else the qform when `qform_code != 0`, else the
    /// Analyze-style base affine from `pixdim` (x flipped, origin at the volume centre).
    pub fn world_from_voxel(&self) -> Affine {
        if self.sform_code != 0 {
            return self.sform();
        }
        if self.qform_code != 0 {
            return self.qform();
        }
        self.base_affine()
    }

    /// [`NiftiHeader::world_from_voxel`] in millimetres: scaled by the spatial unit of
    /// `xyzt_units` (metres and microns are converted; millimetres and "unknown" are kept).
    /// nibabel leaves the units to the user; our volumes, spacings and metrics are in mm.
    pub fn world_from_voxel_mm(&self) -> Affine {
        let factor = self.millimetres_per_unit();
        let mut affine = self.world_from_voxel();
        for row in affine.0.iter_mut().take(3) {
            row.iter_mut().for_each(|v| *v *= factor);
        }
        affine
    }

    /// The sform rows as an affine.
    pub fn sform(&self) -> Affine {
        let row = |r: [f32; 4]| r.map(f64::from);
        Affine([
            row(self.srow_x),
            row(self.srow_y),
            row(self.srow_z),
            [0.0, 0.0, 0.0, 1.0],
        ])
    }

    /// The qform (quaternion, pixdim and qfac) as an affine.
    pub fn qform(&self) -> Affine {
        let (b, c, d) = (
            f64::from(self.quatern_b),
            f64::from(self.quatern_c),
            f64::from(self.quatern_d),
        );
        // Rounding in stored quaternions can push 1 - b² - c² - d² slightly negative.
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let rotation = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let zooms = [
            f64::from(self.pixdim[1]),
            f64::from(self.pixdim[2]),
            f64::from(self.pixdim[3]) * qfac,
        ];
        let mut linear = rotation;
        for row in &mut linear {
            for (col, value) in row.iter_mut().enumerate() {
                *value *= zooms[col];
            }
        }
        Affine::from_parts(
            linear,
            [
                f64::from(self.qoffset_x),
                f64::from(self.qoffset_y),
                f64::from(self.qoffset_z),
            ],
        )
    }

    /// nibabel's `get_base_affine`: diag(-px, py, pz) with the volume centre at the origin.
    fn base_affine(&self) -> Affine {
        let shape = self.spatial_shape_i64();
        let zooms = [
            -f64::from(self.pixdim[1]),
            f64::from(self.pixdim[2]),
            f64::from(self.pixdim[3]),
        ];
        let mut translation = [0.0; 3];
        for axis in 0..3 {
            translation[axis] = -((shape[axis] - 1) as f64 / 2.0) * zooms[axis];
        }
        Affine::from_parts(
            [[zooms[0], 0.0, 0.0], [0.0, zooms[1], 0.0], [0.0, 0.0, zooms[2]]],
            translation,
        )
    }

    /// The first three dims, 1 where the header has fewer.
    fn spatial_shape_i64(&self) -> [i64; 3] {
        let ndim = self.dim[0].clamp(0, 7) as usize;
        std::array::from_fn(|axis| {
            if axis < ndim {
                i64::from(self.dim[axis + 1])
            } else {
                1
            }
        })
    }

    /// Sets both sform and qform to a world_from_voxel affine in millimetres, as nibabel's
    /// `set_sform` + `set_qform` do, with code 1 (scanner) unless the header already had
    /// non-zero codes; the spatial unit becomes millimetres (the time unit is kept).
    pub fn set_affine(&mut self, world_from_voxel: &Affine) {
        const SPATIAL_UNIT_BITS: u8 = 0x07;
        const MILLIMETRES: u8 = 2;
        self.xyzt_units = (self.xyzt_units & !SPATIAL_UNIT_BITS) | MILLIMETRES;
        let m = &world_from_voxel.0;
        let to_row = |r: &[f64; 4]| r.map(|v| v as f32);
        self.srow_x = to_row(&m[0]);
        self.srow_y = to_row(&m[1]);
        self.srow_z = to_row(&m[2]);
        if self.sform_code == 0 {
            self.sform_code = 1;
        }
        let q = super::orientation::quaternion_from_affine(world_from_voxel);
        self.quatern_b = q.b as f32;
        self.quatern_c = q.c as f32;
        self.quatern_d = q.d as f32;
        self.qoffset_x = m[0][3] as f32;
        self.qoffset_y = m[1][3] as f32;
        self.qoffset_z = m[2][3] as f32;
        self.pixdim[0] = q.qfac as f32;
        for axis in 0..3 {
            self.pixdim[axis + 1] = q.zooms[axis] as f32;
        }
        if self.qform_code == 0 {
            self.qform_code = 1;
        }
    }

    /// The `descrip` field as text.
    pub fn description(&self) -> String {
        c_string(&self.descrip)
    }

    /// Sets the `descrip` field, truncated to its 79 usable bytes.
    pub fn set_description(&mut self, text: &str) {
        self.descrip = [0; 80];
        let bytes = text.as_bytes();
        let n = bytes.len().min(79);
        self.descrip[..n].copy_from_slice(&bytes[..n]);
    }

    /// The voxel data's scaling, or `None` when it is the identity. A slope of 0 or NaN means
    /// "no scaling" (NIfTI-1 standard), whatever the intercept.
    pub fn scaling(&self) -> Option<(f64, f64)> {
        let slope = f64::from(self.scl_slope);
        let inter = f64::from(self.scl_inter);
        if slope == 0.0 || !slope.is_finite() {
            return None;
        }
        let inter = if inter.is_finite() { inter } else { 0.0 };
        if slope == 1.0 && inter == 0.0 {
            None
        } else {
            Some((slope, inter))
        }
    }

    /// The spatial units' factor to millimetres from `xyzt_units` (unknown counts as mm).
    pub fn millimetres_per_unit(&self) -> f64 {
        match self.xyzt_units & 0x07 {
            1 => 1000.0, // metre
            3 => 0.001,  // micron
            _ => 1.0,
        }
    }
}

/// Text up to the first NUL.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NiftiHeader {
        let mut h = NiftiHeader {
            dim: [4, 5, 6, 7, 2, 1, 1, 1],
            datatype: 4,
            bitpix: 16,
            pixdim: [1.0, 0.8, 0.9, 2.5, 1.0, 0.0, 0.0, 0.0],
            scl_slope: 2.0,
            scl_inter: -3.0,
            ..NiftiHeader::default()
        };
        h.set_description("round trip");
        h
    }

    #[test]
    fn header_round_trips_in_both_byte_orders() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let header = NiftiHeader {
                byte_order: order,
                ..sample()
            };
            let bytes = header.to_bytes();
            assert_eq!(bytes.len(), HEADER_SIZE);
            let array: [u8; HEADER_SIZE] = bytes.try_into().expect("348 bytes");
            let back = NiftiHeader::parse(&array).expect("parses");
            assert_eq!(back, header);
        }
        // Big-endian sizeof_hdr really is stored most significant byte first.
        let big = NiftiHeader {
            byte_order: ByteOrder::Big,
            ..sample()
        }
        .to_bytes();
        assert_eq!(&big[..4], &[0, 0, 1, 92]);
    }

    #[test]
    fn qform_matches_hand_computed_rotation() {
        // 90° about z: quaternion (a, b, c, d) = (cos 45°, 0, 0, sin 45°). Rotation maps
        // x → y and y → -x, so world_from_voxel columns are (0, px, 0), (-py, 0, 0), (0, 0, pz).
        let h = NiftiHeader {
            qform_code: 1,
            quatern_d: std::f32::consts::FRAC_1_SQRT_2,
            qoffset_x: 10.0,
            qoffset_y: 20.0,
            qoffset_z: 30.0,
            pixdim: [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
            ..NiftiHeader::default()
        };
        let expected = Affine::from_parts(
            [[0.0, -3.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 4.0]],
            [10.0, 20.0, 30.0],
        );
        assert!(h.world_from_voxel().max_abs_diff(&expected) < 1e-6);
        // qfac = -1 flips the third column.
        let flipped = NiftiHeader {
            pixdim: [-1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0],
            ..h
        };
        assert!((flipped.world_from_voxel().0[2][2] + 4.0).abs() < 1e-6);
    }

    #[test]
    fn base_affine_matches_nibabel_formula() {
        // nibabel: shape_zoom_affine((5, 6, 7), (0.8, 0.9, 2.5)) with x flip.
        let h = NiftiHeader {
            dim: [3, 5, 6, 7, 1, 1, 1, 1],
            pixdim: [1.0, 0.8, 0.9, 2.5, 0.0, 0.0, 0.0, 0.0],
            ..NiftiHeader::default()
        };
        let expected = Affine::from_parts(
            [[-0.8, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 2.5]],
            [1.6, -2.25, -7.5],
        );
        assert!(h.world_from_voxel().max_abs_diff(&expected) < 1e-6);
    }

    #[test]
    fn set_affine_round_trips_through_sform_and_qform() {
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        let affine = Affine::from_parts(
            [
                [-0.7 * c, 0.0, 2.5 * s],
                [0.0, -0.7, 0.0],
                [0.7 * s, 0.0, 2.5 * c],
            ],
            [90.0, 110.0, -60.0],
        );
        let mut h = NiftiHeader::default();
        h.set_affine(&affine);
        assert!(h.sform().max_abs_diff(&affine) < 1e-4);
        assert!(h.qform().max_abs_diff(&affine) < 1e-4, "{:?}", h.qform());
    }

    #[test]
    fn bad_headers_are_refused_with_reasons() {
        let mut bytes: [u8; HEADER_SIZE] = sample().to_bytes().try_into().expect("348");
        bytes[344] = b'x';
        let err = NiftiHeader::parse(&bytes).expect_err("bad magic");
        assert!(err.to_string().contains("magic"), "{err}");
        bytes[0..4].copy_from_slice(&540i32.to_le_bytes());
        assert!(
            NiftiHeader::parse(&bytes)
                .expect_err("nifti2")
                .to_string()
                .contains("NIfTI-2")
        );
        bytes[0..4].copy_from_slice(&[1, 2, 3, 4]);
        assert!(
            NiftiHeader::parse(&bytes)
                .expect_err("junk")
                .to_string()
                .contains("348")
        );
    }

    #[test]
    fn zero_or_nan_slope_means_no_scaling() {
        let mut h = sample();
        assert_eq!(h.scaling(), Some((2.0, -3.0)));
        h.scl_slope = 0.0;
        assert_eq!(h.scaling(), None);
        h.scl_slope = f32::NAN;
        assert_eq!(h.scaling(), None);
    }

    #[test]
    fn spatial_units_are_converted_to_millimetres() {
        let mut h = NiftiHeader::default();
        h.set_affine(&Affine::from_diagonal([500.0, 500.0, 1000.0]));
        assert_eq!(h.xyzt_units & 0x07, 2, "set_affine writes millimetres");
        assert_eq!(h.world_from_voxel_mm().0, h.world_from_voxel().0);
        // The same numbers in microns (3) are 0.5 × 0.5 × 1 mm voxels; in metres (1), 1000×.
        h.xyzt_units = 3 | 8;
        let mm = h.world_from_voxel_mm();
        assert!(
            (mm.0[0][0] - 0.5).abs() < 1e-9 && (mm.0[2][2] - 1.0).abs() < 1e-9,
            "{mm:?}"
        );
        h.xyzt_units = 1;
        assert!((h.world_from_voxel_mm().0[1][1] - 500_000.0).abs() < 1e-6);
    }
}
