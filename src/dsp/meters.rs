//! The loudness meter: sample peak, RMS, and EBU R128 loudness (momentary, short-term,
//! integrated).
//!
//! Loudness is ITU-R BS.1770-4 as EBU R128 uses it, measured here in one pass: each sample is
//! K-weighted (two biquads per channel) and squared into the current 100 ms block, and each
//! block's energy is summed once, when it completes. Momentary loudness is the mean of the last
//! 4 blocks (400 ms), short-term of the last 30 (3 s), so reading either costs a few additions;
//! each 400 ms gating block (75% overlap, one per 100 ms) goes into a histogram of 0.1 LU bins
//! that keeps each bin's count and its exact energy sum, so integrated loudness over hours needs
//! no growing memory, and its gates (absolute at -70 LUFS, relative at -10 LU) are applied to
//! real energies, not to bin centres. A meter that re-summed its windows on every reading would
//! cost the engine more than all of its mixing; the tests hold this one to the `ebur128` crate (a
//! port of libebur128, the broadcast world's reference) and to EBU Tech 3341's test signals.
//!
//! Readings follow whole blocks: they change every 100 ms, as EBU Tech 3341 asks of a meter.
//! Memory is fixed at construction: the meter never allocates, however long it runs.

use super::{SAMPLE_RATE, gain_to_db};

/// What a [`LoudnessMeter`] reads, in dBFS and LUFS. Silence reads -inf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeterReadings {
    /// Highest sample magnitude since the last reading, dBFS.
    pub peak_dbfs: f32,
    /// RMS since the last reading, dBFS (a full-scale sine reads 0 dBFS).
    pub rms_dbfs: f32,
    /// EBU R128 momentary loudness (400 ms), LUFS.
    pub momentary_lufs: f32,
    /// EBU R128 short-term loudness (3 s), LUFS.
    pub short_term_lufs: f32,
    /// EBU R128 integrated (gated) loudness since the start, LUFS.
    pub integrated_lufs: f32,
}

/// A meter of a 48 kHz stereo signal: its sample peak and RMS since the last reading, and its
/// EBU R128 loudness.
#[derive(Clone)]
pub struct LoudnessMeter {
    loudness: Loudness,
    peak: f32,
    sum_sq: f64,
    count: u64,
    overall_peak: f32,
}

impl std::fmt::Debug for LoudnessMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the histogram's 2,000 numbers.
        f.debug_struct("LoudnessMeter")
            .field("momentary_lufs", &self.momentary_lufs())
            .field("integrated_lufs", &self.integrated_lufs())
            .field("overall_peak", &self.overall_peak)
            .finish_non_exhaustive()
    }
}

impl Default for LoudnessMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LoudnessMeter {
    /// A meter for 48 kHz stereo.
    #[must_use]
    pub fn new() -> Self {
        Self {
            loudness: Loudness::new(),
            peak: 0.0,
            sum_sq: 0.0,
            count: 0,
            overall_peak: 0.0,
        }
    }

    /// Measures a block of stereo interleaved samples.
    pub fn process(&mut self, samples: &[f32]) {
        // Eight running maxima and sums side by side, folded at the end: the loop compiles to
        // vector instructions, where one running sum has to wait for each addition.
        let mut peak = [0f32; 8];
        let mut sum = [0f32; 8];
        let mut lanes = samples.chunks_exact(8);
        for c in &mut lanes {
            for k in 0..8 {
                peak[k] = peak[k].max(c[k].abs());
                sum[k] += c[k] * c[k];
            }
        }
        for &s in lanes.remainder() {
            peak[0] = peak[0].max(s.abs());
            sum[0] += s * s;
        }
        let peak = peak.iter().fold(self.peak, |m, &p| m.max(p));
        self.peak = peak;
        self.overall_peak = self.overall_peak.max(peak);
        self.sum_sq += sum.iter().map(|&x| f64::from(x)).sum::<f64>();
        self.count += samples.len() as u64;
        self.loudness.process(samples);
    }

    /// Reads peak and RMS only (they restart for the next reading); the loudness fields are
    /// left -inf.
    pub fn read_levels(&mut self) -> MeterReadings {
        let rms = if self.count > 0 {
            (self.sum_sq / self.count as f64).sqrt() as f32
        } else {
            0.0
        };
        let r = MeterReadings {
            peak_dbfs: gain_to_db(self.peak),
            // +3 dB so a full-scale sine reads 0 dBFS, as on a console's meter.
            rms_dbfs: gain_to_db(rms) + 3.010_3,
            momentary_lufs: f32::NEG_INFINITY,
            short_term_lufs: f32::NEG_INFINITY,
            integrated_lufs: f32::NEG_INFINITY,
        };
        self.peak = 0.0;
        self.sum_sq = 0.0;
        self.count = 0;
        r
    }

    /// Reads every meter; peak and RMS restart for the next reading.
    pub fn read(&mut self) -> MeterReadings {
        MeterReadings {
            momentary_lufs: self.momentary_lufs(),
            short_term_lufs: self.short_term_lufs(),
            integrated_lufs: self.integrated_lufs(),
            ..self.read_levels()
        }
    }

    /// Momentary loudness (the last 0.4 s), LUFS.
    #[must_use]
    pub fn momentary_lufs(&self) -> f32 {
        self.loudness.momentary_lufs()
    }

    /// Short-term loudness (the last 3 s), LUFS.
    #[must_use]
    pub fn short_term_lufs(&self) -> f32 {
        self.loudness.short_term_lufs()
    }

    /// Integrated loudness since the start, LUFS (-inf for silence). Scans the histogram's
    /// 1,000 bins: cheap, but no need to read it every block.
    #[must_use]
    pub fn integrated_lufs(&self) -> f32 {
        self.loudness.integrated_lufs()
    }

    /// Highest sample magnitude since the start, dBFS.
    #[must_use]
    pub fn overall_peak_dbfs(&self) -> f32 {
        gain_to_db(self.overall_peak)
    }

    /// Starts over (in place: no allocation).
    pub fn reset(&mut self) {
        self.loudness.reset();
        self.peak = 0.0;
        self.sum_sq = 0.0;
        self.count = 0;
        self.overall_peak = 0.0;
    }
}

/// Frames in a 100 ms block.
const BLOCK_FRAMES: u32 = SAMPLE_RATE / 10;
/// Blocks in the short-term window (3 s).
const SHORT_TERM_BLOCKS: usize = 30;
/// Blocks in the momentary window and in a gating block (400 ms).
const MOMENTARY_BLOCKS: usize = 4;
/// The absolute gate, LUFS.
const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// The relative gate, LU below the absolutely gated loudness.
const RELATIVE_GATE_LU: f64 = -10.0;
/// Histogram bins per LU, and the bins from the absolute gate to +30 LUFS.
const BINS_PER_LU: f64 = 10.0;
const BINS: usize = 1_000;

/// BS.1770-4's K-weighting at 48 kHz, as two biquads `[b0, b1, b2, a1, a2]` (a0 = 1): the
/// head's high shelf (+4 dB above about 1.5 kHz), then the RLB high-pass (about 38 Hz). The
/// standard's own coefficients.
const SHELF: [f64; 5] = [
    1.535_124_859_586_97,
    -2.691_696_189_406_38,
    1.198_392_810_852_85,
    -1.690_659_293_182_41,
    0.732_480_774_215_85,
];
const HIGH_PASS: [f64; 5] = [1.0, -2.0, 1.0, -1.990_047_454_833_98, 0.990_072_250_366_21];

/// One biquad's state for both channels (transposed direct form II), in f64. Not the shared
/// f32 [`Biquad`](super::Biquad): in f32 the RLB high-pass (poles 0.995 from the origin) drifts
/// 0.007 LU from libebur128 on quiet passages, against 4e-6 LU in f64.
#[derive(Clone, Copy, Debug, Default)]
struct Stage {
    z1: [f64; 2],
    z2: [f64; 2],
}

impl Stage {
    #[inline(always)]
    fn run(&mut self, c: &[f64; 5], x: [f64; 2]) -> [f64; 2] {
        let mut y = [0.0; 2];
        for ch in 0..2 {
            y[ch] = c[0] * x[ch] + self.z1[ch];
            self.z1[ch] = c[1] * x[ch] - c[3] * y[ch] + self.z2[ch];
            self.z2[ch] = c[2] * x[ch] - c[4] * y[ch];
        }
        y
    }

    /// Clears state too small to matter, so silence never decays into subnormal numbers (which
    /// cost a hundred times the work), and state a NaN or infinity has poisoned.
    fn tidy(&mut self) {
        for z in self.z1.iter_mut().chain(self.z2.iter_mut()) {
            if !z.is_finite() || z.abs() < 1e-25 {
                *z = 0.0;
            }
        }
    }
}

/// EBU R128 loudness of 48 kHz stereo; see the module doc.
#[derive(Clone)]
struct Loudness {
    shelf: Stage,
    high_pass: Stage,
    /// Sum of both channels' squared K-weighted samples in the block being filled.
    block_sum: f64,
    block_frames: u32,
    /// Mean-square energies of the last `SHORT_TERM_BLOCKS` blocks, a ring (zero before the
    /// first ones, as a meter that starts on silence reads).
    blocks: [f64; SHORT_TERM_BLOCKS],
    /// Where the next block goes in `blocks`.
    next: usize,
    /// Blocks completed since the start.
    completed: u64,
    /// Gating blocks at or above the absolute gate, by loudness in 0.1 LU bins from -70 LUFS.
    gated_count: Box<[u64; BINS]>,
    gated_energy: Box<[f64; BINS]>,
}

impl Loudness {
    fn new() -> Self {
        Self {
            shelf: Stage::default(),
            high_pass: Stage::default(),
            block_sum: 0.0,
            block_frames: 0,
            blocks: [0.0; SHORT_TERM_BLOCKS],
            next: 0,
            completed: 0,
            gated_count: Box::new([0; BINS]),
            gated_energy: Box::new([0.0; BINS]),
        }
    }

    fn reset(&mut self) {
        self.shelf = Stage::default();
        self.high_pass = Stage::default();
        self.block_sum = 0.0;
        self.block_frames = 0;
        self.blocks = [0.0; SHORT_TERM_BLOCKS];
        self.next = 0;
        self.completed = 0;
        self.gated_count.fill(0);
        self.gated_energy.fill(0.0);
    }

    fn process(&mut self, samples: &[f32]) {
        let mut frames = samples.chunks_exact(2);
        loop {
            let room = (BLOCK_FRAMES - self.block_frames) as usize;
            let mut sum = 0.0;
            let mut taken = 0;
            for frame in frames.by_ref().take(room) {
                let x = [f64::from(frame[0]), f64::from(frame[1])];
                let y = self.high_pass.run(&HIGH_PASS, self.shelf.run(&SHELF, x));
                sum += y[0] * y[0] + y[1] * y[1];
                taken += 1;
            }
            self.block_sum += sum;
            self.block_frames += taken;
            if self.block_frames < BLOCK_FRAMES {
                return;
            }
            self.finish_block();
        }
    }

    fn finish_block(&mut self) {
        self.shelf.tidy();
        self.high_pass.tidy();
        let energy = self.block_sum / f64::from(BLOCK_FRAMES);
        // A NaN or infinity from upstream counts as silence, and is gone with the block.
        self.blocks[self.next] = if energy.is_finite() { energy } else { 0.0 };
        self.next = (self.next + 1) % SHORT_TERM_BLOCKS;
        self.completed += 1;
        self.block_sum = 0.0;
        self.block_frames = 0;
        if self.completed >= MOMENTARY_BLOCKS as u64 {
            let gating = self.mean_of_last(MOMENTARY_BLOCKS);
            let l = loudness(gating);
            if l >= ABSOLUTE_GATE_LUFS {
                let bin = (((l - ABSOLUTE_GATE_LUFS) * BINS_PER_LU) as usize).min(BINS - 1);
                self.gated_count[bin] += 1;
                self.gated_energy[bin] += gating;
            }
        }
    }

    fn mean_of_last(&self, n: usize) -> f64 {
        let sum: f64 = (1..=n)
            .map(|back| self.blocks[(self.next + SHORT_TERM_BLOCKS - back) % SHORT_TERM_BLOCKS])
            .sum();
        sum / n as f64
    }

    fn momentary_lufs(&self) -> f32 {
        loudness(self.mean_of_last(MOMENTARY_BLOCKS)) as f32
    }

    fn short_term_lufs(&self) -> f32 {
        loudness(self.mean_of_last(SHORT_TERM_BLOCKS)) as f32
    }

    fn integrated_lufs(&self) -> f32 {
        let count: u64 = self.gated_count.iter().sum();
        if count == 0 {
            return f32::NEG_INFINITY;
        }
        let energy: f64 = self.gated_energy.iter().sum();
        let threshold = loudness(energy / count as f64) + RELATIVE_GATE_LU;
        // Bins wholly below the relative gate are left out; the bin the gate falls in is kept,
        // its blocks within 0.1 LU of the gate (their share of the energy is a few hundredths
        // of an LU at most, as the tests against `ebur128` show).
        let first = if threshold > ABSOLUTE_GATE_LUFS {
            (((threshold - ABSOLUTE_GATE_LUFS) * BINS_PER_LU) as usize).min(BINS - 1)
        } else {
            0
        };
        let count: u64 = self.gated_count[first..].iter().sum();
        let energy: f64 = self.gated_energy[first..].iter().sum();
        loudness(energy / count.max(1) as f64) as f32
    }
}

/// BS.1770's loudness of a mean-square energy (channel weights 1 for left and right), LUFS;
/// -inf for silence.
fn loudness(energy: f64) -> f64 {
    if energy > 0.0 {
        -0.691 + 10.0 * energy.log10()
    } else {
        f64::NEG_INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebur128::{EbuR128, Mode};

    const RATE: f32 = SAMPLE_RATE as f32;

    /// `seconds` of a stereo sine at `dbfs` on both channels.
    fn sine(hz: f32, dbfs: f32, seconds: f32) -> Vec<f32> {
        let a = 10f32.powf(dbfs / 20.0);
        (0..(seconds * RATE) as usize)
            .flat_map(|i| {
                let x = a * (std::f32::consts::TAU * hz * i as f32 / RATE).sin();
                [x, x]
            })
            .collect()
    }

    /// Programme-like material: noise shaped and swelled over time (voice-like bursts, a
    /// quiet bed, pauses of digital silence, a loud passage), with different left and right.
    fn programme(seconds: f32) -> Vec<f32> {
        let mut state = 0x2545_f491_u32;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 * 2.0 - 1.0
        };
        let mut low = [0f32; 2];
        (0..(seconds * RATE) as usize)
            .flat_map(|i| {
                let t = i as f32 / RATE;
                let swell = match (t / 2.5) as u32 % 6 {
                    0 => 0.5,
                    1 => 0.02,
                    2 => 0.0,
                    3 => 0.9 * (0.5 + 0.5 * (std::f32::consts::TAU * 3.0 * t).sin()),
                    4 => 0.003,
                    _ => 0.25,
                };
                let mut frame = [0f32; 2];
                for (ch, out) in frame.iter_mut().enumerate() {
                    low[ch] += 0.05 * (noise() - low[ch]);
                    let tone = (std::f32::consts::TAU * (220.0 + 110.0 * ch as f32) * t).sin();
                    *out = swell * (0.6 * low[ch] + 0.3 * tone + 0.1 * noise());
                }
                frame
            })
            .collect()
    }

    fn reference() -> EbuR128 {
        EbuR128::new(2, SAMPLE_RATE, Mode::M | Mode::S | Mode::I).unwrap()
    }

    #[test]
    fn full_scale_sine_reads_zero_dbfs_and_ebu_reference_level() {
        let mut m = LoudnessMeter::new();
        // EBU Tech 3341, test 1: a 1 kHz sine at -23 dBFS on both channels reads -23 LUFS.
        m.process(&sine(1000.0, -23.0, 20.0));
        let r = m.read();
        assert!((r.rms_dbfs + 23.0).abs() < 0.05, "{r:?}");
        assert!((r.peak_dbfs + 23.0).abs() < 0.05, "{r:?}");
        for lufs in [r.momentary_lufs, r.short_term_lufs, r.integrated_lufs] {
            assert!((lufs + 23.0).abs() < 0.1, "{r:?}");
        }
    }

    #[test]
    fn the_relative_gate_leaves_out_the_quiet_passages_as_tech_3341_asks() {
        // Tech 3341, tests 3 and 4: -36, -23, -36 dBFS for 10, 60, 10 s reads -23 LUFS
        // integrated; so does -72, -36, -23, -36, -72 for 10, 10, 60, 10, 10 s (the absolute
        // gate leaves out the -72 parts).
        let mut m = LoudnessMeter::new();
        for (dbfs, s) in [(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)] {
            m.process(&sine(1000.0, dbfs, s));
        }
        assert!(
            (m.integrated_lufs() + 23.0).abs() < 0.1,
            "{}",
            m.integrated_lufs()
        );
        let mut m = LoudnessMeter::new();
        let parts = [
            (-72.0, 10.0),
            (-36.0, 10.0),
            (-23.0, 60.0),
            (-36.0, 10.0),
            (-72.0, 10.0),
        ];
        for (dbfs, s) in parts {
            m.process(&sine(1000.0, dbfs, s));
        }
        assert!(
            (m.integrated_lufs() + 23.0).abs() < 0.1,
            "{}",
            m.integrated_lufs()
        );
    }

    #[test]
    fn it_reads_what_libebur128_reads_on_programme_material_block_by_block() {
        let audio = programme(60.0);
        let mut ours = LoudnessMeter::new();
        let mut theirs = reference();
        let mut worst = [0f64; 3];
        // Fed in 20 ms frames, as the engine does, and read at every 100 ms block's end.
        for (i, frame) in audio.chunks(960 * 2).enumerate() {
            ours.process(frame);
            theirs.add_frames_f32(frame).unwrap();
            if (i + 1) % 5 != 0 {
                continue;
            }
            let pairs = [
                (ours.momentary_lufs(), theirs.loudness_momentary().unwrap()),
                (ours.short_term_lufs(), theirs.loudness_shortterm().unwrap()),
                (ours.integrated_lufs(), theirs.loudness_global().unwrap()),
            ];
            for (w, (a, b)) in worst.iter_mut().zip(pairs) {
                // Digital silence: both filters decay into numbers far below anything audible
                // (libebur128 reads -600 LUFS and so on, this meter -inf once its state is
                // cleared): all of that is silence.
                let silent = |x: f64| if x < -200.0 { f64::NEG_INFINITY } else { x };
                let (a, b) = (silent(f64::from(a)), silent(b));
                if b.is_finite() || a.is_finite() {
                    assert!(a.is_finite() && b.is_finite(), "block {i}: {a} vs {b}");
                    *w = w.max((a - b).abs());
                }
            }
        }
        // The same sums, rounded differently: far inside the tolerance. Integrated could
        // differ by the blocks that share the relative gate's 0.1 LU bin.
        assert!(
            worst[0] < 0.001 && worst[1] < 0.001,
            "momentary/short-term off by {worst:?}"
        );
        assert!(worst[2] < 0.01, "integrated off by {worst:?}");
        assert!(ours.integrated_lufs() > -40.0, "{}", ours.integrated_lufs());
    }

    #[test]
    fn an_hour_of_blocks_reads_the_exactly_gated_mean() {
        // An hour of 100 ms blocks at loud, quiet, very quiet and silent levels: the gating
        // blocks (means of 4) spread over every level, and both gates leave some out. The
        // histogram, fed block by block, reads what gating every block exactly reads.
        let energy = |db: f64| 10f64.powf((db + 0.691) / 10.0);
        let pattern = |i: u64| match i % 10 {
            0..=2 => energy(-20.0),
            3..=5 => energy(-30.0),
            6 | 7 => energy(-60.0),
            _ => 0.0,
        };
        let mut m = Loudness::new();
        for i in 0..36_000u64 {
            m.block_sum = pattern(i) * f64::from(BLOCK_FRAMES);
            m.block_frames = BLOCK_FRAMES;
            m.finish_block();
        }
        let gating: Vec<f64> = (3..36_000u64)
            .map(|end| (end - 3..=end).map(pattern).sum::<f64>() / 4.0)
            .filter(|&g| loudness(g) >= ABSOLUTE_GATE_LUFS)
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let threshold = loudness(mean(&gating)) + RELATIVE_GATE_LU;
        let kept: Vec<f64> = gating
            .iter()
            .copied()
            .filter(|&g| loudness(g) >= threshold)
            .collect();
        assert!(
            kept.len() < gating.len(),
            "the relative gate left nothing out"
        );
        let want = loudness(mean(&kept));
        let got = f64::from(m.integrated_lufs());
        assert!((got - want).abs() < 0.01, "{got} vs {want}");
    }

    #[test]
    fn silence_reads_minus_infinity_and_a_nan_is_forgotten_with_its_block() {
        let mut m = LoudnessMeter::new();
        m.process(&vec![0.0; 48_000 * 2]);
        assert_eq!(m.momentary_lufs(), f32::NEG_INFINITY);
        assert_eq!(m.short_term_lufs(), f32::NEG_INFINITY);
        assert_eq!(m.integrated_lufs(), f32::NEG_INFINITY);
        let mut bad = sine(1000.0, -23.0, 0.1);
        bad[100] = f32::NAN;
        m.process(&bad);
        m.process(&sine(1000.0, -23.0, 5.0));
        let r = m.read();
        assert!((r.momentary_lufs + 23.0).abs() < 0.1, "{r:?}");
        assert!(r.integrated_lufs.is_finite(), "{r:?}");
        m.reset();
        assert_eq!(m.momentary_lufs(), f32::NEG_INFINITY);
        assert_eq!(m.short_term_lufs(), f32::NEG_INFINITY);
        assert_eq!(m.integrated_lufs(), f32::NEG_INFINITY);
        m.process(&sine(1000.0, -23.0, 5.0));
        assert!(
            (m.integrated_lufs() + 23.0).abs() < 0.1,
            "{}",
            m.integrated_lufs()
        );
    }
}
