//! A guard run before dicom-rs parses a file: dicom-rs reserves and zero-fills a value's
//! declared length before reading it, so a 2 kB file declaring a 4 GB element made it touch
//! 4 GB (found by the `dicom` fuzz target). This walks the file's element headers, as dicom-rs
//! will, and refuses a declared length that is both beyond the end of the file and larger than
//! [`HARMLESS_LENGTH`]: such a file is damaged, and parsing it could only exhaust memory.
//!
//! The walk follows the encodings of the standard (PS3.5 §7): the file meta group in explicit
//! VR little endian, then the data set in the transfer syntax's encoding; sequences and items
//! of undefined length are stepped into, as are defined-length values that begin with an item;
//! the fragments of encapsulated pixel data are skipped by their lengths; the items of a UN of
//! undefined length are walked in the data set's encoding, as dicom-rs 0.10 reads them (PS3.5
//! §6.2.2 would have implicit VR little endian there). A deflated data set is inflated first (up to
//! [`INFLATED_LIMIT`], and as far as the stream is sound) and walked there, its lengths measured
//! against the inflated bytes (the fuzzer's third find: 767 bytes whose inflated data set
//! declared a 2 GB element); a stream that breaks off is refused after that walk, since dicom-rs
//! reads it in smaller pieces and may see element headers the guard lost with the error (fixture
//! `fuzz_deflated_oom`: 4 GB reserved for one). When the walk meets something it cannot follow
//! and no length is dangerous, it stops and leaves the verdict to dicom-rs.

/// A declared length up to this many bytes is never refused: dicom-rs allocating it is harmless.
pub const HARMLESS_LENGTH: u64 = 64 << 20;

/// The most decoded bytes per compressed byte a file may claim once its pixels exceed
/// [`HARMLESS_LENGTH`]. Lossless codecs reach 2–4 on CT and MR, lossy JPEG and JPEG 2000 tens;
/// only a constant image goes far beyond, and a damaged or hostile header (a frame count or a size
/// mutated upwards) claims thousands. Deflate itself reaches 1032 on a run of one byte.
pub const MAX_EXPANSION: u64 = 256;

/// Whether `decoded` bytes may come from `compressed` bytes: always up to [`HARMLESS_LENGTH`]
/// (what a decoder may allocate without harm), otherwise at most [`MAX_EXPANSION`] times.
pub fn check_expansion(decoded: u64, compressed: u64) -> Result<(), String> {
    if decoded <= HARMLESS_LENGTH || decoded <= compressed.saturating_mul(MAX_EXPANSION) {
        return Ok(());
    }
    Err(format!(
        "{decoded} decoded bytes would be {:.0} times the compressed size, more than the \
         {MAX_EXPANSION} any real scan reaches; the file is damaged — export the series again",
        decoded as f64 / compressed.max(1) as f64
    ))
}

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// At most this many inflated bytes of a deflated data set are walked.
pub const INFLATED_LIMIT: u64 = 1 << 30;
/// VRs whose explicit header has a 2-byte length; every other one (an unknown VR included, read
/// as UN, as dicom-rs does) has two reserved bytes and a 4-byte length.
const SHORT_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL",
    b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
];

#[derive(Clone, Copy, PartialEq)]
struct Encoding {
    explicit: bool,
    big_endian: bool,
}

/// What an undefined-length value being walked is, until its sequence delimiter.
#[derive(Clone, Copy)]
struct Open {
    /// Encapsulated pixel data: items are fragments of raw bytes.
    fragments: bool,
}

/// Checks the declared lengths of a DICOM file's elements (see the module description).
///
/// # Errors
/// A length beyond the end of the file and above [`HARMLESS_LENGTH`], naming the element and
/// both sizes.
pub fn check_declared_lengths(bytes: &[u8]) -> Result<(), String> {
    let mut at = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else {
        0
    };
    let meta = Encoding {
        explicit: true,
        big_endian: false,
    };
    let mut syntax = String::new();
    // The file meta group, explicit VR little endian: as dicom-rs reads it, its elements up to
    // the group length that (0002,0000) gives, whatever their group; without one, while the
    // group is 0002.
    let mut meta_end = None;
    while let Some(header) = read_header(bytes, at, meta) {
        let in_meta = match meta_end {
            Some(end) => at < end,
            None => header.group == 0x0002,
        };
        if !in_meta {
            break;
        }
        check(bytes, at, &header)?;
        if header.length == UNDEFINED {
            return Ok(());
        }
        let start = at + header.size;
        let end = (start + header.length as usize).min(bytes.len());
        match (header.group, header.element) {
            (0x0002, 0x0000) if meta_end.is_none() && header.length == 4 => {
                let length = u32::from_le_bytes(bytes[start..end].try_into().unwrap_or([0; 4]));
                meta_end = Some(end + length as usize);
            }
            (0x0002, 0x0010) => {
                syntax = String::from_utf8_lossy(&bytes[start..end])
                    .trim_end_matches(['\0', ' '])
                    .to_string();
            }
            _ => {}
        }
        at = start + header.length as usize;
    }
    let encoding = match syntax.as_str() {
        DEFLATED => {
            let (inflated, damage) = inflate(bytes.get(at..).unwrap_or_default())
                .map_err(|e| format!("the deflated data set: {e}"))?;
            let explicit_le = Encoding {
                explicit: true,
                big_endian: false,
            };
            walk_data_set(&inflated, 0, explicit_le).map_err(|e| format!("in the deflated data set: {e}"))?;
            // A stream that breaks off: dicom-rs reads on in smaller pieces than the guard and
            // may get an element header the guard never saw (fixture `fuzz_deflated_oom`: 4 GB
            // reserved for an element whose header lay in the bytes lost with the error).
            return match damage {
                Some(error) => Err(format!(
                    "the deflated data set is damaged after {} bytes ({error}); export the file again",
                    inflated.len()
                )),
                None => Ok(()),
            };
        }
        IMPLICIT_LE => Encoding {
            explicit: false,
            big_endian: false,
        },
        EXPLICIT_BE => Encoding {
            explicit: true,
            big_endian: true,
        },
        _ => Encoding {
            explicit: true,
            big_endian: false,
        },
    };
    walk_data_set(bytes, at, encoding)
}

/// The raw-deflate stream `deflated` inflated as far as it is sound, with the error that ended
/// it, if any. Refused when it would inflate beyond [`check_expansion`]'s bound (capped at
/// [`INFLATED_LIMIT`]): dicom-rs inflates the whole data set into memory, so a small file must not
/// unfold into gigabytes (deflate reaches at most 1032 to 1, on a run of one byte).
fn inflate(deflated: &[u8]) -> Result<(Vec<u8>, Option<std::io::Error>), String> {
    use std::io::Read;
    let compressed = deflated.len() as u64;
    let limit = INFLATED_LIMIT.min(HARMLESS_LENGTH.max(compressed.saturating_mul(MAX_EXPANSION)));
    let mut inflated = Vec::new();
    // An error leaves the bytes inflated before it in the buffer: they are walked, then the
    // error is reported.
    let damage = flate2::read::DeflateDecoder::new(deflated)
        .take(limit + 1)
        .read_to_end(&mut inflated)
        .err();
    let size = inflated.len() as u64;
    if size > limit {
        return Err(format!(
            "its {compressed} bytes inflate to more than {limit} (the most a file may unfold to: \
             {MAX_EXPANSION} times its size, at least {HARMLESS_LENGTH} bytes, at most \
             {INFLATED_LIMIT}); the file is damaged — export it again"
        ));
    }
    Ok((inflated, damage))
}

/// How many times one file's walk may also follow a value from its end (below).
const MAX_BRANCHES: usize = 64;

/// Walks a data set's elements from `at` in `encoding` (see the module description).
///
/// A defined-length value that begins with an item but is not an explicit SQ (an unknown VR, a
/// UN, or a private tag in implicit VR) may be read by dicom-rs either as a sequence or as bytes:
/// the walk steps into it and, up to [`MAX_BRANCHES`] times per file, also walks on from its end
/// (fixture `fuzz_un_items`: dicom-rs skipped such a value and reserved 3.7 GB for the element
/// after it, which the walk inside the value never met).
fn walk_data_set(bytes: &[u8], at: usize, encoding: Encoding) -> Result<(), String> {
    let mut branches = MAX_BRANCHES;
    walk_from(bytes, at, encoding, Vec::new(), &mut branches)
}

/// [`walk_data_set`] from `at` inside the undefined-length values `open`, with `branches` walks
/// from a value's end left.
fn walk_from(
    bytes: &[u8],
    mut at: usize,
    encoding: Encoding,
    mut open: Vec<Open>,
    branches: &mut usize,
) -> Result<(), String> {
    while let Some(header) = read_header(bytes, at, encoding) {
        check(bytes, at, &header)?;
        let start = at + header.size;
        let in_fragments = open.last().is_some_and(|o| o.fragments);
        if header.group == 0xFFFE {
            match header.element {
                // Sequence delimiter: the undefined-length value ends.
                0xE0DD => {
                    open.pop();
                    at = start;
                }
                // An item: a fragment's bytes are skipped, a data set's elements walked.
                0xE000 if header.length != UNDEFINED && in_fragments => at = start + header.length as usize,
                _ => at = start,
            }
            continue;
        }
        if header.length == UNDEFINED {
            // Pixel data holds fragments; any other value of undefined length (an SQ, or an OB or
            // UN read as one) holds items of elements in the same encoding: dicom-rs 0.10 reads a
            // UN's items on in the data set's encoding, not in the implicit VR little endian of
            // PS3.5 §6.2.2 (test `a_un_of_undefined_length_is_walked_as_dicom_rs_reads_it`: an
            // OB inside declaring 4 GB, which dicom-rs reserved and a walk in implicit VR read as
            // 20 kB).
            open.push(Open {
                fragments: (header.group, header.element) == (0x7FE0, 0x0010),
            });
            at = start;
            continue;
        }
        check_whole_values(at, &header, encoding)?;
        let end = start + header.length as usize;
        // A defined-length sequence (known in implicit VR only by its first item) is walked.
        let holds_items = header.length >= 8
            && read_header(bytes, start, encoding)
                .is_some_and(|inner| (inner.group, inner.element) == (0xFFFE, 0xE000));
        let step_in = holds_items && (header.group, header.element) != (0x7FE0, 0x0010);
        if step_in && header.vr != Some(*b"SQ") && *branches > 0 {
            *branches -= 1;
            // Walk on from the end as if the value were bytes, in this level's encoding, with
            // the same values still open around it.
            walk_from(bytes, end, encoding, open.clone(), branches)?;
        }
        at = if step_in { start } else { end };
    }
    Ok(())
}

struct Header {
    group: u16,
    element: u16,
    vr: Option<[u8; 2]>,
    length: u32,
    /// Bytes of the header itself.
    size: usize,
}

fn read_header(bytes: &[u8], at: usize, encoding: Encoding) -> Option<Header> {
    let u16_at = |i: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(i..i + 2)?.try_into().ok()?;
        Some(if encoding.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(i..i + 4)?.try_into().ok()?;
        Some(if encoding.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let (group, element) = (u16_at(at)?, u16_at(at + 2)?);
    // Items and delimiters never carry a VR.
    if group == 0xFFFE || !encoding.explicit {
        return Some(Header {
            group,
            element,
            vr: None,
            length: u32_at(at + 4)?,
            size: 8,
        });
    }
    let vr: [u8; 2] = bytes.get(at + 4..at + 6)?.try_into().ok()?;
    if !SHORT_VRS.contains(&&vr) {
        Some(Header {
            group,
            element,
            vr: Some(vr),
            length: u32_at(at + 8)?,
            size: 12,
        })
    } else {
        Some(Header {
            group,
            element,
            vr: Some(vr),
            length: u32::from(u16_at(at + 6)?),
            size: 8,
        })
    }
}

/// The bytes of one value of a binary VR, which dicom-rs reads in whole values: it reads
/// `length / size` of them and counts `length` bytes as read, so a remainder leaves the stream
/// behind by that many bytes and every later element header is read from the wrong place
/// (fixture `fuzz_odd_us`: Bits Allocated as 35 bytes of US, and the next header dicom-rs read
/// one byte early declared 4 GB, which it reserved).
fn value_size(vr: [u8; 2]) -> Option<usize> {
    match &vr {
        b"US" | b"SS" | b"OW" => Some(2),
        b"AT" | b"UL" | b"SL" | b"FL" | b"OF" | b"OL" => Some(4),
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => Some(8),
        _ => None,
    }
}

/// The VR dicom-rs gives an element without an explicit one: from the standard dictionary, OW for
/// pixel and overlay data, UN for tags it does not know.
fn implicit_vr(group: u16, element: u16) -> [u8; 2] {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    if (group, element) == (0x7FE0, 0x0010) || (group >> 8 == 0x60 && element == 0x3000) {
        return *b"OW";
    }
    dicom_object::StandardDataDictionary
        .by_tag(dicom_core::Tag(group, element))
        .map_or(*b"UN", |entry| entry.vr().relaxed().to_bytes())
}

/// Refuses an element of a binary VR whose length is not a whole number of its values (see
/// [`value_size`]).
fn check_whole_values(at: usize, header: &Header, encoding: Encoding) -> Result<(), String> {
    let vr = match header.vr {
        Some(vr) => vr,
        None if !encoding.explicit => implicit_vr(header.group, header.element),
        None => return Ok(()),
    };
    match value_size(vr) {
        Some(size) if header.length as usize % size != 0 => Err(format!(
            "element ({:04X},{:04X}) at byte {at} is {} of {} bytes, not a whole number of its \
             {size}-byte values; the file is damaged — export it again",
            header.group,
            header.element,
            String::from_utf8_lossy(&vr),
            header.length
        )),
        _ => Ok(()),
    }
}

/// Refuses the element at `at` when its declared length is dangerous.
fn check(bytes: &[u8], at: usize, header: &Header) -> Result<(), String> {
    if header.length == UNDEFINED {
        return Ok(());
    }
    let left = bytes.len().saturating_sub(at + header.size) as u64;
    let length = u64::from(header.length);
    if length > left && length > HARMLESS_LENGTH {
        return Err(format!(
            "element ({:04X},{:04X}) at byte {at} declares {length} bytes but the file has {left} left; \
             the file is damaged",
            header.group, header.element
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "lengths_tests.rs"]
mod tests;
