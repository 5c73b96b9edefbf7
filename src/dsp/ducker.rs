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

/// A gain that dips while voices speak, or opens while they do: the ducker's dip and the voice
/// gate are the same machine with the two levels swapped.
///
/// Levels are attenuations in dB (0 = full level). While speech is confirmed (and for `hold`
/// after it) the curve heads for `active_db`, otherwise for `idle_db`. Towards `active_db` it
/// moves at a rate planned at the onset, so it arrives `attack` after the first syllable; towards
/// `idle_db` at the release rate. Per sample, linear in dB: no steps, no zipper noise.
#[derive(Clone, Debug)]
struct GainCurve {
    active_db: f32,
    idle_db: f32,
    attack_samples: usize,
    hold_samples: usize,
    release_step: f32,
    attack_step: f32,
    level_db: f32,
    keyed: bool,
    /// Samples since speech was last seen (saturating).
    since_speech: usize,
    /// `db_to_gain(-level_db)`, recomputed only when the level moves.
    gain: f32,
    gain_for_db: f32,
}

impl GainCurve {
    fn new(active_db: f32, idle_db: f32) -> Self {
        Self {
            active_db,
            idle_db,
            attack_samples: 0,
            hold_samples: 0,
            release_step: 0.0,
            attack_step: 0.0,
            level_db: idle_db,
            keyed: false,
            since_speech: usize::MAX,
            gain: db_to_gain(-idle_db),
            gain_for_db: idle_db,
        }
    }

    fn set_timing(&mut self, attack_ms: f32, hold_ms: f32, release_ms: f32) {
        self.attack_samples = ms_to_frames(attack_ms);
        self.hold_samples = ms_to_frames(hold_ms);
        let release = ms_to_frames(release_ms.max(MIN_RAMP_MS)).max(1);
        self.release_step = (self.active_db - self.idle_db).abs() / release as f32;
    }

    fn on_decision(&mut self, speech: bool, onset_age: usize) {
        if speech {
            if !self.keyed {
                // Plan the ramp to land at the active level `attack` after the onset.
                let min_ramp = ms_to_frames(MIN_RAMP_MS).max(1);
                let left = self.attack_samples.saturating_sub(onset_age).max(min_ramp);
                self.attack_step = (self.active_db - self.level_db).abs() / left as f32;
                self.keyed = true;
            }
            self.since_speech = 0;
        } else {
            self.keyed = false;
        }
    }

    fn target(&self) -> f32 {
        if self.keyed || self.since_speech <= self.hold_samples {
            self.active_db
        } else {
            self.idle_db
        }
    }

    #[inline]
    fn step(&mut self) {
        if !self.keyed {
            self.since_speech = self.since_speech.saturating_add(1);
        }
        let target = self.target();
        if self.level_db == target {
            return;
        }
        // Away from idle at the planned attack rate (a speech that ended mid-attack still
        // arrives, so the hold sits there); back towards idle at the release rate, which also
        // makes a live change of depth glide.
        let away_from_idle = (target - self.idle_db).abs() > (self.level_db - self.idle_db).abs();
        let step = if away_from_idle {
            if self.attack_step > 0.0 {
                self.attack_step
            } else {
                (self.active_db - self.idle_db).abs() / self.attack_samples.max(1) as f32
            }
        } else {
            self.release_step
        };
        self.level_db = if self.level_db < target {
            (self.level_db + step).min(target)
        } else {
            (self.level_db - step).max(target)
        };
    }

    #[inline]
    fn refresh_gain(&mut self) {
        if self.level_db != self.gain_for_db {
            self.gain_for_db = self.level_db;
            self.gain = db_to_gain(-self.level_db);
        }
    }

    /// Advances over `out.len()` samples writing linear gains; returns how many of them were
    /// more than 1 dB down.
    fn ramp(&mut self, out: &mut [f32]) -> u64 {
        let at_rest =
            !self.keyed && self.level_db == self.idle_db && self.since_speech > self.hold_samples;
        let holding = self.level_db == self.active_db
            && (self.keyed || self.since_speech.saturating_add(out.len()) <= self.hold_samples);
        if at_rest || holding {
            // Nothing moves: no per-sample work.
            if !self.keyed {
                self.since_speech = self.since_speech.saturating_add(out.len());
            }
            self.refresh_gain();
            out.fill(self.gain);
            return if self.level_db > 1.0 {
                out.len() as u64
            } else {
                0
            };
        }
        let mut down = 0;
        for g in out {
            self.step();
            self.refresh_gain();
            *g = self.gain;
            down += u64::from(self.level_db > 1.0);
        }
        down
    }

    fn reset(&mut self) {
        self.level_db = self.idle_db;
        self.gain = db_to_gain(-self.idle_db);
        self.gain_for_db = self.idle_db;
        self.keyed = false;
        self.since_speech = usize::MAX;
    }
}

/// How long the voice gate stays open after the last syllable, and how fast it then closes.
const GATE_HOLD_MS: f32 = 250.0;
const GATE_RELEASE_MS: f32 = 200.0;

/// Sidechain ducker for a stereo program keyed by up to `keys` voices, and the voice gate of the
/// first key.
#[derive(Clone, Debug)]
pub struct Ducker {
    params: DuckerParams,
    detectors: Vec<VoiceActivity>,
    delay: DelayLine,
    duck: GainCurve,
    /// The first key's voice gate: open while it speaks, down by its floor otherwise.
    gate: GainCurve,
    ducked_samples: u64,
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
            duck: GainCurve::new(params.depth_db, 0.0),
            gate: GainCurve::new(0.0, 0.0),
            ducked_samples: 0,
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
        self.duck.active_db = params.depth_db;
        self.duck
            .set_timing(params.attack_ms, params.hold_ms, params.release_ms);
        self.gate
            .set_timing(params.attack_ms, GATE_HOLD_MS, GATE_RELEASE_MS);
        Ok(())
    }

    /// Sets how far the first key's voice is turned down between phrases, dB (0 = no gate).
    /// The gate opens on any sound above the voice's noise floor (not only confirmed speech, so
    /// a soft first consonant is never clipped), planned from its onset with the ducker's attack
    /// so that with the lookahead it is open when the sound is heard; it stays open 250 ms after
    /// the sound stops. It turns down room noise and hiss between phrases; clicks are left to
    /// noise suppression.
    ///
    /// # Errors
    /// A floor outside 0..=60 dB.
    pub fn set_voice_gate(&mut self, floor_db: f32) -> Result<(), DspError> {
        check_range("voice gate floor (dB)", floor_db, 0.0, 60.0, "0 to 60")?;
        let was_idle = self.gate.level_db == self.gate.idle_db;
        self.gate.idle_db = floor_db;
        if was_idle && !self.gate.keyed {
            self.gate.level_db = floor_db;
        }
        self.gate
            .set_timing(self.params.attack_ms, GATE_HOLD_MS, GATE_RELEASE_MS);
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
        self.duck.level_db
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
        self.process_gated(program, keys, gains, &mut []);
    }

    /// As [`process`](Self::process), also writing the first key's voice-gate gain per frame
    /// into `gate` (when it is not empty), for the caller to apply to that voice delayed by the
    /// lookahead.
    pub fn process_gated(
        &mut self,
        program: &mut [f32],
        keys: &[Key<'_>],
        gains: &mut [f32],
        gate: &mut [f32],
    ) {
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
            let mut first_speaks = false;
            let mut first_onset_age = 0usize;
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
                decided |= det.push_block(samples.get(i..i + real).unwrap_or(&[]));
                if real < n {
                    decided |= det.push_silence(n - real);
                }
                if det.is_speech() {
                    speech = true;
                    onset_age = onset_age.max(det.run_samples());
                }
                if k == 0 && det.is_sound() {
                    first_speaks = true;
                    first_onset_age = det.sound_samples();
                }
            }
            // The decision takes effect on the segment's last sample, as the key arrives.
            let (before, last) = gains[i..i + n].split_at_mut(n - 1);
            self.ducked_samples += self.duck.ramp(before);
            if decided {
                self.duck.on_decision(speech, onset_age);
            }
            self.ducked_samples += self.duck.ramp(last);
            if gate.len() >= i + n {
                let (before, last) = gate[i..i + n].split_at_mut(n - 1);
                self.gate.ramp(before);
                if decided {
                    self.gate.on_decision(first_speaks, first_onset_age);
                }
                self.gate.ramp(last);
            } else if decided {
                self.gate.on_decision(first_speaks, first_onset_age);
            }
            i += n;
        }
    }

    /// Returns to rest: no dip, silent delay line, detectors cleared.
    pub fn reset(&mut self) {
        self.delay.reset();
        self.detectors.iter_mut().for_each(VoiceActivity::reset);
        self.duck.reset();
        self.gate.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::gain_to_db;

    /// A sustained vowel-like tone the detector takes for speech, after 100 ms of quiet (the
    /// detector learns the floor from what comes first).
    fn vowel(frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| {
                if i < 4_800 {
                    0.0
                } else {
                    0.25 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / 48_000.0).sin()
                }
            })
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

    #[test]
    fn keys_shorter_than_the_block_count_as_silence() {
        let mut d = Ducker::new(DuckerParams::default(), 2).unwrap();
        let mut program = vec![0.5; 9_600];
        let mut gains = vec![0.0; 4_800];
        let voice = vowel(4_800);
        d.process(
            &mut program,
            &[
                Key {
                    samples: &voice[..100],
                    muted: false,
                },
                Key {
                    samples: &[],
                    muted: false,
                },
            ],
            &mut gains,
        );
        assert!(gains.iter().all(|&g| g == 1.0));
    }
}
