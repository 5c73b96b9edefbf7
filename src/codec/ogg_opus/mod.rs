//! Ogg Opus files per RFC 7845: the writer Booth records and streams with, the reader `booth mix`
//! uses.
//!
//! The writer puts OpusHead and OpusTags on pages of their own, writes the encoder's real
//! lookahead as pre-skip, stamps every page with the granule position of the last packet ending
//! on it, ends a page at least every [`OggOpusWriter::set_page_duration`] (1 s by default, so a
//! crash loses at most that much) and trims the end exactly through the last page's granule
//! position. It lays out its own pages: buffers are sized once, and a page can be ended at any
//! moment, which a live stream needs.
//!
//! The reader undoes all of that (pre-skip dropped, end trimmed, output gain applied), also for
//! streams that start at a non-zero granule position, and decodes surround files (channel
//! mapping family 1) as well as mono and stereo. It reads the first Opus stream of a file;
//! chained streams after it are not played.
//!
//! Never here: a panic on damaged input. Damage is an error that says what and where.
//!
//! The parts: `page` (Ogg pages per RFC 3533: the CRC, laying packets into pages, finding a
//! page's fields), `writer` ([`OggOpusWriter`]), `head` (OpusHead, and the decoder it calls
//! for), `reader` ([`OggOpusReader`]) and `repair` ([`repair`]: a stream a crash left
//! unfinished made whole again).

mod demux;
mod head;
mod page;
mod reader;
mod repair;
mod writer;

pub use reader::OggOpusReader;
pub use repair::{Repaired, repair};
pub use writer::OggOpusWriter;

use page::{CAPTURE, FLAG_BOS, PAGE_HEADER};

const OPUS_HEAD: &[u8; 8] = b"OpusHead";
const OPUS_TAGS: &[u8; 8] = b"OpusTags";

/// Whether these first bytes of a file start an Ogg Opus stream: an Ogg beginning-of-stream page
/// whose first packet is OpusHead. 64 bytes are plenty.
#[must_use]
pub fn is_ogg_opus(first_bytes: &[u8]) -> bool {
    if first_bytes.len() < PAGE_HEADER
        || !first_bytes.starts_with(CAPTURE)
        || first_bytes[4] != 0
        || first_bytes[5] & FLAG_BOS == 0
    {
        return false;
    }
    let start = PAGE_HEADER + usize::from(first_bytes[26]);
    first_bytes.get(start..start + OPUS_HEAD.len()) == Some(&OPUS_HEAD[..])
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;
