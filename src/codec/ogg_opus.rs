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

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use ::opus as lib;
use ogg::{OggReadError, Packet, PacketReader};

use super::CodecError;
use super::opus::{
    EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusDecoder, OpusEncoder, SAMPLE_RATE,
};

const OPUS_HEAD: &[u8; 8] = b"OpusHead";
const OPUS_TAGS: &[u8; 8] = b"OpusTags";
const CAPTURE: &[u8; 4] = b"OggS";
const PAGE_HEADER: usize = 27;
const MAX_SEGMENTS: usize = 255;
/// The largest Ogg page: header, a full lacing table and 255 full segments.
const MAX_PAGE: usize = PAGE_HEADER + MAX_SEGMENTS + MAX_SEGMENTS * 255;
/// Granule position -1: no packet ends on the page.
const NO_GRANULE: u64 = u64::MAX;
const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;
/// Larger than any Opus packet a file of up to 8 channels can hold (8 streams of 120 ms); a
/// "packet" beyond it is damage, and libopus must not be handed it.
const MAX_AUDIO_PACKET: usize = 1 << 20;
/// 2.5 ms, the shortest Opus frame.
const MIN_FRAME_SAMPLES: u64 = 120;

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

// ---------------------------------------------------------------------------------------------
// Ogg pages (RFC 3533)

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut r = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            r = if r & 0x8000_0000 != 0 {
                (r << 1) ^ 0x04c1_1db7
            } else {
                r << 1
            };
            bit += 1;
        }
        table[i] = r;
        i += 1;
    }
    table
}

/// Ogg's CRC-32: polynomial 0x04c11db7, not reflected, no initial or final xor.
fn crc_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = (crc << 8) ^ CRC_TABLE[usize::from((crc >> 24) as u8 ^ b)];
    }
    crc
}

/// The header fields of one whole, checksum-verified page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageView {
    len: usize,
    flags: u8,
    granule: u64,
    serial: u32,
    sequence: u32,
}

/// Parses the page at the start of `bytes` if it is whole there and its checksum holds.
fn parse_page(bytes: &[u8]) -> Option<PageView> {
    if bytes.len() < PAGE_HEADER || !bytes.starts_with(CAPTURE) || bytes[4] != 0 {
        return None;
    }
    let segments = usize::from(bytes[26]);
    let lacing = bytes.get(PAGE_HEADER..PAGE_HEADER + segments)?;
    let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let page = bytes.get(..PAGE_HEADER + segments + body)?;
    let mut crc = crc_update(0, &page[..22]);
    crc = crc_update(crc, &[0; 4]);
    crc = crc_update(crc, &page[26..]);
    let le32 = |at: usize| u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]]);
    if crc != le32(22) {
        return None;
    }
    let granule = u64::from(le32(6)) | (u64::from(le32(10)) << 32);
    Some(PageView {
        len: page.len(),
        flags: page[5],
        granule,
        serial: le32(14),
        sequence: le32(18),
    })
}

/// Lays the packets of one logical stream into Ogg pages. The caller decides where pages end;
/// a packet too big for the rest of a page continues on the next.
struct PageWriter {
    serial: u32,
    sequence: u32,
    first: bool,
    /// The page being filled starts with the rest of a packet begun on the previous one.
    continued: bool,
    lacing: Vec<u8>,
    body: Vec<u8>,
    /// Granule position of the last packet ending on this page, or `NO_GRANULE`.
    granule: u64,
    /// Header, lacing and body assembled so a page goes out in one write.
    page: Vec<u8>,
}

impl PageWriter {
    fn new(serial: u32) -> Self {
        Self {
            serial,
            sequence: 0,
            first: true,
            continued: false,
            lacing: Vec::with_capacity(MAX_SEGMENTS),
            body: Vec::with_capacity(MAX_SEGMENTS * 255),
            granule: NO_GRANULE,
            page: Vec::with_capacity(MAX_PAGE),
        }
    }

    fn is_empty(&self) -> bool {
        self.lacing.is_empty()
    }

    /// Adds a packet ending at `granule`; writes out any page it fills.
    fn push(&mut self, w: &mut impl Write, packet: &[u8], granule: u64) -> io::Result<()> {
        let mut rest = packet;
        loop {
            let free = MAX_SEGMENTS - self.lacing.len();
            // A packet of n bytes takes n / 255 full segments and one shorter (maybe empty) one.
            if rest.len() < 255 * free {
                self.lacing
                    .extend(std::iter::repeat_n(255, rest.len() / 255));
                self.lacing.push((rest.len() % 255) as u8);
                self.body.extend_from_slice(rest);
                self.granule = granule;
                return Ok(());
            }
            let (now, later) = rest.split_at(255 * free);
            self.lacing.extend(std::iter::repeat_n(255, free));
            self.body.extend_from_slice(now);
            rest = later;
            self.write_page(w, false)?;
        }
    }

    fn write_page(&mut self, w: &mut impl Write, eos: bool) -> io::Result<()> {
        let mut flags = 0;
        if self.continued {
            flags |= FLAG_CONTINUED;
        }
        if self.first {
            flags |= FLAG_BOS;
        }
        if eos {
            flags |= FLAG_EOS;
        }
        self.page.clear();
        self.page.extend_from_slice(CAPTURE);
        self.page.push(0);
        self.page.push(flags);
        self.page.extend_from_slice(&self.granule.to_le_bytes());
        self.page.extend_from_slice(&self.serial.to_le_bytes());
        self.page.extend_from_slice(&self.sequence.to_le_bytes());
        self.page.extend_from_slice(&[0; 4]);
        // At most 255 by construction.
        self.page.push(self.lacing.len() as u8);
        self.page.extend_from_slice(&self.lacing);
        self.page.extend_from_slice(&self.body);
        let crc = crc_update(0, &self.page);
        self.page[22..26].copy_from_slice(&crc.to_le_bytes());
        w.write_all(&self.page)?;

        self.first = false;
        self.sequence = self.sequence.wrapping_add(1);
        // A last segment of 255 bytes means the packet goes on (RFC 3533 lacing).
        self.continued = self.lacing.last() == Some(&255);
        self.lacing.clear();
        self.body.clear();
        self.granule = NO_GRANULE;
        Ok(())
    }
}

fn stream_serial() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Mix the bits so streams started close together differ everywhere (chaining and
    // multiplexing need distinct serials; nothing here needs them unpredictable).
    let mut x = nanos as u64 ^ u64::from(std::process::id()).rotate_left(32);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as u32
}

// ---------------------------------------------------------------------------------------------
// Writer

/// Writes an Ogg Opus stream, encoding interleaved `f32` at 48 kHz as it goes.
///
/// Dropping it without [`finish`](Self::finish) leaves a stream cut short: readable up to its
/// last whole page, like a recording after a crash.
pub struct OggOpusWriter<W: Write> {
    out: W,
    pages: PageWriter,
    enc: OpusEncoder,
    channels: usize,
    pre_skip: u64,
    /// The 20 ms frame being gathered from `write` calls.
    frame: Vec<f32>,
    filled: usize,
    packet: Vec<u8>,
    /// Samples per channel the packets so far decode to: the granule clock, pre-skip included.
    granule: u64,
    frames_in: u64,
    page_samples: u64,
    samples_on_page: u64,
}

impl<W: Write> std::fmt::Debug for OggOpusWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusWriter")
            .field("serial", &self.pages.serial)
            .field("pre_skip", &self.pre_skip)
            .field("frames_in", &self.frames_in)
            .finish_non_exhaustive()
    }
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes OpusHead and OpusTags, each on its own page, and flushes them.
    /// `input_sample_rate` is the rate the audio had before resampling to 48 kHz; it is only
    /// informational (RFC 7845 5.1).
    ///
    /// # Errors
    /// Encoder settings out of range, or a failed write.
    pub fn new(
        writer: W,
        settings: &EncoderSettings,
        input_sample_rate: u32,
    ) -> Result<Self, CodecError> {
        Self::with_comments(writer, settings, input_sample_rate, &[])
    }

    /// As [`new`](Self::new), with user comments in OpusTags, such as `("TITLE", "Launch night")`.
    /// Names are ASCII without `=` (Vorbis comment rules); values are any text.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`CodecError::InvalidInput`] for an invalid comment name.
    pub fn with_comments(
        mut writer: W,
        settings: &EncoderSettings,
        input_sample_rate: u32,
        comments: &[(&str, &str)],
    ) -> Result<Self, CodecError> {
        let enc = OpusEncoder::new(settings)?;
        let channels = usize::from(settings.channels);
        let pre_skip = u16::try_from(enc.lookahead()).map_err(|_| {
            CodecError::Opus(format!("encoder delay {} is too long", enc.lookahead()))
        })?;
        let mut pages = PageWriter::new(stream_serial());

        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(OPUS_HEAD);
        head.push(1); // version
        head.push(settings.channels);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&input_sample_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo, one stream
        pages.push(&mut writer, &head, 0)?;
        pages.write_page(&mut writer, false)?;

        let tags = opus_tags(comments)?;
        pages.push(&mut writer, &tags, 0)?;
        // Audio must start on a fresh page (RFC 7845 3).
        pages.write_page(&mut writer, false)?;
        writer.flush()?;

        Ok(Self {
            out: writer,
            pages,
            enc,
            channels,
            pre_skip: u64::from(pre_skip),
            frame: vec![0.0; FRAME_SAMPLES * channels],
            filled: 0,
            packet: vec![0; MAX_PACKET],
            granule: 0,
            frames_in: 0,
            page_samples: u64::from(SAMPLE_RATE),
            samples_on_page: 0,
        })
    }

    /// Ends a page at least this often, in audio time, rounded up to whole 20 ms packets. 1 s by
    /// default: a crash loses at most that much. Live listeners (Icecast) want 200 ms or less.
    pub fn set_page_duration(&mut self, d: Duration) {
        let samples = (d.as_secs_f64() * f64::from(SAMPLE_RATE)).ceil() as u64;
        self.page_samples = samples.max(1);
    }

    /// The pre-skip written in OpusHead (the encoder's lookahead), in 48 kHz samples.
    #[must_use]
    pub fn pre_skip(&self) -> u16 {
        // Checked to fit when the stream started.
        self.pre_skip as u16
    }

    /// The encoder settings.
    #[must_use]
    pub fn settings(&self) -> &EncoderSettings {
        self.enc.settings()
    }

    /// Input frames (samples per channel) accepted so far.
    #[must_use]
    pub fn frames_written(&self) -> u64 {
        self.frames_in
    }

    /// The underlying writer, e.g. to see how many bytes went out.
    #[must_use]
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Encodes any number of interleaved frames (`settings.channels` samples each). Each 20 ms
    /// frame is encoded as soon as it is complete, and pages go out as they become due (see
    /// [`set_page_duration`](Self::set_page_duration)); a partial frame waits for more.
    ///
    /// # Errors
    /// [`CodecError::InvalidInput`] when `interleaved` is not whole frames; a failed write or
    /// encode.
    pub fn write(&mut self, interleaved: &[f32]) -> Result<(), CodecError> {
        if !interleaved.len().is_multiple_of(self.channels) {
            return Err(CodecError::InvalidInput(format!(
                "{} samples are not whole {}-channel frames",
                interleaved.len(),
                self.channels
            )));
        }
        self.frames_in += (interleaved.len() / self.channels) as u64;
        let mut rest = interleaved;
        while !rest.is_empty() {
            let take = (self.frame.len() - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            self.frame[self.filled..self.filled + take].copy_from_slice(now);
            self.filled += take;
            rest = later;
            if self.filled == self.frame.len() {
                let n = self.encode()?;
                self.push_packet(n)?;
            }
        }
        Ok(())
    }

    /// Adds one 20 ms packet encoded elsewhere with these same settings: the live engine
    /// encodes once for every consumer, and the recorder is one of them.
    ///
    /// # Errors
    /// [`CodecError::InvalidInput`] while PCM from [`write`](Self::write) waits for a whole
    /// frame, or for an empty packet; a failed write.
    pub fn write_packet(&mut self, packet: &[u8]) -> Result<(), CodecError> {
        if self.filled != 0 {
            return Err(CodecError::InvalidInput(
                "a packet cannot follow part of a frame written as samples".into(),
            ));
        }
        if packet.is_empty() {
            return Err(CodecError::InvalidInput("an empty Opus packet".into()));
        }
        self.frames_in += FRAME_SAMPLES as u64;
        self.granule += FRAME_SAMPLES as u64;
        self.pages.push(&mut self.out, packet, self.granule)?;
        self.samples_on_page += FRAME_SAMPLES as u64;
        if self.samples_on_page >= self.page_samples {
            self.flush_page()?;
        }
        Ok(())
    }

    /// Encodes the gathered frame into `self.packet`; returns its length.
    fn encode(&mut self) -> Result<usize, CodecError> {
        let n = self.enc.encode_frame(&self.frame, &mut self.packet)?;
        self.filled = 0;
        self.granule += FRAME_SAMPLES as u64;
        Ok(n)
    }

    fn push_packet(&mut self, n: usize) -> Result<(), CodecError> {
        self.pages
            .push(&mut self.out, &self.packet[..n], self.granule)?;
        self.samples_on_page += FRAME_SAMPLES as u64;
        if self.samples_on_page >= self.page_samples {
            self.flush_page()?;
        }
        Ok(())
    }

    /// Ends the current page now and flushes the writer, so every whole 20 ms frame so far is
    /// out. Samples of an unfinished frame stay buffered: Opus encodes whole frames.
    ///
    /// # Errors
    /// A failed write.
    pub fn flush_page(&mut self) -> Result<(), CodecError> {
        if !self.pages.is_empty() {
            self.pages.write_page(&mut self.out, false)?;
        }
        self.samples_on_page = 0;
        self.out.flush()?;
        Ok(())
    }

    /// Ends the stream and returns the writer: pads the last frame with silence and encodes
    /// until the encoder's delay is out too, then writes the last page with end-of-stream set
    /// and granule position `pre_skip + frames_written()`, so a decoder trims the padding off
    /// (RFC 7845 4.4) and plays exactly the input.
    ///
    /// # Errors
    /// A failed write or encode.
    pub fn finish(mut self) -> Result<W, CodecError> {
        let end = self.pre_skip + self.frames_in;
        loop {
            self.frame[self.filled..].fill(0.0);
            let n = self.encode()?;
            // At least one packet is always encoded here, so end-of-stream rides on audio; and
            // the loop stops at the first packet reaching `end`, so the final granule position
            // is never below the page before it.
            if self.granule >= end {
                self.pages.push(&mut self.out, &self.packet[..n], end)?;
                self.pages.write_page(&mut self.out, true)?;
                break;
            }
            self.push_packet(n)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn opus_tags(comments: &[(&str, &str)]) -> Result<Vec<u8>, CodecError> {
    let vendor = format!("Booth {} ({})", env!("CARGO_PKG_VERSION"), lib::version());
    let len32 = |n: usize| {
        u32::try_from(n)
            .map_err(|_| CodecError::InvalidInput("a comment is longer than 4 GiB".into()))
    };
    let mut tags = Vec::with_capacity(64 + vendor.len());
    tags.extend_from_slice(OPUS_TAGS);
    tags.extend_from_slice(&len32(vendor.len())?.to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&len32(comments.len())?.to_le_bytes());
    for (name, value) in comments {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| (0x20..=0x7d).contains(&b) && b != b'=')
        {
            return Err(CodecError::InvalidInput(format!(
                "'{name}' cannot name a comment: use ASCII letters, digits and punctuation \
                 without '='"
            )));
        }
        tags.extend_from_slice(&len32(name.len() + 1 + value.len())?.to_le_bytes());
        tags.extend_from_slice(name.as_bytes());
        tags.push(b'=');
        tags.extend_from_slice(value.as_bytes());
    }
    Ok(tags)
}

// ---------------------------------------------------------------------------------------------
// Reader

/// Vorbis channel order (RFC 7845 5.1.1.2) to WAVE order (FL FR FC LFE BL BR SL SR, with BC
/// for 6.1), the order the rest of Booth (and symphonia) downmixes from: for each WAVE slot,
/// the Vorbis channel that fills it.
const VORBIS_TO_WAVE: [&[usize]; 9] = [
    &[],
    &[0],
    &[0, 1],
    &[0, 2, 1],
    &[0, 1, 2, 3],
    &[0, 2, 1, 3, 4],
    &[0, 2, 1, 5, 3, 4],
    &[0, 2, 1, 6, 5, 3, 4],
    &[0, 2, 1, 7, 5, 6, 3, 4],
];

enum Decoder {
    Single(OpusDecoder),
    Multi(lib::MSDecoder),
}

impl Decoder {
    fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        match self {
            Decoder::Single(d) => d.decode(packet, out),
            Decoder::Multi(d) => Ok(d.decode_float(packet, out, false)?),
        }
    }
}

/// What OpusHead says.
struct Head {
    channels: u8,
    pre_skip: u16,
    input_sample_rate: u32,
    gain_q8: i16,
    decoder: Decoder,
}

fn parse_head(d: &[u8]) -> Result<Head, CodecError> {
    if d.len() < 19 {
        return Err(CodecError::Corrupt(
            "its OpusHead header is cut short".into(),
        ));
    }
    // Minor versions are compatible by design; a new major version may mean anything.
    if d[8] >> 4 != 0 {
        return Err(CodecError::NotOggOpus(format!(
            "it uses Ogg Opus version {}, newer than this reader understands",
            d[8]
        )));
    }
    let channels = d[9];
    if channels == 0 {
        return Err(CodecError::Corrupt("its OpusHead says 0 channels".into()));
    }
    let family = d[18];
    let decoder = match (family, channels) {
        (0, 1..=2) => Decoder::Single(OpusDecoder::new(channels)?),
        (1, 1..=8) => {
            let n = usize::from(channels);
            let table = d.get(19..21 + n).ok_or_else(|| {
                CodecError::Corrupt("its OpusHead channel mapping table is cut short".into())
            })?;
            let (streams, coupled) = (table[0], table[1]);
            let coded = usize::from(streams) + usize::from(coupled);
            let vorbis_order = &table[2..];
            if streams == 0
                || coupled > streams
                || coded > 255
                || vorbis_order
                    .iter()
                    .any(|&m| m != 255 && usize::from(m) >= coded)
            {
                return Err(CodecError::Corrupt(
                    "its OpusHead channel mapping table is inconsistent".into(),
                ));
            }
            // Reordering the mapping table makes libopus write WAVE order directly.
            let mut wave_order = [0u8; 8];
            for (slot, &from) in wave_order.iter_mut().zip(VORBIS_TO_WAVE[n]) {
                *slot = vorbis_order[from];
            }
            let dec = lib::MSDecoder::new(SAMPLE_RATE, streams, coupled, &wave_order[..n])
                .map_err(|e| {
                    CodecError::Corrupt(format!("its channel mapping is unusable: {e}"))
                })?;
            Decoder::Multi(dec)
        }
        _ => return Err(CodecError::UnsupportedLayout { channels, family }),
    };
    Ok(Head {
        channels,
        pre_skip: u16::from_le_bytes([d[10], d[11]]),
        input_sample_rate: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
        gain_q8: i16::from_le_bytes([d[16], d[17]]),
        decoder,
    })
}

/// What another Ogg codec's first packet says it is, for a helpful error.
fn other_codec(first_packet: &[u8]) -> &'static str {
    const KNOWN: [(&[u8], &str); 5] = [
        (b"\x01vorbis", "Vorbis audio"),
        (b"\x7fFLAC", "FLAC audio"),
        (b"Speex   ", "Speex audio"),
        (b"\x80theora", "Theora video"),
        (b"fishead\0", "a Skeleton index"),
    ];
    KNOWN
        .iter()
        .find(|(magic, _)| first_packet.starts_with(magic))
        .map_or("another codec", |&(_, name)| name)
}

/// Maps an Ogg read error met while looking for the headers.
fn header_error(e: OggReadError) -> CodecError {
    match e {
        OggReadError::ReadError(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            CodecError::Corrupt("it ends inside its headers (cut short?)".into())
        }
        OggReadError::ReadError(io) => CodecError::Io(io),
        OggReadError::HashMismatch(..) => {
            CodecError::Corrupt("a header page is damaged (checksum mismatch)".into())
        }
        OggReadError::NoCapturePatternFound | OggReadError::InvalidStreamStructVer(_) => {
            CodecError::NotOggOpus("its pages are not valid Ogg".into())
        }
        OggReadError::InvalidData => {
            CodecError::Corrupt("its header pages are out of order".into())
        }
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads an Ogg Opus stream as interleaved `f32` at 48 kHz.
///
/// Wrap files in a `BufReader`: Ogg is read in small pieces.
pub struct OggOpusReader<R: Read + Seek> {
    ogg: PacketReader<R>,
    dec: Decoder,
    serial: u32,
    channels: u8,
    input_sample_rate: u32,
    pre_skip: u16,
    gain: f32,
    /// Byte offset where the stream began, the floor of the backwards scan for its length.
    origin: u64,
    /// Granule position of the first sample: non-zero when the stream was cut from a longer one.
    start: u64,
    /// Granule clock: `start` plus the samples per channel decoded so far.
    position: u64,
    /// Pre-skip samples per channel still to drop.
    skip_left: usize,
    /// The packets of the page being played, so the whole page is known before any of it is.
    page: VecDeque<Packet>,
    page_granule: u64,
    page_eos: bool,
    /// No pages left to load: the end-of-stream page is loaded or the input ran out.
    no_more_pages: bool,
    /// The first audio page has been seen (and `start` worked out from it).
    started: bool,
    truncated: bool,
    total: Option<Option<u64>>,
    buf: Vec<f32>,
}

impl<R: Read + Seek> std::fmt::Debug for OggOpusReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusReader")
            .field("serial", &self.serial)
            .field("channels", &self.channels)
            .field("pre_skip", &self.pre_skip)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> OggOpusReader<R> {
    /// Opens a stream at the reader's position: finds the Opus stream among the first pages,
    /// checks OpusHead, skips OpusTags and looks at the first audio page (to learn where the
    /// stream starts).
    ///
    /// # Errors
    /// [`CodecError::NotOggOpus`] for empty input, another format or another Ogg codec;
    /// [`CodecError::Corrupt`] for damaged or cut-short headers;
    /// [`CodecError::UnsupportedLayout`] for a channel layout it does not decode.
    pub fn new(mut reader: R) -> Result<Self, CodecError> {
        let origin = reader.stream_position()?;
        let mut magic = [0u8; 4];
        match read_up_to(&mut reader, &mut magic)? {
            0 => return Err(CodecError::NotOggOpus("it is empty".into())),
            4 if &magic == CAPTURE => {}
            _ => {
                return Err(CodecError::NotOggOpus(
                    "it does not start with an Ogg page".into(),
                ));
            }
        }
        reader.seek(SeekFrom::Start(origin))?;
        let mut ogg = PacketReader::new(reader);

        // Every stream's first page comes before any other page (RFC 3533), so the Opus stream
        // is found there or nowhere.
        let mut seen: Option<&'static str> = None;
        let head = loop {
            let Some(p) = ogg.read_packet().map_err(header_error)? else {
                return Err(CodecError::NotOggOpus(
                    seen.map_or("it holds no Opus stream".into(), |c| {
                        format!("it holds {c}, not Opus")
                    }),
                ));
            };
            if !p.first_in_stream() {
                return Err(CodecError::NotOggOpus(format!(
                    "it holds {}, not Opus",
                    seen.unwrap_or("another codec")
                )));
            }
            if p.data.starts_with(OPUS_HEAD) {
                break p;
            }
            seen = Some(other_codec(&p.data));
        };
        let serial = head.stream_serial();
        let Head {
            channels,
            pre_skip,
            input_sample_rate,
            gain_q8,
            decoder,
        } = parse_head(&head.data)?;
        let mut ended = head.last_in_stream();

        if !ended {
            let tags = loop {
                let Some(p) = ogg.read_packet().map_err(header_error)? else {
                    return Err(CodecError::Corrupt(
                        "it ends before its OpusTags header (cut short?)".into(),
                    ));
                };
                if p.stream_serial() == serial {
                    break p;
                }
            };
            if !tags.data.starts_with(OPUS_TAGS) {
                return Err(CodecError::Corrupt(
                    "its second header is not OpusTags".into(),
                ));
            }
            ended = tags.last_in_stream();
        }

        let mut reader = Self {
            ogg,
            dec: decoder,
            serial,
            channels,
            input_sample_rate,
            pre_skip,
            gain: 10f32.powf(f32::from(gain_q8) / (20.0 * 256.0)),
            origin,
            start: 0,
            position: 0,
            skip_left: usize::from(pre_skip),
            page: VecDeque::new(),
            page_granule: 0,
            page_eos: ended,
            no_more_pages: ended,
            started: false,
            truncated: false,
            total: None,
            buf: vec![0.0; OpusDecoder::MAX_FRAME_SAMPLES * usize::from(channels)],
        };
        if !ended {
            reader.load_page()?;
        }
        Ok(reader)
    }

    /// Channels, interleaved in WAVE order for surround files (FL FR FC LFE BL BR SL SR).
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// The rate the audio had before encoding, from OpusHead; 0 when the file does not say.
    /// Informational: decoding is always at 48 kHz.
    #[must_use]
    pub fn input_sample_rate(&self) -> u32 {
        self.input_sample_rate
    }

    /// Pre-skip from OpusHead: samples at 48 kHz dropped from the start.
    #[must_use]
    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// Whether the input ended without the stream's end-of-stream page (a recording cut short,
    /// say by a crash). Meaningful once [`read`](Self::read) has returned `None`; everything up
    /// to the last whole page was still played.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Length in samples per channel at 48 kHz (what [`read`](Self::read) yields in all), from
    /// the granule position of the stream's last page: the reader seeks to the end, scans
    /// backwards and seeks back. `None` when no page gives it or the input cannot be read there.
    pub fn total_frames(&mut self) -> Option<u64> {
        if let Some(total) = self.total {
            return total;
        }
        let total = self.scan_total().ok().flatten();
        self.total = Some(total);
        total
    }

    fn scan_total(&mut self) -> io::Result<Option<u64>> {
        let (serial, origin) = (self.serial, self.origin);
        let r = self.ogg.get_mut();
        // Packets are handed out whole pages at a time, so the underlying reader sits on a page
        // boundary; going back there leaves the packet reader none the wiser.
        let here = r.stream_position()?;
        let last = last_granule(r, serial, origin);
        r.seek(SeekFrom::Start(here))?;
        Ok(last?.map(|g| {
            g.saturating_sub(self.start)
                .saturating_sub(u64::from(self.pre_skip))
        }))
    }

    /// Where in the stream reading has got to, for error messages.
    fn at(&self) -> String {
        let played = self.position.saturating_sub(self.start);
        format!("at {:.2} s", played as f64 / f64::from(SAMPLE_RATE))
    }

    /// Loads the next page of the stream's packets into `self.page`, and checks that its
    /// granule position follows on from the page before (a lost page leaves a gap).
    fn load_page(&mut self) -> Result<(), CodecError> {
        loop {
            let packet = match self.ogg.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.no_more_pages = true;
                    self.truncated = true;
                    return Ok(());
                }
                // A recording cut short by a crash ends where its last whole page did.
                Err(OggReadError::ReadError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.no_more_pages = true;
                    self.truncated = true;
                    return Ok(());
                }
                Err(OggReadError::ReadError(e)) => return Err(CodecError::Io(e)),
                Err(OggReadError::HashMismatch(..)) => {
                    return Err(CodecError::Corrupt(format!(
                        "{}: a page is damaged (checksum mismatch)",
                        self.at()
                    )));
                }
                Err(e) => {
                    return Err(CodecError::Corrupt(format!(
                        "{}: the Ogg structure is broken ({e})",
                        self.at()
                    )));
                }
            };
            if packet.stream_serial() != self.serial {
                continue;
            }
            if packet.data.len() > MAX_AUDIO_PACKET {
                return Err(CodecError::Corrupt(format!(
                    "{}: a packet of {} bytes is larger than Opus allows",
                    self.at(),
                    packet.data.len()
                )));
            }
            let last = packet.last_in_page();
            self.page_granule = packet.absgp_page();
            self.page_eos = packet.last_in_stream();
            self.page.push_back(packet);
            if last {
                self.no_more_pages |= self.page_eos;
                return self.check_page();
            }
        }
    }

    fn check_page(&mut self) -> Result<(), CodecError> {
        let mut samples = 0u64;
        for p in self.page.iter().filter(|p| !p.data.is_empty()) {
            let n = lib::packet::get_nb_samples(&p.data, SAMPLE_RATE).map_err(|e| {
                CodecError::Corrupt(format!("{}: a packet is malformed ({e})", self.at()))
            })?;
            samples += n as u64;
        }
        if !self.started {
            self.started = true;
            // RFC 7845 4.5: the first audio page's granule position minus the samples on it
            // is where the stream starts. A lone last page starts at zero instead; its granule
            // position is an end trim.
            if !self.page_eos {
                if self.page_granule < samples {
                    return Err(CodecError::Corrupt(format!(
                        "its first audio page ends at sample {} but holds {samples} samples",
                        self.page_granule
                    )));
                }
                self.start = self.page_granule - samples;
                self.position = self.start;
            }
        } else if self.page_granule != NO_GRANULE {
            // Playing on over a gap would shift everything after it earlier, and `booth mix`
            // lines tracks up by time, so say so instead. Less than the shortest Opus frame
            // is another muxer's rounding, not lost audio.
            let missing = self
                .page_granule
                .saturating_sub(self.position.saturating_add(samples));
            if missing >= MIN_FRAME_SAMPLES {
                return Err(CodecError::Corrupt(format!(
                    "{}: {:.0} ms of audio are missing (a page was lost or damaged)",
                    self.at(),
                    missing as f64 * 1000.0 / f64::from(SAMPLE_RATE)
                )));
            }
        }
        Ok(())
    }

    /// The next decoded block (interleaved, 48 kHz, normally one packet's worth), or `None` at
    /// the end. The block is lent from a buffer the reader reuses.
    ///
    /// # Errors
    /// [`CodecError::Corrupt`] for a damaged page or packet (with where it happened);
    /// [`CodecError::Io`] if reading fails. A file that simply stops (cut short) is not an error:
    /// see [`truncated`](Self::truncated).
    pub fn read(&mut self) -> Result<Option<&[f32]>, CodecError> {
        let ch = usize::from(self.channels);
        loop {
            let Some(packet) = self.page.pop_front() else {
                if self.no_more_pages {
                    return Ok(None);
                }
                self.load_page()?;
                continue;
            };
            if packet.data.is_empty() {
                // Nothing to decode; a zero-length packet carries no time either.
                continue;
            }
            let n = match self.dec.decode(&packet.data, &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    return Err(CodecError::Corrupt(format!(
                        "{}: a packet does not decode ({e})",
                        self.at()
                    )));
                }
            };
            let before = self.position;
            self.position = self.position.saturating_add(n as u64);
            let mut keep = n;
            if self.page_eos {
                // End trimming: the last page's granule position is where the audio stops,
                // however many of its packets that cuts into.
                let left = self.page_granule.saturating_sub(before);
                keep = keep.min(usize::try_from(left).unwrap_or(usize::MAX));
            }
            let skip = self.skip_left.min(keep);
            self.skip_left -= skip;
            if skip == keep {
                continue;
            }
            let block = &mut self.buf[skip * ch..keep * ch];
            if self.gain != 1.0 {
                let g = self.gain;
                block.iter_mut().for_each(|s| *s *= g);
            }
            return Ok(Some(&self.buf[skip * ch..keep * ch]));
        }
    }
}

/// The granule position of the last whole page of stream `serial`, scanning backwards from the
/// end of `r` down to `floor`. Leaves `r` anywhere.
fn last_granule<R: Read + Seek>(r: &mut R, serial: u32, floor: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let end = r.seek(SeekFrom::End(0))?;
    let mut buf = Vec::new();
    let mut hi = end;
    while hi > floor {
        // Pages starting in [lo, hi) are checked; bytes past hi let the one nearest it be whole.
        let lo = hi.saturating_sub(CHUNK).max(floor);
        let to = hi.saturating_add(MAX_PAGE as u64).min(end);
        buf.resize(usize::try_from(to - lo).unwrap_or(0), 0);
        r.seek(SeekFrom::Start(lo))?;
        r.read_exact(&mut buf)?;
        let starts = usize::try_from(hi - lo).unwrap_or(0);
        for i in (0..starts).rev() {
            if buf[i] != b'O' {
                continue;
            }
            if let Some(page) = parse_page(&buf[i..])
                && page.serial == serial
                && page.granule != NO_GRANULE
            {
                return Ok(Some(page.granule));
            }
        }
        hi = lo;
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const TAU: f32 = std::f32::consts::TAU;

    /// A 1 kHz sine at amplitude 0.5: on both channels, on the left only, or mono.
    fn sine(frames: usize, channels: usize, left_only: bool) -> Vec<f32> {
        (0..frames)
            .flat_map(|n| {
                let x = 0.5 * (TAU * 1000.0 * n as f32 / 48_000.0).sin();
                let r = if left_only { 0.0 } else { x };
                [x, r].into_iter().take(channels)
            })
            .collect()
    }

    fn writer(channels: u8) -> OggOpusWriter<Vec<u8>> {
        let settings = EncoderSettings {
            channels,
            ..EncoderSettings::music_stereo(128_000)
        };
        OggOpusWriter::new(Vec::new(), &settings, 44_100).unwrap()
    }

    fn encode(pcm: &[f32], channels: u8, page: Option<Duration>) -> Vec<u8> {
        let mut w = writer(channels);
        if let Some(d) = page {
            w.set_page_duration(d);
        }
        // Ragged blocks, as a capture callback would deliver them.
        for chunk in pcm.chunks(777 * usize::from(channels)) {
            w.write(chunk).unwrap();
        }
        assert_eq!(
            w.frames_written(),
            (pcm.len() / usize::from(channels)) as u64
        );
        w.finish().unwrap()
    }

    fn decode_all<R: Read + Seek>(r: &mut OggOpusReader<R>) -> Result<Vec<f32>, CodecError> {
        let mut out = Vec::new();
        while let Some(b) = r.read()? {
            out.extend_from_slice(b);
        }
        Ok(out)
    }

    fn decode(bytes: Vec<u8>) -> (Vec<f32>, Option<u64>) {
        let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
        let total = r.total_frames();
        let out = decode_all(&mut r).unwrap();
        assert!(!r.truncated());
        (out, total)
    }

    fn channel(x: &[f32], channels: usize, c: usize) -> Vec<f32> {
        x.iter().skip(c).step_by(channels).copied().collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    fn db(ratio: f32) -> f32 {
        20.0 * ratio.max(1e-12).log10()
    }

    /// Least-squares fit of a 1 kHz sinusoid: (amplitude, phase in radians, residual rms).
    fn fit_1khz(x: &[f32], first_sample: usize) -> (f32, f32, f32) {
        let w = |n: usize| TAU * 1000.0 * (n + first_sample) as f32 / 48_000.0;
        let (mut s, mut c) = (0.0f32, 0.0f32);
        for (n, &v) in x.iter().enumerate() {
            s += v * w(n).sin();
            c += v * w(n).cos();
        }
        let (a, b) = (2.0 * s / x.len() as f32, 2.0 * c / x.len() as f32);
        let resid: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(n, &v)| v - a * w(n).sin() - b * w(n).cos())
            .collect();
        (a.hypot(b), b.atan2(a), rms(&resid))
    }

    /// Every page of `bytes`, checked whole and with a valid checksum, with its offset.
    fn pages(bytes: &[u8]) -> Vec<(usize, PageView)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let page = parse_page(&bytes[at..]).unwrap();
            out.push((at, page));
            at += page.len;
        }
        out
    }

    /// The length of the page at `at`, from its header and lacing alone.
    fn page_len(bytes: &[u8], at: usize) -> usize {
        let segments = usize::from(bytes[at + 26]);
        let lacing = &bytes[at + PAGE_HEADER..at + PAGE_HEADER + segments];
        PAGE_HEADER + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>()
    }

    /// Recomputes the checksum of the page at `at` after an edit.
    fn refresh_crc(bytes: &mut [u8], at: usize) {
        let len = page_len(bytes, at);
        let page = &mut bytes[at..at + len];
        page[22..26].fill(0);
        let crc = crc_update(0, page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
    }

    /// Sets a page's granule position and fixes its checksum.
    fn set_granule(bytes: &mut [u8], at: usize, granule: u64) {
        bytes[at + 6..at + 14].copy_from_slice(&granule.to_le_bytes());
        refresh_crc(bytes, at);
    }

    #[test]
    fn round_trip_has_exactly_the_input_length() {
        for frames in [0, 1, 311, 312, 960, 961, 12_345, 48_000] {
            let pcm = sine(frames, 2, false);
            let (out, total) = decode(encode(&pcm, 2, None));
            assert_eq!(out.len(), pcm.len(), "{frames} frames");
            assert_eq!(total, Some(frames as u64), "{frames} frames");
        }
    }

    #[test]
    fn round_trip_keeps_frequency_level_and_timing() {
        let pcm = sine(48_000, 2, false);
        let (out, _) = decode(encode(&pcm, 2, None));
        for c in 0..2 {
            // Past the first 20 ms, where the encoder is still settling.
            let x = &channel(&out, 2, c)[960..];
            let (amp, phase, resid) = fit_1khz(x, 960);
            assert!(db(amp / 0.5).abs() < 1.0, "ch {c}: level {amp}");
            assert!(db(rms(x) / (0.5 / 2f32.sqrt())).abs() < 1.0, "ch {c}: rms");
            assert!(db(resid / amp) < -30.0, "ch {c}: not a clean 1 kHz tone");
            // In phase with the input to within a tenth of a sample: pre-skip is exact.
            let samples_off = phase / (TAU * 1000.0 / 48_000.0);
            assert!(
                samples_off.abs() < 0.1,
                "ch {c}: {samples_off} samples late"
            );
        }
    }

    #[test]
    fn a_left_only_tone_stays_left() {
        let pcm = sine(48_000, 2, true);
        let (out, _) = decode(encode(&pcm, 2, None));
        let (l, r) = (channel(&out, 2, 0), channel(&out, 2, 1));
        let (lr, rr) = (rms(&l[960..]), rms(&r[960..]));
        assert!(db(lr / (0.5 / 2f32.sqrt())).abs() < 1.0, "left {lr}");
        assert!(db(lr / rr) > 30.0, "right only {:.1} dB down", db(lr / rr));
    }

    #[test]
    fn mono_round_trip() {
        let pcm = sine(20_000, 1, false);
        let bytes = encode(&pcm, 1, None);
        let (out, total) = decode(bytes.clone());
        assert_eq!(out.len(), pcm.len());
        assert_eq!(total, Some(20_000));
        assert_eq!(
            OggOpusReader::new(Cursor::new(bytes)).unwrap().channels(),
            1
        );
        let (amp, _, resid) = fit_1khz(&out[960..], 960);
        assert!(db(amp / 0.5).abs() < 1.0 && db(resid / amp) < -30.0);
    }

    #[test]
    fn pages_follow_rfc_7845_and_come_at_least_every_second() {
        let frames = 48_000 * 5 + 123;
        let bytes = encode(&sine(frames, 2, false), 2, None);
        let all = pages(&bytes);
        let (head, tags, audio) = (&all[0].1, &all[1].1, &all[2..]);
        assert_eq!(head.flags, FLAG_BOS);
        assert_eq!(head.granule, 0);
        assert_eq!(&bytes[all[0].0 + 28..all[0].0 + 36], OPUS_HEAD);
        assert_eq!(bytes[all[0].0 + 26], 1, "OpusHead alone on its page");
        assert_eq!((tags.flags, tags.granule), (0, 0));
        assert_eq!(&bytes[all[1].0 + 28..all[1].0 + 36], OPUS_TAGS);
        assert!(audio.len() >= 6, "{} audio pages for 5 s", audio.len());
        let mut last = 0;
        for (i, (_, p)) in all.iter().enumerate() {
            assert_eq!(p.sequence, i as u32);
            assert_eq!(p.serial, head.serial);
            assert!(p.granule >= last, "granule goes back at page {i}");
            assert!(p.granule - last <= 48_000, "page {i} spans over 1 s");
            last = p.granule;
        }
        let (_, end) = audio[audio.len() - 1];
        assert_eq!(end.flags, FLAG_EOS);
        assert_eq!(end.granule, 312 + frames as u64);
        assert!(audio[..audio.len() - 1].iter().all(|(_, p)| p.flags == 0));

        let short = encode(&sine(48_000, 2, false), 2, Some(Duration::from_millis(200)));
        let n = pages(&short).len() - 2;
        assert!(n >= 5, "{n} audio pages for 1 s at 200 ms");
    }

    #[test]
    fn comments_go_into_opus_tags() {
        let settings = EncoderSettings::music_stereo(96_000);
        let w = OggOpusWriter::with_comments(
            Vec::new(),
            &settings,
            48_000,
            &[("TITLE", "Launch night"), ("ARTIST", "Booth")],
        )
        .unwrap();
        let bytes = w.finish().unwrap();
        let tags_page = pages(&bytes)[1].0;
        let tags = &bytes[tags_page + 28..];
        let vendor_len = u32::from_le_bytes(tags[8..12].try_into().unwrap()) as usize;
        let vendor = std::str::from_utf8(&tags[12..12 + vendor_len]).unwrap();
        assert!(
            vendor.starts_with("Booth ") && vendor.contains("libopus"),
            "{vendor}"
        );
        let rest = &tags[12 + vendor_len..];
        assert_eq!(u32::from_le_bytes(rest[..4].try_into().unwrap()), 2);
        assert_eq!(&rest[8..26], b"TITLE=Launch night");
        assert!(
            OggOpusWriter::with_comments(Vec::new(), &settings, 48_000, &[("A=B", "x")]).is_err()
        );
    }

    #[test]
    fn flush_page_puts_every_whole_frame_out() {
        let mut w = writer(2);
        let pcm = sine(48_000, 2, false);
        w.write(&pcm[..10_000 * 2]).unwrap();
        w.flush_page().unwrap();
        // 10 whole frames are out; the 400 samples of the 11th wait for more.
        let mut r = OggOpusReader::new(Cursor::new(w.get_ref().clone())).unwrap();
        let so_far = decode_all(&mut r).unwrap();
        assert!(r.truncated());
        assert_eq!(so_far.len(), (10 * 960 - 312) * 2);
        w.flush_page().unwrap(); // nothing new: no empty page
        w.write(&pcm[10_000 * 2..]).unwrap();
        let (out, total) = decode(w.finish().unwrap());
        assert_eq!(out.len(), pcm.len());
        assert_eq!(total, Some(48_000));
    }

    #[test]
    fn a_recording_cut_short_plays_up_to_its_last_whole_page() {
        let bytes = encode(&sine(48_000 * 5, 2, false), 2, None);
        let all = pages(&bytes);
        // Cut inside the fourth audio page: three whole seconds survive.
        let (cut_at, _) = all[2 + 3];
        let cut = bytes[..cut_at + 100].to_vec();
        let mut r = OggOpusReader::new(Cursor::new(cut)).unwrap();
        let total = r.total_frames();
        let out = decode_all(&mut r).unwrap();
        assert!(r.truncated());
        assert_eq!(out.len(), (3 * 48_000 - 312) * 2);
        assert_eq!(total, Some(3 * 48_000 - 312));
    }

    #[test]
    fn a_stream_starting_at_a_later_granule_plays_whole() {
        // As if cut from a live stream: every audio page's granule position moved on.
        let frames = 100_000;
        let mut bytes = encode(&sine(frames, 2, false), 2, None);
        for (at, p) in pages(&bytes).into_iter().skip(2) {
            set_granule(&mut bytes, at, p.granule + 480_000);
        }
        let (out, total) = decode(bytes);
        assert_eq!(out.len(), frames * 2);
        assert_eq!(total, Some(frames as u64));
    }

    #[test]
    fn end_trimming_may_reach_back_over_several_packets() {
        let frames = 30_000;
        let mut bytes = encode(&sine(frames, 2, false), 2, None);
        let (at, last) = *pages(&bytes).last().unwrap();
        set_granule(&mut bytes, at, last.granule - 2_500);
        let (out, total) = decode(bytes);
        assert_eq!(out.len(), (frames - 2_500) * 2);
        assert_eq!(total, Some(frames as u64 - 2_500));
    }

    #[test]
    fn output_gain_is_applied() {
        let mut bytes = encode(&sine(9_600, 1, false), 1, None);
        let (plain, _) = decode(bytes.clone());
        // -6 dB in Q7.8, patched into OpusHead.
        let gain = (-6i16 * 256).to_le_bytes();
        bytes[28 + 16..28 + 18].copy_from_slice(&gain);
        refresh_crc(&mut bytes, 0);
        let (quiet, _) = decode(bytes);
        let change = db(rms(&quiet[960..]) / rms(&plain[960..]));
        assert!((change + 6.0).abs() < 0.01, "{change} dB");
    }

    /// An Ogg page holding one packet, as another muxer would write it.
    fn one_page(packet: &[u8], flags_eos: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pw = PageWriter::new(7);
        pw.push(&mut out, packet, 0).unwrap();
        pw.write_page(&mut out, flags_eos).unwrap();
        out
    }

    #[test]
    fn bad_input_is_a_clear_error_never_a_panic() {
        let open = |b: Vec<u8>| OggOpusReader::new(Cursor::new(b));
        assert!(matches!(open(Vec::new()), Err(CodecError::NotOggOpus(_))));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert!(matches!(open(noise), Err(CodecError::NotOggOpus(_))));
        let vorbis = one_page(b"\x01vorbis\0\0\0\0\x02\x44\xac\0\0", false);
        assert!(!is_ogg_opus(&vorbis));
        match open(vorbis) {
            Err(CodecError::NotOggOpus(m)) => assert!(m.contains("Vorbis"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut six = OPUS_HEAD.to_vec();
        six.extend_from_slice(&[1, 6, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 2]);
        assert!(matches!(
            open(one_page(&six, false)),
            Err(CodecError::UnsupportedLayout {
                channels: 6,
                family: 2
            })
        ));
        let good = encode(&sine(48_000, 2, false), 2, None);
        assert!(is_ogg_opus(&good[..64]));
        assert!(!is_ogg_opus(b"RIFF\0\0\0\0WAVEfmt "));
        // Cut inside the headers.
        for cut in [3, 4, 27, 40, 60, 100] {
            assert!(open(good[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        // A damaged audio page is reported, with where.
        let mut damaged = good.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x40;
        match open(damaged).and_then(|mut r| decode_all(&mut r)) {
            Err(CodecError::Corrupt(m)) => assert!(m.contains("checksum"), "{m}"),
            other => panic!("damage went unnoticed: {other:?}"),
        }
        // A page lost whole: the audio after it would play early, so it is reported.
        let long = encode(&sine(48_000 * 3, 2, false), 2, None);
        let (at, lost) = pages(&long)[3];
        let mut holed = long[..at].to_vec();
        holed.extend_from_slice(&long[at + lost.len..]);
        let mut r = open(holed).unwrap();
        match decode_all(&mut r) {
            Err(CodecError::Corrupt(m)) => {
                assert!(m.contains("1000 ms of audio are missing"), "{m}")
            }
            other => panic!("a lost page went unnoticed: {other:?}"),
        }
    }

    /// Cut everywhere and damaged everywhere: errors are fine, panics are not.
    #[test]
    fn no_input_makes_the_reader_panic() {
        let good = encode(&sine(4_800, 2, false), 2, Some(Duration::from_millis(40)));
        let play = |bytes: Vec<u8>| {
            if let Ok(mut r) = OggOpusReader::new(Cursor::new(bytes)) {
                let _ = r.total_frames();
                let _ = decode_all(&mut r);
            }
        };
        for cut in 0..good.len() {
            play(good[..cut].to_vec());
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3_000 {
            let mut bad = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bad.len() as u64) as usize;
                bad[at] = next() as u8;
            }
            // Damage that keeps checksums valid reaches the Opus and header parsers too.
            for (at, _) in pages(&good) {
                let whole = bad.len() > at + PAGE_HEADER
                    && bad[at..].starts_with(CAPTURE)
                    && at + page_len(&bad, at) <= bad.len();
                if whole && next() % 2 == 0 {
                    refresh_crc(&mut bad, at);
                }
            }
            play(bad);
        }
    }

    #[test]
    fn surround_files_decode_in_wave_order() {
        // 5.1 in Vorbis order (FL C FR RL RR LFE), coupled as libopus's surround layout does:
        // streams FL+FR, RL+RR, C, LFE.
        let mapping = [0u8, 4, 1, 2, 3, 5];
        let mut enc = lib::MSEncoder::new(48_000, 4, 2, &mapping, lib::Application::Audio).unwrap();
        let mut head = OPUS_HEAD.to_vec();
        head.extend_from_slice(&[1, 6, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 1, 4, 2]);
        head.extend_from_slice(&mapping);
        let mut bytes = Vec::new();
        let mut pw = PageWriter::new(9);
        pw.push(&mut bytes, &head, 0).unwrap();
        pw.write_page(&mut bytes, false).unwrap();
        pw.push(&mut bytes, &opus_tags(&[]).unwrap(), 0).unwrap();
        pw.write_page(&mut bytes, false).unwrap();
        // A tone on the centre only (Vorbis channel 1).
        let frames = 960 * 25;
        let mut pcm = vec![0.0f32; frames * 6];
        for n in 0..frames {
            pcm[n * 6 + 1] = 0.5 * (TAU * 1000.0 * n as f32 / 48_000.0).sin();
        }
        let mut packet = vec![0u8; 8_000];
        for (i, f) in pcm.chunks(960 * 6).enumerate() {
            let len = enc.encode_float(f, &mut packet).unwrap();
            pw.push(&mut bytes, &packet[..len], (i as u64 + 1) * 960)
                .unwrap();
        }
        pw.write_page(&mut bytes, true).unwrap();

        let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
        assert_eq!(r.channels(), 6);
        let out = decode_all(&mut r).unwrap();
        assert_eq!(out.len(), (frames - 312) * 6);
        let levels: Vec<f32> = (0..6).map(|c| rms(&channel(&out, 6, c)[960..])).collect();
        // WAVE order: FL FR FC LFE BL BR. The centre is slot 2.
        assert!(
            db(levels[2] / (0.5 / 2f32.sqrt())).abs() < 1.0,
            "{levels:?}"
        );
        for c in [0, 1, 3, 4, 5] {
            assert!(db(levels[c] / levels[2]) < -30.0, "{levels:?}");
        }
    }

    #[test]
    fn long_packets_continue_across_pages() {
        let mut bytes = Vec::new();
        let mut pw = PageWriter::new(1);
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        pw.push(&mut bytes, &[1, 2, 3], 5).unwrap();
        pw.push(&mut bytes, &big, 10).unwrap();
        pw.push(&mut bytes, &[0; 255 * 3], 11).unwrap();
        pw.write_page(&mut bytes, true).unwrap();
        let all = pages(&bytes);
        assert!(all.len() >= 4);
        // Pages that end nothing carry no granule position.
        assert!(all.iter().any(|(_, p)| p.granule == NO_GRANULE));
        let mut r = PacketReader::new(Cursor::new(bytes));
        let lens: Vec<usize> = std::iter::from_fn(|| r.read_packet().unwrap())
            .map(|p| p.data.len())
            .collect();
        assert_eq!(lens, [3, 200_000, 765]);
    }

    #[test]
    fn crc_matches_the_ogg_reference() {
        // The ogg crate checks every page it reads with its own CRC.
        let bytes = encode(&sine(4_800, 2, false), 2, None);
        let mut r = PacketReader::new(Cursor::new(bytes));
        let mut n = 0;
        while r.read_packet().unwrap().is_some() {
            n += 1;
        }
        assert!(n > 3);
    }
}
