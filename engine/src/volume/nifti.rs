//! Reading and writing NIfTI-1 volumes (`.nii`, `.nii.gz`), refusing bad input before it costs
//! memory, and writing atomically.

use super::Volume;
use super::datatype::{DataType, encode_voxels};
use super::header::{ByteOrder, HEADER_SIZE, NiftiHeader};
pub use super::nifti_error::NiftiError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The most voxels (all channels together) we agree to load: 2^30 voxels are 4 GiB as f32.
/// Larger headers are refused before anything is allocated.
pub const MAX_VOXELS: u64 = 1 << 30;
/// The header and the 4-byte extension flag that precede the voxels of a plain `.nii`.
pub(super) const MIN_VOX_OFFSET: usize = HEADER_SIZE + 4;
/// Extensions larger than this are refused (real ones are a few kilobytes).
const MAX_EXTENSION_BYTES: usize = 64 << 20;
/// Read buffer: large enough that the decompressor is never starved by system calls.
const READ_BUFFER_BYTES: usize = 1 << 20;
/// The two bytes every gzip stream begins with.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A volume read from disk together with the header it came with.
#[derive(Debug, Clone)]
pub struct NiftiImage {
    /// The header as stored (byte order, codes and all).
    pub header: NiftiHeader,
    /// The stored datatype.
    pub datatype: DataType,
    /// The voxels, scaled, and the geometry.
    pub volume: Volume,
}

/// What the header says the voxel data is.
#[derive(Debug, Clone, Copy)]
pub struct DataLayout {
    /// Spatial shape (x, y, z); 1 for missing axes of 2-D images.
    pub shape: [usize; 3],
    /// Number of volumes along the 4th axis (channels or time points).
    pub channels: usize,
    /// Voxel datatype.
    pub datatype: DataType,
    /// Byte offset of the first voxel.
    pub vox_offset: usize,
}

impl DataLayout {
    /// Bytes of voxel data.
    pub fn data_bytes(&self) -> usize {
        self.voxel_count() * self.datatype.size_bytes()
    }

    /// Voxels of all channels together.
    pub fn voxel_count(&self) -> usize {
        self.shape.iter().product::<usize>() * self.channels
    }
}

/// Checks a header's dims, datatype and offset, refusing anything absurd before allocation.
pub fn validate_header(header: &NiftiHeader) -> Result<DataLayout, NiftiError> {
    let ndim = header.dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(NiftiError::InvalidHeader(format!(
            "dim[0] (number of dimensions) is {ndim}; it must be between 1 and 7"
        )));
    }
    let ndim = ndim as usize;
    let mut extents = [1usize; 7];
    for (axis, slot) in extents.iter_mut().enumerate().take(ndim) {
        let extent = header.dim[axis + 1];
        if extent < 1 {
            return Err(NiftiError::InvalidHeader(format!(
                "dim[{}] is {extent}; every dimension must be at least 1",
                axis + 1
            )));
        }
        *slot = extent as usize;
    }
    if extents[4..].iter().any(|e| *e > 1) {
        return Err(NiftiError::Unsupported(format!(
            "{ndim}-D image with dims {:?}; only 3-D and 4-D (channels on the 4th axis) are supported",
            &extents[..ndim]
        )));
    }
    let total: u64 = extents.iter().map(|e| *e as u64).product();
    if total > MAX_VOXELS {
        return Err(NiftiError::InvalidHeader(format!(
            "dims {:?} ask for {total} voxels, more than the {MAX_VOXELS} we load; the header is \
             corrupt or the image must be cropped first",
            &extents[..ndim]
        )));
    }
    let datatype = DataType::from_code(header.datatype).ok_or_else(|| {
        NiftiError::Unsupported(format!(
            "voxel datatype {}; convert it to one of uint8, int8, int16, uint16, int32, uint32, \
             int64, float32, float64",
            DataType::describe_code(header.datatype)
        ))
    })?;
    let bits = 8 * datatype.size_bytes() as i16;
    if header.bitpix != bits {
        return Err(NiftiError::InvalidHeader(format!(
            "bitpix is {} but datatype {} has {bits} bits per voxel",
            header.bitpix,
            datatype.name()
        )));
    }
    let offset = header.vox_offset;
    if !offset.is_finite()
        || offset < MIN_VOX_OFFSET as f32
        || offset > (MIN_VOX_OFFSET + MAX_EXTENSION_BYTES) as f32
    {
        return Err(NiftiError::InvalidHeader(format!(
            "vox_offset is {offset}; in a .nii file it must be at least {MIN_VOX_OFFSET}"
        )));
    }
    Ok(DataLayout {
        shape: [extents[0], extents[1], extents[2]],
        channels: extents[3],
        datatype,
        vox_offset: offset as usize,
    })
}

/// Opens a file, transparently gunzipping when it starts with the gzip magic (whatever its name).
pub(super) fn open_stream(path: &Path) -> Result<(Box<dyn Read>, bool, u64), NiftiError> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut magic = [0u8; 2];
    let is_gzip = file.read_exact(&mut magic).is_ok() && magic == GZIP_MAGIC;
    file.seek(SeekFrom::Start(0))?;
    let buffered = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let stream: Box<dyn Read> = if is_gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok((stream, is_gzip, file_len))
}

/// Maps a read error to a truncation or gzip error.
pub(super) fn read_failure(error: std::io::Error, is_gzip: bool, what: &str) -> NiftiError {
    if error.kind() == std::io::ErrorKind::UnexpectedEof {
        return NiftiError::Truncated(format!("the file ends inside the {what}"));
    }
    if is_gzip
        && matches!(
            error.kind(),
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
        )
    {
        return NiftiError::Gzip(error.to_string());
    }
    NiftiError::Io(error)
}

pub(super) fn read_header_from(stream: &mut dyn Read, is_gzip: bool) -> Result<NiftiHeader, NiftiError> {
    let mut bytes = [0u8; HEADER_SIZE];
    stream
        .read_exact(&mut bytes)
        .map_err(|e| read_failure(e, is_gzip, "348-byte header"))?;
    NiftiHeader::parse(&bytes)
}

/// Reads only the header of a NIfTI file (fast: the voxels are not decompressed).
pub fn read_header(path: &Path) -> Result<NiftiHeader, NiftiError> {
    let inner = || {
        let (mut stream, is_gzip, _) = open_stream(path)?;
        read_header_from(&mut stream, is_gzip)
    };
    inner().map_err(|e| e.in_file(path))
}

/// How to write a volume.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Stored datatype; integer types are rounded and range-checked.
    pub datatype: DataType,
    /// Stored byte order.
    pub byte_order: ByteOrder,
}

impl WriteOptions {
    /// Little-endian in the given datatype.
    pub fn new(datatype: DataType) -> Self {
        Self {
            datatype,
            byte_order: ByteOrder::Little,
        }
    }
}

/// Tolerance under which a volume's affine counts as its reference header's affine (mm).
const SAME_AFFINE_TOLERANCE_MM: f64 = 1e-5;

/// Writes a volume as NIfTI-1, gzipped when the path ends in `.gz`, atomically (a temporary file
/// in the same folder, renamed over the target only once complete).
///
/// With a `reference` header (the scan a label belongs to) every field of that header is kept —
/// sform and qform codes, units, description, intent — and only the dims, datatype and scaling
/// change; if the volume's affine is the reference's, the sform and qform are copied verbatim so
/// the file reopens in exactly the same place in every tool.
pub fn write_nifti(
    path: &Path,
    volume: &Volume,
    reference: Option<&NiftiHeader>,
    options: WriteOptions,
) -> Result<(), NiftiError> {
    write_nifti_inner(path, volume, reference, options).map_err(|e| e.in_file(path))
}

fn write_nifti_inner(
    path: &Path,
    volume: &Volume,
    reference: Option<&NiftiHeader>,
    options: WriteOptions,
) -> Result<(), NiftiError> {
    let datatype = options.datatype;
    let (low, high) = datatype.range();
    // Floats hold anything an f32 holds; integers must be finite and in range after rounding.
    let does_not_fit = |v: &&f32| {
        datatype.is_integer() && (!v.is_finite() || f64::from(v.round()) < low || f64::from(v.round()) > high)
    };
    if let Some(bad) = volume.voxels().iter().find(does_not_fit) {
        return Err(NiftiError::Write(format!(
            "value {bad} does not fit {}; choose a wider datatype (e.g. float32)",
            datatype.name()
        )));
    }
    let header = output_header(
        reference,
        volume.shape(),
        volume.channels(),
        volume.world_from_voxel(),
        options,
    )?;
    let voxel_bytes = encode_voxels(volume.voxels(), datatype, options.byte_order);
    write_payload(path, &header, &voxel_bytes)
}

/// The header written before the voxels: `reference`'s (or a default one) with the shape,
/// datatype, byte order and scaling of what follows, and `world_from_voxel` unless the
/// reference already holds that affine (then its sform and qform are copied verbatim).
fn output_header(
    reference: Option<&NiftiHeader>,
    [nx, ny, nz]: [usize; 3],
    channels: usize,
    world_from_voxel: &super::Affine,
    options: WriteOptions,
) -> Result<NiftiHeader, NiftiError> {
    let datatype = options.datatype;
    let mut header = reference.cloned().unwrap_or_default();
    header.byte_order = options.byte_order;
    header.magic = super::header::MAGIC_SINGLE;
    let to_dim = |n: usize| {
        i16::try_from(n)
            .map_err(|_| NiftiError::Write(format!("dimension {n} exceeds NIfTI-1's limit of 32767")))
    };
    header.dim = [3, to_dim(nx)?, to_dim(ny)?, to_dim(nz)?, 1, 1, 1, 1];
    if channels > 1 {
        header.dim[0] = 4;
        header.dim[4] = to_dim(channels)?;
    }
    header.datatype = datatype.code();
    header.bitpix = 8 * datatype.size_bytes() as i16;
    header.vox_offset = MIN_VOX_OFFSET as f32;
    header.scl_slope = 1.0;
    header.scl_inter = 0.0;
    header.cal_min = 0.0;
    header.cal_max = 0.0;
    header.glmin = 0;
    header.glmax = 0;
    let keep_reference_affine = reference
        .is_some_and(|r| r.world_from_voxel_mm().max_abs_diff(world_from_voxel) < SAME_AFFINE_TOLERANCE_MM);
    if !keep_reference_affine {
        header.set_affine(world_from_voxel);
    }
    Ok(header)
}

/// Writes `header`, an empty extension flag and the encoded voxels atomically, gzipped (level 1:
/// labels and scans compress nearly as well as at level 6, several times faster) when the path
/// ends in `.gz`.
fn write_payload(path: &Path, header: &NiftiHeader, voxel_bytes: &[u8]) -> Result<(), NiftiError> {
    let mut head = header.to_bytes();
    head.extend_from_slice(&[0, 0, 0, 0]); // no extensions
    let gzip = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    write_atomically(path, |file| {
        if gzip {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            encoder.write_all(&head)?;
            encoder.write_all(voxel_bytes)?;
            encoder.finish()?.flush()
        } else {
            file.write_all(&head)?;
            file.write_all(voxel_bytes)
        }
    })?;
    Ok(())
}

/// The temporary files [`write_atomically`] writes `name` through are this, then the writer's
/// process id.
fn temporary_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Whether process `pid` is running. Only Linux can tell (`/proc`); elsewhere every process
/// counts as running, so no other process's temporary file is ever removed.
fn process_is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporary files of `name` in `folder` that writers killed mid-write left (their
/// process is gone); those of running processes, another writer's, are kept.
fn remove_stale_temporaries(folder: &Path, name: &str) {
    let prefix = temporary_prefix(name);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(prefix.as_str()))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_is_running(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes a file atomically: into a temporary file beside it, flushed to disk, then renamed over
/// the target. A crash at any moment leaves either the old file or the new one, never half of one;
/// the temporary file a killed writer left is removed by the next write of the same file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(&folder, &name);
    let temporary = folder.join(format!("{}{}", temporary_prefix(&name), std::process::id()));
    let result = (|| {
        let mut writer = std::io::BufWriter::with_capacity(READ_BUFFER_BYTES, File::create(&temporary)?);
        write(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename itself is made durable by flushing the folder's entries.
        std::fs::File::open(&folder)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Writes a label volume for a scan: the scan's header, the label's values as uint8 (or int16
/// when a label value exceeds 255), gzipped if the path ends in `.gz`.
pub fn write_label_like(path: &Path, label: &Volume, scan_header: &NiftiHeader) -> Result<(), NiftiError> {
    // Labels are nearly always whole numbers 0–255: encode them in one pass, skipping the
    // general writer's range check and rounding.
    if label.channels() == 1
        && let Some(bytes) = super::datatype::whole_numbers_as_u8(label.voxels())
    {
        return write_u8_label_like(path, label.shape(), label.world_from_voxel(), &bytes, scan_header);
    }
    let max = label.voxels().iter().fold(0f32, |m, v| m.max(*v));
    let datatype = if max <= 255.0 { DataType::U8 } else { DataType::I16 };
    write_nifti(path, label, Some(scan_header), WriteOptions::new(datatype))
}

/// Writes a uint8 label of `shape` (x fastest) with the scan's header, as [`write_label_like`]
/// does: the header's affine is kept when it matches `world_from_voxel`, gzipped if the path ends
/// in `.gz`. For callers that already hold the label as bytes.
pub fn write_u8_label_like(
    path: &Path,
    shape: [usize; 3],
    world_from_voxel: &super::Affine,
    voxels: &[u8],
    scan_header: &NiftiHeader,
) -> Result<(), NiftiError> {
    let label = IntegerLabel {
        datatype: DataType::U8,
        voxels: voxels.len(),
        bytes: std::borrow::Cow::Borrowed(voxels),
    };
    write_integer_label(path, shape, world_from_voxel, label, scan_header)
}

/// Writes a uint16 label (a task with more than 255 labels) as [`write_u8_label_like`] writes a
/// uint8 one: little-endian `uint16` voxels with the scan's header.
pub fn write_u16_label_like(
    path: &Path,
    shape: [usize; 3],
    world_from_voxel: &super::Affine,
    voxels: &[u16],
    scan_header: &NiftiHeader,
) -> Result<(), NiftiError> {
    let label = IntegerLabel {
        datatype: DataType::U16,
        voxels: voxels.len(),
        bytes: std::borrow::Cow::Owned(voxels.iter().flat_map(|v| v.to_le_bytes()).collect()),
    };
    write_integer_label(path, shape, world_from_voxel, label, scan_header)
}

/// A label's voxels already encoded (little-endian) in `datatype`.
struct IntegerLabel<'a> {
    datatype: DataType,
    /// Voxel count.
    voxels: usize,
    bytes: std::borrow::Cow<'a, [u8]>,
}

/// [`write_u8_label_like`] and [`write_u16_label_like`]: checks the voxel count, then writes.
fn write_integer_label(
    path: &Path,
    shape: [usize; 3],
    world_from_voxel: &super::Affine,
    label: IntegerLabel<'_>,
    scan_header: &NiftiHeader,
) -> Result<(), NiftiError> {
    let write = || {
        if label.voxels != shape.iter().product::<usize>() {
            return Err(NiftiError::Write(format!(
                "{} voxels do not fill a {shape:?} grid",
                label.voxels
            )));
        }
        let options = WriteOptions::new(label.datatype);
        let header = output_header(Some(scan_header), shape, 1, world_from_voxel, options)?;
        write_payload(path, &header, &label.bytes)
    };
    write().map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of a process that has exited (and been reaped), so no process has it now.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("`true` runs");
        let pid = child.id();
        child.wait().expect("reaped");
        pid
    }

    #[test]
    fn a_write_removes_the_temporaries_of_killed_writers_and_keeps_the_rest() {
        if !cfg!(target_os = "linux") {
            eprintln!("skipped: only Linux tells whether a writer's process is gone");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("label.nii");
        let dead = dir.path().join(format!(".label.nii.tmp-{}", dead_pid()));
        // Process 1 (init) always runs: its file may be a write in progress.
        let running = dir.path().join(".label.nii.tmp-1");
        let other_file = dir.path().join(format!(".other.nii.tmp-{}", dead_pid()));
        let not_a_pid = dir.path().join(".label.nii.tmp-backup");
        for planted in [&dead, &running, &other_file, &not_a_pid] {
            std::fs::write(planted, b"half a file").expect("plants");
        }
        write_atomically(&target, |w| w.write_all(b"whole")).expect("writes");
        assert_eq!(std::fs::read(&target).expect("reads"), b"whole");
        assert!(!dead.exists(), "a killed writer's temporary file stays");
        assert!(running.exists(), "a running writer's temporary file was removed");
        assert!(other_file.exists(), "another file's temporary was removed");
        assert!(not_a_pid.exists(), "a file not named by a process id was removed");
        let own = dir.path().join(format!(".label.nii.tmp-{}", std::process::id()));
        assert!(!own.exists(), "the write left its own temporary file");
    }
}
