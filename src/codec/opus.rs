//! Thin wrappers over libopus at 48 kHz: Booth's settings in, packets out, and back.
//!
//! Encoding and decoding never allocate: callers size their buffers once ([`MAX_PACKET`],
//! [`OpusDecoder::MAX_FRAME_SAMPLES`]). Nothing here knows about files, pages or the network.

use ::opus as lib;

use super::CodecError;

/// Opus always runs at 48 kHz inside Booth.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// A buffer this large holds any packet the encoder makes from one 20 ms frame (libopus caps a
/// frame at 1275 bytes; the rest is headroom).
pub const MAX_PACKET: usize = 1_500;

/// What the encoder is tuned for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Application {
    /// Game audio and whole programs kept as files (an episode, a listener's copy):
    /// `OPUS_APPLICATION_AUDIO` with the music signal hint, so the full band and the stereo
    /// image are kept.
    Music,
    /// A voice on its own: `OPUS_APPLICATION_VOIP` with the voice hint (speech-tuned, pairs
    /// with in-band FEC).
    Voice,
    /// `OPUS_APPLICATION_RESTRICTED_LOWDELAY`: the least delay (2.5 ms lookahead), no speech
    /// mode. The live program's ([`EncoderSettings::program_stereo`]).
    LowDelay,
}

/// How to encode. Opus itself fixes the rate at 48 kHz and Booth fixes frames at 20 ms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    /// 1 or 2.
    pub channels: u8,
    /// Target bitrate, bit/s (6,000 to 510,000).
    pub bitrate_bps: u32,
    /// 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// In-band forward error correction (voice: a lost packet is rebuilt from the next one).
    pub fec: bool,
    /// Expected packet loss, percent (0 to 100); tells FEC how much to spend.
    pub expected_loss_percent: u8,
    /// Discontinuous transmission in silence. Never for game audio: it gates quiet music.
    pub dtx: bool,
    /// Tuning.
    pub application: Application,
}

impl EncoderSettings {
    /// The program and game audio: stereo music, complexity 10, no FEC, no DTX.
    #[must_use]
    pub fn music_stereo(bitrate_bps: u32) -> Self {
        Self {
            channels: 2,
            bitrate_bps,
            complexity: 10,
            fec: false,
            expected_loss_percent: 0,
            dtx: false,
            application: Application::Music,
        }
    }

    /// The live program (what a room's audience hears, what the host's engine publishes and
    /// records): stereo, complexity 10, no FEC, no DTX, as [`music_stereo`](Self::music_stereo),
    /// but in restricted low delay. Its lookahead is 2.5 ms where the music tuning's is 6.5 ms,
    /// 4 ms less between the host's mouth and every ear, and at the program's bitrates it sounds
    /// the same: ViSQOL (audio mode) scores game music, a voice over game music and a voice alone
    /// within 0.001 of the music tuning at 128 kbit/s, and within 0.015 either way at 64
    /// (`benches/opus_quality.sh`). It encodes no faster: libopus analyses the signal in both.
    #[must_use]
    pub fn program_stereo(bitrate_bps: u32) -> Self {
        Self {
            application: Application::LowDelay,
            ..Self::music_stereo(bitrate_bps)
        }
    }

    /// A speaker's voice: mono, FEC on for 10% loss, DTX off (turn it on to save bandwidth in
    /// pauses where comfort noise is acceptable).
    #[must_use]
    pub fn voice_mono(bitrate_bps: u32) -> Self {
        Self {
            channels: 1,
            bitrate_bps,
            complexity: 10,
            fec: true,
            expected_loss_percent: 10,
            dtx: false,
            application: Application::Voice,
        }
    }

    fn validate(&self) -> Result<lib::Channels, CodecError> {
        let channels = channels(self.channels)?;
        if !(6_000..=510_000).contains(&self.bitrate_bps) {
            return Err(CodecError::InvalidSettings(format!(
                "a bitrate of {} kbit/s is out of range: choose 6 to 510 kbit/s",
                f64::from(self.bitrate_bps) / 1000.0
            )));
        }
        if self.complexity > 10 {
            return Err(CodecError::InvalidSettings(format!(
                "complexity {} is out of range: choose 0 to 10",
                self.complexity
            )));
        }
        if self.expected_loss_percent > 100 {
            return Err(CodecError::InvalidSettings(format!(
                "an expected loss of {}% is out of range: choose 0 to 100",
                self.expected_loss_percent
            )));
        }
        Ok(channels)
    }
}

fn channels(n: u8) -> Result<lib::Channels, CodecError> {
    match n {
        1 => Ok(lib::Channels::Mono),
        2 => Ok(lib::Channels::Stereo),
        other => Err(CodecError::UnsupportedChannels(other)),
    }
}

/// A libopus encoder: 20 ms frames of interleaved `f32` in, packets out.
pub struct OpusEncoder {
    enc: lib::Encoder,
    settings: EncoderSettings,
    lookahead: usize,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("settings", &self.settings)
            .field("lookahead", &self.lookahead)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder with these settings.
    ///
    /// # Errors
    /// [`CodecError::UnsupportedChannels`] for other than 1 or 2 channels,
    /// [`CodecError::InvalidSettings`] for a bitrate, complexity or loss out of range,
    /// [`CodecError::Opus`] if libopus refuses anyway.
    pub fn new(settings: &EncoderSettings) -> Result<Self, CodecError> {
        let channels = settings.validate()?;
        let (app, signal) = match settings.application {
            Application::Music => (lib::Application::Audio, lib::Signal::Music),
            Application::Voice => (lib::Application::Voip, lib::Signal::Voice),
            Application::LowDelay => (lib::Application::LowDelay, lib::Signal::Auto),
        };
        let mut enc = lib::Encoder::new(SAMPLE_RATE, channels, app)?;
        // Validated above: 510,000 fits an i32.
        enc.set_bitrate(lib::Bitrate::Bits(settings.bitrate_bps as i32))?;
        enc.set_complexity(i32::from(settings.complexity))?;
        enc.set_inband_fec(settings.fec)?;
        enc.set_packet_loss_perc(i32::from(settings.expected_loss_percent))?;
        enc.set_dtx(settings.dtx)?;
        enc.set_signal(signal)?;
        // Asked after every setting: the lookahead depends on the application, and it is the
        // pre-skip a decoder must drop to line output up with input.
        let lookahead = usize::try_from(enc.get_lookahead()?).unwrap_or(0);
        Ok(Self {
            enc,
            settings: settings.clone(),
            lookahead,
        })
    }

    /// The encoder's delay in samples at 48 kHz: the pre-skip a decoder must drop.
    #[must_use]
    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.settings.channels
    }

    /// The settings in use.
    #[must_use]
    pub fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Forgets the audio it has seen, as a new encoder would: for an encoder that paused, so
    /// its first packet after the pause carries nothing from before it.
    ///
    /// # Errors
    /// [`CodecError::Opus`] if libopus refuses.
    pub fn reset(&mut self) -> Result<(), CodecError> {
        Ok(self.enc.reset_state()?)
    }

    /// Encodes one 20 ms frame (exactly `FRAME_SAMPLES x channels` interleaved samples) into
    /// `out` and returns the packet length. Does not allocate; size `out` with [`MAX_PACKET`].
    ///
    /// # Errors
    /// [`CodecError::InvalidInput`] for a frame of another size; [`CodecError::Opus`] if `out`
    /// is too small.
    pub fn encode_frame(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, CodecError> {
        let want = FRAME_SAMPLES * usize::from(self.settings.channels);
        if pcm.len() != want {
            return Err(CodecError::InvalidInput(format!(
                "an Opus frame holds {want} samples ({FRAME_SAMPLES} x {} channels), got {}",
                self.settings.channels,
                pcm.len()
            )));
        }
        Ok(self.enc.encode_float(pcm, out)?)
    }
}

/// A libopus decoder at 48 kHz: packets in, interleaved `f32` out.
pub struct OpusDecoder {
    dec: lib::Decoder,
    channels: u8,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// The most samples per channel one packet can decode to (120 ms).
    pub const MAX_FRAME_SAMPLES: usize = 5_760;

    /// A decoder producing `channels` (1 or 2) interleaved channels. A stereo decoder plays mono
    /// packets on both sides and a mono decoder folds stereo packets down, so either works for
    /// any single-stream Opus packet.
    ///
    /// # Errors
    /// [`CodecError::UnsupportedChannels`] for other channel counts.
    pub fn new(channels: u8) -> Result<Self, CodecError> {
        let dec = lib::Decoder::new(SAMPLE_RATE, self::channels(channels)?)?;
        Ok(Self { dec, channels })
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Decodes a packet into `out` and returns the samples per channel written. Does not
    /// allocate; size `out` for `MAX_FRAME_SAMPLES x channels` to take any packet.
    ///
    /// # Errors
    /// [`CodecError::Opus`] for a damaged packet or an `out` too small for it.
    pub fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        if packet.is_empty() {
            // libopus reads an empty packet as "lost"; a caller passing one by mistake should
            // hear about it rather than get a concealment the length of `out`.
            return Err(CodecError::InvalidInput(
                "an empty Opus packet: use decode_lost for a lost one".into(),
            ));
        }
        Ok(self.dec.decode_float(packet, out, false)?)
    }

    /// Conceals one lost packet (packet loss concealment): fills all of `out`, whose length
    /// per channel must be the lost duration in whole 2.5 ms steps (960 for a 20 ms packet).
    ///
    /// # Errors
    /// [`CodecError::Opus`] for a length libopus cannot conceal.
    pub fn decode_lost(&mut self, out: &mut [f32]) -> Result<usize, CodecError> {
        Ok(self.dec.decode_float(&[], out, false)?)
    }

    /// Rebuilds a lost packet from the in-band FEC carried by the packet after it. Size `out`
    /// to the lost packet's duration (as for [`Self::decode_lost`]); when `next_packet` carries
    /// no FEC, libopus conceals instead. Then decode `next_packet` itself as usual.
    ///
    /// # Errors
    /// [`CodecError::Opus`] for a damaged packet or a length libopus cannot fill.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        Ok(self.dec.decode_float(next_packet, out, true)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize, channels: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|n| {
                let x = 0.3 * (std::f32::consts::TAU * 440.0 * n as f32 / 48_000.0).sin();
                std::iter::repeat_n(x, channels)
            })
            .collect()
    }

    #[test]
    fn settings_out_of_range_are_refused_with_a_reason() {
        let bad_rate = OpusEncoder::new(&EncoderSettings::music_stereo(1_000_000));
        assert!(
            matches!(&bad_rate, Err(CodecError::InvalidSettings(m)) if m.contains("1000 kbit/s")),
            "{bad_rate:?}"
        );
        let three = EncoderSettings {
            channels: 3,
            ..EncoderSettings::music_stereo(96_000)
        };
        assert!(matches!(
            OpusEncoder::new(&three),
            Err(CodecError::UnsupportedChannels(3))
        ));
        let eleven = EncoderSettings {
            complexity: 11,
            ..EncoderSettings::voice_mono(24_000)
        };
        assert!(matches!(
            OpusEncoder::new(&eleven),
            Err(CodecError::InvalidSettings(_))
        ));
        assert!(OpusDecoder::new(0).is_err());
    }

    #[test]
    fn lookahead_is_the_real_encoder_delay() -> Result<(), CodecError> {
        // libopus: 2.5 ms of CELT overlap, plus 4 ms of delay compensation outside low delay.
        let music = OpusEncoder::new(&EncoderSettings::music_stereo(128_000))?;
        assert_eq!(music.lookahead(), 312);
        let program = OpusEncoder::new(&EncoderSettings::program_stereo(128_000))?;
        assert_eq!(program.lookahead(), 120);
        Ok(())
    }

    #[test]
    fn wrong_frame_size_is_an_error() -> Result<(), CodecError> {
        let mut enc = OpusEncoder::new(&EncoderSettings::music_stereo(96_000))?;
        let mut out = [0u8; MAX_PACKET];
        assert!(matches!(
            enc.encode_frame(&[0.0; 960], &mut out),
            Err(CodecError::InvalidInput(_))
        ));
        let mut dec = OpusDecoder::new(2)?;
        let mut pcm = [0.0f32; 2 * OpusDecoder::MAX_FRAME_SAMPLES];
        assert!(dec.decode(&[], &mut pcm).is_err());
        Ok(())
    }

    #[test]
    fn voice_survives_a_lost_packet_through_fec_and_concealment() -> Result<(), CodecError> {
        let mut enc = OpusEncoder::new(&EncoderSettings::voice_mono(32_000))?;
        let pcm = tone(FRAME_SAMPLES * 30, 1);
        let packets: Vec<Vec<u8>> = pcm
            .chunks(FRAME_SAMPLES)
            .map(|f| {
                let mut out = [0u8; MAX_PACKET];
                let n = enc.encode_frame(f, &mut out)?;
                Ok(out[..n].to_vec())
            })
            .collect::<Result<_, CodecError>>()?;
        let mut dec = OpusDecoder::new(1)?;
        let mut out = vec![0.0f32; OpusDecoder::MAX_FRAME_SAMPLES];
        let mut heard = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let n = match i {
                20 => dec.decode_fec(&packets[21], &mut out[..FRAME_SAMPLES])?,
                25 => dec.decode_lost(&mut out[..FRAME_SAMPLES])?,
                _ => dec.decode(p, &mut out)?,
            };
            assert_eq!(n, FRAME_SAMPLES, "packet {i}");
            heard.extend_from_slice(&out[..n]);
        }
        // The rebuilt and the concealed frames still carry the tone, near its level.
        for i in [20, 25] {
            let frame = &heard[i * FRAME_SAMPLES..(i + 1) * FRAME_SAMPLES];
            let rms = (frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32).sqrt();
            let want = 0.3 / std::f32::consts::SQRT_2;
            let db = 20.0 * (rms / want).log10();
            assert!(db.abs() < 6.0, "frame {i}: {db:.1} dB");
        }
        Ok(())
    }
}
