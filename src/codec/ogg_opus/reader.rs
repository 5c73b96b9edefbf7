//! The Ogg Opus reader: finds the Opus stream among the first pages, then decodes it page by
//! page with pre-skip dropped, the end trimmed and the output gain applied.
//!
//! Never here: a panic on damaged input, or a gap played over as if nothing was lost.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

use ::opus as lib;

use super::demux::{DemuxError, OggDemuxer, Packet, StreamStart};
use super::head::{Decoder, Head, header_error, other_codec, parse_head};
use super::page::{CAPTURE, NO_GRANULE, last_granule};
use super::{OPUS_HEAD, OPUS_TAGS};
use crate::codec::CodecError;
use crate::codec::opus::{OpusDecoder, SAMPLE_RATE};

/// Larger than any Opus packet a file of up to 8 channels can hold (8 streams of 120 ms); a
/// "packet" beyond it is damage, and libopus must not be handed it.
const MAX_AUDIO_PACKET: usize = 1 << 20;
/// 2.5 ms, the shortest Opus frame.
const MIN_FRAME_SAMPLES: u64 = 120;

/// Checks that the input at `origin` starts with an Ogg page, and goes back there.
fn expect_an_ogg_page(reader: &mut (impl Read + Seek), origin: u64) -> Result<(), CodecError> {
    let mut magic = [0u8; 4];
    match read_up_to(reader, &mut magic)? {
        0 => return Err(CodecError::NotOggOpus("it is empty".into())),
        4 if &magic == CAPTURE => {}
        _ => {
            return Err(CodecError::NotOggOpus(
                "it does not start with an Ogg page".into(),
            ));
        }
    }
    reader.seek(SeekFrom::Start(origin))?;
    Ok(())
}

/// The OpusHead packet among the streams' first packets, and its stream's serial. Every
/// stream's first page comes before any other page (RFC 3533), so the Opus stream is found there
/// or nowhere.
fn find_opus_head<R: Read>(ogg: &mut OggDemuxer<R>) -> Result<(u32, Packet), CodecError> {
    let mut seen: Option<&'static str> = None;
    loop {
        match ogg.stream_start().map_err(header_error)? {
            StreamStart::End => {
                return Err(CodecError::NotOggOpus(
                    seen.map_or("it holds no Opus stream".into(), |c| {
                        format!("it holds {c}, not Opus")
                    }),
                ));
            }
            StreamStart::NotFirstPage => {
                return Err(CodecError::NotOggOpus(format!(
                    "it holds {}, not Opus",
                    seen.unwrap_or("another codec")
                )));
            }
            StreamStart::First {
                serial,
                packet,
                complete,
            } => {
                if packet.data.starts_with(OPUS_HEAD) {
                    if !complete {
                        return Err(CodecError::Corrupt(
                            "its OpusHead header runs past its page".into(),
                        ));
                    }
                    ogg.follow(serial);
                    return Ok((serial, packet));
                }
                seen = Some(other_codec(&packet.data));
            }
        }
    }
}

/// Reads past the followed stream's OpusTags packet (of any size: only its start is kept); true
/// when the stream ends with it.
fn skip_opus_tags<R: Read>(ogg: &mut OggDemuxer<R>) -> Result<bool, CodecError> {
    let Some(tags) = ogg
        .next_packet(OPUS_TAGS.len(), usize::MAX)
        .map_err(header_error)?
    else {
        return Err(CodecError::Corrupt(
            "it ends before its OpusTags header (cut short?)".into(),
        ));
    };
    if !tags.data.starts_with(OPUS_TAGS) {
        return Err(CodecError::Corrupt(
            "its second header is not OpusTags".into(),
        ));
    }
    Ok(tags.last_in_stream)
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
    ogg: OggDemuxer<R>,
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
        expect_an_ogg_page(&mut reader, origin)?;
        let mut ogg = OggDemuxer::new(reader);
        let (serial, head) = find_opus_head(&mut ogg)?;
        let Head {
            channels,
            pre_skip,
            input_sample_rate,
            gain_q8,
            decoder,
        } = parse_head(&head.data)?;
        let ended = head.last_in_stream || skip_opus_tags(&mut ogg)?;

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
            let packet = match self.ogg.next_packet(MAX_AUDIO_PACKET, MAX_AUDIO_PACKET) {
                Ok(Some(p)) => p,
                // A recording cut short by a crash ends where its last whole page did.
                Ok(None) => {
                    self.no_more_pages = true;
                    self.truncated = true;
                    return Ok(());
                }
                Err(DemuxError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.no_more_pages = true;
                    self.truncated = true;
                    return Ok(());
                }
                Err(DemuxError::Io(e)) => return Err(CodecError::Io(e)),
                Err(DemuxError::Checksum) => {
                    return Err(CodecError::Corrupt(format!(
                        "{}: a page is damaged (checksum mismatch)",
                        self.at()
                    )));
                }
                Err(DemuxError::Structure(what)) => {
                    return Err(CodecError::Corrupt(format!(
                        "{}: the Ogg structure is broken ({what})",
                        self.at()
                    )));
                }
                Err(DemuxError::PacketTooLarge(len)) => {
                    return Err(self.too_large(len));
                }
            };
            if packet.len > MAX_AUDIO_PACKET {
                return Err(self.too_large(packet.len));
            }
            let last = packet.last_in_page;
            self.page_granule = packet.granule;
            self.page_eos = packet.last_in_stream;
            self.page.push_back(packet);
            if last {
                self.no_more_pages |= self.page_eos;
                return self.check_page();
            }
        }
    }

    fn too_large(&self, len: usize) -> CodecError {
        CodecError::Corrupt(format!(
            "{}: a packet of {len} bytes or more is larger than Opus allows",
            self.at()
        ))
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
