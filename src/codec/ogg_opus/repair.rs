//! Repairing an Ogg Opus stream a crash left unfinished: everything up to the last whole,
//! checksum-valid page that ends a packet is kept, and that page is marked end-of-stream, so
//! players and `opusinfo` accept the file and its length is what was recorded.
//!
//! Never here: opening or truncating files (the caller truncates to [`Repaired::length`]), or
//! looking past the first damaged page for more audio: what follows a damaged page after a
//! crash is not trustworthy, and a recording is written front to back.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::OPUS_HEAD;
use super::page::{CAPTURE, FLAG_BOS, FLAG_EOS, NO_GRANULE, PAGE_HEADER, crc_update, parse_page};
use crate::codec::CodecError;
use crate::codec::opus::SAMPLE_RATE;

/// What [`repair`] kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// The stream's length in bytes now: truncate the file here.
    pub length: u64,
    /// The granule position of its last page (pre-skip included).
    pub granule: u64,
    /// The audio it holds, pre-skip excluded, ms.
    pub duration_ms: u64,
    /// It already ended properly (its last page had end-of-stream): nothing was rewritten,
    /// though bytes after that page, if any, are still cut.
    pub was_finished: bool,
    /// It holds at least one audio packet; `false` for a stream that is only its headers.
    pub has_audio: bool,
}

/// One whole, valid page found while walking the stream.
struct Kept {
    start: u64,
    len: u64,
    flags: u8,
    granule: u64,
}

/// Walks the pages of the Ogg Opus stream in `file`, keeps what is whole and valid, and marks
/// the last kept page end-of-stream (rewriting it in place with its new checksum).
///
/// # Errors
/// [`CodecError::NotOggOpus`] when its first page is another codec's,
/// [`CodecError::Corrupt`] when not even its two header pages are whole (an empty file, or no
/// Ogg at all), and
/// [`CodecError::Io`] when reading or rewriting fails.
pub fn repair<F: Read + Write + Seek>(file: &mut F) -> Result<Repaired, CodecError> {
    file.seek(SeekFrom::Start(0))?;
    let (pages, pre_skip, has_audio) = walk(file)?;
    let last = pages.ok_or_else(|| {
        CodecError::Corrupt("its header pages are cut short: there is nothing to keep".into())
    })?;
    let was_finished = last.flags & FLAG_EOS != 0;
    if !was_finished {
        mark_end(file, &last)?;
    }
    file.flush()?;
    let audio = last.granule.saturating_sub(u64::from(pre_skip));
    Ok(Repaired {
        length: last.start + last.len,
        granule: last.granule,
        duration_ms: audio * 1000 / u64::from(SAMPLE_RATE),
        was_finished,
        has_audio,
    })
}

/// Reads pages from the start until the first one that is partial, damaged, of another
/// stream, or follows end-of-stream. Returns the last page to keep (once both headers are in),
/// the pre-skip, and whether any audio packet ends on a kept page.
fn walk<R: Read>(r: &mut R) -> Result<(Option<Kept>, u16, bool), CodecError> {
    let mut page = Vec::with_capacity(PAGE_HEADER + 255 + 255 * 255);
    let mut at = 0u64;
    let mut serial = None;
    let mut pre_skip = 0u16;
    // Packets completed so far: OpusHead, OpusTags, then audio.
    let mut packets = 0u64;
    let mut kept: Option<Kept> = None;
    let mut has_audio = false;
    while read_page(r, &mut page)? {
        let Some(view) = parse_page(&page) else { break };
        if *serial.get_or_insert(view.serial) != view.serial {
            break;
        }
        if at == 0 {
            pre_skip = check_head(&page, view.flags)?;
        }
        let segments = usize::from(page[26]);
        let lacing = &page[PAGE_HEADER..PAGE_HEADER + segments];
        packets += lacing.iter().filter(|&&l| l < 255).count() as u64;
        let ends_packet = lacing.last().is_some_and(|&l| l < 255);
        if ends_packet && packets >= 2 && view.granule != NO_GRANULE {
            has_audio |= packets > 2;
            kept = Some(Kept {
                start: at,
                len: view.len as u64,
                flags: view.flags,
                granule: view.granule,
            });
        }
        at += view.len as u64;
        if view.flags & FLAG_EOS != 0 {
            break;
        }
    }
    Ok((kept, pre_skip, has_audio))
}

/// The first page must begin the stream and carry OpusHead, whole (19 bytes at least).
/// Returns its pre-skip.
fn check_head(page: &[u8], flags: u8) -> Result<u16, CodecError> {
    let body = &page[PAGE_HEADER + usize::from(page[26])..];
    match body.get(10..12) {
        Some(&[lo, hi]) if flags & FLAG_BOS != 0 && body.starts_with(OPUS_HEAD) => {
            Ok(u16::from_le_bytes([lo, hi]))
        }
        _ => Err(CodecError::NotOggOpus(
            "its first page is not an Opus stream's header".into(),
        )),
    }
}

/// Reads the next page's bytes into `page` (without checking them). `false` at the end of the
/// input or when the page there is cut short.
fn read_page<R: Read>(r: &mut R, page: &mut Vec<u8>) -> io::Result<bool> {
    page.resize(PAGE_HEADER, 0);
    if !read_all(r, page)? || !page.starts_with(CAPTURE) {
        return Ok(false);
    }
    let segments = usize::from(page[26]);
    page.resize(PAGE_HEADER + segments, 0);
    if !read_all(r, &mut page[PAGE_HEADER..])? {
        return Ok(false);
    }
    let body: usize = page[PAGE_HEADER..].iter().map(|&l| usize::from(l)).sum();
    let start = page.len();
    page.resize(start + body, 0);
    read_all(r, &mut page[start..])
}

/// Fills `buf`; `false` when the input ends first.
fn read_all<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Sets end-of-stream on the page at `last.start` and rewrites its flags and checksum.
fn mark_end<F: Read + Write + Seek>(file: &mut F, last: &Kept) -> Result<(), CodecError> {
    let len = usize::try_from(last.len)
        .map_err(|_| CodecError::Corrupt("a page larger than memory".into()))?;
    let mut page = vec![0; len];
    file.seek(SeekFrom::Start(last.start))?;
    file.read_exact(&mut page)?;
    page[5] = last.flags | FLAG_EOS;
    page[22..26].fill(0);
    let crc = crc_update(0, &page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    file.seek(SeekFrom::Start(last.start + 5))?;
    file.write_all(&page[5..6])?;
    file.seek(SeekFrom::Start(last.start + 22))?;
    file.write_all(&page[22..26])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::Duration;

    use super::*;
    use crate::codec::ogg_opus::{OggOpusReader, OggOpusWriter};
    use crate::codec::opus::EncoderSettings;

    /// `seconds` of a tone written with 1 s pages and never finished, as a crash leaves it.
    fn unfinished(seconds: usize) -> Vec<u8> {
        let mut w =
            OggOpusWriter::new(Vec::new(), &EncoderSettings::music_stereo(96_000), 48_000).unwrap();
        w.set_page_duration(Duration::from_secs(1));
        let pcm: Vec<f32> = (0..48_000 * seconds)
            .flat_map(|n| {
                let x = 0.3 * (std::f32::consts::TAU * 440.0 * n as f32 / 48_000.0).sin();
                [x, x]
            })
            .collect();
        w.write(&pcm).unwrap();
        w.get_ref().clone()
    }

    fn page_starts(bytes: &[u8]) -> Vec<usize> {
        let mut at = 0;
        let mut starts = Vec::new();
        while let Some(p) = parse_page(&bytes[at..]) {
            starts.push(at);
            at += p.len;
        }
        starts
    }

    fn decoded_frames(bytes: Vec<u8>) -> usize {
        let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
        let mut n = 0;
        while let Some(b) = r.read().unwrap() {
            n += b.len() / 2;
        }
        n
    }

    #[test]
    fn a_page_cut_short_and_garbage_after_it_are_cut_and_the_end_is_marked() {
        let bytes = unfinished(5);
        let starts = page_starts(&bytes);
        // OpusHead, OpusTags, then one page a second.
        assert_eq!(starts.len(), 2 + 5);
        let mut cut = bytes[..starts[5] + 40].to_vec();
        cut.extend_from_slice(b"OggS garbage after a crash");
        let mut file = Cursor::new(cut);
        let r = repair(&mut file).unwrap();
        assert!(!r.was_finished && r.has_audio);
        assert_eq!(r.length, starts[5] as u64);
        // Three whole seconds of audio pages were kept: 150 packets, less the 312 pre-skip.
        assert_eq!(r.granule, 150 * 960);
        assert_eq!(r.duration_ms, (150 * 960 - 312) * 1000 / 48_000);
        let mut kept = file.into_inner();
        kept.truncate(r.length as usize);
        let last = parse_page(&kept[starts[4]..]).unwrap();
        assert_ne!(
            last.flags & FLAG_EOS,
            0,
            "the last page is marked end-of-stream"
        );
        assert_eq!(decoded_frames(kept.clone()), 150 * 960 - 312);
        // A second repair finds it whole.
        let again = repair(&mut Cursor::new(kept)).unwrap();
        assert!(again.was_finished);
        assert_eq!(again.length, r.length);
    }

    #[test]
    fn a_damaged_page_ends_what_is_kept() {
        let mut bytes = unfinished(4);
        let starts = page_starts(&bytes);
        bytes[starts[4] + 100] ^= 0x55;
        let r = repair(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(r.length, starts[4] as u64);
        assert_eq!(r.granule, 100 * 960);
    }

    #[test]
    fn a_finished_stream_is_left_as_it_is() {
        let mut w =
            OggOpusWriter::new(Vec::new(), &EncoderSettings::music_stereo(96_000), 48_000).unwrap();
        w.write(&vec![0.1; 2 * 48_000]).unwrap();
        let bytes = w.finish().unwrap();
        let mut file = Cursor::new(bytes.clone());
        let r = repair(&mut file).unwrap();
        assert!(r.was_finished && r.has_audio);
        assert_eq!(r.length, bytes.len() as u64);
        assert_eq!(r.duration_ms, 1000);
        assert_eq!(file.into_inner(), bytes);
    }

    #[test]
    fn headers_alone_are_kept_and_said_to_hold_no_audio() {
        let w =
            OggOpusWriter::new(Vec::new(), &EncoderSettings::voice_mono(32_000), 48_000).unwrap();
        let mut bytes = w.get_ref().clone();
        bytes.extend_from_slice(&[0; 10]);
        let mut file = Cursor::new(bytes);
        let r = repair(&mut file).unwrap();
        assert!(!r.has_audio && !r.was_finished);
        assert_eq!((r.granule, r.duration_ms), (0, 0));
        let mut kept = file.into_inner();
        kept.truncate(r.length as usize);
        assert_eq!(decoded_frames(kept), 0);
    }

    #[test]
    fn what_is_not_an_opus_stream_is_refused() {
        let not_ogg = repair(&mut Cursor::new(b"RIFF....WAVEfmt ".to_vec()));
        assert!(
            matches!(not_ogg, Err(CodecError::Corrupt(_))),
            "{not_ogg:?}"
        );
        assert!(matches!(
            repair(&mut Cursor::new(Vec::new())),
            Err(CodecError::Corrupt(_))
        ));
        let bytes = unfinished(1);
        let head_only = page_starts(&bytes)[1];
        let r = repair(&mut Cursor::new(bytes[..head_only].to_vec()));
        assert!(matches!(r, Err(CodecError::Corrupt(_))), "{r:?}");
    }
}
