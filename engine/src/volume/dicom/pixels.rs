//! Decoding a file's frames into rescaled `f32` slices with dicom-pixeldata, after checking the
//! transfer syntax, the pixel format and the size the header claims.

use super::DicomError;
use super::lengths::check_expansion;
use crate::volume::MAX_VOXELS;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, Rescale};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::path::Path;

/// Transfer syntaxes we decode, all with pure-Rust code: (UID, what the docs call it).
pub const SUPPORTED_SYNTAXES: [(&str, &str); 11] = [
    ("1.2.840.10008.1.2", "Implicit VR Little Endian"),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.2", "Explicit VR Big Endian"),
    ("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"),
    ("1.2.840.10008.1.2.5", "RLE Lossless"),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (8-bit)"),
    ("1.2.840.10008.1.2.4.51", "JPEG Extended (8-bit samples only)"),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless"),
    ("1.2.840.10008.1.2.4.70", "JPEG Lossless, first-order prediction"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 (lossless only)"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000"),
];

/// The syntaxes dicom-rs decodes with jpeg-decoder, whose frames are checked first
/// ([`super::jpeg`]).
const JPEG_SYNTAXES: [&str; 4] = [
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];
/// RLE Lossless, whose fragments are checked before dicom-rs decodes them ([`super::rle`]).
const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";
/// JPEG-LS transfer syntaxes start with this: they deserve a specific hint.
const JPEG_LS_PREFIX: &str = "1.2.840.10008.1.2.4.8";
/// DCT-based JPEG (Baseline and Extended): jpeg-decoder reads 8-bit samples only.
const JPEG_DCT_SYNTAXES: [&str; 2] = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"];

/// A UID as stored, without the padding byte.
fn clean_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// The name of a transfer syntax, from the registry; the UID when unknown.
pub fn syntax_name(uid: &str) -> String {
    let uid = clean_uid(uid);
    TransferSyntaxRegistry
        .get(uid)
        .map(|ts| ts.name().to_string())
        .unwrap_or_else(|| format!("unknown transfer syntax {uid}"))
}

fn check_syntax(path: &Path, uid: &str) -> Result<(), DicomError> {
    let uid = clean_uid(uid);
    if SUPPORTED_SYNTAXES.iter().any(|(known, _)| *known == uid) {
        return Ok(());
    }
    let hint = if uid.starts_with(JPEG_LS_PREFIX) {
        "JPEG-LS needs the CharLS C library, which this build leaves out"
    } else {
        "no pure-Rust decoder is built in"
    };
    Err(DicomError::UnsupportedSyntax {
        path: path.to_path_buf(),
        name: syntax_name(uid),
        uid: uid.to_string(),
        hint,
    })
}

/// The message of an error and of every error under it (dicom-rs puts the detail in sources).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn int_of(object: &dicom_object::mem::InMemDicomObject, tag: dicom_object::Tag) -> Option<u64> {
    object.get(tag).and_then(|e| e.to_int::<u64>().ok())
}

/// Decodes the listed frames of one file into their slices: `(frame, rescale, slice)` with
/// `slice.len()` = rows × columns.
///
/// Every limit is checked before the decoder allocates: the frame size against
/// [`MAX_VOXELS`], the byte length of uncompressed pixel data against what the header claims.
/// A decoder that panics on a corrupt stream is caught and reported as an error for this file.
pub fn decode_into(path: &Path, targets: &mut [(u32, (f64, f64), &mut [f32])]) -> Result<(), DicomError> {
    let read_error = |error: &dyn std::error::Error| DicomError::Read {
        path: path.to_path_buf(),
        reason: chain(error),
    };
    let bytes = std::fs::read(path).map_err(|e| read_error(&e))?;
    super::lengths::check_declared_lengths(&bytes).map_err(|reason| DicomError::Read {
        path: path.to_path_buf(),
        reason,
    })?;
    let object = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| read_error(&e))?;
    let syntax = object.meta().transfer_syntax().to_string();
    check_syntax(path, &syntax)?;
    let unsupported = |what: String| DicomError::Unsupported {
        path: path.to_path_buf(),
        what,
    };
    let samples = int_of(&object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples != 1 {
        return Err(unsupported(format!(
            "colour images ({samples} samples per pixel); CT and MR series are greyscale"
        )));
    }
    let bits_allocated = int_of(&object, tags::BITS_ALLOCATED).unwrap_or(0);
    if bits_allocated != 8 && bits_allocated != 16 {
        return Err(unsupported(format!(
            "BitsAllocated {bits_allocated} (8 and 16 are supported)"
        )));
    }
    let bits_stored = int_of(&object, tags::BITS_STORED).unwrap_or(bits_allocated);
    if bits_stored == 0 || bits_stored > bits_allocated {
        // dicom-pixeldata asserts 1 ≤ BitsStored ≤ 32 inside its modality LUT (a panic, found
        // by the dicom fuzz target): refuse it here, as the standard requires ≤ BitsAllocated.
        return Err(DicomError::Read {
            path: path.to_path_buf(),
            reason: format!(
                "BitsStored {bits_stored} with BitsAllocated {bits_allocated}: it must be 1 to \
                 BitsAllocated; the file is damaged — export it again"
            ),
        });
    }
    if bits_stored > 8 && JPEG_DCT_SYNTAXES.contains(&clean_uid(&syntax)) {
        return Err(unsupported(format!(
            "{} with {bits_stored}-bit samples: the pure-Rust JPEG decoder reads 8-bit DCT JPEG \
             only; convert the series to an uncompressed syntax (e.g. `dcmdjpeg`)",
            syntax_name(&syntax)
        )));
    }
    let rows = int_of(&object, tags::ROWS).unwrap_or(0);
    let columns = int_of(&object, tags::COLUMNS).unwrap_or(0);
    let frames = int_of(&object, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let voxels = rows.saturating_mul(columns).saturating_mul(frames);
    if voxels > MAX_VOXELS {
        return Err(DicomError::TooLarge {
            path: path.to_path_buf(),
            voxels,
        });
    }
    let Some(pixel_data) = object.get(tags::PIXEL_DATA) else {
        return Err(DicomError::MissingPixelData {
            path: path.to_path_buf(),
        });
    };
    let needed = voxels * bits_allocated / 8;
    if let Some(fragments) = pixel_data.value().fragments() {
        // Compressed: the decoder allocates and fills every frame the header claims, so a tiny
        // stream must not claim a huge image (a decompression bomb, or a damaged header).
        let compressed: u64 = fragments.iter().map(|f| f.len() as u64).sum();
        check_expansion(needed, compressed).map_err(|reason| DicomError::Read {
            path: path.to_path_buf(),
            reason: format!(
                "{columns}×{rows}×{frames} pixels of {bits_allocated} bits from {compressed} \
                 bytes of {}: {reason}",
                syntax_name(&syntax)
            ),
        })?;
        let damaged = |reason: String| DicomError::Read {
            path: path.to_path_buf(),
            reason: format!("{reason}; the file is damaged — export it again"),
        };
        if JPEG_SYNTAXES.contains(&clean_uid(&syntax)) {
            super::jpeg::check_frames(fragments, columns, rows, bits_allocated).map_err(damaged)?;
        }
        if clean_uid(&syntax) == RLE_LOSSLESS {
            let segments = (bits_allocated / 8) as usize;
            for (i, fragment) in fragments.iter().enumerate() {
                super::rle::check_fragment(fragment, segments, (rows * columns) as usize)
                    .map_err(|reason| damaged(format!("frame {}: {reason}", i + 1)))?;
            }
        }
    } else {
        // Uncompressed: the bytes must all be there (decoders slice them by the header's sizes).
        let have = pixel_data.value().to_bytes().map(|b| b.len() as u64).unwrap_or(0);
        if have < needed {
            return Err(DicomError::Read {
                path: path.to_path_buf(),
                reason: format!(
                    "pixel data holds {have} bytes but {columns}×{rows}×{frames} pixels of \
                     {bits_allocated} bits need {needed}; the file is truncated — export it again"
                ),
            });
        }
    }
    let decode = || -> Result<(), DicomError> {
        let decoded = object.decode_pixel_data().map_err(|e| DicomError::Decode {
            path: path.to_path_buf(),
            reason: chain(&e),
        })?;
        for (frame, (slope, intercept), slice) in targets.iter_mut() {
            // Through dicom-pixeldata's modality LUT, which masks to BitsStored and sign-extends
            // before rescaling; the rescale is ours so that enhanced files get theirs per frame.
            let options = ConvertOptions::new()
                .with_modality_lut(ModalityLutOption::Override(Rescale::new(*slope, *intercept)));
            let values: Vec<f32> =
                decoded
                    .to_vec_frame_with_options(*frame, &options)
                    .map_err(|e| DicomError::Decode {
                        path: path.to_path_buf(),
                        reason: chain(&e),
                    })?;
            if values.len() != slice.len() {
                return Err(DicomError::Decode {
                    path: path.to_path_buf(),
                    reason: format!(
                        "frame {} decoded to {} values, expected {}",
                        *frame + 1,
                        values.len(),
                        slice.len()
                    ),
                });
            }
            slice.copy_from_slice(&values);
        }
        Ok(())
    };
    // Third-party decoders may panic on a corrupt stream; that must not take the process down.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|_| {
        Err(DicomError::Decode {
            path: path.to_path_buf(),
            reason: format!("the {} decoder failed on corrupt data", syntax_name(&syntax)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::lengths::MAX_EXPANSION;
    use super::*;

    #[test]
    fn supported_syntaxes_pass_and_others_are_refused_by_name() {
        let path = Path::new("slice.dcm");
        // Stored UIDs are padded to an even length with a NUL.
        assert!(check_syntax(path, "1.2.840.10008.1.2.1\0").is_ok());
        assert!(check_syntax(path, "1.2.840.10008.1.2.5").is_ok());
        let message = check_syntax(path, "1.2.840.10008.1.2.4.80")
            .expect_err("JPEG-LS")
            .to_string();
        assert!(
            message.contains("JPEG-LS") && message.contains("CharLS") && message.contains("slice.dcm"),
            "{message}"
        );
        let message = check_syntax(path, "1.2.840.10008.1.2.4.201")
            .expect_err("HTJ2K")
            .to_string();
        assert!(message.contains("1.2.840.10008.1.2.4.201"), "{message}");
        assert_eq!(syntax_name("1.2.840.10008.1.2.2"), "Explicit VR Big Endian");
        assert!(syntax_name("1.2.3.4").contains("unknown"));
    }

    #[test]
    fn a_compressed_file_claiming_a_far_larger_image_is_refused_before_decoding() {
        // The committed RLE slice with Rows and Columns raised to 8192: 128 MiB of 16-bit pixels
        // from a few kilobytes of RLE, far beyond MAX_EXPANSION (RLE itself reaches 64).
        let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/dicom/oblique_rle/IM0000.dcm");
        let mut bytes = std::fs::read(&fixture).expect("committed fixture");
        let compressed = bytes.len() as u64;
        for element in [0x10u8, 0x11] {
            // (0028,0010) Rows and (0028,0011) Columns, explicit VR little endian US.
            let header = [0x28, 0x00, element, 0x00, b'U', b'S', 2, 0];
            let at = bytes
                .windows(header.len())
                .position(|w| w == header)
                .expect("Rows and Columns in the fixture")
                + header.len();
            bytes[at..at + 2].copy_from_slice(&8192u16.to_le_bytes());
        }
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("IM0000.dcm");
        std::fs::write(&path, &bytes).expect("write the patched file");
        let message = decode_into(&path, &mut [])
            .expect_err("a decompression bomb")
            .to_string();
        assert!(
            message.contains("8192×8192×1 pixels of 16 bits")
                && message.contains("times the compressed size")
                && message.contains("IM0000.dcm"),
            "{message}"
        );
        assert!(8192 * 8192 * 2 > compressed * MAX_EXPANSION);
        // The same file as committed passes the checks and decodes.
        let object = OpenFileOptions::new().open_file(&fixture).expect("fixture opens");
        let rows = int_of(&object, tags::ROWS).expect("rows");
        let columns = int_of(&object, tags::COLUMNS).expect("columns");
        let mut slice = vec![0f32; (rows * columns) as usize];
        decode_into(&fixture, &mut [(0, (1.0, 0.0), slice.as_mut_slice())])
            .expect("the committed slice decodes");
    }
}
