//! A look-ahead limiter on TRUE peak (ITU-R BS.1770-4 annex 2): what a decoder or a DAC
//! reconstructs between the samples stays under a ceiling in dBTP, not only the samples.
//!
//! Each frame's true peak is estimated by 4x oversampling, with the interpolator libebur128 uses
//! (and `ffmpeg ebur128=peak=true`'s reference, the `ebur128` crate): a 48-tap Hann-windowed sinc,
//! 12 taps per phase, whose phase 0 is the sample itself. The peak of the interval on each side
//! of a frame drives the [`Limiter`]'s gain curve (look-ahead, running minimum, smoothing), so
//! the gain at a frame is at or below what the reconstructed waveform around it needs.
//!
//! Interpolating costs 72 multiply-adds a frame, so it is skipped where it can be proven useless:
//! an interpolated value is at most the largest magnitude among the 12 samples it is made of
//! times the filter's L1 norm, so a block whose sample peak (with the 11 frames before it) times
//! that norm is under the ceiling has no true peak over it, and goes through the limiter's
//! cheap path.
//!
//! Pure: no IO, no allocation after construction.

use super::{DelayLine, DspError, Limiter, check_range, db_to_gain};

/// Oversampling factor (BS.1770-4: at least 4x below 96 kHz).
const FACTOR: usize = 4;
/// Taps of each polyphase branch.
const TAPS_PER_PHASE: usize = 12;
/// Frames the interpolator lags: at frame n its phase p estimates the signal at n - 6 + p/4.
const INTERP_DELAY: usize = 6;
/// Frames whose sample peak is checked at once against the bound that skips interpolation.
/// Short, so one loud transient forces the work only where it is.
const BLOCK_FRAMES: usize = 128;
/// Lanes per history entry and per coefficient: phases 1..=3 x 2 channels, padded to 8 so the
/// multiply-add compiles to whole vector instructions.
const LANES: usize = 8;

/// The interpolation filter's branches for phases 1..=3 (phase 0 is the sample itself), laid
/// out per tap as `[p1, p1, p2, p2, p3, p3, 0, 0]` to match a history entry `[l, r, l, r, l, r,
/// 0, 0]`. Returns them with the largest L1 norm among the branches.
fn interpolation_filter() -> ([[f32; LANES]; TAPS_PER_PHASE], f32) {
    let taps = FACTOR * TAPS_PER_PHASE;
    let mut filter = [[0f32; LANES]; TAPS_PER_PHASE];
    let mut l1 = [0f64; FACTOR];
    for (k, branch) in filter.iter_mut().enumerate() {
        for p in 0..FACTOR {
            let j = (k * FACTOR + p) as f64;
            let window = 0.5 * (1.0 - (2.0 * std::f64::consts::PI * j / taps as f64).cos());
            let m = j - taps as f64 / 2.0;
            let x = m * std::f64::consts::PI / FACTOR as f64;
            let c = if m.abs() > 1e-6 {
                window * x.sin() / x
            } else {
                window
            };
            l1[p] += c.abs();
            if p > 0 {
                branch[2 * (p - 1)] = c as f32;
                branch[2 * (p - 1) + 1] = c as f32;
            }
        }
    }
    let l1_max = l1.iter().fold(1f64, |a, &b| a.max(b));
    // Rounded up a hair so f32 rounding in the sums cannot undo the proof.
    (filter, (l1_max * 1.000_1) as f32)
}

/// Stereo-linked look-ahead limiter of interleaved stereo whose ceiling is on the true peak.
#[derive(Clone, Debug)]
pub struct TruePeakLimiter {
    limiter: Limiter,
    ceiling: f32,
    filter: [[f32; LANES]; TAPS_PER_PHASE],
    /// Largest L1 norm of the filter's branches: the bound that proves a block needs no work.
    l1: f32,
    /// The last frames, newest first from `pos`, written twice (at `pos` and `pos + 12`) so the
    /// newest 12 are always one contiguous run.
    history: [[f32; LANES]; 2 * TAPS_PER_PHASE],
    pos: usize,
    /// Puts the audio level with the interpolator's estimate.
    delay: DelayLine,
    /// True peak of the interval before the frame being limited.
    previous_peak: f32,
}

impl TruePeakLimiter {
    /// A limiter whose output's true peak stays under `ceiling_dbtp` (e.g. -1.5), with the
    /// [`Limiter`]'s default lookahead and release.
    ///
    /// # Errors
    /// A ceiling outside -30..=0 dBTP.
    pub fn new(ceiling_dbtp: f32) -> Result<Self, DspError> {
        Self::with_timing(ceiling_dbtp, Limiter::LOOKAHEAD_MS, Limiter::RELEASE_MS)
    }

    /// A limiter with its own lookahead and release times (see [`Limiter::with_timing`]).
    ///
    /// # Errors
    /// A ceiling outside -30..=0 dBTP, lookahead outside 0.1..=50 ms or release outside
    /// 1..=5000 ms.
    pub fn with_timing(
        ceiling_dbtp: f32,
        lookahead_ms: f32,
        release_ms: f32,
    ) -> Result<Self, DspError> {
        check_range(
            "true-peak ceiling (dBTP)",
            ceiling_dbtp,
            -30.0,
            0.0,
            "-30 to 0",
        )?;
        let (filter, l1) = interpolation_filter();
        Ok(Self {
            limiter: Limiter::with_timing(ceiling_dbtp, lookahead_ms, release_ms)?,
            ceiling: db_to_gain(ceiling_dbtp),
            filter,
            l1,
            history: [[0.0; LANES]; 2 * TAPS_PER_PHASE],
            pos: 0,
            delay: DelayLine::new(INTERP_DELAY, 2),
            previous_peak: 0.0,
        })
    }

    /// The delay the limiter adds, in frames.
    #[must_use]
    pub fn latency_frames(&self) -> usize {
        INTERP_DELAY + self.limiter.latency_frames()
    }

    /// The ceiling as a linear amplitude.
    #[must_use]
    pub fn ceiling(&self) -> f32 {
        self.ceiling
    }

    /// Limits stereo interleaved samples in place (output delayed by
    /// [`latency_frames`](Self::latency_frames)). NaN and infinities become silence.
    pub fn process(&mut self, samples: &mut [f32]) {
        let frames = samples.len() / 2;
        for block in samples[..frames * 2].chunks_mut(BLOCK_FRAMES * 2) {
            let mut peak = self.history_peak();
            for s in block.iter_mut() {
                if !s.is_finite() {
                    *s = 0.0;
                }
                peak = peak.max(s.abs());
            }
            if peak * self.l1 <= self.ceiling && self.previous_peak <= self.ceiling {
                self.remember(block);
                self.delay.process(block);
                // Every sample and every interpolated value is under the ceiling: the limiter
                // needs no reduction for any of these frames, which its own block path gives.
                self.limiter.process(block);
                self.previous_peak = 0.0;
            } else {
                for frame in block.chunks_exact_mut(2) {
                    self.frame(frame);
                }
            }
        }
    }

    fn history_peak(&self) -> f32 {
        self.history[self.pos..self.pos + TAPS_PER_PHASE - 1]
            .iter()
            .fold(0f32, |m, h| m.max(h[0].abs()).max(h[1].abs()))
    }

    fn push(&mut self, l: f32, r: f32) {
        self.pos = if self.pos == 0 {
            TAPS_PER_PHASE - 1
        } else {
            self.pos - 1
        };
        let entry = [l, r, l, r, l, r, 0.0, 0.0];
        self.history[self.pos] = entry;
        self.history[self.pos + TAPS_PER_PHASE] = entry;
    }

    /// Keeps the block's last frames for the interpolator, without interpolating.
    fn remember(&mut self, block: &[f32]) {
        let frames = block.len() / 2;
        let from = frames.saturating_sub(TAPS_PER_PHASE);
        for f in block[from * 2..].chunks_exact(2) {
            self.push(f[0], f[1]);
        }
    }

    /// Largest interpolated magnitude between the frame `INTERP_DELAY` back and the next one.
    fn interpolated_peak(&self) -> f32 {
        let mut acc = [0f32; LANES];
        let newest = &self.history[self.pos..self.pos + TAPS_PER_PHASE];
        for (h, c) in newest.iter().zip(&self.filter) {
            for lane in 0..LANES {
                acc[lane] += h[lane] * c[lane];
            }
        }
        acc.iter().fold(0f32, |m, x| m.max(x.abs()))
    }

    fn frame(&mut self, frame: &mut [f32]) {
        self.push(frame[0], frame[1]);
        let l = self.delay.tick(frame[0]);
        let r = self.delay.tick(frame[1]);
        let around = self.interpolated_peak().max(l.abs()).max(r.abs());
        let peak = around.max(self.previous_peak);
        self.previous_peak = around;
        frame[0] = l;
        frame[1] = r;
        self.limiter.frame_with_peak(frame, peak);
    }

    /// Back to rest: silent history, no gain reduction.
    pub fn reset(&mut self) {
        self.limiter.reset();
        self.history = [[0.0; LANES]; 2 * TAPS_PER_PHASE];
        self.pos = 0;
        self.delay.reset();
        self.previous_peak = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};

    /// True peak per the `ebur128` crate (libebur128's port) of `samples[from..]`, dBTP. The
    /// meter hears what comes before too: started cold in the middle of a sine, its own
    /// interpolator would ring over the real crest.
    fn reference_true_peak_from(samples: &[f32], from: usize) -> f64 {
        let mut meter = EbuR128::new(2, 48_000, Mode::TRUE_PEAK).unwrap();
        if from > 0 {
            meter.add_frames_f32(&samples[..from]).unwrap();
        }
        meter.add_frames_f32(&samples[from..]).unwrap();
        let peak = meter
            .prev_true_peak(0)
            .unwrap()
            .max(meter.prev_true_peak(1).unwrap());
        20.0 * peak.log10()
    }

    fn reference_true_peak(samples: &[f32]) -> f64 {
        reference_true_peak_from(samples, 0)
    }

    fn sample_peak_db(samples: &[f32]) -> f64 {
        20.0 * f64::from(samples.iter().fold(0f32, |m, x| m.max(x.abs()))).log10()
    }

    /// A sine at a quarter of the sample rate, 45 degrees off the sample grid: every sample
    /// sits 3 dB under its crest, which falls halfway between two samples.
    fn quarter_rate_sine(frames: usize, amplitude: f32) -> Vec<f32> {
        let w = 2.0 * std::f64::consts::PI * 12_000.0 / 48_000.0;
        (0..frames)
            .flat_map(|i| {
                let x =
                    (amplitude as f64 * (w * i as f64 + std::f64::consts::FRAC_PI_4).sin()) as f32;
                [x, x]
            })
            .collect()
    }

    #[test]
    fn a_sine_whose_true_peak_is_over_its_sample_peak_is_held_to_the_ceiling() {
        let mut signal = quarter_rate_sine(48_000, 1.0);
        assert!(
            sample_peak_db(&signal) < -1.5,
            "the samples alone are under"
        );
        assert!(reference_true_peak(&signal) > -0.5, "the waveform is over");
        let mut lim = TruePeakLimiter::new(-1.5).unwrap();
        lim.process(&mut signal);
        let settled = (lim.latency_frames() + 2_400) * 2;
        let tp = reference_true_peak_from(&signal, settled);
        assert!(tp <= -1.5 + 0.01, "true peak {tp} dBTP");
        assert!(tp > -2.5, "limited, not crushed: {tp} dBTP");
    }

    #[test]
    fn a_sample_peak_limiter_lets_the_same_sine_through() {
        // The reason for this type: the sample-peak limiter sees nothing to do.
        let mut signal = quarter_rate_sine(48_000, 1.0);
        let mut lim = Limiter::new(-1.5).unwrap();
        lim.process(&mut signal);
        assert!(reference_true_peak_from(&signal, 4_800) > -0.5);
    }

    #[test]
    fn quiet_audio_passes_untouched_after_the_delay() {
        let mut lim = TruePeakLimiter::new(-1.0).unwrap();
        let d = lim.latency_frames();
        let input: Vec<f32> = (0..4_000)
            .map(|i| ((i as f32) * 0.01).sin() * 0.5)
            .collect();
        let mut buf: Vec<f32> = input.iter().flat_map(|&x| [x, -x]).collect();
        lim.process(&mut buf);
        for i in d..4_000 {
            assert!((buf[i * 2] - input[i - d]).abs() < 1e-6);
            assert!((buf[i * 2 + 1] + input[i - d]).abs() < 1e-6);
        }
    }

    #[test]
    fn skipping_interpolation_changes_nothing() {
        // Quiet passages (skipped) and loud bursts (interpolated), in one call and frame by
        // frame (which never skips).
        let signal: Vec<f32> = (0..48_000)
            .map(|i| {
                let burst = if (i / 4_800) % 3 == 1 { 1.5 } else { 0.2 };
                burst * ((i as f32) * 0.9).sin()
            })
            .collect();
        let mut a = TruePeakLimiter::new(-1.0).unwrap();
        let mut whole = signal.clone();
        a.process(&mut whole);
        let mut b = TruePeakLimiter::new(-1.0).unwrap();
        let mut framewise = signal;
        for f in framewise.chunks_exact_mut(2) {
            b.frame(f);
        }
        for (x, y) in whole.iter().zip(&framewise) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        assert!(reference_true_peak(&whole) <= -1.0 + 0.05);
    }

    #[test]
    fn the_bound_is_the_filters_l1_norm() {
        let (filter, l1) = interpolation_filter();
        // Each branch passes DC at about unity, and a sinc's L1 norm is above it.
        for lane in [0, 2, 4] {
            let dc: f32 = filter.iter().map(|c| c[lane]).sum();
            assert!((dc - 1.0).abs() < 0.02, "branch DC gain {dc}");
        }
        assert!((1.0..2.0).contains(&l1), "L1 norm {l1}");
    }

    #[test]
    fn nan_and_infinity_become_silence() {
        let mut lim = TruePeakLimiter::new(-1.0).unwrap();
        let mut buf = vec![f32::NAN, f32::INFINITY, 0.5, 0.5];
        buf.extend(std::iter::repeat_n(0.0, 2_000));
        lim.process(&mut buf);
        assert!(buf.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
    }
}
