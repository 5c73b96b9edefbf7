//! The ducker: dips the game while someone speaks, so voices sit on top of it.
//!
//! A sidechain gain computer keyed by one or more voices (the host's mic now, remote speakers
//! later), each through its own [`VoiceActivity`]. The program is delayed by the lookahead, so the
//! gain can reach full depth before the first syllable is heard.
//!
//! Timing, in the voice's own time:
//! - *attack*: the time from the voice's onset to full depth. The first 6 ms of it
//!   go to confirming that the sound is speech (so a key click never ducks); the dip then ramps,
//!   linear in dB and per sample (no zipper noise), so it arrives at full depth `attack` after the
//!   onset. With lookahead >= attack the dip is complete when the voice is heard.
//! - *hold*: the dip stays after the last speech block, bridging gaps between words.
//! - *release*: then it ramps back to full level, linear in dB, over this time.
//!
//! A muted key never ducks the game; its detector is reset so unmuting starts clean.

use super::{DelayLine, DspError, VoiceActivity, check_range, db_to_gain, ms_to_frames};

/// The shortest ramp the ducker takes, so even a zero attack is not a step.
const MIN_RAMP_MS: f32 = 2.0;

/// How deep and how fast the ducker dips the game.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DuckerParams {
    /// How far the game dips, in dB (positive: 12 means -12 dB).
    pub depth_db: f32,
    /// Time from the voice's onset to full depth, in ms.
    pub attack_ms: f32,
    /// How long the dip stays after speech stops, in ms.
    pub hold_ms: f32,
    /// Time from full depth back to full level, in ms.
    pub release_ms: f32,
    /// How far the program is delayed behind the key, in ms.
    pub lookahead_ms: f32,
}

impl Default for DuckerParams {
    fn default() -> Self {
        Self {
            depth_db: 12.0,
            attack_ms: 10.0,
            hold_ms: 300.0,
            release_ms: 400.0,
            lookahead_ms: 10.0,
        }
    }
}

impl DuckerParams {
    /// Checks every field against the range Booth accepts.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), DspError> {
        check_range("duck depth (dB)", self.depth_db, 0.0, 60.0, "0 to 60")?;
        check_range("attack (ms)", self.attack_ms, 0.0, 1000.0, "0 to 1000")?;
        check_range("hold (ms)", self.hold_ms, 0.0, 10_000.0, "0 to 10000")?;
        check_range("release (ms)", self.release_ms, 0.0, 10_000.0, "0 to 10000")?;
        check_range("lookahead (ms)", self.lookahead_ms, 0.0, 100.0, "0 to 100")?;
        Ok(())
    }
}

/// One voice keying the ducker for one block: 48 kHz mono samples, and whether it is muted.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    /// The voice, as captured (before its mix gain).
    pub samples: &'a [f32],
    /// A muted voice never ducks.
    pub muted: bool,
}

/// Sidechain ducker for a stereo program keyed by up to `keys` voices.
#[derive(Clone, Debug)]
pub struct Ducker {
    params: DuckerParams,
    detectors: Vec<VoiceActivity>,
    delay: DelayLine,
    depth_db: f32,
    /// Current gain reduction in dB (0 = none, positive = dipped).
    reduction_db: f32,
    /// Change of `reduction_db` per sample while ramping down (attack).
    attack_step: f32,
    release_step: f32,
    attack_samples: usize,
    hold_samples: usize,
    /// Samples since speech was last seen on any key (saturating).
    since_speech: usize,
    keyed: bool,
    ducked_samples: u64,
    /// `db_to_gain(-reduction_db)`, recomputed only when the reduction moves.
    gain: f32,
    gain_for_db: f32,
}

impl Ducker {
    /// A ducker for `keys` voices.
    ///
    /// # Errors
    /// Parameters out of range.
    pub fn new(params: DuckerParams, keys: usize) -> Result<Self, DspError> {
        params.validate()?;
        let mut d = Self {
            params,
            detectors: vec![VoiceActivity::new(); keys],
            delay: DelayLine::new(ms_to_frames(params.lookahead_ms), 2),
            depth_db: params.depth_db,
            reduction_db: 0.0,
            attack_step: 0.0,
            release_step: 0.0,
            attack_samples: 0,
            hold_samples: 0,
            since_speech: usize::MAX,
            keyed: false,
            ducked_samples: 0,
            gain: 1.0,
            gain_for_db: 0.0,
        };
        d.set_params(params)?;
        Ok(d)
    }

    /// Changes depth, attack, hold and release on the fly. The lookahead is fixed at construction
    /// (changing it would move the program in time).
    ///
    /// # Errors
    /// Parameters out of range.
    pub fn set_params(&mut self, params: DuckerParams) -> Result<(), DspError> {
        params.validate()?;
        self.params = DuckerParams {
            lookahead_ms: self.params.lookahead_ms,
            ..params
        };
        self.depth_db = params.depth_db;
        self.attack_samples = ms_to_frames(params.attack_ms);
        self.hold_samples = ms_to_frames(params.hold_ms);
        let release = ms_to_frames(params.release_ms.max(MIN_RAMP_MS)).max(1);
        self.release_step = params.depth_db / release as f32;
        Ok(())
    }

    /// The parameters in use.
    #[must_use]
    pub fn params(&self) -> DuckerParams {
        self.params
    }

    /// The program delay in frames.
    #[must_use]
    pub fn latency_frames(&self) -> usize {
        self.delay.len_samples() / 2
    }

    /// Current gain reduction in dB (0 = full level).
    #[must_use]
    pub fn reduction_db(&self) -> f32 {
        self.reduction_db
    }

    /// Frames so far during which the game was dipped by more than 1 dB.
    #[must_use]
    pub fn ducked_frames(&self) -> u64 {
        self.ducked_samples
    }

    /// Computes the duck gain for `frames` frames from the keys into `gains` (linear, one per
    /// frame) and delays `program` (stereo interleaved, `frames` frames) by the lookahead in place.
    /// The caller multiplies; [`ProgramMix`](super::ProgramMix) does it in its mix.
    ///
    /// Keys shorter than `frames` count as silence for the rest; extra keys beyond the count given
    /// at construction are ignored.
    pub fn process(&mut self, program: &mut [f32], keys: &[Key<'_>], gains: &mut [f32]) {
        let frames = gains.len().min(program.len() / 2);
        self.delay.process(&mut program[..frames * 2]);
        let mut i = 0;
        while i < frames {
            // Detectors are fed in step, so they all decide at the same sample.
            let n = self
                .detectors
                .first()
                .map_or(frames - i, VoiceActivity::until_decision)
                .min(frames - i);
            let mut decided = false;
            let mut speech = false;
            let mut onset_age = 0usize;
            for (k, det) in self.detectors.iter_mut().enumerate() {
                let key = keys.get(k);
                let muted = key.is_none_or(|k| k.muted);
                if muted {
                    if det.is_speech() {
                        det.reset();
                    }
                    decided |= det.push_silence(n);
                    continue;
                }
                let samples = key.map_or(&[][..], |k| k.samples);
                let real = samples.len().saturating_sub(i).min(n);
                decided |= det.push_block(&samples[i..i + real]);
                if real < n {
                    decided |= det.push_silence(n - real);
                }
                if det.is_speech() {
                    speech = true;
                    onset_age = onset_age.max(det.run_samples());
                }
            }
            // The decision takes effect on the segment's last sample, as the key arrives.
            let (before, last) = gains[i..i + n].split_at_mut(n - 1);
            self.ramp(before);
            if decided {
                self.on_decision(speech, onset_age);
            }
            self.ramp(last);
            i += n;
        }
    }

    /// Advances the gain curve over `out.len()` samples, writing linear gains.
    fn ramp(&mut self, out: &mut [f32]) {
        let at_rest =
            !self.keyed && self.reduction_db == 0.0 && self.since_speech > self.hold_samples;
        let holding = self.reduction_db == self.depth_db
            && (self.keyed || self.since_speech.saturating_add(out.len()) <= self.hold_samples);
        if at_rest || holding {
            // Nothing moves: no per-sample work.
            if !self.keyed {
                self.since_speech = self.since_speech.saturating_add(out.len());
            }
            self.refresh_gain();
            out.fill(self.gain);
            if self.reduction_db > 1.0 {
                self.ducked_samples += out.len() as u64;
            }
            return;
        }
        for g in out {
            self.step();
            self.refresh_gain();
            *g = self.gain;
            if self.reduction_db > 1.0 {
                self.ducked_samples += 1;
            }
        }
    }

    #[inline]
    fn refresh_gain(&mut self) {
        if self.reduction_db != self.gain_for_db {
            self.gain_for_db = self.reduction_db;
            self.gain = db_to_gain(-self.reduction_db);
        }
    }

    fn on_decision(&mut self, speech: bool, onset_age: usize) {
        if speech {
            if !self.keyed {
                // Plan the ramp to land at full depth `attack` after the onset.
                let min_ramp = ms_to_frames(MIN_RAMP_MS).max(1);
                let left = self.attack_samples.saturating_sub(onset_age).max(min_ramp);
                self.attack_step = (self.depth_db - self.reduction_db).max(0.0) / left as f32;
                self.keyed = true;
            }
            self.since_speech = 0;
        } else {
            self.keyed = false;
        }
    }

    #[inline]
    fn step(&mut self) {
        if !self.keyed {
            self.since_speech = self.since_speech.saturating_add(1);
        }
        // Speech, or its hold, wants the full depth; otherwise back to full level.
        let target = if self.keyed || self.since_speech <= self.hold_samples {
            self.depth_db
        } else {
            0.0
        };
        if self.reduction_db < target {
            // Down at the planned attack rate (a speech that ended mid-attack still finishes
            // its dip, so the hold sits at depth).
            let step = if self.attack_step > 0.0 {
                self.attack_step
            } else {
                self.depth_db / self.attack_samples.max(1) as f32
            };
            self.reduction_db = (self.reduction_db + step).min(target);
        } else if self.reduction_db > target {
            // Up at the release rate: after the hold, and when the depth is made shallower
            // while ducked, so a live change of depth glides too.
            self.reduction_db = (self.reduction_db - self.release_step).max(target);
        }
    }

    /// Returns to rest: no dip, silent delay line, detectors cleared.
    pub fn reset(&mut self) {
        self.delay.reset();
        self.detectors.iter_mut().for_each(VoiceActivity::reset);
        self.reduction_db = 0.0;
        self.gain = 1.0;
        self.gain_for_db = 0.0;
        self.keyed = false;
        self.since_speech = usize::MAX;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::dsp::gain_to_db;

    /// A sustained vowel-like tone the detector takes for speech.
    fn vowel(frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| 0.25 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / 48_000.0).sin())
            .collect()
    }

    fn run(d: &mut Ducker, key: &[f32]) -> Vec<f32> {
        let mut program = vec![0.0; key.len() * 2];
        let mut gains = vec![0.0; key.len()];
        d.process(
            &mut program,
            &[Key {
                samples: key,
                muted: false,
            }],
            &mut gains,
        );
        gains
    }

    #[test]
    fn a_sustained_voice_ducks_to_depth_and_a_shallower_depth_glides_there() {
        let mut d = Ducker::new(DuckerParams::default(), 1).unwrap();
        let gains = run(&mut d, &vowel(48_000));
        assert!((gain_to_db(gains[47_999]) + 12.0).abs() < 0.01);
        d.set_params(DuckerParams {
            depth_db: 6.0,
            ..DuckerParams::default()
        })
        .unwrap();
        let gains = run(&mut d, &vowel(48_000));
        let max_step = gains
            .windows(2)
            .map(|w| (gain_to_db(w[1]) - gain_to_db(w[0])).abs())
            .fold(0.0, f32::max);
        assert!(max_step < 0.01, "a jump of {max_step} dB");
        assert!((gain_to_db(gains[47_999]) + 6.0).abs() < 0.01);
    }

    #[test]
    fn silence_and_missing_keys_never_duck() {
        let mut d = Ducker::new(DuckerParams::default(), 2).unwrap();
        let mut program = vec![0.5; 9_600];
        let mut gains = vec![0.0; 4_800];
        d.process(
            &mut program,
            &[Key {
                samples: &[0.0; 4_800],
                muted: false,
            }],
            &mut gains,
        );
        assert!(gains.iter().all(|&g| g == 1.0));
        assert_eq!(d.ducked_frames(), 0);
    }
}
