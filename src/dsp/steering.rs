//! Drift steering: keeps a ring's fill at a target by steering a resampler's ratio, so that two
//! audio clocks that never agree (a device's and the program's) meet without a dropped or
//! repeated block.
//!
//! Pure arithmetic on fill counts, once per block: it reads no ring, no clock and no device
//! itself (the caller hands it the fill), and never allocates.

use super::SAMPLE_RATE;

/// Proportional gain: a fill error of one second's worth of frames asks for a 10% correction
/// (clamped to [`FillSteering::MAX_CORRECTION`]).
const KP: f64 = 0.1;
/// Integral gain (per second of error, per second): with KP, a damped (zeta 0.5) loop that
/// settles in about a minute and leaves no standing error.
const KI: f64 = 0.01;
/// Pulls after priming that only measure the fill (half a second).
const SETTLE_PULLS: u32 = 25;
/// Smoothing of the fill measurement (per 20 ms tick): about one second.
const FILL_SMOOTHING: f64 = 0.02;

/// Keeps a ring's fill at a target by steering a resampler's ratio: a slow PI controller on the
/// smoothed fill, once per 20 ms block. The side that drains the ring on its own clock may be
/// a device (a capture lane's ring: the engine drains it) or the engine (a playback's ring: the
/// device drains it); either way a ring fuller than its target means the resampler should make
/// less per frame it takes.
///
/// The first half second only measures: the average fill then becomes the target, so the
/// controller corrects drift rather than chasing a latency the device's period does not allow,
/// and the pitch never bends at start-up.
#[derive(Clone, Debug)]
pub struct FillSteering {
    /// The ring's rate, frames a second.
    rate: f64,
    /// Seconds between updates.
    dt: f64,
    target: f64,
    smoothed: f64,
    integral: f64,
    /// The ratio relative to the nominal one (1.0 = none).
    correction: f64,
    settling: u32,
    settle_sum: f64,
    /// How far above the measured fill the target goes.
    above: f64,
    /// The target as it was set once measured (before any lift).
    settled: f64,
}

impl FillSteering {
    /// Largest correction the controller applies either way (0.5%: a clock that far off is
    /// broken anyway). A resampler it steers needs a ratio range of twice this.
    pub const MAX_CORRECTION: f64 = 0.005;

    /// Steering a ring at `rate` Hz, updated every `block` frames of 48 kHz, towards `target`
    /// frames until it has measured its own; then towards what it measured, plus `above`.
    #[must_use]
    pub fn new(rate: u32, block: usize, target: f64, above: f64) -> Self {
        Self {
            rate: f64::from(rate),
            dt: block as f64 / f64::from(SAMPLE_RATE),
            target,
            smoothed: target,
            integral: 0.0,
            correction: 1.0,
            settling: 0,
            settle_sum: 0.0,
            above,
            settled: target,
        }
    }

    /// Skips the measuring: `target` is where the fill belongs from now on.
    pub fn settled_at(&mut self, target: f64) {
        self.target = target;
        self.settled = target;
        self.smoothed = target;
        self.settling = SETTLE_PULLS;
    }

    /// Measures the fill again for half a second and holds it there from then on (what the
    /// controller learned of the clocks stays).
    pub fn measure_again(&mut self) {
        self.settling = 0;
        self.settle_sum = 0.0;
    }

    /// Raises the target (and the smoothed fill with it) by `by` frames, to at most `most`;
    /// returns how far the target rose.
    pub fn lift(&mut self, by: f64, most: f64) -> f64 {
        let before = self.target;
        self.target = (self.target + by).min(most).max(before);
        self.smoothed = (self.smoothed + by).min(most);
        self.target - before
    }

    /// Takes the fill after a block; the ratio the resampler should take now (for
    /// [`SteeredResampler::set_relative`](super::SteeredResampler::set_relative)), or `None`
    /// while it still measures.
    pub fn update(&mut self, fill: usize) -> Option<f64> {
        if self.settling < SETTLE_PULLS {
            self.settling += 1;
            self.settle_sum += fill as f64;
            if self.settling == SETTLE_PULLS {
                let measured = self.settle_sum / f64::from(SETTLE_PULLS);
                self.target = measured.max(1.0) + self.above;
                self.settled = self.target;
                self.smoothed = measured;
            }
            return None;
        }
        self.smoothed += (fill as f64 - self.smoothed) * FILL_SMOOTHING;
        let error_s = (self.smoothed - self.target) / self.rate;
        let correction = KP * error_s + KI * self.integral;
        // Anti-windup: integrate only while the correction is inside its limits.
        if correction.abs() < Self::MAX_CORRECTION {
            self.integral += error_s * self.dt;
        }
        let correction = correction.clamp(-Self::MAX_CORRECTION, Self::MAX_CORRECTION);
        // A full ring: the drained side runs slow, or the filling side fast. Make less per
        // frame taken.
        self.correction = 1.0 / (1.0 + correction);
        Some(self.correction)
    }

    /// The fill it steers towards now, frames.
    #[must_use]
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The target as it was set once measured (before any lift), frames.
    #[must_use]
    pub fn settled(&self) -> f64 {
        self.settled
    }

    /// The smoothed fill, frames.
    #[must_use]
    pub fn smoothed(&self) -> f64 {
        self.smoothed
    }

    /// The ratio relative to the nominal one it last asked for (1.0 = none).
    #[must_use]
    pub fn correction(&self) -> f64 {
        self.correction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring at 48 kHz steered every 20 ms block.
    fn steering(target: f64, above: f64) -> FillSteering {
        FillSteering::new(48_000, 960, target, above)
    }

    #[test]
    fn it_measures_for_half_a_second_then_holds_the_mean_fill_plus_the_margin() {
        let mut s = steering(960.0, 100.0);
        for n in 0..SETTLE_PULLS {
            // 1,000 first, 1,200 last, 1,100 between: a mean of 1,100.
            let fill = match n {
                0 => 1_000,
                n if n + 1 == SETTLE_PULLS => 1_200,
                _ => 1_100,
            };
            assert_eq!(s.update(fill), None, "update {n} steered while measuring");
        }
        assert!((s.target() - 1_200.0).abs() < 1e-9, "{}", s.target());
        assert!((s.settled() - 1_200.0).abs() < 1e-9, "{}", s.settled());
        assert!((s.smoothed() - 1_100.0).abs() < 1e-9, "{}", s.smoothed());
    }

    #[test]
    fn a_ring_fuller_than_its_target_makes_less_per_frame_within_the_limit() {
        let mut s = steering(0.0, 0.0);
        s.settled_at(960.0);
        let first = s.update(960 + 480).unwrap_or(1.0);
        assert!(first < 1.0, "{first}");
        // Held far too full for a minute, it asks for the limit and no more.
        let mut last = first;
        for _ in 0..3_000 {
            last = s.update(48_000).unwrap_or(1.0);
        }
        let floor = 1.0 / (1.0 + FillSteering::MAX_CORRECTION);
        assert!((last - floor).abs() < 1e-12, "{last}");
        // And an empty ring the other way.
        let mut s = steering(0.0, 0.0);
        s.settled_at(960.0);
        assert!(s.update(0).unwrap_or(1.0) > 1.0);
    }

    #[test]
    fn a_lift_raises_the_target_up_to_its_ceiling_and_never_lowers_it() {
        let mut s = steering(0.0, 0.0);
        s.settled_at(500.0);
        assert!((s.lift(100.0, 1_000.0) - 100.0).abs() < 1e-9);
        assert!((s.lift(1_000.0, 1_000.0) - 400.0).abs() < 1e-9);
        assert!((s.target() - 1_000.0).abs() < 1e-9);
        // A ceiling below the target now leaves it where it is.
        assert!(s.lift(10.0, 800.0).abs() < 1e-9);
        assert!((s.target() - 1_000.0).abs() < 1e-9);
        // Where it settled is remembered through lifts.
        assert!((s.settled() - 500.0).abs() < 1e-9);
    }

    #[test]
    fn measuring_again_keeps_steering_off_until_the_new_mean_is_in() {
        let mut s = steering(0.0, 0.0);
        s.settled_at(960.0);
        assert!(s.update(960).is_some());
        s.measure_again();
        for _ in 0..SETTLE_PULLS {
            assert_eq!(s.update(2_000), None);
        }
        assert!((s.target() - 2_000.0).abs() < 1e-9);
        assert!(s.update(2_000).is_some());
    }
}
