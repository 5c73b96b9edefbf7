//! A look-ahead peak limiter whose ceiling is never exceeded.
//!
//! For every sample the gain that would bring it to the ceiling is known in advance (the audio is
//! delayed by the lookahead). The gain curve is the minimum of those over a window as long as the
//! lookahead, released slowly, then smoothed by a moving average over the same window. Every value
//! averaged for a sample is at or below the gain that sample needs, so the average is too: the
//! ceiling holds by construction, and the curve has no corners to distort the sound. A final clamp
//! catches rounding.

use super::{DelayLine, DspError, check_range, db_to_gain, ms_to_frames};

/// Stereo-linked look-ahead limiter on interleaved stereo.
#[derive(Clone, Debug)]
pub struct Limiter {
    ceiling: f32,
    window: usize,
    /// The audio waits here until its gain is known.
    audio: DelayLine,
    /// Required gains of the last `window` frames, for the running minimum.
    need: Vec<f32>,
    /// Released minimum gains of the last `window` frames, for the moving average.
    held: Vec<f32>,
    pos: usize,
    /// Monotonic deque of indices into `need` (positions in an ever-growing count).
    deque: Vec<u64>,
    dq_head: usize,
    dq_len: usize,
    count: u64,
    sum: f64,
    released: f32,
    release_coeff: f32,
    min_gain: f32,
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
            need: vec![1.0; window],
            held: vec![1.0; window],
            pos: 0,
            deque: vec![0; window],
            dq_head: 0,
            dq_len: 0,
            count: 0,
            sum: window as f64,
            released: 1.0,
            release_coeff,
            min_gain: 1.0,
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

    /// The deepest gain applied since the last call, linear (1.0 = untouched); resets it.
    pub fn take_min_gain(&mut self) -> f32 {
        std::mem::replace(&mut self.min_gain, 1.0)
    }

    /// Limits stereo interleaved samples in place (output delayed by [`latency_frames`](Self::latency_frames)).
    pub fn process(&mut self, samples: &mut [f32]) {
        let w = self.window;
        for frame in samples.chunks_exact_mut(2) {
            // A NaN or infinity from upstream must not poison the output or the gain curve.
            for s in frame.iter_mut() {
                if !s.is_finite() {
                    *s = 0.0;
                }
            }
            let peak = frame[0].abs().max(frame[1].abs());
            let need = if peak > self.ceiling {
                self.ceiling / peak
            } else {
                1.0
            };
            let slot = self.pos;
            // Running minimum of `need` over the last `w` frames (monotonic deque).
            while self.dq_len > 0 {
                let back = (self.dq_head + self.dq_len - 1) % w;
                let idx = (self.deque[back] % w as u64) as usize;
                if self.need[idx] >= need {
                    self.dq_len -= 1;
                } else {
                    break;
                }
            }
            self.need[slot] = need;
            let back = (self.dq_head + self.dq_len) % w;
            self.deque[back] = self.count;
            self.dq_len += 1;
            if self.deque[self.dq_head] + w as u64 <= self.count {
                self.dq_head = (self.dq_head + 1) % w;
                self.dq_len -= 1;
            }
            let window_min = self.need[(self.deque[self.dq_head] % w as u64) as usize];

            self.released += (1.0 - self.released) * self.release_coeff;
            self.released = self.released.min(window_min);

            self.sum += f64::from(self.released) - f64::from(self.held[slot]);
            self.held[slot] = self.released;
            let gain = ((self.sum / w as f64) as f32).min(1.0);

            // This gain belongs to the frame that entered `window - 1` frames ago.
            let l = self.audio.tick(frame[0]);
            let r = self.audio.tick(frame[1]);
            let c = self.ceiling;
            frame[0] = (l * gain).clamp(-c, c);
            frame[1] = (r * gain).clamp(-c, c);
            self.min_gain = self.min_gain.min(gain);

            self.pos = (slot + 1) % w;
            self.count += 1;
        }
    }

    /// Back to rest: silent delay, no gain reduction.
    pub fn reset(&mut self) {
        self.audio.reset();
        self.need.fill(1.0);
        self.held.fill(1.0);
        self.dq_len = 0;
        self.dq_head = 0;
        self.count = 0;
        self.pos = 0;
        self.sum = self.window as f64;
        self.released = 1.0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    fn nan_and_infinity_become_silence_not_noise() {
        let mut lim = Limiter::new(-1.0).unwrap();
        let mut buf = vec![f32::NAN, f32::INFINITY, 0.5, 0.5];
        buf.extend(std::iter::repeat_n(0.0, 2000));
        lim.process(&mut buf);
        assert!(buf.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
    }
}
