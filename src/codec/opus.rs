//! Thin wrappers over libopus at 48 kHz. Encoding and decoding never allocate.

use ::opus as lib;

use super::CodecError;

/// Opus always runs at 48 kHz inside Booth.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// The largest packet libopus produces for one frame (RFC 6716 allows 1275 bytes per frame).
pub const MAX_PACKET: usize = 1_500;

/// What the encoder is tuned for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Application {
    /// Game audio and full programs: full band, stereo image kept.
    Music,
    /// A voice on its own: speech-tuned, loss-robust.
    Voice,
    /// Lowest delay (no lookahead-heavy modes).
    LowDelay,
}

/// Encoder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    /// 1 or 2.
    pub channels: u8,
    /// Target bitrate, bit/s.
    pub bitrate_bps: u32,
    /// 0 (fastest) to 10 (best).
    pub complexity: u8,
    /// In-band forward error correction.
    pub fec: bool,
    /// Expected packet loss, percent (tunes FEC).
    pub expected_loss_percent: u8,
    /// Discontinuous transmission in silence. Never for game audio.
    pub dtx: bool,
    /// Tuning.
    pub application: Application,
}

impl EncoderSettings {
    /// The program: stereo music, complexity 10, no FEC, no DTX.
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

    /// A speaker's voice: mono, FEC on for 10% loss.
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
}

fn channels(n: u8) -> Result<lib::Channels, CodecError> {
    match n {
        1 => Ok(lib::Channels::Mono),
        2 => Ok(lib::Channels::Stereo),
        other => Err(CodecError::UnsupportedChannels(other)),
    }
}

/// A libopus encoder.
pub struct OpusEncoder {
    enc: lib::Encoder,
    settings: EncoderSettings,
    lookahead: usize,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder with these settings.
    ///
    /// # Errors
    /// Settings libopus refuses (channels, bitrate 6-510 kbit/s, complexity 0-10).
    pub fn new(settings: &EncoderSettings) -> Result<Self, CodecError> {
        let app = match settings.application {
            Application::Music => lib::Application::Audio,
            Application::Voice => lib::Application::Voip,
            Application::LowDelay => lib::Application::LowDelay,
        };
        let mut enc = lib::Encoder::new(SAMPLE_RATE, channels(settings.channels)?, app)?;
        if !(6_000..=510_000).contains(&settings.bitrate_bps) {
            return Err(CodecError::Opus(format!(
                "bitrate {} bit/s is out of range (6-510 kbit/s)",
                settings.bitrate_bps
            )));
        }
        enc.set_bitrate(lib::Bitrate::Bits(settings.bitrate_bps as i32))?;
        enc.set_complexity(i32::from(settings.complexity.min(10)))?;
        enc.set_inband_fec(settings.fec)?;
        enc.set_packet_loss_perc(i32::from(settings.expected_loss_percent.min(100)))?;
        enc.set_dtx(settings.dtx)?;
        enc.set_signal(match settings.application {
            Application::Music => lib::Signal::Music,
            Application::Voice => lib::Signal::Voice,
            Application::LowDelay => lib::Signal::Auto,
        })?;
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

    /// Encodes one 20 ms frame (`FRAME_SAMPLES x channels` interleaved samples) into `out`;
    /// returns the packet length.
    ///
    /// # Errors
    /// A frame of the wrong size, or `out` too small.
    pub fn encode_frame(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, CodecError> {
        let want = FRAME_SAMPLES * usize::from(self.settings.channels);
        if pcm.len() != want {
            return Err(CodecError::Opus(format!(
                "a frame holds {want} samples, got {}",
                pcm.len()
            )));
        }
        Ok(self.enc.encode_float(pcm, out)?)
    }
}

/// A libopus decoder at 48 kHz.
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

    /// A decoder producing `channels` (1 or 2) interleaved channels.
    ///
    /// # Errors
    /// Other channel counts.
    pub fn new(channels: u8) -> Result<Self, CodecError> {
        let dec = lib::Decoder::new(SAMPLE_RATE, self::channels(channels)?)?;
        Ok(Self { dec, channels })
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Decodes a packet into `out` (size it for `MAX_FRAME_SAMPLES x channels`); returns samples
    /// per channel.
    ///
    /// # Errors
    /// A damaged packet.
    pub fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        Ok(self.dec.decode_float(packet, out, false)?)
    }

    /// Conceals one lost packet of `out.len() / channels` samples per channel.
    ///
    /// # Errors
    /// A length libopus cannot conceal (not a multiple of 2.5 ms).
    pub fn decode_lost(&mut self, out: &mut [f32]) -> Result<usize, CodecError> {
        Ok(self.dec.decode_float(&[], out, false)?)
    }

    /// Recovers a lost packet from the forward error correction in the packet after it.
    ///
    /// # Errors
    /// A damaged packet.
    pub fn decode_fec(&mut self, next_packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        Ok(self.dec.decode_float(next_packet, out, true)?)
    }
}
