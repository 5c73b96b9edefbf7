//! Second-order IIR sections (RBJ cookbook), for the mic's high-pass and the voice detector's
//! band filters.
//!
//! A few multiply-adds per sample: no allocation, no state beyond the two delays.

/// One biquad section in transposed direct form II; state survives across blocks.
#[derive(Clone, Debug)]
pub struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    z1: f32,
    z2: f32,
}

impl Biquad {
    fn from_coeffs(b: [f64; 3], a: [f64; 3]) -> Self {
        let a0 = a[0];
        Self {
            b0: (b[0] / a0) as f32,
            b1: (b[1] / a0) as f32,
            b2: (b[2] / a0) as f32,
            a1: (a[1] / a0) as f32,
            a2: (a[2] / a0) as f32,
            z1: 0.0,
            z2: 0.0,
        }
    }

    fn omega(freq: f32, sample_rate: u32, q: f32) -> (f64, f64, f64) {
        let w = 2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(sample_rate);
        let alpha = w.sin() / (2.0 * f64::from(q));
        (w.cos(), alpha, w)
    }

    /// A high-pass at `freq` Hz with quality `q` (0.707 for Butterworth).
    #[must_use]
    pub fn high_pass(freq: f32, q: f32, sample_rate: u32) -> Self {
        let (cos, alpha, _) = Self::omega(freq, sample_rate, q);
        Self::from_coeffs(
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        )
    }

    /// A low-pass at `freq` Hz with quality `q`.
    #[must_use]
    pub fn low_pass(freq: f32, q: f32, sample_rate: u32) -> Self {
        let (cos, alpha, _) = Self::omega(freq, sample_rate, q);
        Self::from_coeffs(
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0],
            [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        )
    }

    /// A band-pass around `freq` Hz with quality `q` (its peak at 0 dB).
    #[must_use]
    pub fn band_pass(freq: f32, q: f32, sample_rate: u32) -> Self {
        let (cos, alpha, _) = Self::omega(freq, sample_rate, q);
        Self::from_coeffs([alpha, 0.0, -alpha], [1.0 + alpha, -2.0 * cos, 1.0 - alpha])
    }

    /// Filters one sample.
    #[inline]
    pub fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.z1;
        self.z1 = self.b1 * x - self.a1 * y + self.z2;
        self.z2 = self.b2 * x - self.a2 * y;
        y
    }

    /// Drops a history too small to matter (below -400 dBFS) to exact zero. Run once per
    /// block: a filter left to ring down in silence otherwise spends seconds on subnormal
    /// numbers, which cost the processor up to a hundred times more per operation: a filter
    /// on a silent input would cost far more than on a voice.
    #[inline]
    pub fn flush_tiny(&mut self) {
        const TINY: f32 = 1e-20;
        if self.z1.abs() < TINY {
            self.z1 = 0.0;
        }
        if self.z2.abs() < TINY {
            self.z2 = 0.0;
        }
    }

    /// Whether the filter holds no history: silence in is exact silence out.
    #[must_use]
    pub fn at_rest(&self) -> bool {
        self.z1 == 0.0 && self.z2 == 0.0
    }

    /// Forgets the signal history.
    pub fn reset(&mut self) {
        self.z1 = 0.0;
        self.z2 = 0.0;
    }
}
