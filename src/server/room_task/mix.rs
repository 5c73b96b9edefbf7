//! The room's server mix, apart from any network: every 20 ms the voices heard this tick are
//! summed into the program; who hears whom is settled (a stage member who listens hears a
//! mix-minus, everyone else the program); the program is limited and encoded ONCE for everyone
//! who hears it (and only while someone does); each mix-minus is encoded by its own chain. The
//! room's task feeds it decoded voices and hands its packets to the sessions.
//!
//! A tick allocates nothing: buffers and maps are sized when a voice or listener first appears
//! and reused after (a counting-allocator test holds it).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::codec::CodecError;
use crate::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusEncoder};
use crate::dsp::{DspError, Limiter};
use crate::room::ParticipantId;

/// Samples in one 20 ms stereo block.
pub const STEREO_FRAME: usize = FRAME_SAMPLES * 2;
/// The program's Opus bit rate (stereo game audio with voice).
pub const PROGRAM_BITRATE: u32 = 128_000;

/// Why the mix could not be built or a tick not encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// The Opus encoder.
    #[error("the program's encoder: {0}")]
    Encoder(#[from] CodecError),
    /// The limiter.
    #[error("the program's limiter: {0}")]
    Limiter(#[from] DspError),
}

/// A limiter and an encoder: the program's, or one stage member's mix-minus.
struct Chain {
    limiter: Limiter,
    encoder: OpusEncoder,
    packet: Vec<u8>,
    /// This tick's packet length, when one was encoded.
    encoded: Option<usize>,
    /// Skipped while nobody heard it (or it was digital silence for a host in this process):
    /// the encoder and limiter start clean when it is heard again, so nothing from before the
    /// pause reaches the first listener after it.
    paused: bool,
}

impl Chain {
    fn new() -> Result<Self, MixError> {
        Ok(Self {
            limiter: Limiter::new(-1.0)?,
            encoder: OpusEncoder::new(&EncoderSettings::program_stereo(PROGRAM_BITRATE))?,
            packet: vec![0; MAX_PACKET],
            encoded: None,
            paused: false,
        })
    }

    /// Limits and encodes `pcm` (changed in place) into this tick's packet.
    fn encode(&mut self, pcm: &mut [f32]) -> Result<(), MixError> {
        if self.paused {
            self.limiter.reset();
            self.encoder.reset()?;
            self.paused = false;
        }
        self.limiter.process(pcm);
        let n = self.encoder.encode_frame(pcm, &mut self.packet)?;
        self.encoded = Some(n);
        Ok(())
    }

    fn packet(&self) -> Option<&[u8]> {
        self.encoded.map(|n| &self.packet[..n])
    }
}

/// A publisher as the mix knows them (kept, with its buffer, until they are forgotten).
struct Voice {
    pcm: Vec<f32>,
    /// Publishing this tick: only then do they hear a mix-minus.
    publishing: bool,
    /// Heard this tick (their voice is in the program).
    heard: bool,
    /// One of their listening sessions crosses the network: they are sent their mix-minus
    /// even when it is silence (a browser takes a gap for a stall).
    remote_ears: bool,
}

/// See the module doc.
pub struct ServerMix {
    program: Vec<f32>,
    scratch: Vec<f32>,
    chain: Chain,
    voices: HashMap<ParticipantId, Voice>,
    minus: HashMap<ParticipantId, Chain>,
    /// Publishers who listen this tick: they hear their mix-minus.
    minus_for: HashSet<ParticipantId>,
    /// Someone hears the program this tick.
    program_heard: bool,
    levels: HashMap<ParticipantId, f32>,
    rtp: u64,
    ticks: u64,
}

impl std::fmt::Debug for ServerMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMix")
            .field("voices", &self.voices.len())
            .field("minus", &self.minus.len())
            .field("ticks", &self.ticks)
            .finish_non_exhaustive()
    }
}

impl ServerMix {
    /// A mix with nobody in it.
    ///
    /// # Errors
    /// The encoder or limiter cannot be made.
    pub fn new() -> Result<Self, MixError> {
        Ok(Self {
            program: vec![0.0; STEREO_FRAME],
            scratch: vec![0.0; STEREO_FRAME],
            chain: Chain::new()?,
            voices: HashMap::new(),
            minus: HashMap::new(),
            minus_for: HashSet::new(),
            program_heard: false,
            levels: HashMap::new(),
            rtp: 0,
            ticks: 0,
        })
    }

    /// The program encoder's settings (what a recording's header describes).
    #[must_use]
    pub fn settings(&self) -> &EncoderSettings {
        self.chain.encoder.settings()
    }

    /// Starts a tick: nothing heard, nobody listening yet.
    pub fn begin(&mut self) {
        self.program.fill(0.0);
        for v in self.voices.values_mut() {
            v.publishing = false;
            v.heard = false;
            v.remote_ears = false;
        }
        self.minus_for.clear();
        self.program_heard = false;
        self.chain.encoded = None;
        for c in self.minus.values_mut() {
            c.encoded = None;
        }
    }

    /// `who` publishes (whether or not their voice is heard this tick): if they listen, they
    /// hear a mix-minus, from an encoder of their own even in a tick their voice is missing, so
    /// their stream never switches encoders.
    pub fn publisher(&mut self, who: ParticipantId) {
        self.voices
            .entry(who)
            .or_insert_with(|| Voice {
                pcm: vec![0.0; STEREO_FRAME],
                publishing: false,
                heard: false,
                remote_ears: false,
            })
            .publishing = true;
    }

    /// `who`'s voice this tick (48 kHz interleaved stereo, one 20 ms block), at `level` (0..1)
    /// for the speaking lights.
    pub fn voice(&mut self, who: ParticipantId, pcm: &[f32], level: f32) {
        self.publisher(who);
        for (o, x) in self.program.iter_mut().zip(pcm) {
            *o += *x;
        }
        if let Some(v) = self.voices.get_mut(&who) {
            v.pcm.copy_from_slice(&pcm[..STEREO_FRAME.min(pcm.len())]);
            v.heard = true;
        }
        let l = self.levels.entry(who).or_insert(0.0);
        *l = l.max(level);
    }

    /// A connected listening session of `who` (none: an anonymous listener); `remote` when it
    /// crosses the network. Call after every [`ServerMix::publisher`] of the tick.
    pub fn listener(&mut self, who: Option<ParticipantId>, remote: bool) {
        let publishing = who.and_then(|w| {
            self.voices
                .get_mut(&w)
                .filter(|v| v.publishing)
                .map(|v| (w, v))
        });
        match publishing {
            Some((w, v)) => {
                v.remote_ears |= remote;
                self.minus_for.insert(w);
            }
            None => self.program_heard = true,
        }
    }

    /// Encodes what is heard: the program once (if anyone hears it, or `recording`), and each
    /// listening publisher's mix-minus.
    ///
    /// # Errors
    /// The program's encoder failed; the tick has no program packet then.
    pub fn encode(&mut self, recording: bool) -> Result<(), MixError> {
        self.rtp += FRAME_SAMPLES as u64;
        self.ticks += 1;
        self.encode_minus();
        if recording || self.program_heard {
            self.scratch.copy_from_slice(&self.program);
            self.chain.encode(&mut self.scratch)
        } else {
            self.chain.paused = true;
            Ok(())
        }
    }

    /// This tick's program as encoded (limited), 48 kHz interleaved stereo: what a recording
    /// measures the loudness of. Meaningful once [`ServerMix::program`] has a packet.
    #[must_use]
    pub fn program_pcm(&self) -> &[f32] {
        &self.scratch
    }

    fn encode_minus(&mut self) {
        // A chain nobody hears this tick starts clean when it is heard again (a speaker back
        // on stage), as after a pause.
        for (who, chain) in &mut self.minus {
            if !self.minus_for.contains(who) {
                chain.paused = true;
            }
        }
        for &who in &self.minus_for {
            let Some(voice) = self.voices.get(&who) else {
                continue;
            };
            let chain = match self.minus.entry(who) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(v) => match Chain::new() {
                    Ok(chain) => v.insert(chain),
                    Err(_) => continue,
                },
            };
            if voice.heard {
                for ((o, p), x) in self.scratch.iter_mut().zip(&self.program).zip(&voice.pcm) {
                    *o = *p - *x;
                }
            } else {
                self.scratch.copy_from_slice(&self.program);
            }
            // A host in this process alone on stage hears nothing: its local session is sent
            // nothing (it plays silence through a gap), rather than encoded silence to decode.
            if !voice.remote_ears && self.scratch.iter().all(|&x| x == 0.0) {
                chain.paused = true;
                continue;
            }
            if chain.encode(&mut self.scratch).is_err() {
                chain.encoded = None;
            }
        }
    }

    /// The program's packet this tick, if it was encoded.
    #[must_use]
    pub fn program(&self) -> Option<&[u8]> {
        self.chain.packet()
    }

    /// The mix-minus packet of a listening publisher this tick, if any.
    #[must_use]
    pub fn minus(&self, who: ParticipantId) -> Option<&[u8]> {
        self.minus.get(&who).and_then(Chain::packet)
    }

    /// What a listening session of `who` is sent this tick: a stage member their mix-minus (or
    /// nothing; never the program with their own voice in it), anyone else the program.
    #[must_use]
    pub fn packet_for(&self, who: Option<ParticipantId>) -> Option<&[u8]> {
        match who.filter(|w| self.minus_for.contains(w)) {
            Some(w) => self.minus(w),
            None => self.program(),
        }
    }

    /// Mix-minus packets encoded this tick.
    #[must_use]
    pub fn minus_count(&self) -> usize {
        self.minus_for
            .iter()
            .filter(|w| self.minus(**w).is_some())
            .count()
    }

    /// Whether `who` hears a mix-minus this tick.
    #[must_use]
    pub fn hears_minus(&self, who: ParticipantId) -> bool {
        self.minus_for.contains(&who)
    }

    /// The RTP time (48 kHz) of the tick last encoded.
    #[must_use]
    pub fn rtp(&self) -> u64 {
        self.rtp.saturating_sub(FRAME_SAMPLES as u64)
    }

    /// Ticks encoded so far.
    #[must_use]
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The loudest level of each voice since the last call (for the speaking lights), into
    /// `out` (cleared first).
    pub fn take_levels(&mut self, out: &mut Vec<(ParticipantId, f32)>) {
        out.clear();
        out.extend(self.levels.drain());
    }

    /// `who` no longer publishes or listens: their chain and buffers go.
    pub fn forget(&mut self, who: ParticipantId) {
        self.minus.remove(&who);
        self.voices.remove(&who);
        self.levels.remove(&who);
    }
}

/// The level (0..1) of a block, as the speaking lights show it.
#[must_use]
pub fn level_of(pcm: &[f32]) -> f32 {
    let energy: f32 = pcm.iter().map(|s| s * s).sum::<f32>() / pcm.len().max(1) as f32;
    crate::dsp::level_fraction(10.0 * energy.max(1e-10).log10())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::opus::OpusDecoder;

    fn tone(freq: f32, amp: f32, tick: usize) -> Vec<f32> {
        (0..FRAME_SAMPLES)
            .flat_map(|i| {
                let t = (tick * FRAME_SAMPLES + i) as f32 / 48_000.0;
                let x = amp * (2.0 * std::f32::consts::PI * freq * t).sin();
                [x, x]
            })
            .collect()
    }

    /// Level (RMS, dBFS) of `freq` in a stereo block, left channel.
    fn tone_db(x: &[f32], freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / 48_000.0;
        let (mut s, mut c) = (0.0f64, 0.0f64);
        for (n, v) in x.iter().step_by(2).enumerate() {
            s += f64::from(*v) * f64::from((w * n as f32).sin());
            c += f64::from(*v) * f64::from((w * n as f32).cos());
        }
        let n = (x.len() / 2) as f64;
        let amp = 2.0 * (s * s + c * c).sqrt() / n;
        20.0 * (amp / 2f64.sqrt()).max(1e-9).log10() as f32
    }

    #[test]
    fn a_stage_member_hears_everyone_but_themself_and_the_audience_hears_all() {
        let (host, guest) = (ParticipantId(1), ParticipantId(2));
        let mut mix = ServerMix::new().unwrap();
        let mut heard_guest = OpusDecoder::new(2).unwrap();
        let mut heard_all = OpusDecoder::new(2).unwrap();
        let mut pcm = vec![0.0; STEREO_FRAME];
        let (mut guest_hears, mut audience_hears) = (Vec::new(), Vec::new());
        for tick in 0..50 {
            mix.begin();
            mix.voice(host, &tone(440.0, 0.3, tick), 0.3);
            mix.voice(guest, &tone(1000.0, 0.3, tick), 0.3);
            mix.listener(Some(guest), true);
            mix.listener(None, true);
            mix.encode(false).unwrap();
            heard_guest
                .decode(mix.packet_for(Some(guest)).unwrap(), &mut pcm)
                .unwrap();
            guest_hears.extend_from_slice(&pcm);
            heard_all
                .decode(mix.packet_for(None).unwrap(), &mut pcm)
                .unwrap();
            audience_hears.extend_from_slice(&pcm);
        }
        // After the codec's start, over whole 20 ms blocks.
        let late = |x: &[f32]| x[20 * STEREO_FRAME..].to_vec();
        let (g, a) = (late(&guest_hears), late(&audience_hears));
        assert!(tone_db(&g, 440.0) > -16.0, "the guest hears the host");
        assert!(
            tone_db(&g, 1000.0) < -50.0,
            "the guest does not hear themself"
        );
        assert!(tone_db(&a, 440.0) > -16.0 && tone_db(&a, 1000.0) > -16.0);
        assert_eq!(mix.minus_count(), 1);
    }

    #[test]
    fn a_speaker_sent_back_to_the_audience_hears_the_program_again() {
        let (host, guest) = (ParticipantId(1), ParticipantId(2));
        let mut mix = ServerMix::new().unwrap();
        for tick in 0..2 {
            mix.begin();
            mix.voice(host, &tone(440.0, 0.3, tick), 0.3);
            if tick == 0 {
                mix.voice(guest, &tone(1000.0, 0.3, tick), 0.3);
            }
            mix.listener(Some(guest), true);
            mix.listener(None, true);
            mix.encode(false).unwrap();
            assert_eq!(mix.hears_minus(guest), tick == 0, "tick {tick}");
        }
        assert_eq!(mix.packet_for(Some(guest)), mix.program());
        assert_eq!(mix.minus_count(), 0);
    }

    #[test]
    fn nobody_listening_encodes_nothing_and_a_recording_encodes_the_program() {
        let mut mix = ServerMix::new().unwrap();
        mix.begin();
        mix.voice(ParticipantId(1), &tone(440.0, 0.3, 0), 0.3);
        mix.encode(false).unwrap();
        assert!(mix.program().is_none());
        mix.begin();
        mix.voice(ParticipantId(1), &tone(440.0, 0.3, 1), 0.3);
        mix.encode(true).unwrap();
        assert!(mix.program().is_some());
        assert_eq!(mix.rtp(), FRAME_SAMPLES as u64);
    }

    #[test]
    fn a_host_here_alone_on_stage_is_sent_nothing() {
        let host = ParticipantId(1);
        let mut mix = ServerMix::new().unwrap();
        mix.begin();
        mix.voice(host, &tone(440.0, 0.3, 0), 0.3);
        mix.listener(Some(host), false);
        mix.encode(false).unwrap();
        assert!(mix.packet_for(Some(host)).is_none());
        assert!(mix.program().is_none());
    }
}
