use super::*;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom")
}

/// An explicit VR little endian element.
fn explicit(group: u16, element: u16, vr: &[u8; 2], value: &[u8], length: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    let length = length.unwrap_or(value.len() as u32);
    if !SHORT_VRS.contains(&vr) {
        out.extend([0, 0]);
        out.extend(length.to_le_bytes());
    } else {
        out.extend((length as u16).to_le_bytes());
    }
    out.extend(value);
    out
}

/// An implicit VR little endian element: tag, 4-byte length (`value`'s unless given), value.
fn implicit(group: u16, element: u16, value: &[u8], length: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(length.unwrap_or(value.len() as u32).to_le_bytes());
    out.extend(value);
    out
}

/// Why the guard refuses the committed fixture `folder/IM0000.dcm` (a fuzz finding).
fn fixture_refusal(folder: &str) -> String {
    let bytes = std::fs::read(fixtures().join(folder).join("IM0000.dcm")).expect("committed fixture");
    check_declared_lengths(&bytes).expect_err("a fuzz finding the guard must refuse")
}

/// An item or delimiter tag with its length (no VR).
fn tag_only(element: u16, length: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xFFFEu16.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(length.to_le_bytes());
    out
}

/// Preamble, "DICM" and a meta group naming `syntax`.
fn file_with(syntax: &str, data_set: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    let mut uid = syntax.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    out.extend(explicit(0x0002, 0x0010, b"UI", &uid, None));
    out.extend(data_set);
    out
}

#[test]
fn the_file_the_fuzzer_found_is_refused_before_dicom_rs_allocates() {
    // A 2 134-byte file whose data set declares an element of gigabytes: dicom-rs zero-filled
    // 4.2 GB for it (peak RSS measured with /usr/bin/time) before failing to read it.
    let refused = fixture_refusal("fuzz_declared_length");
    assert!(
        refused.contains("declares") && refused.contains("damaged"),
        "{refused}"
    );
}

#[test]
fn the_meta_group_is_read_to_its_group_length_as_dicom_rs_reads_it() {
    // The fuzzer's second find: a meta element's group mutated to 0003 inside the meta group's
    // length. dicom-rs still reads the transfer syntax (big endian) after it and then zero-fills
    // 3.4 GB for element (60FB,8401); a walk that ended the meta group at 0003 read the data set
    // as little endian and missed it.
    let refused = fixture_refusal("fuzz_meta_group_length");
    assert!(refused.contains("(60FB,8401)"), "{refused}");
}

#[test]
fn a_deflated_data_set_is_walked_inflated() {
    // The fuzzer's third find (767 bytes, transfer syntax deflated explicit VR little endian):
    // the inflated data set begins with an element of an unknown VR, read as UN with a 4-byte
    // length, declaring far more than the 121 bytes the damaged stream inflates to; dicom-rs
    // grew past the fuzzer's 2 GB limit on it.
    let refused = fixture_refusal("fuzz_deflated_length");
    assert!(
        refused.contains("deflated") && refused.contains("(29E7,B29A)"),
        "{refused}"
    );
}

#[test]
fn every_committed_dicom_fixture_passes() {
    // Implicit and explicit VR, big endian, deflate, RLE and JPEG fragments, enhanced
    // multi-frame, pydicom's own test files: none is refused.
    let mut checked = 0;
    let mut folders = vec![fixtures()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("fixtures folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !name.starts_with("fuzz_") {
                    folders.push(path);
                }
                continue;
            }
            let bytes = std::fs::read(&path).expect("readable");
            if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
                continue;
            }
            if let Err(message) = check_declared_lengths(&bytes) {
                panic!("{}: {message}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} DICOM files found");
}

#[test]
fn huge_lengths_are_refused_wherever_they_are_declared() {
    let huge = Some(0xF000_0000);
    // At the top level, explicit VR little endian.
    let top = file_with(
        "1.2.840.10008.1.2.1",
        &explicit(0x0010, 0x0010, b"OB", b"abcd", huge),
    );
    assert!(check_declared_lengths(&top).is_err());
    // Inside an item of a sequence of undefined length.
    let mut nested = explicit(0x0008, 0x1115, b"SQ", &[], Some(UNDEFINED));
    nested.extend(tag_only(0xE000, UNDEFINED));
    nested.extend(explicit(0x0008, 0x1150, b"UT", b"ab", huge));
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &nested)).is_err());
    // Implicit VR: a 4-byte length after the tag.
    let top_implicit = implicit(0x0010, 0x0010, &[], Some(0xF000_0000));
    assert!(check_declared_lengths(&file_with(IMPLICIT_LE, &top_implicit)).is_err());
}

#[test]
fn harmless_overlong_lengths_and_raw_fragments_are_left_to_dicom_rs() {
    // 100 bytes declared, 4 present: damaged, but allocating 100 bytes is harmless.
    let short = file_with(
        "1.2.840.10008.1.2.1",
        &explicit(0x0010, 0x0010, b"OB", b"abcd", Some(100)),
    );
    assert!(check_declared_lengths(&short).is_ok());
    // Encapsulated pixel data: a fragment's bytes that look like a huge element are not
    // parsed as elements.
    let mut pixels = explicit(0x7FE0, 0x0010, b"OB", &[], Some(UNDEFINED));
    pixels.extend(tag_only(0xE000, 0)); // the basic offset table
    let looks_huge = explicit(0x0010, 0x0010, b"OB", &[], Some(0xF000_0000));
    pixels.extend(tag_only(0xE000, looks_huge.len() as u32));
    pixels.extend(&looks_huge);
    pixels.extend(tag_only(0xE0DD, 0));
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.5", &pixels)).is_ok());
}

#[test]
fn expansion_is_bounded_only_beyond_the_harmless_length() {
    // Closed form: decoded ≤ HARMLESS_LENGTH, or decoded ≤ MAX_EXPANSION × compressed.
    assert!(check_expansion(HARMLESS_LENGTH, 0).is_ok());
    assert!(check_expansion(HARMLESS_LENGTH + 1, 0).is_err());
    let compressed = 1_000_000;
    assert!(check_expansion(compressed * MAX_EXPANSION, compressed).is_ok());
    let refused = check_expansion(compressed * MAX_EXPANSION + 1, compressed).expect_err("one byte over");
    assert!(refused.contains("times the compressed size"), "{refused}");
    assert!(check_expansion(u64::MAX, u64::MAX).is_ok(), "no overflow");
}

/// A deflated data set holding one OB element of `zeros` zero bytes.
fn deflated_zeros(zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let element = explicit(0x0009, 0x0010, b"OB", &vec![0u8; zeros], None);
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&element).expect("deflate in memory");
    file_with(DEFLATED, &encoder.finish().expect("deflate in memory"))
}

#[test]
fn a_deflated_data_set_that_unfolds_into_far_more_is_refused_before_dicom_rs_inflates_it() {
    // 96 MiB of zeros deflate to about 100 kB (deflate's ratio on a run is about 1030): dicom-rs
    // would inflate it whole into memory. Under HARMLESS_LENGTH the same ratio passes.
    let bomb = deflated_zeros(96 << 20);
    assert!((96u64 << 20) > bomb.len() as u64 * MAX_EXPANSION);
    let refused = check_declared_lengths(&bomb).expect_err("a deflate bomb");
    assert!(
        refused.contains("deflated") && refused.contains("inflate to more than 67108864"),
        "{refused}"
    );
    let small = deflated_zeros(1 << 20);
    assert!(check_declared_lengths(&small).is_ok());
}

#[test]
fn the_deflated_file_that_made_dicom_rs_reach_4_gb_is_refused() {
    // Found by the dicom fuzz target (out of memory): 867 bytes, deflated; the stream breaks off after
    // 227 sound bytes (zlib: "invalid distance too far back"), the last element (0020,2E0D)
    // having an unknown VR and a 4-byte length of 4 164 434 231. Inflating all at once loses
    // those bytes with the error, dicom-rs read them: the fuzz binary reached 4.1 GB resident.
    let refused = fixture_refusal("fuzz_deflated_oom");
    assert!(refused.contains("deflated data set is damaged"), "{refused}");
}

#[test]
fn an_element_after_a_value_that_begins_with_an_item_is_met() {
    // Found by the dicom fuzz target (out of memory; 2 131 bytes, explicit VR little endian):
    // (5352,5192) of an unknown VR and 164 bytes that begin with an item, then (5130,0000)
    // declaring 3 758 161 918 bytes.
    // dicom-rs read the first as bytes and reserved the second (3.7 GB resident); walking into
    // the first, the guard lost step and never met the second.
    let refused = fixture_refusal("fuzz_un_items");
    assert!(refused.contains("(5130,0000)"), "{refused}");
}

#[test]
fn a_binary_value_of_a_partial_length_is_refused_before_dicom_rs_loses_step() {
    // The fuzzer's seventh find (1 285 bytes, JPEG Baseline): Bits Allocated (0028,0100) as US of
    // 35 bytes. dicom-rs read 17 values, counted 35 bytes, read the next header one byte early
    // and reserved the 4 294 901 759 bytes it declared (4.3 GB peak, heaptrack); the guard,
    // walking from the right byte, met only a harmless length.
    let refused = fixture_refusal("fuzz_odd_us");
    assert!(
        refused.contains("(0028,0100)") && refused.contains("US of 35 bytes") && refused.contains("2-byte"),
        "{refused}"
    );

    // Explicit VR: every binary VR by its value size; byte and text VRs take any length.
    for (vr, size) in [
        (b"US", 2),
        (b"SS", 2),
        (b"OW", 2),
        (b"UL", 4),
        (b"FL", 4),
        (b"AT", 4),
        (b"FD", 8),
        (b"OV", 8),
    ] {
        let whole = file_with(
            "1.2.840.10008.1.2.1",
            &explicit(0x0009, 0x1001, vr, &vec![0; 2 * size], None),
        );
        assert!(
            check_declared_lengths(&whole).is_ok(),
            "{vr:?} of {} bytes",
            2 * size
        );
        let partial = file_with(
            "1.2.840.10008.1.2.1",
            &explicit(0x0009, 0x1001, vr, &vec![0; 2 * size + 1], None),
        );
        let refused = check_declared_lengths(&partial).expect_err("a partial value");
        assert!(refused.contains(&format!("{size}-byte")), "{refused}");
    }
    for vr in [b"OB", b"UN", b"LO", b"DS"] {
        let odd = file_with(
            "1.2.840.10008.1.2.1",
            &explicit(0x0009, 0x1001, vr, &[b'1'; 3], None),
        );
        assert!(check_declared_lengths(&odd).is_ok(), "{vr:?} of 3 bytes");
    }

    // Implicit VR: the VR comes from the dictionary, as dicom-rs takes it. Rows (0028,0010) is
    // US; a private tag is UN; pixel data is OW.
    let implicit_file = |group: u16, element: u16, length: usize| {
        file_with(IMPLICIT_LE, &implicit(group, element, &vec![0u8; length], None))
    };
    assert!(check_declared_lengths(&implicit_file(0x0028, 0x0010, 2)).is_ok());
    let refused = check_declared_lengths(&implicit_file(0x0028, 0x0010, 3)).expect_err("Rows of 3 bytes");
    assert!(
        refused.contains("(0028,0010)") && refused.contains("US of 3"),
        "{refused}"
    );
    assert!(check_declared_lengths(&implicit_file(0x0009, 0x1001, 3)).is_ok());
    assert!(check_declared_lengths(&implicit_file(0x7FE0, 0x0010, 5)).is_err());
}

#[test]
fn a_un_of_undefined_length_is_walked_as_dicom_rs_reads_it() {
    // Explicit VR little endian: (0009,1001) UN of undefined length, an item of undefined length,
    // then an OB declaring 4 043 309 055 bytes with 4 left. dicom-rs 0.10 reads the item's
    // elements explicitly and reserved the 4 GB (3.95 GB peak resident); read in implicit VR, as
    // PS3.5 §6.2.2 has it, the same bytes declare 20 290 bytes, which is harmless.
    let mut data_set = explicit(0x0008, 0x0060, b"CS", b"MR", None);
    data_set.extend(explicit(0x0009, 0x1001, b"UN", &[], Some(UNDEFINED)));
    data_set.extend(tag_only(0xE000, UNDEFINED));
    data_set.extend(explicit(0x0009, 0x1002, b"OB", b"abcd", Some(0xF0FF_FFFF)));
    let refused = check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &data_set)).expect_err("4 GB");
    assert!(
        refused.contains("(0009,1002)") && refused.contains("4043309055"),
        "{refused}"
    );

    // The same structure with a sound OB and the delimiters passes, and what follows the
    // sequence is walked again: a 4 GB element after it is refused.
    let mut sound = explicit(0x0009, 0x1001, b"UN", &[], Some(UNDEFINED));
    sound.extend(tag_only(0xE000, UNDEFINED));
    sound.extend(explicit(0x0009, 0x1002, b"OB", b"abcd", None));
    sound.extend(tag_only(0xE00D, 0));
    sound.extend(tag_only(0xE0DD, 0));
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &sound)).is_ok());
    sound.extend(explicit(0x0010, 0x0020, b"UT", b"ab", Some(0xF0FF_FFFF)));
    let refused = check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &sound)).expect_err("after");
    assert!(refused.contains("(0010,0020)"), "{refused}");
}

#[test]
fn a_stray_item_is_read_as_dicom_rs_reads_it() {
    // The fuzzer's eighth find (1 336 bytes, JPEG Lossless): the pixel data's reserved bytes
    // mutated so it has length 0, then (FFFF,FFFF) of 4 bytes and an item of 152 bytes outside
    // any sequence. dicom-rs read the item as an element of bytes and met, after it, an element
    // declaring 4 216 820 138 bytes (4.2 GB reserved); a walk stepping into the item lost step.
    let refused = fixture_refusal("fuzz_stray_item");
    assert!(refused.contains("declares 4216820138 bytes"), "{refused}");

    // Built: a stray item of 8 bytes hiding a huge header in its value is skipped, as dicom-rs
    // does; a stray item of undefined length opens a sequence, whose items are walked.
    let huge = explicit(0x0010, 0x0010, b"OB", &[], Some(0xF000_0000));
    let mut skipped = tag_only(0xE000, huge.len() as u32);
    skipped.extend(&huge);
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &skipped)).is_ok());
    let mut stepped = tag_only(0xE000, UNDEFINED);
    stepped.extend(tag_only(0xE000, UNDEFINED));
    stepped.extend(&huge);
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &stepped)).is_err());
}

#[test]
fn defined_length_sequences_end_where_dicom_rs_ends_them() {
    // A defined-length SQ holding one defined-length item of one element; after the sequence,
    // an element declaring 4 GB: it is met and refused.
    let inner = explicit(0x0008, 0x1150, b"UI", b"1.2", None);
    let mut item = tag_only(0xE000, inner.len() as u32);
    item.extend(&inner);
    let mut data_set = explicit(0x0008, 0x1115, b"SQ", &item, None);
    let sound = data_set.clone();
    data_set.extend(explicit(0x0010, 0x0010, b"OB", b"ab", Some(0xF000_0000)));
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &sound)).is_ok());
    assert!(check_declared_lengths(&file_with("1.2.840.10008.1.2.1", &data_set)).is_err());
    // In implicit VR the dictionary says (0008,1115) is a sequence.
    let inner = implicit(0x0008, 0x1150, b"1.2\0", None);
    let mut item = tag_only(0xE000, inner.len() as u32);
    item.extend(&inner);
    let mut data_set = implicit(0x0008, 0x1115, &item, None);
    assert!(check_declared_lengths(&file_with(IMPLICIT_LE, &data_set)).is_ok());
    data_set.extend(implicit(0x0010, 0x0010, b"ab", Some(0xF000_0000)));
    assert!(check_declared_lengths(&file_with(IMPLICIT_LE, &data_set)).is_err());
}

#[test]
fn a_basic_offset_table_of_partial_offsets_is_refused() {
    let pixels = |table: usize| {
        let mut out = explicit(0x7FE0, 0x0010, b"OB", &[], Some(UNDEFINED));
        out.extend(tag_only(0xE000, table as u32));
        out.extend(vec![0u8; table]);
        out.extend(tag_only(0xE000, 4));
        out.extend([1, 2, 3, 4]);
        out.extend(tag_only(0xE0DD, 0));
        file_with("1.2.840.10008.1.2.5", &out)
    };
    assert!(check_declared_lengths(&pixels(0)).is_ok());
    assert!(check_declared_lengths(&pixels(8)).is_ok());
    let refused = check_declared_lengths(&pixels(6)).expect_err("6 bytes of offsets");
    assert!(
        refused.contains("basic offset table") && refused.contains("6 bytes"),
        "{refused}"
    );
}
