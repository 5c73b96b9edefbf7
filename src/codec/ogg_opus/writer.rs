//! The Ogg Opus writer: OpusHead and OpusTags on pages of their own, then 20 ms packets
//! (encoded here from samples, or handed in already encoded), a page at least every
//! [`OggOpusWriter::set_page_duration`], and an exact end trim.
//!
//! Never here: reading. Buffers are sized when a stream starts.

use std::io::Write;
use std::time::Duration;

use ::opus as lib;

use super::page::PageWriter;
use super::{OPUS_HEAD, OPUS_TAGS};
use crate::codec::CodecError;
use crate::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusEncoder, SAMPLE_RATE};

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
    /// The pre-skip is this writer's own encoder's delay, so the end holds that much more
    /// (packets from elsewhere carry no delay of ours: they end where they end).
    own_delay: bool,
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
        writer: W,
        settings: &EncoderSettings,
        input_sample_rate: u32,
        comments: &[(&str, &str)],
    ) -> Result<Self, CodecError> {
        Self::start(writer, settings, None, input_sample_rate, comments)
    }

    /// As [`with_comments`](Self::with_comments), for a stream of packets encoded elsewhere
    /// (through [`write_packet`](Self::write_packet)) whose decoded audio is to be trimmed by
    /// `pre_skip` samples rather than by this writer's own encoder's lookahead: a speaker's
    /// packets as received, after a lead of silence `pre_skip` long, lined up with a program
    /// that carries them already decoded. Such a stream ends exactly after its last packet.
    /// `settings` give the channel count in OpusHead and the encoder that pads the end in
    /// [`finish`](Self::finish) when a page must carry the end-of-stream flag.
    ///
    /// # Errors
    /// As [`with_comments`](Self::with_comments).
    pub fn with_pre_skip(
        writer: W,
        settings: &EncoderSettings,
        pre_skip: u16,
        input_sample_rate: u32,
        comments: &[(&str, &str)],
    ) -> Result<Self, CodecError> {
        Self::start(
            writer,
            settings,
            Some(pre_skip),
            input_sample_rate,
            comments,
        )
    }

    fn start(
        mut writer: W,
        settings: &EncoderSettings,
        pre_skip: Option<u16>,
        input_sample_rate: u32,
        comments: &[(&str, &str)],
    ) -> Result<Self, CodecError> {
        let enc = OpusEncoder::new(settings)?;
        let channels = usize::from(settings.channels);
        let own_delay = pre_skip.is_none();
        let pre_skip = match pre_skip {
            Some(p) => p,
            None => u16::try_from(enc.lookahead()).map_err(|_| {
                CodecError::Opus(format!("encoder delay {} is too long", enc.lookahead()))
            })?,
        };
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
            own_delay,
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

    /// The underlying writer, e.g. to take the pages written so far out of a buffer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
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
        let end = if self.own_delay {
            self.pre_skip + self.frames_in
        } else {
            self.frames_in
        };
        if self.filled == 0 && self.granule >= end && !self.pages.is_empty() {
            // Packets from elsewhere with no delay of ours to flush: the page holding the last
            // of them ends the stream, with no padding to trim.
            self.pages.write_page(&mut self.out, true)?;
            self.out.flush()?;
            return Ok(self.out);
        }
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

pub(super) fn opus_tags(comments: &[(&str, &str)]) -> Result<Vec<u8>, CodecError> {
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
