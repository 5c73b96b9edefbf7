//! Files crafted to make the Ogg Opus reader work or allocate without bound: each must open
//! (or be refused) having done a small, bounded amount of work.

use std::io::Cursor;

use super::page::{PAGE_HEADER, crc_update, last_granule_within};
use super::*;
use crate::codec::CodecError;
use crate::codec::opus::EncoderSettings;

/// A real, short Ogg Opus stream (its serial, and its bytes).
fn real_stream() -> (u32, Vec<u8>) {
    let settings = EncoderSettings {
        channels: 2,
        ..EncoderSettings::music_stereo(128_000)
    };
    let mut w = OggOpusWriter::new(Vec::new(), &settings, 48_000).unwrap();
    w.write(&vec![0.1; 48_000 * 2 / 10]).unwrap();
    let bytes = w.finish().unwrap();
    let serial = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    (serial, bytes)
}

/// A page header of stream `serial` with a granule position and a full lacing table (so it
/// claims a 64 KiB body), its checksum wrong: 282 bytes that look, header-wise, like the
/// stream's last page.
fn decoy(serial: u32) -> Vec<u8> {
    let mut page = Vec::with_capacity(PAGE_HEADER + 255);
    page.extend_from_slice(b"OggS\0\0");
    page.extend_from_slice(&1_000u64.to_le_bytes());
    page.extend_from_slice(&serial.to_le_bytes());
    page.extend_from_slice(&7u32.to_le_bytes());
    page.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    page.push(255);
    page.extend(std::iter::repeat_n(255u8, 255));
    page
}

/// 60,000 decoys after the real stream: 17 MB whose every decoy asked the old backwards scan to
/// checksum 64 KiB, 3.9 GB in all (minutes).
#[test]
fn a_file_full_of_decoy_pages_is_scanned_within_budget() {
    let (serial, mut bytes) = real_stream();
    let one = decoy(serial);
    for _ in 0..60_000 {
        bytes.extend_from_slice(&one);
    }
    let mut cursor = Cursor::new(bytes);
    let (granule, checked) = last_granule_within(&mut cursor, serial, 0, 1 << 20).unwrap();
    assert_eq!(granule, None);
    assert!(checked <= 1 << 20, "checksummed {checked} bytes");

    cursor.set_position(0);
    let mut reader = OggOpusReader::new(cursor).unwrap();
    assert_eq!(reader.total_frames(), None);
}

#[test]
fn the_real_last_page_is_still_found_behind_a_few_decoys() {
    let (serial, mut bytes) = real_stream();
    let real_total = OggOpusReader::new(Cursor::new(bytes.clone()))
        .unwrap()
        .total_frames();
    assert_eq!(real_total, Some(4_800));
    for _ in 0..20 {
        bytes.extend_from_slice(&decoy(serial));
    }
    let mut reader = OggOpusReader::new(Cursor::new(bytes)).unwrap();
    assert_eq!(reader.total_frames(), real_total);
}

/// Pages of the stream that continue one packet for ever: the reader keeps at most a little
/// over 1 MiB of it and says the packet is too large, instead of gathering it all.
#[test]
fn a_packet_continued_over_hundreds_of_pages_is_refused_unread() {
    let (serial, real) = real_stream();
    // The stream's two header pages, then an audio page that starts an endless packet.
    let headers = {
        let first = PAGE_HEADER + usize::from(real[26]) + 19;
        let second_len = {
            let s = &real[first..];
            let n = usize::from(s[26]);
            PAGE_HEADER
                + n
                + s[PAGE_HEADER..PAGE_HEADER + n]
                    .iter()
                    .map(|&l| usize::from(l))
                    .sum::<usize>()
        };
        real[..first + second_len].to_vec()
    };
    let mut bytes = headers;
    for sequence in 2..400u32 {
        let mut page = Vec::new();
        page.extend_from_slice(b"OggS\0");
        page.push(if sequence == 2 { 0 } else { 1 });
        page.extend_from_slice(&u64::MAX.to_le_bytes());
        page.extend_from_slice(&serial.to_le_bytes());
        page.extend_from_slice(&sequence.to_le_bytes());
        page.extend_from_slice(&[0; 4]);
        page.push(255);
        page.extend(std::iter::repeat_n(255u8, 255));
        page.extend(std::iter::repeat_n(0xFCu8, 255 * 255));
        let crc = crc_update(0, &page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(&page);
    }
    match OggOpusReader::new(Cursor::new(bytes)) {
        Err(CodecError::Corrupt(m)) => assert!(m.contains("larger than Opus allows"), "{m}"),
        other => panic!("{other:?}"),
    }
}
