//! Reading NIfTI voxels as a stream of decoded chunks: loading a volume within a memory budget,
//! summarising a file of any size with a bounded buffer (`mvl info`), and reading from bytes in
//! memory (the fuzzing entry point).
//!
//! The raw bytes are never held whole: each chunk is decoded into `f32` as it arrives, so loading
//! costs the decoded volume plus one chunk, and summarising costs one chunk.

use super::Affine;
use super::Volume;
use super::datatype::{DataType, decode_voxels_into};
use super::header::{HEADER_SIZE, NiftiHeader};
use super::nifti::{
    DataLayout, GZIP_MAGIC, NiftiImage, open_stream, read_failure, read_header_from, validate_header,
};
use super::nifti_error::NiftiError;
use super::stats::{StatsAccumulator, VoxelStats};
use crate::memory::{Budget, human_bytes};
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// Voxels decoded per chunk: 4 MiB of f32, large enough to keep the decoder busy.
const CHUNK_VOXELS: usize = 1 << 20;
/// Bytes per decoded voxel in memory.
const DECODED_VOXEL_BYTES: u64 = std::mem::size_of::<f32>() as u64;

/// A file's header, geometry and intensity summary, computed without holding its voxels.
#[derive(Debug, Clone)]
pub struct NiftiScan {
    /// The header as stored.
    pub header: NiftiHeader,
    /// The stored datatype.
    pub datatype: DataType,
    /// The voxel-to-world affine.
    pub world_from_voxel: Affine,
    /// Statistics of the scaled voxels, every channel together.
    pub stats: VoxelStats,
}

/// A stream positioned at the first voxel, with what the header says about the voxels.
struct Opened {
    header: NiftiHeader,
    layout: DataLayout,
    world_from_voxel: Affine,
}

/// Reads and checks the header, and skips the extensions. `plain_len` is the byte length of an
/// uncompressed source (known up front, so truncation is caught before reading).
fn open_voxels(stream: &mut dyn Read, is_gzip: bool, plain_len: Option<u64>) -> Result<Opened, NiftiError> {
    let header = read_header_from(stream, is_gzip)?;
    let layout = validate_header(&header)?;
    let data_bytes = layout.data_bytes() as u64;
    if let Some(file_len) = plain_len.filter(|_| !is_gzip)
        && file_len < layout.vox_offset as u64 + data_bytes
    {
        return Err(NiftiError::Truncated(format!(
            "dims {:?}×{} of {} need {} bytes of voxels from offset {}, but the file has {} bytes",
            layout.shape,
            layout.channels,
            layout.datatype.name(),
            data_bytes,
            layout.vox_offset,
            file_len
        )));
    }
    let world_from_voxel = header.world_from_voxel_mm();
    if world_from_voxel.inverse().is_none() {
        return Err(NiftiError::InvalidHeader(format!(
            "the voxel-to-world affine {:?} is singular (a zero voxel size in pixdim or srow); \
             fix the header's pixdim or sform",
            world_from_voxel.0
        )));
    }
    let skip = (layout.vox_offset - HEADER_SIZE) as u64;
    std::io::copy(&mut stream.take(skip), &mut std::io::sink())
        .map_err(|e| read_failure(e, is_gzip, "header extensions"))?;
    Ok(Opened {
        header,
        layout,
        world_from_voxel,
    })
}

/// Fills `buffer` as far as the stream allows; returns how many bytes were read.
fn read_up_to(stream: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Decodes the voxels chunk by chunk, handing each to `sink`.
fn stream_voxels(
    stream: &mut dyn Read,
    opened: &Opened,
    is_gzip: bool,
    mut sink: impl FnMut(&[f32]),
) -> Result<(), NiftiError> {
    let layout = &opened.layout;
    let size = layout.datatype.size_bytes();
    let total = layout.voxel_count();
    let chunk = total.clamp(1, CHUNK_VOXELS);
    let mut raw = vec![0u8; chunk * size];
    let mut decoded = vec![0f32; chunk];
    let scaling = opened.header.scaling();
    let mut done = 0usize;
    while done < total {
        let n = chunk.min(total - done);
        let got =
            read_up_to(stream, &mut raw[..n * size]).map_err(|e| read_failure(e, is_gzip, "voxel data"))?;
        if got < n * size {
            return Err(NiftiError::Truncated(format!(
                "dims {:?}×{} of {} need {} bytes of voxels, but only {} are present",
                layout.shape,
                layout.channels,
                layout.datatype.name(),
                layout.data_bytes(),
                done * size + got
            )));
        }
        decode_voxels_into(
            &mut decoded[..n],
            &raw[..n * size],
            layout.datatype,
            opened.header.byte_order,
            scaling,
        );
        sink(&decoded[..n]);
        done += n;
    }
    Ok(())
}

/// Refuses a layout whose decoded voxels exceed the budget.
fn check_budget(layout: &DataLayout, budget: Budget) -> Result<(), NiftiError> {
    let decoded = layout.voxel_count() as u64 * DECODED_VOXEL_BYTES;
    budget
        .check(
            decoded,
            &format!(
                "decoding its {} voxels ({:?}×{} of {}, {} stored)",
                layout.voxel_count(),
                layout.shape,
                layout.channels,
                layout.datatype.name(),
                human_bytes(layout.data_bytes() as u64)
            ),
        )
        .map_err(NiftiError::TooLarge)
}

fn read_from(
    stream: &mut dyn Read,
    is_gzip: bool,
    plain_len: Option<u64>,
    budget: Budget,
) -> Result<NiftiImage, NiftiError> {
    let opened = open_voxels(stream, is_gzip, plain_len)?;
    check_budget(&opened.layout, budget)?;
    // The full capacity is reserved but not touched: only pages the data fills become resident,
    // so a gzip header that lies about its size costs no more than the data actually present.
    let mut voxels = Vec::with_capacity(opened.layout.voxel_count());
    stream_voxels(stream, &opened, is_gzip, |chunk| voxels.extend_from_slice(chunk))?;
    let volume = Volume::new(
        opened.layout.shape,
        opened.layout.channels,
        voxels,
        opened.world_from_voxel,
    )
    .map_err(|e| NiftiError::InvalidHeader(e.to_string()))?;
    Ok(NiftiImage {
        header: opened.header,
        datatype: opened.layout.datatype,
        volume,
    })
}

/// Reads a NIfTI-1 volume (`.nii` or `.nii.gz`, 3-D or 4-D, either byte order), refusing one
/// whose decoded voxels exceed the memory budget in force ([`crate::memory::budget`]).
pub fn read_nifti(path: &Path) -> Result<NiftiImage, NiftiError> {
    read_nifti_within(path, crate::memory::budget())
}

/// Reads a NIfTI-1 volume, refusing (before allocating) one whose decoded voxels — 4 bytes
/// each — exceed `budget`. The error names the file, the decoded size and the limit.
pub fn read_nifti_within(path: &Path, budget: Budget) -> Result<NiftiImage, NiftiError> {
    let inner = || {
        let (mut stream, is_gzip, file_len) = open_stream(path)?;
        read_from(&mut stream, is_gzip, Some(file_len), budget)
    };
    inner().map_err(|e| e.in_file(path))
}

/// Reads a NIfTI-1 volume from bytes in memory (`.nii` or gzipped `.nii.gz` contents).
pub fn read_nifti_bytes(bytes: &[u8], budget: Budget) -> Result<NiftiImage, NiftiError> {
    let is_gzip = bytes.starts_with(&GZIP_MAGIC);
    let mut plain = bytes;
    let mut gunzip = MultiGzDecoder::new(bytes);
    let stream: &mut dyn Read = if is_gzip { &mut gunzip } else { &mut plain };
    read_from(stream, is_gzip, Some(bytes.len() as u64), budget)
}

/// Reads a file's header and summarises its voxels while streaming them: memory stays at one
/// chunk whatever the file's size, so it works on files too large to load.
pub fn scan_nifti(path: &Path) -> Result<NiftiScan, NiftiError> {
    let inner = || {
        let (mut stream, is_gzip, file_len) = open_stream(path)?;
        let opened = open_voxels(&mut stream, is_gzip, Some(file_len))?;
        let mut stats = StatsAccumulator::default();
        stream_voxels(&mut stream, &opened, is_gzip, |chunk| stats.push(chunk))?;
        Ok::<_, NiftiError>(NiftiScan {
            header: opened.header,
            datatype: opened.layout.datatype,
            world_from_voxel: opened.world_from_voxel,
            stats: stats.finish(),
        })
    };
    inner().map_err(|e| e.in_file(path))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
