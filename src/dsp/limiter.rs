//! A look-ahead peak limiter whose ceiling is never exceeded.
//!
//! For every sample the gain that would bring it to the ceiling is known in advance (the audio is
//! delayed by the lookahead). The gain curve is the minimum of those over a window as long as the
//! lookahead, released slowly, then smoothed by a moving average over the same window. Every value
//! averaged for a sample is at or below the gain that sample needs, so the average is too: the
//! ceiling holds by construction, and the curve has no corners to distort the sound. A final clamp
//! catches rounding.
//!
//! Most of the time nothing is near the ceiling: then the limiter is at rest and a block costs one
//! peak scan and the delay.
//!
//! It never allocates after construction, and never lets a sample past the ceiling.

use super::{DelayLine, DspError, check_range, db_to_gain, ms_to_frames};

/// Stereo-linked look-ahead limiter on interleaved stereo.
#[derive(Clone, Debug)]
pub struct Limiter {
    ceiling: f32,
    window: usize,
    /// The audio waits here until its gain is known.
    audio: DelayLine,
    /// Released minimum gains of the last `window` frames, for the moving average.
    held: Vec<f32>,
    pos: usize,
    /// Monotonic deque (ring) of (frame number, needed gain): the running minimum.
    dq: Vec<(u64, f32)>,
    dq_head: usize,
    dq_len: usize,
    count: u64,
    sum: f64,
    released: f32,
    release_coeff: f32,
    /// Frames in a row that needed no gain reduction.
    quiet: u64,
}

impl Limiter {
    /// Lookahead of the default limiter.
    pub const LOOKAHEAD_MS: f32 = 5.0;
    /// Release of the default limiter.
    pub const RELEASE_MS: f32 = 80.0;

    /// A limiter with a ceiling in dBFS (e.g. -1.0) and the default lookahead and release.
    ///
    /// # Errors
    /// A ceiling outside -30..=0 dBFS.
    pub fn new(ceiling_db: f32) -> Result<Self, DspError> {
        Self::with_timing(ceiling_db, Self::LOOKAHEAD_MS, Self::RELEASE_MS)
    }

    /// A limiter with its own lookahead and release times.
    ///
    /// # Errors
    /// A ceiling outside -30..=0 dBFS, lookahead outside 0.1..=50 ms or release outside 1..=5000 ms.
    pub fn with_timing(
        ceiling_db: f32,
        lookahead_ms: f32,
        release_ms: f32,
    ) -> Result<Self, DspError> {
        check_range("limiter ceiling (dBFS)", ceiling_db, -30.0, 0.0, "-30 to 0")?;
        check_range(
            "limiter lookahead (ms)",
            lookahead_ms,
            0.1,
            50.0,
            "0.1 to 50",
        )?;
        check_range("limiter release (ms)", release_ms, 1.0, 5000.0, "1 to 5000")?;
        let window = ms_to_frames(lookahead_ms).max(1);
        let release_coeff = 1.0 - (-1.0 / (release_ms * 48.0)).exp();
        Ok(Self {
            ceiling: db_to_gain(ceiling_db),
            window,
            audio: DelayLine::new(window - 1, 2),
            held: vec![1.0; window],
            pos: 0,
            dq: vec![(0, 1.0); window],
            dq_head: 0,
            dq_len: 0,
            count: 0,
            sum: window as f64,
            released: 1.0,
            release_coeff,
            quiet: u64::MAX,
        })
    }

    /// The delay the limiter adds, in frames.
    #[must_use]
    pub fn latency_frames(&self) -> usize {
        self.window - 1
    }

    /// The ceiling as a linear amplitude.
    #[must_use]
    pub fn ceiling(&self) -> f32 {
        self.ceiling
    }

    /// At rest: nothing in the window needed reduction and the release is complete, so every
    /// held gain is exactly 1 and the output is the delayed input.
    fn at_rest(&self) -> bool {
        self.released == 1.0 && self.quiet >= 2 * self.window as u64
    }

    /// Limits stereo interleaved samples in place (output delayed by
    /// [`latency_frames`](Self::latency_frames)).
    pub fn process(&mut self, samples: &mut [f32]) {
        let frames = samples.len() / 2;
        let samples = &mut samples[..frames * 2];
        if self.at_rest() {
            let mut peak = 0f32;
            let mut finite = true;
            for &s in samples.iter() {
                peak = peak.max(s.abs());
                finite &= s.is_finite();
            }
            if finite && peak <= self.ceiling {
                self.audio.process(samples);
                self.count += frames as u64;
                self.pos = (self.pos + frames) % self.window;
                self.quiet = self.quiet.saturating_add(frames as u64);
                return;
            }
        }
        for frame in samples.chunks_exact_mut(2) {
            self.frame(frame);
        }
    }

    fn frame(&mut self, frame: &mut [f32]) {
        // A NaN or infinity from upstream must not poison the output or the gain curve.
        for s in frame.iter_mut() {
            if !s.is_finite() {
                *s = 0.0;
            }
        }
        let peak = frame[0].abs().max(frame[1].abs());
        self.frame_with_peak(frame, peak);
    }

    /// Limits one finite stereo frame whose peak (sample peak here, true peak for
    /// [`TruePeakLimiter`](super::TruePeakLimiter)) is `peak`.
    pub(super) fn frame_with_peak(&mut self, frame: &mut [f32], peak: f32) {
        let w = self.window;
        let need = if peak > self.ceiling {
            self.quiet = 0;
            self.ceiling / peak
        } else {
            self.quiet = self.quiet.saturating_add(1);
            1.0
        };

        // Running minimum of `need` over the last `w` frames.
        while self.dq_len > 0 {
            let mut back = self.dq_head + self.dq_len - 1;
            if back >= w {
                back -= w;
            }
            if self.dq[back].1 >= need {
                self.dq_len -= 1;
            } else {
                break;
            }
        }
        let mut slot = self.dq_head + self.dq_len;
        if slot >= w {
            slot -= w;
        }
        self.dq[slot] = (self.count, need);
        self.dq_len += 1;
        if self.dq[self.dq_head].0 + w as u64 <= self.count {
            self.dq_head += 1;
            if self.dq_head == w {
                self.dq_head = 0;
            }
            self.dq_len -= 1;
        }
        let window_min = self.dq[self.dq_head].1;

        self.released += (1.0 - self.released) * self.release_coeff;
        if self.released > 0.999_99 {
            self.released = 1.0;
        }
        self.released = self.released.min(window_min);

        self.sum += f64::from(self.released) - f64::from(self.held[self.pos]);
        self.held[self.pos] = self.released;
        let gain = ((self.sum / w as f64) as f32).min(1.0);
        self.pos += 1;
        if self.pos == w {
            self.pos = 0;
        }
        self.count += 1;
        if self.at_rest() {
            // Every held value is 1 again: drop the sum's rounding drift.
            self.sum = w as f64;
        }

        // This gain belongs to the frame that entered `window - 1` frames ago.
        let l = self.audio.tick(frame[0]);
        let r = self.audio.tick(frame[1]);
        let c = self.ceiling;
        frame[0] = (l * gain).clamp(-c, c);
        frame[1] = (r * gain).clamp(-c, c);
    }

    /// Back to rest: silent delay, no gain reduction.
    pub fn reset(&mut self) {
        self.audio.reset();
        self.held.fill(1.0);
        self.dq_len = 0;
        self.dq_head = 0;
        self.count = 0;
        self.pos = 0;
        self.sum = self.window as f64;
        self.released = 1.0;
        self.quiet = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_audio_passes_untouched_after_the_delay() {
        let mut lim = Limiter::new(-1.0).unwrap();
        let d = lim.latency_frames();
        let input: Vec<f32> = (0..2000).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
        let mut buf: Vec<f32> = input.iter().flat_map(|&x| [x, -x]).collect();
        lim.process(&mut buf);
        for i in d..2000 {
            assert!((buf[i * 2] - input[i - d]).abs() < 1e-6);
            assert!((buf[i * 2 + 1] + input[i - d]).abs() < 1e-6);
        }
    }

    #[test]
    fn full_scale_square_is_held_under_the_ceiling() {
        let mut lim = Limiter::new(-1.0).unwrap();
        let mut buf: Vec<f32> = (0..48_000)
            .map(|i| if (i / 100) % 2 == 0 { 2.0 } else { -2.0 })
            .collect();
        lim.process(&mut buf);
        let c = db_to_gain(-1.0);
        assert!(buf.iter().all(|x| x.abs() <= c));
        // And it is not simply clipped: the limited square sits right at the ceiling.
        assert!(buf[40_000].abs() > c * 0.95);
    }

    #[test]
    fn rest_and_busy_paths_give_the_same_output() {
        // The same signal in one block and frame by frame (which never takes the rest path for
        // long) must come out the same.
        let signal: Vec<f32> = (0..48_000)
            .map(|i| {
                let burst = if (i / 4_800) % 3 == 1 { 2.5 } else { 0.3 };
                burst * ((i as f32) * 0.03).sin()
            })
            .collect();
        let mut a = Limiter::new(-1.0).unwrap();
        let mut whole = signal.clone();
        a.process(&mut whole);
        let mut b = Limiter::new(-1.0).unwrap();
        let mut framewise = signal.clone();
        for f in framewise.chunks_exact_mut(2) {
            b.frame(f);
        }
        for (x, y) in whole.iter().zip(&framewise) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }

    #[test]
    fn nan_and_infinity_become_silence_not_noise() {
        let mut lim = Limiter::new(-1.0).unwrap();
        let mut buf = vec![f32::NAN, f32::INFINITY, 0.5, 0.5];
        buf.extend(std::iter::repeat_n(0.0, 2000));
        lim.process(&mut buf);
        assert!(buf.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
    }
}
