//! Saving an edited label in the scan's own geometry: the viewer edits on the RAS+ canonical
//! grid, so the label is first mapped back to the scan's voxel order (the inverse of
//! `engine::volume::reorient_to_canonical`), then written with the scan's header. Also where
//! corrected labels and autosaves go, and a writer thread so big files never block the UI.

use crate::common::label::Label;
use crate::io::source::{Source, corrected_beside_scan, demo_task_dir};
use engine::volume::{
    Geometry, NiftiHeader, Volume, read_nifti, reorient_to_canonical, voxels_from_canonical,
    write_u8_label_like, write_u16_label_like,
};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Folder beside `labelsTr` that corrected labels are saved into (the engine trains from it).
pub use engine::data::CORRECTED_FOLDER;
/// Folder in the task that holds the app's own files (autosaves, runs, predictions); `mvl`
/// writes its runs there too.
pub use engine::train::runs::APP_FOLDER;
/// How often an edit session with unsaved changes is autosaved.
pub const AUTOSAVE_INTERVAL_SECS: u64 = 60;

/// Maps a label on the RAS+ grid of `reorient_to_canonical` back onto `original`, the grid of
/// the scan it was made from (`engine::volume::voxels_from_canonical`); the result carries
/// `original`'s affine.
pub fn to_original_grid(canonical: &Volume, original: &Geometry) -> anyhow::Result<Volume> {
    let voxels = voxels_from_canonical(canonical.channel(0), canonical.shape(), original)
        .ok_or_else(|| not_reoriented_scan_grid(canonical.shape(), original))?;
    Ok(Volume::new(original.shape, 1, voxels, original.world_from_voxel)?)
}

fn not_reoriented_scan_grid(label_shape: [usize; 3], original: &Geometry) -> anyhow::Error {
    anyhow::anyhow!(
        "the label has shape {label_shape:?}, which is not the scan's grid {:?} reoriented to RAS+",
        original.shape
    )
}

/// The task folder of a source, or the scan's folder for a single scan.
pub fn source_folder(source: &Source) -> Option<PathBuf> {
    match &source.request.path {
        None => Some(demo_task_dir()),
        Some(path) if path.is_dir() => Some(path.clone()),
        Some(path) => path.parent().map(PathBuf::from),
    }
}

/// Whether the source is a task folder (as opposed to a single scan).
pub fn is_task(source: &Source) -> bool {
    source.request.path.as_ref().is_none_or(|p| p.is_dir())
}

/// Where a corrected label is saved by default: `labelsCorrected/<case>.nii.gz` in the task, or
/// `<scan>_corrected.nii.gz` beside a single scan.
pub fn corrected_label_path(source: &Source, case_id: &str) -> Option<PathBuf> {
    let folder = source_folder(source)?;
    Some(if is_task(source) {
        folder.join(CORRECTED_FOLDER).join(format!("{case_id}.nii.gz"))
    } else {
        corrected_beside_scan(&folder, case_id)
    })
}

/// Where the edit session of a case is autosaved: `.medvisionllama/autosave/<case>.nii.gz`.
pub fn autosave_path(source: &Source, case_id: &str) -> Option<PathBuf> {
    Some(
        source_folder(source)?
            .join(APP_FOLDER)
            .join("autosave")
            .join(format!("{case_id}.nii.gz")),
    )
}

/// Writes `label` (on the RAS+ grid) into the scan's geometry at `path` as bytes, creating the
/// folder. The write is atomic: a failure leaves any earlier file at `path` as it was.
pub fn save_label(
    path: &Path,
    label: &Label,
    scan_grid: &Geometry,
    scan_header: &NiftiHeader,
) -> anyhow::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", folder.display()))?;
    }
    // The header's own affine, so the writer copies sform and qform verbatim.
    let world_from_voxel = scan_header.world_from_voxel_mm();
    // The label is integers already: the reorientation moves them as they are.
    let not_reoriented = || not_reoriented_scan_grid(label.shape(), scan_grid);
    match label {
        Label::U8(bytes) => {
            let voxels = voxels_from_canonical(&bytes.to_vec(), label.shape(), scan_grid)
                .ok_or_else(not_reoriented)?;
            write_u8_label_like(path, scan_grid.shape, &world_from_voxel, &voxels, scan_header)?;
        }
        Label::U16(wide) => {
            let voxels =
                voxels_from_canonical(&wide.to_vec(), label.shape(), scan_grid).ok_or_else(not_reoriented)?;
            write_u16_label_like(path, scan_grid.shape, &world_from_voxel, &voxels, scan_header)?;
        }
    }
    Ok(())
}

/// Reads a label saved in the scan's geometry back onto the RAS+ grid of `image_shape`.
pub fn read_label_canonical(path: &Path, image_shape: [usize; 3]) -> anyhow::Result<Volume> {
    let label = reorient_to_canonical(&read_nifti(path)?.volume.select_channel(0));
    anyhow::ensure!(
        label.shape() == image_shape,
        "{}: the label has shape {:?} but the image has {image_shape:?}",
        path.display(),
        label.shape()
    );
    Ok(label)
}

/// Why a label is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// The user saved (or overwrote the ground truth).
    Save,
    /// The periodic autosave.
    Autosave,
}

/// A label write that finished, well or not.
#[derive(Debug)]
pub struct WriteDone {
    /// Save or autosave.
    pub kind: WriteKind,
    /// Case id it belongs to.
    pub case_id: String,
    /// Where it went.
    pub path: PathBuf,
    /// The edit generation written.
    pub generation: u64,
    /// Error message, or nothing.
    pub result: Result<(), String>,
}

/// Everything a write needs; moved to the writer thread.
pub struct WriteJob {
    /// Save or autosave.
    pub kind: WriteKind,
    /// Case id it belongs to.
    pub case_id: String,
    /// The target file.
    pub path: PathBuf,
    /// The edit generation being written.
    pub generation: u64,
    /// A copy-on-write snapshot of the label on the RAS+ grid: strokes while it is written copy
    /// only the chunks they touch.
    pub label: Label,
    /// The scan's original grid.
    pub scan_grid: Geometry,
    /// The scan's header.
    pub scan_header: NiftiHeader,
}

/// Runs `job` on a `label-writer` thread; the answer arrives on the receiver, then `wake` runs.
pub fn spawn_write(job: WriteJob, wake: impl Fn() + Send + 'static) -> mpsc::Receiver<WriteDone> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("label-writer".into())
        .spawn(move || {
            let WriteJob {
                kind,
                case_id,
                path,
                generation,
                label,
                scan_grid,
                scan_header,
            } = job;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                save_label(&path, &label, &scan_grid, &scan_header).map_err(|e| format!("{e:#}"))
            }))
            .unwrap_or_else(|_| Err("the writer failed unexpectedly; please report this".into()));
            drop(label); // before answering: later strokes need not copy the chunks it shares
            let _ = sender.send(WriteDone {
                kind,
                case_id,
                path,
                generation,
                result,
            });
            wake();
        });
    // If the thread cannot start, the sender is gone and the receiver reports "disconnected".
    drop(spawned);
    receiver
}

/// Records which DICOM series a saved label belongs to: `series.json` beside it maps each
/// label's series UID to its description, modality, patient and study (entries merged).
pub fn note_series(label_path: &Path, note: &crate::io::source::SeriesNote) -> anyhow::Result<()> {
    let Some(folder) = label_path.parent() else {
        return Ok(());
    };
    let path = folder.join(SERIES_JSON);
    let mut index: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    index.insert(note.series_uid.clone(), serde_json::to_value(note)?);
    let text = serde_json::to_string_pretty(&index)?;
    engine::volume::write_atomically(&path, |file| std::io::Write::write_all(file, text.as_bytes()))
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))
}

/// The index of DICOM series beside their corrected labels.
pub const SERIES_JSON: &str = "series.json";

#[cfg(test)]
#[path = "label_io_tests.rs"]
mod tests;
