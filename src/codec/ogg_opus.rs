//! Ogg Opus files per RFC 7845: the writer Booth records with, and the reader `booth mix` uses.
//!
//! The writer puts OpusHead and OpusTags on pages of their own, stamps every page with the
//! granule position of its last packet, writes the encoder's real lookahead as pre-skip, trims
//! the end exactly through the last page's granule position, and ends the page at least every
//! [`OggOpusWriter::set_page_duration`] (1 s by default) so a crash loses at most that much.
//! The reader undoes all of that: pre-skip dropped, end trimmed, output gain applied.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

use super::CodecError;
use super::EncoderSettings;
use super::opus::{FRAME_SAMPLES, MAX_PACKET, OpusDecoder, OpusEncoder, SAMPLE_RATE};

const OPUS_HEAD: &[u8; 8] = b"OpusHead";
const OPUS_TAGS: &[u8; 8] = b"OpusTags";

/// Whether these first bytes of a file start an Ogg Opus stream.
#[must_use]
pub fn is_ogg_opus(first_bytes: &[u8]) -> bool {
    if first_bytes.len() < 28 || &first_bytes[..4] != b"OggS" {
        return false;
    }
    let start = 27 + usize::from(first_bytes[26]);
    first_bytes.get(start..start + 8) == Some(&OPUS_HEAD[..])
}

/// Writes an Ogg Opus stream, encoding interleaved `f32` at 48 kHz as it goes.
pub struct OggOpusWriter<W: Write> {
    ogg: PacketWriter<'static, W>,
    enc: OpusEncoder,
    serial: u32,
    channels: usize,
    pre_skip: u64,
    frame: Vec<f32>,
    filled: usize,
    packet: Vec<u8>,
    /// The newest packet, held back so the last one can carry end-of-stream.
    held: Option<Vec<u8>>,
    /// Samples (per channel) encoded so far, including the pre-skip region.
    encoded: u64,
    frames_in: u64,
    page_samples: u64,
    samples_on_page: u64,
}

impl<W: Write> std::fmt::Debug for OggOpusWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusWriter")
            .field("serial", &self.serial)
            .field("frames_in", &self.frames_in)
            .finish_non_exhaustive()
    }
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes OpusHead and OpusTags, each on its own page.
    ///
    /// # Errors
    /// Encoder settings libopus refuses, or a failed write.
    pub fn new(
        writer: W,
        settings: &EncoderSettings,
        input_sample_rate: u32,
    ) -> Result<Self, CodecError> {
        let enc = OpusEncoder::new(settings)?;
        let channels = usize::from(settings.channels);
        let pre_skip = enc.lookahead() as u64;
        let serial = stream_serial();
        let mut ogg = PacketWriter::new(writer);

        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(OPUS_HEAD);
        head.push(1); // version
        head.push(settings.channels);
        head.extend_from_slice(&u16::try_from(pre_skip).unwrap_or(u16::MAX).to_le_bytes());
        head.extend_from_slice(&input_sample_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo
        ogg.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)?;

        let vendor = format!(
            "Booth {} ({})",
            env!("CARGO_PKG_VERSION"),
            ::opus::version()
        );
        let mut tags = Vec::new();
        tags.extend_from_slice(OPUS_TAGS);
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        let comment = "ENCODER=Booth";
        tags.extend_from_slice(&1u32.to_le_bytes());
        tags.extend_from_slice(&(comment.len() as u32).to_le_bytes());
        tags.extend_from_slice(comment.as_bytes());
        ogg.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;

        Ok(Self {
            ogg,
            enc,
            serial,
            channels,
            pre_skip,
            frame: vec![0.0; FRAME_SAMPLES * channels],
            filled: 0,
            packet: vec![0; MAX_PACKET],
            held: None,
            encoded: 0,
            frames_in: 0,
            page_samples: u64::from(SAMPLE_RATE),
            samples_on_page: 0,
        })
    }

    /// Ends a page at least this often (rounded to whole 20 ms packets; at least one packet).
    /// 1 s by default; live listeners (Icecast) want 200 ms or less.
    pub fn set_page_duration(&mut self, d: Duration) {
        let samples = (d.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as u64;
        self.page_samples = samples.max(FRAME_SAMPLES as u64);
    }

    /// The pre-skip written in OpusHead (the encoder's lookahead), in 48 kHz samples.
    #[must_use]
    pub fn pre_skip(&self) -> u16 {
        u16::try_from(self.pre_skip).unwrap_or(u16::MAX)
    }

    /// Input frames accepted so far.
    #[must_use]
    pub fn frames_written(&self) -> u64 {
        self.frames_in
    }

    /// Encodes any number of interleaved frames.
    ///
    /// # Errors
    /// A failed write or encode.
    pub fn write(&mut self, interleaved: &[f32]) -> Result<(), CodecError> {
        let mut rest = &interleaved[..interleaved.len() / self.channels * self.channels];
        self.frames_in += (rest.len() / self.channels) as u64;
        while !rest.is_empty() {
            let take = (self.frame.len() - self.filled).min(rest.len());
            self.frame[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == self.frame.len() {
                self.encode_frame()?;
            }
        }
        Ok(())
    }

    fn encode_frame(&mut self) -> Result<(), CodecError> {
        let n = self.enc.encode_frame(&self.frame, &mut self.packet)?;
        self.filled = 0;
        let packet = self.packet[..n].to_vec();
        if let Some(prev) = self.held.replace(packet) {
            self.emit(prev, false)?;
        }
        Ok(())
    }

    /// Writes a held packet; its granule is the samples encoded up to its end.
    fn emit(&mut self, packet: Vec<u8>, last: bool) -> Result<(), CodecError> {
        self.encoded += FRAME_SAMPLES as u64;
        self.samples_on_page += FRAME_SAMPLES as u64;
        let (granule, info) = if last {
            // End trimming (RFC 7845 4.4): the final granule says exactly where the audio ends.
            (
                (self.pre_skip + self.frames_in).min(self.encoded),
                PacketWriteEndInfo::EndStream,
            )
        } else if self.samples_on_page >= self.page_samples {
            (self.encoded, PacketWriteEndInfo::EndPage)
        } else {
            (self.encoded, PacketWriteEndInfo::NormalPacket)
        };
        if info != PacketWriteEndInfo::NormalPacket {
            self.samples_on_page = 0;
        }
        self.ogg.write_packet(packet, self.serial, info, granule)?;
        if info != PacketWriteEndInfo::NormalPacket {
            self.ogg.inner_mut().flush()?;
        }
        Ok(())
    }

    /// Ends the current page now, so everything so far is on disk.
    ///
    /// # Errors
    /// A failed write.
    pub fn flush_page(&mut self) -> Result<(), CodecError> {
        self.samples_on_page = self.page_samples;
        if let Some(p) = self.held.take() {
            // Written without waiting for a successor; the next packet starts a new page.
            self.emit(p, false)?;
        }
        self.ogg.inner_mut().flush()?;
        Ok(())
    }

    /// Ends the stream: encodes the tail (padded with silence until the encoder's delay is out),
    /// marks the last page end-of-stream with the exact final granule, and returns the writer.
    ///
    /// # Errors
    /// A failed write or encode.
    pub fn finish(mut self) -> Result<W, CodecError> {
        // The decoder drops `pre_skip` samples; encode until every input sample is past them.
        while self.encoded + self.held.as_ref().map_or(0, |_| FRAME_SAMPLES as u64)
            < self.pre_skip + self.frames_in
            || self.filled > 0
        {
            self.frame[self.filled..].fill(0.0);
            self.filled = self.frame.len();
            self.encode_frame()?;
        }
        match self.held.take() {
            Some(last) => self.emit(last, true)?,
            // No audio at all: an empty end-of-stream page keeps the file valid.
            None => {
                let granule = self.pre_skip.min(self.encoded);
                self.ogg.write_packet(
                    Vec::new(),
                    self.serial,
                    PacketWriteEndInfo::EndStream,
                    granule,
                )?;
            }
        }
        let mut w = self.ogg.into_inner();
        w.flush()?;
        Ok(w)
    }
}

fn stream_serial() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Mix the bits so streams started close together differ everywhere.
    let mut x = nanos as u64 ^ u64::from(std::process::id()).rotate_left(32);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x as u32
}

/// Reads an Ogg Opus stream as interleaved `f32` at 48 kHz.
pub struct OggOpusReader<R: Read + Seek> {
    ogg: PacketReader<R>,
    dec: OpusDecoder,
    serial: u32,
    channels: u8,
    input_sample_rate: u32,
    pre_skip: u16,
    gain: f32,
    /// Samples (per channel) still to drop for pre-skip.
    skip_left: u64,
    /// Samples decoded so far, counted like granule positions.
    decoded: u64,
    total: Option<u64>,
    buf: Vec<f32>,
    ended: bool,
}

impl<R: Read + Seek> std::fmt::Debug for OggOpusReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OggOpusReader")
            .field("channels", &self.channels)
            .field("pre_skip", &self.pre_skip)
            .finish_non_exhaustive()
    }
}

fn ogg_error(e: ogg::OggReadError) -> CodecError {
    match e {
        ogg::OggReadError::ReadError(io) => CodecError::Io(io),
        other => CodecError::Corrupt(other.to_string()),
    }
}

impl<R: Read + Seek> OggOpusReader<R> {
    /// Opens a stream: checks OpusHead, skips OpusTags, finds the length from the last page.
    ///
    /// # Errors
    /// Not Ogg, not Opus, a damaged header, or an unsupported channel layout.
    pub fn new(mut reader: R) -> Result<Self, CodecError> {
        let last_granule = last_page_granule(&mut reader)?;
        let mut ogg = PacketReader::new(reader);
        let head = ogg
            .read_packet()
            .map_err(|e| CodecError::NotOggOpus(e.to_string()))?
            .ok_or_else(|| CodecError::NotOggOpus("the stream is empty".into()))?;
        let d = &head.data;
        if d.len() < 19 || &d[..8] != OPUS_HEAD {
            return Err(CodecError::NotOggOpus(
                "the first packet is not OpusHead".into(),
            ));
        }
        if d[8] >> 4 != 0 {
            return Err(CodecError::NotOggOpus(format!(
                "OpusHead version {} is not supported",
                d[8]
            )));
        }
        let channels = d[9];
        let pre_skip = u16::from_le_bytes([d[10], d[11]]);
        let input_sample_rate = u32::from_le_bytes([d[12], d[13], d[14], d[15]]);
        let gain_q8 = i16::from_le_bytes([d[16], d[17]]);
        let family = d[18];
        if family != 0 || !(1..=2).contains(&channels) {
            return Err(CodecError::UnsupportedChannels(channels));
        }
        let serial = head.stream_serial();
        let tags = loop {
            let p = ogg
                .read_packet()
                .map_err(ogg_error)?
                .ok_or_else(|| CodecError::Corrupt("the stream ends before OpusTags".into()))?;
            if p.stream_serial() == serial {
                break p;
            }
        };
        if tags.data.len() < 8 || &tags.data[..8] != OPUS_TAGS {
            return Err(CodecError::Corrupt(
                "the second packet is not OpusTags".into(),
            ));
        }
        let total = last_granule
            .filter(|&(s, _)| s == serial)
            .map(|(_, g)| g.saturating_sub(u64::from(pre_skip)));
        Ok(Self {
            ogg,
            dec: OpusDecoder::new(channels)?,
            serial,
            channels,
            input_sample_rate,
            pre_skip,
            gain: 10f32.powf(f32::from(gain_q8) / 256.0 / 20.0),
            skip_left: u64::from(pre_skip),
            decoded: 0,
            total,
            buf: vec![0.0; OpusDecoder::MAX_FRAME_SAMPLES * usize::from(channels)],
            ended: false,
        })
    }

    /// Channels (1 or 2).
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// The rate the audio had before encoding (informational; decoding is always 48 kHz).
    #[must_use]
    pub fn input_sample_rate(&self) -> u32 {
        self.input_sample_rate
    }

    /// Pre-skip from OpusHead.
    #[must_use]
    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// Length in samples per channel at 48 kHz, from the last page's granule position.
    #[must_use]
    pub fn total_frames(&mut self) -> Option<u64> {
        self.total
    }

    /// The next decoded block (interleaved, 48 kHz), or `None` at the end.
    ///
    /// # Errors
    /// A damaged page or packet.
    pub fn read(&mut self) -> Result<Option<&[f32]>, CodecError> {
        let ch = usize::from(self.channels);
        loop {
            if self.ended {
                return Ok(None);
            }
            let packet = match self.ogg.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.ended = true;
                    return Ok(None);
                }
                // A file cut short (a crash while recording) ends where its last whole page did.
                Err(ogg::OggReadError::ReadError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    self.ended = true;
                    return Ok(None);
                }
                Err(e) => return Err(ogg_error(e)),
            };
            if packet.stream_serial() != self.serial {
                continue;
            }
            let eos = packet.last_in_stream();
            let granule = packet.absgp_page();
            let mut n = if packet.data.is_empty() {
                0
            } else {
                self.dec
                    .decode(&packet.data, &mut self.buf)
                    .map_err(|e| CodecError::Corrupt(e.to_string()))?
            };
            self.decoded += n as u64;
            if eos {
                self.ended = true;
                // End trimming: the final granule position is where the audio stops.
                let excess = self.decoded.saturating_sub(granule) as usize;
                n = n.saturating_sub(excess);
            }
            let skip = (self.skip_left as usize).min(n);
            self.skip_left -= skip as u64;
            if skip == n {
                continue;
            }
            let out = &mut self.buf[skip * ch..n * ch];
            if self.gain != 1.0 {
                let g = self.gain;
                out.iter_mut().for_each(|s| *s *= g);
            }
            return Ok(Some(&self.buf[skip * ch..n * ch]));
        }
    }
}

/// (serial, granule) of the last page, read from the file's tail; the reader is left at the start.
fn last_page_granule<R: Read + Seek>(r: &mut R) -> Result<Option<(u32, u64)>, CodecError> {
    let len = r.seek(SeekFrom::End(0))?;
    let tail = len.min(65_536 + 27);
    r.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::with_capacity(tail as usize);
    r.take(tail).read_to_end(&mut buf)?;
    r.seek(SeekFrom::Start(0))?;
    let found = buf
        .windows(4)
        .enumerate()
        .rev()
        .filter(|(_, w)| *w == b"OggS")
        .find_map(|(i, _)| {
            let h = buf.get(i..i + 27)?;
            let granule = i64::from_le_bytes(h[6..14].try_into().ok()?);
            let serial = u32::from_le_bytes(h[14..18].try_into().ok()?);
            (granule >= 0).then_some((serial, granule as u64))
        });
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sine(frames: usize, channels: usize, left_only: bool) -> Vec<f32> {
        (0..frames)
            .flat_map(|n| {
                let x = 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 48_000.0).sin();
                let r = if left_only { 0.0 } else { x };
                if channels == 1 { vec![x] } else { vec![x, r] }
            })
            .collect()
    }

    fn encode(pcm: &[f32], channels: u8, page: Option<Duration>) -> Vec<u8> {
        let settings = EncoderSettings {
            channels,
            ..EncoderSettings::music_stereo(128_000)
        };
        let mut w = OggOpusWriter::new(Vec::new(), &settings, 48_000).unwrap();
        if let Some(d) = page {
            w.set_page_duration(d);
        }
        // Ragged writes.
        for chunk in pcm.chunks(777 * usize::from(channels)) {
            w.write(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn decode(bytes: Vec<u8>) -> (Vec<f32>, Option<u64>) {
        let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
        let total = r.total_frames();
        let mut out = Vec::new();
        while let Some(b) = r.read().unwrap() {
            out.extend_from_slice(b);
        }
        (out, total)
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn round_trip_keeps_length_level_and_stereo() {
        for frames in [48_000, 12_345, 960, 1] {
            let pcm = sine(frames, 2, true);
            let (out, total) = decode(encode(&pcm, 2, None));
            assert_eq!(out.len(), pcm.len(), "{frames} frames");
            assert_eq!(total, Some(frames as u64));
        }
        let pcm = sine(48_000, 2, true);
        let (out, _) = decode(encode(&pcm, 2, None));
        let l: Vec<f32> = out.iter().step_by(2).copied().collect();
        let r: Vec<f32> = out.iter().skip(1).step_by(2).copied().collect();
        let (lr, rr) = (rms(&l[960..]), rms(&r[960..]));
        assert!(
            (20.0 * (lr / (0.5 / 2f32.sqrt())).log10()).abs() < 1.0,
            "left {lr}"
        );
        assert!(20.0 * (lr / rr.max(1e-9)).log10() > 30.0, "right {rr}");
        // Aligned: decoded matches the input sample for sample, near enough for a codec.
        let err: Vec<f32> = l
            .iter()
            .zip(pcm.iter().step_by(2))
            .map(|(a, b)| a - b)
            .collect();
        assert!(
            rms(&err[960..]) < 0.05,
            "misaligned: error rms {}",
            rms(&err[960..])
        );
    }

    #[test]
    fn mono_round_trip() {
        let pcm = sine(20_000, 1, false);
        let (out, _) = decode(encode(&pcm, 1, None));
        assert_eq!(out.len(), pcm.len());
    }

    #[test]
    fn pages_come_at_least_every_second_with_rising_granules() {
        let bytes = encode(&sine(48_000 * 5, 2, false), 2, None);
        let mut r = PacketReader::new(Cursor::new(bytes.clone()));
        let mut last = 0;
        let mut pages = 0;
        while let Some(p) = r.read_packet().unwrap() {
            if p.last_in_page() {
                assert!(p.absgp_page() >= last);
                assert!(p.absgp_page() - last <= 48_000, "page spans over 1 s");
                last = p.absgp_page();
                pages += 1;
            }
        }
        assert!(pages >= 2 + 5, "{pages} pages");
        let short = encode(&sine(48_000, 2, false), 2, Some(Duration::from_millis(200)));
        let mut r = PacketReader::new(Cursor::new(short));
        let mut n = 0;
        while let Some(p) = r.read_packet().unwrap() {
            n += usize::from(p.last_in_page());
        }
        assert!(n >= 2 + 5, "{n} pages for 1 s at 200 ms");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let good = encode(&sine(48_000, 2, false), 2, None);
        assert!(OggOpusReader::new(Cursor::new(Vec::new())).is_err());
        assert!(OggOpusReader::new(Cursor::new(vec![0x55; 4000])).is_err());
        let mut not_opus = good.clone();
        not_opus[28..36].copy_from_slice(b"\x01vorbis\0");
        assert!(OggOpusReader::new(Cursor::new(not_opus)).is_err());
        // Garbage in the middle: a damaged page is reported.
        let mut damaged = good.clone();
        let mid = damaged.len() / 2;
        for b in &mut damaged[mid..mid + 200] {
            *b ^= 0xa5;
        }
        let mut r = OggOpusReader::new(Cursor::new(damaged)).unwrap();
        let mut failed = false;
        loop {
            match r.read() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed, "a damaged page went unnoticed");
        // Cut short (a crash): reads the whole pages that are there and ends.
        let long = encode(&sine(48_000 * 5, 2, false), 2, None);
        let cut = long[..long.len() * 2 / 3].to_vec();
        let mut r = OggOpusReader::new(Cursor::new(cut)).unwrap();
        let mut n = 0;
        loop {
            match r.read() {
                Ok(Some(b)) => n += b.len(),
                Ok(None) => break,
                Err(e) => panic!("after {n}: {e:?}"),
            }
        }
        assert!(n >= 48_000 * 2 * 2, "only {n} samples survived");
        assert!(is_ogg_opus(&good[..64]));
        assert!(!is_ogg_opus(b"RIFF....WAVEfmt "));
    }
}
