//! A guard run before dicom-rs parses a file: dicom-rs reserves and zero-fills a value's
//! declared length before reading it, so a 2 kB file declaring a 4 GB element made it touch
//! 4 GB (found by the `dicom` fuzz target). This walks the file's element headers, as dicom-rs
//! will, and refuses a declared length that is both beyond the end of the file and larger than
//! [`HARMLESS_LENGTH`]: such a file is damaged, and parsing it could only exhaust memory.
//!
//! The walk reads the file as dicom-rs 0.10 does, not as the standard describes it, since what
//! matters is what dicom-rs will allocate: the file meta group in explicit VR little endian, then
//! the data set in the transfer syntax's encoding, with the state dicom-rs's `DataSetReader`
//! keeps (see [`walk_data_set`]; the fuzzer found each place where an earlier, standard-minded
//! walk and dicom-rs parted: a value beginning with an item that dicom-rs read as bytes, fixture
//! `fuzz_un_items`; a stray item, `fuzz_stray_item`). dicom-rs reads the items of a UN of
//! undefined length in the data set's encoding (PS3.5 §6.2.2 would have implicit VR little
//! endian) and reads binary values in whole values, counting the declared length as read, so a
//! partial value makes it read every later header from the wrong byte (fixture `fuzz_odd_us`):
//! such a value, and a basic offset table that is not whole 4-byte offsets, are refused.
//! A deflated data set is inflated first (up to
//! [`INFLATED_LIMIT`], and as far as the stream is sound) and walked there, its lengths measured
//! against the inflated bytes (the fuzzer's third find: 767 bytes whose inflated data set
//! declared a 2 GB element); a stream that breaks off is refused after that walk, since dicom-rs
//! reads it in smaller pieces and may see element headers the guard lost with the error (fixture
//! `fuzz_deflated_oom`: 4 GB reserved for one). Where dicom-rs would stop with an error, the walk
//! stops and leaves the verdict to it.

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

/// A sequence or an item the walk is inside, as dicom-rs's reader stacks them.
struct Open {
    /// An item (else a sequence).
    item: bool,
    /// Of encapsulated pixel data: its items are fragments of raw bytes.
    pixel_data: bool,
    /// Where it ends, for a defined length (the byte after its last).
    end: Option<usize>,
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

/// Walks a data set's elements from `at` in `encoding` as dicom-rs 0.10's `DataSetReader` reads
/// them (see the module description), checking each declared length, until the end of the
/// bytes or the first place where dicom-rs would stop with an error.
///
/// dicom-rs keeps a stack of the sequences and items it is in and a flag for whether an item
/// header comes next; a defined-length sequence or item ends when the bytes read reach its end
/// exactly (beyond it, dicom-rs stops). An item header met where an element is expected is read
/// as an element of bytes, or of undefined length as a sequence (fixture `fuzz_stray_item`:
/// a 152-byte item after the pixel data, which dicom-rs skipped as bytes and a walk stepping into
/// it lost step, missing an element declaring 4.2 GB). The walk keeps the same state.
fn walk_data_set(bytes: &[u8], mut at: usize, encoding: Encoding) -> Result<(), String> {
    let mut open: Vec<Open> = Vec::new();
    // An item header is expected next (dicom-rs's `in_sequence`).
    let mut in_sequence = false;
    // A defined-length sequence or item may end here (`delimiter_check_pending`).
    let mut check_ends = false;
    // The next pixel-data item is the basic offset table.
    let mut offset_table_next = false;
    loop {
        if check_ends {
            if let Some(Open {
                item, end: Some(end), ..
            }) = open.last()
            {
                match end.cmp(&at) {
                    std::cmp::Ordering::Equal => {
                        in_sequence = *item;
                        open.pop();
                        continue;
                    }
                    std::cmp::Ordering::Less => return Ok(()),
                    std::cmp::Ordering::Greater => {}
                }
            }
            check_ends = false;
        }
        if in_sequence {
            let Some(header) = take_item_header(bytes, &mut at, encoding)? else {
                return Ok(());
            };
            match header.element {
                0xE000 => {
                    let Some(pixel_data) = open.last().map(|o| o.pixel_data) else {
                        return Ok(());
                    };
                    in_sequence = false;
                    open.push(Open {
                        item: true,
                        pixel_data,
                        end: defined(header.length).map(|length| at + length),
                    });
                    check_ends = header.length == 0;
                }
                0xE00D => {
                    open.pop();
                    in_sequence = true;
                    check_ends = true;
                }
                _ => {
                    open.pop();
                    in_sequence = false;
                    check_ends = true;
                }
            }
            continue;
        }
        if let Some(Open {
            item: true,
            pixel_data: true,
            end,
            ..
        }) = open.last()
        {
            // A fragment, or the basic offset table, which dicom-rs reads as 4-byte offsets.
            let Some(end) = *end else { return Ok(()) };
            if offset_table_next && !(end - at).is_multiple_of(4) {
                return Err(format!(
                    "the basic offset table at byte {at} is {} bytes, not a whole number of \
                     4-byte offsets; the file is damaged — export it again",
                    end - at
                ));
            }
            offset_table_next = false;
            at = end;
            check_ends = true;
            continue;
        }
        let Some(header) = read_header(bytes, at, encoding) else {
            return Ok(());
        };
        check(bytes, at, &header)?;
        let (header_at, start) = (at, at + header.size);
        let tag = (header.group, header.element);
        let vr = match header.vr {
            Some(vr) => Some(vr),
            None if !encoding.explicit && header.group != 0xFFFE => Some(implicit_vr(tag.0, tag.1)),
            None => None,
        };
        at = start;
        if vr == Some(*b"SQ") {
            in_sequence = true;
            open.push(Open {
                item: false,
                pixel_data: false,
                end: defined(header.length).map(|length| start + length),
            });
            check_ends = header.length == 0;
        } else if tag == (0xFFFE, 0xE00D) {
            // An item delimiter: outside any sequence dicom-rs ignores it.
            if open.pop().is_some() {
                in_sequence = true;
                check_ends = true;
            }
        } else if tag == (0x7FE0, 0x0010) && header.length == UNDEFINED {
            // Encapsulated pixel data: the item header of the offset table follows at once.
            open.push(Open {
                item: false,
                pixel_data: true,
                end: None,
            });
            let Some(item) = take_item_header(bytes, &mut at, encoding)? else {
                return Ok(());
            };
            match item.element {
                0xE000 => {
                    open.push(Open {
                        item: true,
                        pixel_data: true,
                        end: defined(item.length).map(|length| at + length),
                    });
                    check_ends = item.length == 0;
                    offset_table_next = item.length != 0;
                }
                0xE0DD => {
                    open.pop();
                }
                _ => return Ok(()),
            }
        } else if header.length == UNDEFINED {
            // Any other value of undefined length: a sequence, whatever its VR, its items in the
            // same encoding — a UN's too (test `a_un_of_undefined_length_is_walked_as_dicom_rs_reads_it`).
            in_sequence = true;
            open.push(Open {
                item: false,
                pixel_data: false,
                end: None,
            });
        } else {
            // A value, read whole: this is where dicom-rs allocates the declared length.
            check_whole_values(header_at, &header, vr)?;
            at = start + header.length as usize;
            check_ends = true;
        }
    }
}

/// A length that is not the undefined length.
fn defined(length: u32) -> Option<usize> {
    (length != UNDEFINED).then_some(length as usize)
}

/// The item or delimiter header dicom-rs expects at `at`, its length checked, with `at` moved
/// past it; `None` where dicom-rs would stop (see [`read_item_header`]).
fn take_item_header(bytes: &[u8], at: &mut usize, encoding: Encoding) -> Result<Option<Header>, String> {
    let Some(header) = read_item_header(bytes, *at, encoding) else {
        return Ok(None);
    };
    check(bytes, *at, &header)?;
    *at += header.size;
    Ok(Some(header))
}

/// An item or delimiter header as dicom-rs reads it where one is expected: a tag and a 4-byte
/// length, in any encoding; `None` at the end of the bytes or for any other tag (dicom-rs stops).
fn read_item_header(bytes: &[u8], at: usize, encoding: Encoding) -> Option<Header> {
    let implicit = Encoding {
        explicit: false,
        big_endian: encoding.big_endian,
    };
    read_header(bytes, at, implicit)
        .filter(|h| h.group == 0xFFFE && matches!(h.element, 0xE000 | 0xE00D | 0xE0DD))
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

/// Refuses an element of a binary VR `vr` whose length is not a whole number of its values (see
/// [`value_size`]).
fn check_whole_values(at: usize, header: &Header, vr: Option<[u8; 2]>) -> Result<(), String> {
    let Some(vr) = vr else { return Ok(()) };
    match value_size(vr) {
        Some(size) if !(header.length as usize).is_multiple_of(size) => Err(format!(
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
