//! Voice activity: is someone speaking into this key, or is it a keyboard click, a mouse click,
//! breathing, or room noise?
//!
//! The detector looks at the voice in 0.5 ms blocks after a speech band-pass (150 Hz - 4 kHz).
//! A block *counts* when its band level is above -55 dBFS, 9 dB over the tracked noise floor,
//! within 20 dB of the loudest block of the current run, and voiced enough: at least a quarter of
//! the band's energy below 1 kHz, or loud (over -28 dBFS). Breathing is quiet hiss with little
//! low-frequency energy, so it never counts, while vowels do.
//!
//! A run starts at the first counting block and survives gaps of up to 1 ms (speech dips between
//! pitch pulses). Speech is *confirmed* once a run holds [`CONFIRM_MS`] of counting blocks. A key
//! click is a burst whose tail falls more than 20 dB within about 1.5 ms of its end, so a 5 ms click
//! never holds that much; a syllable does. The ducker plans its attack from the run's start, so
//! waiting for confirmation does not make the dip late (see `ducker`).

use super::Biquad;
use super::SAMPLE_RATE;

/// Block length of the detector's decisions.
const BLOCK: usize = 24; // 0.5 ms at 48 kHz
static SILENCE: [f32; BLOCK] = [0.0; BLOCK];
/// A run must hold this much sound to count as speech.
pub const CONFIRM_MS: f32 = 8.0;
const CONFIRM_BLOCKS: u32 = (CONFIRM_MS * 2.0) as u32;
/// Blocks a run may miss in a row and go on.
const GAP_BLOCKS: u32 = 2;
const ABS_FLOOR_DB: f32 = -55.0;
const OVER_NOISE_DB: f32 = 9.0;
const RUN_DROP_DB: f32 = 20.0;
const LOUD_DB: f32 = -28.0;
const MIN_LOW_SHARE: f32 = 0.25;
/// The noise floor rises this much per block when the level stays above it (6 dB/s); it falls
/// at once to any quieter block, so pauses between words keep it honest.
const FLOOR_RISE_DB: f32 = 6.0 / 2000.0;

/// Per-voice speech detector. Feed it 48 kHz mono; read [`is_speech`](Self::is_speech).
#[derive(Clone, Debug)]
pub struct VoiceActivity {
    hp: Biquad,
    lp: Biquad,
    low: Biquad,
    acc_band: f32,
    acc_low: f32,
    filled: usize,
    floor_db: f32,
    /// Blocks since the run started (0: no run).
    run_blocks: u32,
    /// Blocks of the run that counted.
    counted: u32,
    gap: u32,
    run_max_db: f32,
    speech: bool,
    /// Blocks since sound (of any kind) above the noise floor began, gaps of a millisecond
    /// allowed (0: quiet). The voice gate opens on this, not on confirmed speech, so it is open
    /// before a soft plosive like the "g" of "go" while the detector is still listening.
    sound_blocks: u32,
    sound_gap: u32,
    /// Band energy averaged over about 10 ms, for the floor.
    smoothed_energy: f32,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceActivity {
    /// A detector for 48 kHz mono input.
    #[must_use]
    pub fn new() -> Self {
        Self {
            hp: Biquad::high_pass(150.0, std::f32::consts::FRAC_1_SQRT_2, SAMPLE_RATE),
            lp: Biquad::low_pass(4000.0, std::f32::consts::FRAC_1_SQRT_2, SAMPLE_RATE),
            low: Biquad::low_pass(1000.0, std::f32::consts::FRAC_1_SQRT_2, SAMPLE_RATE),
            acc_band: 0.0,
            acc_low: 0.0,
            filled: 0,
            // Unknown until the first block: then it starts there (see `decide`).
            floor_db: f32::NAN,
            run_blocks: 0,
            counted: 0,
            gap: 0,
            run_max_db: -200.0,
            speech: false,
            sound_blocks: 0,
            sound_gap: 0,
            smoothed_energy: f32::NAN,
        }
    }

    /// Samples until the next decision: feed at most this many in one [`push_block`](Self::push_block).
    #[must_use]
    pub fn until_decision(&self) -> usize {
        BLOCK - self.filled
    }

    /// Feeds up to [`until_decision`](Self::until_decision) samples (more are ignored); returns
    /// true when they completed a decision block.
    pub fn push_block(&mut self, x: &[f32]) -> bool {
        let n = x.len().min(BLOCK - self.filled);
        let (mut band_sum, mut low_sum) = (0.0f32, 0.0f32);
        let resting = self.hp.at_rest() && self.lp.at_rest() && self.low.at_rest();
        // Silence into filters at rest is silence out: nothing to filter (a key with no one on
        // it, a muted or quiet mic).
        if !(resting && x[..n].iter().all(|&v| v == 0.0)) {
            for &v in &x[..n] {
                let band = self.lp.process(self.hp.process(v));
                let low = self.low.process(band);
                band_sum += band * band;
                low_sum += low * low;
            }
            self.hp.flush_tiny();
            self.lp.flush_tiny();
            self.low.flush_tiny();
        }
        self.acc_band += band_sum;
        self.acc_low += low_sum;
        self.filled += n;
        if self.filled < BLOCK {
            return false;
        }
        self.decide();
        true
    }

    /// Feeds `n` samples of silence (a muted voice keeps its place in time).
    pub fn push_silence(&mut self, n: usize) -> bool {
        self.push_block(&SILENCE[..n.min(BLOCK)])
    }

    fn decide(&mut self) {
        let mean_band = self.acc_band / BLOCK as f32;
        let low_share = if self.acc_band > 0.0 {
            self.acc_low / self.acc_band
        } else {
            0.0
        };
        self.acc_band = 0.0;
        self.acc_low = 0.0;
        self.filled = 0;
        // +3 dB: the level of a full-scale sine reads 0 dBFS.
        let level_db = 10.0 * (mean_band + 1e-12).log10() + 3.0;

        // The floor follows a 10 ms average of the level: single 0.5 ms blocks of steady noise
        // scatter by several dB, and a minimum of them would sit far below the noise.
        let mean = if self.smoothed_energy.is_nan() {
            mean_band
        } else {
            self.smoothed_energy + (mean_band - self.smoothed_energy) * 0.05
        };
        self.smoothed_energy = mean;
        let smooth_db = 10.0 * (mean + 1e-12).log10() + 3.0;
        if self.floor_db.is_nan() {
            // Start from what the device delivers: a constant hiss is the floor at once, not
            // after seconds of learning. Speech from the first block is found at its first pause.
            self.floor_db = smooth_db.max(-90.0);
        } else if smooth_db < self.floor_db {
            self.floor_db = smooth_db.max(-90.0);
        } else {
            self.floor_db += FLOOR_RISE_DB;
        }

        let voiced_enough = low_share >= MIN_LOW_SHARE || level_db > LOUD_DB;
        let loud_enough = level_db > ABS_FLOOR_DB && level_db > self.floor_db + OVER_NOISE_DB;
        let counts = loud_enough && voiced_enough && level_db > self.run_max_db - RUN_DROP_DB;
        if self.run_blocks == 0 {
            if counts {
                self.run_blocks = 1;
                self.counted = 1;
                self.gap = 0;
                self.run_max_db = level_db;
            }
        } else {
            self.run_blocks = self.run_blocks.saturating_add(1);
            if counts {
                self.counted = self.counted.saturating_add(1);
                self.gap = 0;
                self.run_max_db = self.run_max_db.max(level_db);
            } else {
                self.gap += 1;
                if self.gap > GAP_BLOCKS {
                    self.run_blocks = 0;
                    self.counted = 0;
                    self.run_max_db = -200.0;
                }
            }
        }
        self.speech = self.counted >= CONFIRM_BLOCKS;
        if loud_enough {
            self.sound_blocks = self.sound_blocks.saturating_add(1);
            self.sound_gap = 0;
        } else if self.sound_blocks > 0 {
            self.sound_gap += 1;
            if self.sound_gap > GAP_BLOCKS {
                self.sound_blocks = 0;
            } else {
                self.sound_blocks = self.sound_blocks.saturating_add(1);
            }
        }
    }

    /// Whether sound above the noise floor is present now (speech or not).
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.sound_blocks > 0
    }

    /// How long ago (in samples) the current stretch of sound began.
    #[must_use]
    pub fn sound_samples(&self) -> usize {
        self.sound_blocks as usize * BLOCK
    }

    /// Whether the latest block is confirmed speech.
    #[must_use]
    pub fn is_speech(&self) -> bool {
        self.speech
    }

    /// How long (in samples) ago the current run started: when speech is first confirmed, this
    /// says how long ago the voice began.
    #[must_use]
    pub fn run_samples(&self) -> usize {
        self.run_blocks as usize * BLOCK
    }

    /// Forgets everything (a muted or removed voice).
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(v: &VoiceActivity) -> [f32; 6] {
        let z = |b: &Biquad| {
            let mut probe = b.clone();
            // The state is private to the biquad: read it as its response to silence.
            [probe.process(0.0), probe.process(0.0)]
        };
        let [a, b] = z(&v.hp);
        let [c, d] = z(&v.lp);
        let [e, f] = z(&v.low);
        [a, b, c, d, e, f]
    }

    #[test]
    fn silence_after_a_voice_brings_the_filters_to_rest_without_subnormals() {
        let mut v = VoiceActivity::new();
        let voice: Vec<f32> = (0..24_000)
            .map(|n| {
                let t = n as f32 / 48_000.0;
                0.1 * (2.0 * std::f32::consts::PI * 180.0 * t).sin()
                    + 0.05 * (2.0 * std::f32::consts::PI * 900.0 * t).sin()
            })
            .collect();
        for block in voice.chunks(BLOCK) {
            v.push_block(block);
        }
        // Two seconds of digital silence: the filters ring down to exact zero, never through
        // the subnormal range, where every operation costs many times more.
        let mut rest_after = None;
        for i in 0..4_000 {
            v.push_silence(BLOCK);
            for s in states(&v) {
                assert!(
                    !s.is_subnormal(),
                    "a subnormal state after {i} blocks: {s:e}"
                );
            }
            if rest_after.is_none() && v.hp.at_rest() && v.lp.at_rest() && v.low.at_rest() {
                rest_after = Some(i);
            }
        }
        let rest_after = rest_after.unwrap_or(usize::MAX);
        assert!(
            rest_after < 400,
            "filters at rest after {rest_after} blocks"
        );
        assert!(!v.is_sound());
    }
}
