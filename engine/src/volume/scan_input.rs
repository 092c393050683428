//! Opening a scan named by the user: a NIfTI file, or a folder holding a DICOM series.

use super::dicom::{DicomSeries, read_dicom_series};
use super::{NiftiHeader, Volume, read_nifti};
use std::path::Path;

/// A scan, whichever format it came in, with a NIfTI header to write results like it.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Voxels and geometry.
    pub volume: Volume,
    /// The file's header, or for DICOM one made from the volume's affine (sform and qform
    /// "scanner", millimetres), so that labels are written in the scan's geometry.
    pub header: NiftiHeader,
    /// The series, when the scan came from DICOM.
    pub dicom: Option<DicomSeries>,
}

/// Reads a `.nii`/`.nii.gz` file, or the DICOM series in a folder (`series` picks one by
/// SeriesInstanceUID when the folder holds several).
pub fn read_scan(path: &Path, series: Option<&str>) -> crate::Result<Scan> {
    if path.is_dir() {
        let loaded = read_dicom_series(path, series)?;
        let mut header = NiftiHeader::default();
        header.set_affine(loaded.volume.world_from_voxel());
        let description = format!(
            "DICOM {} {}",
            loaded.series.modality, loaded.series.series_description
        );
        header.set_description(description.trim());
        return Ok(Scan {
            volume: loaded.volume,
            header,
            dicom: Some(loaded.series),
        });
    }
    let image = read_nifti(path)?;
    Ok(Scan {
        volume: image.volume,
        header: image.header,
        dicom: None,
    })
}
