//! NIfTI voxel datatypes we read and write, and the one function that decodes file-order bytes.

use super::header::ByteOrder;
use rayon::prelude::*;

/// A voxel datatype supported for reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(missing_docs)] // the variant names are the types
pub enum DataType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F32,
    F64,
}

impl DataType {
    /// All supported types.
    pub const ALL: [DataType; 9] = [
        DataType::U8,
        DataType::I8,
        DataType::I16,
        DataType::U16,
        DataType::I32,
        DataType::U32,
        DataType::I64,
        DataType::F32,
        DataType::F64,
    ];

    /// The type for a NIfTI `datatype` code, or `None` for codes we do not support.
    pub fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => DataType::U8,
            4 => DataType::I16,
            8 => DataType::I32,
            16 => DataType::F32,
            64 => DataType::F64,
            256 => DataType::I8,
            512 => DataType::U16,
            768 => DataType::U32,
            1024 => DataType::I64,
            _ => return None,
        })
    }

    /// The NIfTI `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            DataType::U8 => 2,
            DataType::I16 => 4,
            DataType::I32 => 8,
            DataType::F32 => 16,
            DataType::F64 => 64,
            DataType::I8 => 256,
            DataType::U16 => 512,
            DataType::U32 => 768,
            DataType::I64 => 1024,
        }
    }

    /// Bytes per value.
    pub fn size_bytes(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::I64 | DataType::F64 => 8,
        }
    }

    /// The name nibabel and numpy use (`int16`, `float32`, …).
    pub fn name(self) -> &'static str {
        match self {
            DataType::U8 => "uint8",
            DataType::I8 => "int8",
            DataType::I16 => "int16",
            DataType::U16 => "uint16",
            DataType::I32 => "int32",
            DataType::U32 => "uint32",
            DataType::I64 => "int64",
            DataType::F32 => "float32",
            DataType::F64 => "float64",
        }
    }

    /// Parses a name as [`DataType::name`] prints it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name of an unsupported NIfTI code, for error messages.
    pub fn describe_code(code: i16) -> String {
        let name = match code {
            1 => "binary",
            32 => "complex64",
            128 => "rgb24",
            1280 => "uint64",
            1536 => "float128",
            1792 => "complex128",
            2048 => "complex256",
            2304 => "rgba32",
            _ => "unknown",
        };
        format!("{name} (code {code})")
    }

    /// The representable range, used to refuse writing values that would wrap.
    pub fn range(self) -> (f64, f64) {
        match self {
            DataType::U8 => (0.0, f64::from(u8::MAX)),
            DataType::I8 => (f64::from(i8::MIN), f64::from(i8::MAX)),
            DataType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
            DataType::U16 => (0.0, f64::from(u16::MAX)),
            DataType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
            DataType::U32 => (0.0, f64::from(u32::MAX)),
            DataType::I64 => (i64::MIN as f64, i64::MAX as f64),
            DataType::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
            DataType::F64 => (f64::MIN, f64::MAX),
        }
    }

    /// Whether this is an integer type (values are rounded on write).
    pub fn is_integer(self) -> bool {
        !matches!(self, DataType::F32 | DataType::F64)
    }
}

/// Voxels decoded per parallel work item: large enough to amortise scheduling.
const DECODE_CHUNK_VOXELS: usize = 1 << 18;

/// Decodes raw voxel bytes in the file's order into our voxel order, applying `value · slope +
/// intercept` when `scaling` is given.
///
/// This is the one place where the file's layout becomes ours. NIfTI stores voxels column-major
/// (x fastest, then y, z, then the 4th axis); our [`super::Volume`] uses the same
/// `[channel][z][y][x]` order (x fastest), so the layout is kept and only the bytes are decoded.
pub fn voxels_from_file_order(
    bytes: &[u8],
    datatype: DataType,
    order: ByteOrder,
    scaling: Option<(f64, f64)>,
) -> Vec<f32> {
    let mut voxels = vec![0f32; bytes.len() / datatype.size_bytes()];
    decode_voxels_into(&mut voxels, bytes, datatype, order, scaling);
    voxels
}

/// [`voxels_from_file_order`] into a caller's buffer (the streaming reader reuses one): decodes
/// `min(out.len(), bytes.len() / size)` voxels.
pub fn decode_voxels_into(
    out: &mut [f32],
    bytes: &[u8],
    datatype: DataType,
    order: ByteOrder,
    scaling: Option<(f64, f64)>,
) {
    let size = datatype.size_bytes();
    out.par_chunks_mut(DECODE_CHUNK_VOXELS)
        .zip(bytes.par_chunks(DECODE_CHUNK_VOXELS * size))
        .for_each(|(out, raw)| decode_chunk(out, raw, datatype, order, scaling));
}

fn decode_chunk(
    out: &mut [f32],
    raw: &[u8],
    datatype: DataType,
    order: ByteOrder,
    scaling: Option<(f64, f64)>,
) {
    macro_rules! decode {
        ($t:ty, $n:expr) => {{
            for (value, chunk) in out.iter_mut().zip(raw.chunks_exact($n)) {
                let mut b = [0u8; $n];
                b.copy_from_slice(chunk);
                let v = match order {
                    ByteOrder::Little => <$t>::from_le_bytes(b),
                    ByteOrder::Big => <$t>::from_be_bytes(b),
                };
                *value = match scaling {
                    // Scale in f64: int32 values times a slope lose precision in f32.
                    Some((slope, inter)) => (v as f64 * slope + inter) as f32,
                    None => v as f32,
                };
            }
        }};
    }
    match datatype {
        DataType::U8 => decode!(u8, 1),
        DataType::I8 => decode!(i8, 1),
        DataType::I16 => decode!(i16, 2),
        DataType::U16 => decode!(u16, 2),
        DataType::I32 => decode!(i32, 4),
        DataType::U32 => decode!(u32, 4),
        DataType::I64 => decode!(i64, 8),
        DataType::F32 => decode!(f32, 4),
        DataType::F64 => decode!(f64, 8),
    }
}

/// The voxels as bytes when every one is a whole number from 0 to 255 (what `encode_voxels`
/// with uint8 would write for them); `None` as soon as one is not (fraction, negative, > 255,
/// NaN), so the caller can fall back to the general, rounding writer.
pub fn whole_numbers_as_u8(voxels: &[f32]) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; voxels.len()];
    let all_whole = bytes
        .par_chunks_mut(DECODE_CHUNK_VOXELS)
        .zip(voxels.par_chunks(DECODE_CHUNK_VOXELS))
        .all(|(out, values)| {
            let mut whole = true;
            for (byte, &value) in out.iter_mut().zip(values) {
                // A saturating cast, exact for whole numbers 0–255 and only for them.
                *byte = value as u8;
                whole &= f32::from(*byte) == value;
            }
            whole
        });
    all_whole.then_some(bytes)
}

/// Encodes voxels as `datatype` in a byte order; integers are rounded to nearest.
/// The caller has checked that every value fits (see [`DataType::range`]).
pub fn encode_voxels(voxels: &[f32], datatype: DataType, order: ByteOrder) -> Vec<u8> {
    let size = datatype.size_bytes();
    let mut bytes = vec![0u8; voxels.len() * size];
    bytes
        .par_chunks_mut(DECODE_CHUNK_VOXELS * size)
        .zip(voxels.par_chunks(DECODE_CHUNK_VOXELS))
        .for_each(|(out, values)| {
            macro_rules! encode {
                ($t:ty, $n:expr, $conv:expr) => {{
                    for (chunk, value) in out.chunks_exact_mut($n).zip(values) {
                        let v: $t = $conv(*value);
                        let b = match order {
                            ByteOrder::Little => v.to_le_bytes(),
                            ByteOrder::Big => v.to_be_bytes(),
                        };
                        chunk.copy_from_slice(&b);
                    }
                }};
            }
            match datatype {
                DataType::U8 => encode!(u8, 1, |v: f32| v.round() as u8),
                DataType::I8 => encode!(i8, 1, |v: f32| v.round() as i8),
                DataType::I16 => encode!(i16, 2, |v: f32| v.round() as i16),
                DataType::U16 => encode!(u16, 2, |v: f32| v.round() as u16),
                DataType::I32 => encode!(i32, 4, |v: f32| v.round() as i32),
                DataType::U32 => encode!(u32, 4, |v: f32| v.round() as u32),
                DataType::I64 => encode!(i64, 8, |v: f32| v.round() as i64),
                DataType::F32 => encode!(f32, 4, |v: f32| v),
                DataType::F64 => encode!(f64, 8, f64::from),
            }
        });
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_matches_a_hand_written_column_major_layout() {
        // A 3×2×2 int16 volume with 2 channels, written byte by byte in big-endian column-major
        // order from the formula value(x, y, z, c) = 100c + 10z + 3y + x - 7.
        let (nx, ny, nz, nc) = (3usize, 2usize, 2usize, 2usize);
        let value = |x: usize, y: usize, z: usize, c: usize| (100 * c + 10 * z + 3 * y + x) as i16 - 7;
        let mut bytes = Vec::new();
        for c in 0..nc {
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        bytes.extend_from_slice(&value(x, y, z, c).to_be_bytes());
                    }
                }
            }
        }
        let voxels = voxels_from_file_order(&bytes, DataType::I16, ByteOrder::Big, Some((0.5, 1.0)));
        for c in 0..nc {
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let ours = voxels[((c * nz + z) * ny + y) * nx + x];
                        let want = f32::from(value(x, y, z, c)) * 0.5 + 1.0;
                        assert_eq!(ours, want, "at ({x}, {y}, {z}, {c})");
                    }
                }
            }
        }
    }

    #[test]
    fn whole_numbers_become_the_bytes_the_uint8_encoder_writes_and_anything_else_is_refused() {
        // More voxels than one parallel chunk, so every chunk's answer counts.
        let whole: Vec<f32> = (0..DECODE_CHUNK_VOXELS * 2 + 17)
            .map(|i| (i % 256) as f32)
            .collect();
        assert_eq!(
            whole_numbers_as_u8(&whole),
            Some(encode_voxels(&whole, DataType::U8, ByteOrder::Little))
        );
        for bad in [0.5, 1.000_001, -1.0, 256.0, f32::NAN, f32::INFINITY] {
            let mut voxels = whole.clone();
            voxels[DECODE_CHUNK_VOXELS + 3] = bad;
            assert_eq!(whole_numbers_as_u8(&voxels), None, "{bad}");
        }
        assert_eq!(whole_numbers_as_u8(&[-0.0]), Some(vec![0]));
    }

    #[test]
    fn every_type_encodes_and_decodes_exactly_in_both_orders() {
        for datatype in DataType::ALL {
            let (low, high) = datatype.range();
            // Values exactly representable in f32 and in range for every type.
            let values: Vec<f32> = [0.0f32, 1.0, 2.0, 100.0, -1.0, -100.0, 127.0]
                .into_iter()
                .filter(|v| f64::from(*v) >= low && f64::from(*v) <= high)
                .collect();
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let bytes = encode_voxels(&values, datatype, order);
                assert_eq!(bytes.len(), values.len() * datatype.size_bytes());
                let back = voxels_from_file_order(&bytes, datatype, order, None);
                assert_eq!(back, values, "{} {:?}", datatype.name(), order);
            }
            assert_eq!(DataType::from_code(datatype.code()), Some(datatype));
            assert_eq!(DataType::from_name(datatype.name()), Some(datatype));
        }
        assert_eq!(DataType::from_code(128), None);
    }
}
