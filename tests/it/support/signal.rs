//! Test signals and their measurement: seeded noise, tones, levels in dB, and the frequency of a
//! sine. Pure functions on sample buffers: no files, no processes, no clock.

/// A small deterministic random source (xorshift64*), so tests are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }
}

/// Pink noise (Paul Kellet's filter), mono, scaled to `rms_db` dBFS RMS.
pub fn pink_noise(frames: usize, rms_db: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut b = [0f32; 7];
    let mut out: Vec<f32> = (0..frames)
        .map(|_| {
            let w = rng.uniform();
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.153_852;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let p = b.iter().sum::<f32>() + w * 0.5362;
            b[6] = w * 0.115926;
            p
        })
        .collect();
    let rms = rms_of(&out);
    let k = db(rms_db) / rms;
    out.iter_mut().for_each(|x| *x *= k);
    out
}

pub fn db(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

pub fn rms_of(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt() as f32
}

pub fn to_db(x: f32) -> f32 {
    20.0 * x.max(1e-12).log10()
}

/// Level of `freq` in `x` (48 kHz mono), dB RMS: measured per half second and averaged as
/// power, so a stretch that crossed a network and a few clocks (whose phase may step where a
/// packet was concealed or a clock steered) reads what a listener hears, not how well its phase
/// lines up over seconds. A tone on a multiple of 2 Hz is orthogonal to any other in a block.
pub fn tone_db(x: &[f32], freq: f32) -> f32 {
    const BLOCK: usize = 24_000;
    let block_power = |b: &[f32]| {
        let w = 2.0 * std::f32::consts::PI * freq / 48_000.0;
        let (mut s, mut c) = (0.0f64, 0.0f64);
        for (n, &v) in b.iter().enumerate() {
            let (sn, cs) = (w * n as f32).sin_cos();
            s += f64::from(v * sn);
            c += f64::from(v * cs);
        }
        let amp = 2.0 * (s * s + c * c).sqrt() / b.len().max(1) as f64;
        amp * amp / 2.0
    };
    let power = if x.len() < 2 * BLOCK {
        block_power(x)
    } else {
        let blocks = x.chunks_exact(BLOCK);
        let n = blocks.len() as f64;
        blocks.map(block_power).sum::<f64>() / n
    };
    to_db(power.sqrt() as f32)
}

/// The level of a steady tone at `freq` over `x`, dB: the median of its level in each 100 ms
/// (a whole number of cycles of any tone on a 10 Hz grid). A phase step or a short gap (a
/// late period on a busy machine) spoils one block of many instead of the whole reading, so
/// a ducking depth read this way is the ducker's, not the scheduler's.
pub fn steady_tone_db(x: &[f32], freq: f32) -> f32 {
    let mut levels: Vec<f32> = x.chunks_exact(4_800).map(|b| tone_db(b, freq)).collect();
    if levels.is_empty() {
        return tone_db(x, freq);
    }
    levels.sort_by(f32::total_cmp);
    levels[levels.len() / 2]
}

/// A sine tone: `freq` Hz at peak amplitude `amp`.
#[derive(Clone, Copy, Debug)]
pub struct Tone {
    pub freq: f32,
    pub amp: f32,
}

/// The game in the tests that need one: 440 Hz at half scale (-9 dBFS RMS).
pub const GAME_TONE: Tone = Tone {
    freq: 440.0,
    amp: 0.5,
};

/// A voice stand-in: 1 kHz at 0.4, which no 100 ms window confuses with the game's tone.
pub const VOICE_TONE: Tone = Tone {
    freq: 1000.0,
    amp: 0.4,
};

impl Tone {
    /// `seconds` of it at `rate`, mono.
    pub fn samples(self, seconds: f32, rate: u32) -> Vec<f32> {
        self.samples_while(seconds, rate, |_| true)
    }

    /// `seconds` at `rate`, mono, sounding only while `on(t)` holds (`t` in seconds from the
    /// start) and silent elsewhere.
    pub fn samples_while(self, seconds: f32, rate: u32, on: impl Fn(f32) -> bool) -> Vec<f32> {
        let frames = (rate as f32 * seconds) as usize;
        let w = 2.0 * std::f32::consts::PI * self.freq;
        (0..frames)
            .map(|n| {
                if on(n as f32 / rate as f32) {
                    self.amp * (w * n as f32 / rate as f32).sin()
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// The level of `freq` in each whole `window` of `x`, dB.
pub fn tone_levels(x: &[f32], freq: f32, window: usize) -> Vec<f32> {
    x.chunks_exact(window).map(|w| tone_db(w, freq)).collect()
}

/// The loudest `freq` is in any 100 ms of `x` (48 kHz), dB.
pub fn loudest_tone_db(x: &[f32], freq: f32) -> f32 {
    x.chunks(4_800)
        .map(|w| tone_db(w, freq))
        .fold(f32::MIN, f32::max)
}

/// The middle value of `v` (the upper one of an even count).
pub fn median(v: &[f32]) -> f32 {
    let mut v = v.to_vec();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Interleaves two mono signals.
pub fn interleave(l: &[f32], r: &[f32]) -> Vec<f32> {
    l.iter().zip(r).flat_map(|(&a, &b)| [a, b]).collect()
}

/// One channel of interleaved stereo.
pub fn channel(stereo: &[f32], ch: usize) -> Vec<f32> {
    stereo.iter().skip(ch).step_by(2).copied().collect()
}

/// Least-squares fit of `a sin(wt) + b cos(wt) + c` at frequency `f`; returns the residual
/// energy and the fitted amplitude.
pub fn sine_fit(x: &[f32], f: f64, rate: f64) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * f / rate;
    // Normal equations for [sin, cos, 1].
    let mut m = [[0f64; 3]; 3];
    let mut v = [0f64; 3];
    for (n, &s) in x.iter().enumerate() {
        let (sn, cs) = (w * n as f64).sin_cos();
        let basis = [sn, cs, 1.0];
        for i in 0..3 {
            v[i] += basis[i] * f64::from(s);
            for j in 0..3 {
                m[i][j] += basis[i] * basis[j];
            }
        }
    }
    let coef = solve3(m, v);
    let mut resid = 0.0;
    for (n, &s) in x.iter().enumerate() {
        let (sn, cs) = (w * n as f64).sin_cos();
        let e = f64::from(s) - (coef[0] * sn + coef[1] * cs + coef[2]);
        resid += e * e;
    }
    (resid, coef[0].hypot(coef[1]))
}

#[allow(clippy::needless_range_loop)] // Gaussian elimination reads clearest with indices.
fn solve3(mut m: [[f64; 3]; 3], mut v: [f64; 3]) -> [f64; 3] {
    for c in 0..3 {
        let p = (c..3)
            .max_by(|&a, &b| m[a][c].abs().total_cmp(&m[b][c].abs()))
            .unwrap_or(c);
        m.swap(c, p);
        v.swap(c, p);
        for r in c + 1..3 {
            let k = m[r][c] / m[c][c];
            for j in c..3 {
                m[r][j] -= k * m[c][j];
            }
            v[r] -= k * v[c];
        }
    }
    let mut out = [0f64; 3];
    for r in (0..3).rev() {
        let s: f64 = (r + 1..3).map(|j| m[r][j] * out[j]).sum();
        out[r] = (v[r] - s) / m[r][r];
    }
    out
}

/// The frequency that best explains `x` as a sine near `guess` (golden-section search on the
/// fit residual), and the signal-to-noise ratio of that fit in dB.
pub fn best_sine(x: &[f32], guess: f64, span: f64, rate: f64) -> (f64, f64) {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (guess - span, guess + span);
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let mut fc = sine_fit(x, c, rate).0;
    let mut fd = sine_fit(x, d, rate).0;
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = sine_fit(x, c, rate).0;
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = sine_fit(x, d, rate).0;
        }
    }
    let f = (a + b) / 2.0;
    let (resid, amp) = sine_fit(x, f, rate);
    let signal = amp * amp / 2.0 * x.len() as f64;
    (f, 10.0 * (signal / resid.max(1e-30)).log10())
}

/// Frequency of a sine: the median over 100 ms blocks of the rate of its rising zero
/// crossings, interpolated between samples. A crossing counts only after the signal has gone
/// below a quarter of the block's peak, so low-level noise (a short gap a busy machine left in
/// the test's own player) adds no crossings, and such a block is one of many in the median.
pub fn zero_crossing_hz(x: &[f32], rate: f64) -> f64 {
    let block = (rate / 10.0) as usize;
    let mut per_block: Vec<f64> = x
        .chunks_exact(block)
        .filter_map(|b| {
            let h = 0.25 * b.iter().fold(0f32, |m, s| m.max(s.abs()));
            let mut armed = false;
            let mut crossings = Vec::new();
            for (i, w) in b.windows(2).enumerate() {
                if w[0] < -h {
                    armed = true;
                }
                if armed && w[0] < 0.0 && w[1] >= 0.0 {
                    crossings.push(i as f64 + f64::from(w[0] / (w[0] - w[1])));
                    armed = false;
                }
            }
            let span = crossings.last()? - crossings.first()?;
            (crossings.len() > 3).then(|| (crossings.len() - 1) as f64 * rate / span)
        })
        .collect();
    assert!(
        per_block.len() >= 3,
        "no tone: {} of {} blocks of 100 ms hold one",
        per_block.len(),
        x.len() / block.max(1)
    );
    per_block.sort_by(f64::total_cmp);
    per_block[per_block.len() / 2]
}
