//! A reader for the safetensors format (8-byte header length, JSON header, raw little-endian
//! data) that reads one tensor at a time by seeking, so a 5 GB shard is never loaded whole.

use super::WeightsError;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Headers larger than this are refused (real ones are well under a megabyte).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// The number of elements of a shape, `None` when it overflows.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d))
}

/// Parses a safetensors JSON header (the bytes after the 8-byte length): tensor name → entry,
/// `__metadata__` skipped. Entries with inverted data offsets or overflowing shapes are refused.
pub fn parse_header(header: &[u8]) -> Result<BTreeMap<String, TensorInfo>, String> {
    let json: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format!("header is not valid JSON: {e}"))?;
    let mut tensors = BTreeMap::new();
    for (name, value) in json {
        if name == "__metadata__" {
            continue;
        }
        let info: TensorInfo =
            serde_json::from_value(value).map_err(|e| format!("tensor {name}: malformed entry ({e})"))?;
        if info.data_offsets[1] < info.data_offsets[0] || element_count(&info.shape).is_none() {
            return Err(format!(
                "tensor {name}: shape {:?} or data offsets {:?} are impossible",
                info.shape, info.data_offsets
            ));
        }
        tensors.insert(name, info);
    }
    Ok(tensors)
}

/// A tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TensorInfo {
    /// "BF16", "F16", "F32", …
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub data_offsets: [u64; 2],
}

/// An open safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    file: File,
    data_start: u64,
    file_len: u64,
    tensors: BTreeMap<String, TensorInfo>,
}

impl SafetensorsFile {
    /// Opens a file and parses its header.
    pub fn open(path: &Path) -> Result<Self, WeightsError> {
        let bad = |reason: String| WeightsError::File {
            path: path.to_path_buf(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let file_len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .map_err(|_| bad("too short for a safetensors header".into()))?;
        let header_len = u64::from_le_bytes(length);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
            return Err(bad(format!(
                "header length {header_len} is impossible for a {file_len}-byte file; not safetensors or truncated"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
        let tensors = parse_header(&header).map_err(bad)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            data_start: 8 + header_len,
            file_len,
            tensors,
        })
    }

    /// Tensor names in the file.
    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// A tensor's header entry.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// Reads a tensor as f32, checking its shape.
    pub fn read_f32(&mut self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let bad = |reason: String| WeightsError::BadTensor {
            path: self.path.clone(),
            name: name.to_string(),
            reason,
        };
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| bad("not in this file".into()))?
            .clone();
        if info.shape != expected_shape {
            return Err(bad(format!(
                "shape {:?}, expected {:?}",
                info.shape, expected_shape
            )));
        }
        let count =
            element_count(&info.shape).ok_or_else(|| bad(format!("shape {:?} overflows", info.shape)))?;
        let width = match info.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(bad(format!("dtype {other}; supported: BF16, F16, F32"))),
        };
        let [begin, end] = info.data_offsets;
        let bytes_needed = count
            .checked_mul(width)
            .ok_or_else(|| bad(format!("shape {:?} overflows", info.shape)))?;
        if end < begin
            || end - begin != bytes_needed as u64
            || self.data_start.checked_add(end).is_none_or(|e| e > self.file_len)
        {
            return Err(bad(format!(
                "data offsets {begin}..{end} do not hold {count} values or lie past the end of the file"
            )));
        }
        let mut bytes = vec![0u8; bytes_needed];
        self.file
            .seek(SeekFrom::Start(self.data_start + begin))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| bad(e.to_string()))?;
        Ok(match info.dtype.as_str() {
            "F32" => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            "F16" => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        })
    }
}
