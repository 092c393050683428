//! A check of JPEG frames (Baseline, Extended, Lossless) before dicom-rs decodes them: its JPEG
//! adapter copies each decoded frame into a buffer sized from the DICOM header's Rows, Columns
//! and BitsAllocated without comparing the sizes, so a stream whose own frame header is larger
//! panicked inside it (found by the `dicom` fuzz target: a 96-byte buffer and a 331 872-byte
//! frame), and a smaller one would leave the rest of the slice silently zero. Every JPEG stream
//! a frame may start with (one at the start of each fragment, read on through the following
//! fragments, as dicom-rs gathers a frame spread over several) must describe exactly the image
//! the DICOM header describes. The header is read by jpeg-decoder itself, the decoder that will
//! decode it, so the two cannot disagree on what it says.

use jpeg_decoder::{Decoder, PixelFormat};
use std::io::Read;

/// Checks every JPEG stream that starts a fragment against `columns` × `rows` greyscale pixels
/// of `bits_allocated` bits. A fragment that does not start a readable JPEG header is left to
/// the decoder, which fails on it with an error.
pub fn check_frames(
    fragments: &[Vec<u8>],
    columns: u64,
    rows: u64,
    bits_allocated: u64,
) -> Result<(), String> {
    for start in 0..fragments.len() {
        let mut decoder = Decoder::new(Fragments {
            parts: &fragments[start..],
            offset: 0,
        });
        if decoder.read_info().is_err() {
            continue;
        }
        let Some(info) = decoder.info() else { continue };
        let bits = match info.pixel_format {
            PixelFormat::L8 => 8,
            PixelFormat::L16 => 16,
            PixelFormat::RGB24 | PixelFormat::CMYK32 => {
                return Err(format!(
                    "the JPEG stream in fragment {} holds colour ({:?}) where the header \
                     describes greyscale",
                    start + 1,
                    info.pixel_format
                ));
            }
        };
        let (width, height) = (u64::from(info.width), u64::from(info.height));
        if width != columns || height != rows || bits != bits_allocated {
            return Err(format!(
                "the JPEG stream in fragment {} is {width}×{height} of {bits} bits but the header \
                 describes {columns}×{rows} of {bits_allocated} bits",
                start + 1
            ));
        }
    }
    Ok(())
}

/// Fragments read one after another, as one stream.
struct Fragments<'a> {
    parts: &'a [Vec<u8>],
    offset: usize,
}

impl Read for Fragments<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((first, rest)) = self.parts.split_first() {
            let left = first.get(self.offset..).unwrap_or_default();
            if left.is_empty() {
                self.parts = rest;
                self.offset = 0;
                continue;
            }
            let n = left.len().min(buf.len());
            buf[..n].copy_from_slice(&left[..n]);
            self.offset += n;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal JPEG header up to its frame header: SOI, an APP0-like segment, SOF with the
    /// given marker, precision, size and one component.
    fn header(sof: u8, precision: u8, width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, b'h', b'i'];
        out.extend([0xFF, sof, 0x00, 0x0B, precision]);
        out.extend(height.to_be_bytes());
        out.extend(width.to_be_bytes());
        out.extend([1, 1, 0x11, 0]);
        out
    }

    #[test]
    fn frame_headers_must_describe_the_dicom_image() {
        // A baseline 8-bit 16×12 frame, whole in one fragment and split over two.
        let whole = header(0xC0, 8, 16, 12);
        assert!(check_frames(std::slice::from_ref(&whole), 16, 12, 8).is_ok());
        let (a, b) = whole.split_at(11);
        assert!(check_frames(&[a.to_vec(), b.to_vec()], 16, 12, 8).is_ok());
        // What the fuzzer found: the stream is larger than the header's image.
        let refused = check_frames(std::slice::from_ref(&whole), 4, 3, 8).expect_err("larger");
        assert!(
            refused.contains("16×12 of 8 bits") && refused.contains("4×3 of 8 bits"),
            "{refused}"
        );
        // Smaller, and the wrong sample size (lossless 16-bit where the header says 8).
        assert!(check_frames(&[whole], 32, 12, 8).is_err());
        let lossless = header(0xC3, 16, 16, 12);
        assert!(check_frames(std::slice::from_ref(&lossless), 16, 12, 16).is_ok());
        assert!(
            check_frames(&[lossless], 16, 12, 8)
                .expect_err("bits")
                .contains("of 16 bits")
        );
        // Bytes that are not a JPEG header are left to the decoder.
        assert!(check_frames(&[vec![1, 2, 3]], 16, 12, 8).is_ok());
    }
}
