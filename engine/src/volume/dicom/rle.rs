//! A check of RLE Lossless fragments (PS3.5 Annex G) before dicom-rs decodes them: its RLE
//! adapter indexes the 64-byte header and the decoded segments without bounds checks, so a
//! damaged fragment panicked inside it (found by the `dicom` fuzz target: a header announcing
//! more segments than the fragment holds). Each fragment must have a header naming at least the
//! segments the pixel format needs (one per byte of a sample), offsets inside the fragment in
//! increasing order, and segments that unpack (PackBits) to at least one byte per pixel.

/// Bytes of an RLE header: the segment count and 15 offsets, little endian u32s.
const HEADER_LEN: usize = 64;
/// Segments an RLE header can name.
const MAX_SEGMENTS: usize = 15;

/// Checks one frame's fragment: `segments` segments (bytes per sample × samples per pixel) of
/// `pixels` bytes each must be there. The reason names what is wrong.
pub fn check_fragment(fragment: &[u8], segments: usize, pixels: usize) -> Result<(), String> {
    let header = fragment.get(..HEADER_LEN).ok_or_else(|| {
        format!(
            "an RLE fragment of {} bytes, shorter than its {HEADER_LEN}-byte header",
            fragment.len()
        )
    })?;
    let word = |i: usize| {
        u32::from_le_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    let count = word(0) as usize;
    if count > MAX_SEGMENTS || count < segments {
        return Err(format!(
            "an RLE header announcing {count} segments where the pixel format needs {segments} \
             (at most {MAX_SEGMENTS})"
        ));
    }
    let mut offsets: Vec<usize> = (1..=count).map(|i| word(i) as usize).collect();
    offsets.push(fragment.len());
    for (i, pair) in offsets.windows(2).enumerate() {
        if pair[0] < HEADER_LEN || pair[0] > pair[1] {
            return Err(format!(
                "RLE segment {} at offset {} in a fragment of {} bytes (segments start after the \
                 header, in order)",
                i + 1,
                pair[0],
                fragment.len()
            ));
        }
    }
    for (i, pair) in offsets.windows(2).take(segments).enumerate() {
        let unpacked = unpacked_len(&fragment[pair[0]..pair[1]]);
        if unpacked < pixels {
            return Err(format!(
                "RLE segment {} unpacks to {unpacked} bytes where the image has {pixels} pixels",
                i + 1
            ));
        }
    }
    Ok(())
}

/// The bytes a PackBits segment unpacks to, read as dicom-rs reads it: a header byte n of 0 to
/// 127 copies the next n + 1 bytes (fewer where the segment ends), −1 to −127 repeats the next
/// byte 1 − n times, −128 does nothing. A run cut off by the segment's end adds nothing (dicom-rs
/// then fails with an error, not a panic).
fn unpacked_len(segment: &[u8]) -> usize {
    let (mut at, mut out) = (0, 0);
    while at < segment.len() {
        let n = segment[at] as i8;
        at += 1;
        if n >= 0 {
            let take = (n as usize + 1).min(segment.len() - at);
            out += take;
            at += n as usize + 1;
        } else if n != -128 {
            if at >= segment.len() {
                break;
            }
            out += (1 - n as isize) as usize;
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fragment with `segments` whose offsets are computed from their lengths.
    fn fragment(segments: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut offset = HEADER_LEN;
        for (i, segment) in segments.iter().enumerate() {
            out[4 * (i + 1)..4 * (i + 2)].copy_from_slice(&(offset as u32).to_le_bytes());
            offset += segment.len();
        }
        for segment in segments {
            out.extend_from_slice(segment);
        }
        out
    }

    #[test]
    fn packbits_lengths_follow_the_definition() {
        // Literal run of 3, repeat of 5 (n = −4), no-op, literal of 1: 3 + 5 + 1 = 9.
        assert_eq!(unpacked_len(&[2, 10, 11, 12, (-4i8) as u8, 7, 0x80, 0, 9]), 9);
        // The longest repeat: n = −127 gives 128 bytes from 2.
        assert_eq!(unpacked_len(&[0x81, 5]), 128);
        // A literal cut short copies what is there; a repeat without its byte adds nothing.
        assert_eq!(unpacked_len(&[9, 1, 2]), 2);
        assert_eq!(unpacked_len(&[0xFF]), 0);
        assert_eq!(unpacked_len(&[]), 0);
    }

    #[test]
    fn a_sound_fragment_passes_and_each_kind_of_damage_is_named() {
        // 16-bit samples: two segments (high bytes, low bytes) of 4 pixels each.
        let high: &[u8] = &[(-3i8) as u8, 0];
        let low: &[u8] = &[3, 1, 2, 3, 4];
        let sound = fragment(&[high, low]);
        assert!(check_fragment(&sound, 2, 4).is_ok());
        let refused = |bytes: &[u8], pixels: usize| check_fragment(bytes, 2, pixels).expect_err("damaged");
        assert!(refused(&sound[..40], 4).contains("shorter than"));
        // What the fuzzer found: a header announcing more segments than there is room for.
        let mut too_many = sound.clone();
        too_many[..4].copy_from_slice(&500u32.to_le_bytes());
        assert!(refused(&too_many, 4).contains("announcing 500"));
        assert!(refused(&fragment(&[high]), 4).contains("needs 2"));
        let mut beyond = sound.clone();
        beyond[8..12].copy_from_slice(&2052u32.to_le_bytes());
        assert!(refused(&beyond, 4).contains("offset 2052"));
        let mut inside_header = sound.clone();
        inside_header[4..8].copy_from_slice(&8u32.to_le_bytes());
        assert!(refused(&inside_header, 4).contains("offset 8"));
        // Segments that unpack to fewer bytes than pixels (dicom-rs indexed past them).
        assert!(refused(&sound, 5).contains("unpacks to 4"));
    }
}
