//! A windowed-sinc resampler into 48 kHz whose ratio can be steered a little at every block:
//! what a live lane needs to follow a device's clock.
//!
//! A fixed number of output frames comes out of every block; the caller asks how many input
//! frames that takes ([`SteeredResampler::input_frames_next`]) and hands exactly those. A
//! change of ratio ramps across the next block, so steering never steps the pitch.
//!
//! The filter is a Kaiser-windowed sinc cut at the Nyquist frequency of the lower rate, flat
//! (within 0.002 dB) to 20 kHz at 48 kHz and with images of the input 80 dB down from 28 kHz:
//! 32 taps for a source at 48 kHz or less, more for a faster one that must be filtered down.
//! It is kept as a table of 256 fractional delays, and each output frame interpolates linearly
//! between two neighbouring ones: one kernel per frame, shared by both channels, each channel
//! one dot product over a planar history. Every live lane runs this for as long as the host
//! is live, so the work per frame is kept to that.

use super::{DspError, SAMPLE_RATE};

/// Fractional delays in the table.
const PHASES: usize = 256;
/// Positions and steps are fixed-point numbers of input frames with this many fraction bits:
/// a frame's position is then a shift and a mask, and a block's positions add up exactly, with
/// no rounding to disagree between the frames a block asks for and the frames it reads.
const FRACTION_BITS: u32 = 32;
/// The fraction bits below the table's phase: how far between two kernels a frame falls.
const WITHIN_BITS: u32 = FRACTION_BITS - PHASES.trailing_zeros();
/// How far images of the input are pushed down, dB.
const STOPBAND_DB: f64 = 80.0;

/// Steers `channels` (1 or 2) interleaved channels from one rate into 48 kHz.
pub struct SteeredResampler {
    channels: usize,
    taps: usize,
    /// `PHASES + 1` kernels of `taps`, for fractional delays 0, 1/256, ..., 1.
    table: Vec<f32>,
    /// Each channel's input, planar: history the next frame's kernel reaches back to, then new.
    history: [Vec<f32>; 2],
    /// Frames in `history`.
    held: usize,
    /// How many of the last frames in `history` are digital silence (on every channel): when
    /// that is all of it, the block is silence, and no kernel is run (a paused game, a muted
    /// mic, a room where nobody speaks).
    silent: usize,
    /// Where the next output frame falls, in input frames from the start of `history`
    /// (fixed-point, [`FRACTION_BITS`]).
    position: i64,
    /// Input frames per output frame now, and where the next block ramps it to (fixed-point).
    step: i64,
    target: i64,
    /// Input frames per output frame at the nominal ratio, and the bounds steering keeps in.
    nominal: f64,
    lowest: f64,
    highest: f64,
    frames_out: usize,
}

impl std::fmt::Debug for SteeredResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteeredResampler")
            .field("channels", &self.channels)
            .field("taps", &self.taps)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl SteeredResampler {
    /// A resampler from `rate` Hz to 48 kHz giving `frames_out` frames a block, which steering
    /// may speed up or slow down by at most the factor `max_relative` (above 1).
    ///
    /// # Errors
    /// A rate outside 8-192 kHz, a channel count other than 1 or 2, no output frames, or a
    /// steering range below 1 or above 2.
    pub fn new(
        rate: u32,
        channels: usize,
        frames_out: usize,
        max_relative: f64,
    ) -> Result<Self, DspError> {
        if !(8_000..=192_000).contains(&rate) {
            return Err(DspError::UnsupportedRate(rate));
        }
        if !(1..=2).contains(&channels) {
            return Err(DspError::UnsupportedChannels(channels, "1 or 2"));
        }
        if frames_out == 0 || !(1.0..=2.0).contains(&max_relative) {
            return Err(DspError::OutOfRange {
                name: "steering range",
                value: max_relative as f32,
                range: "1 to 2, with at least one frame a block",
            });
        }
        let nominal = f64::from(rate) / f64::from(SAMPLE_RATE);
        let (taps, cutoff) = design(rate);
        let table = kernels(taps, cutoff);
        let highest = nominal * max_relative;
        // The last frame of a block falls at most `highest` frames a frame past the first,
        // which falls within `taps / 2` of the history's start; its kernel reaches `taps / 2`
        // further.
        let frames = taps + (highest * frames_out as f64).ceil() as usize + 2;
        let history = [
            vec![0.0; frames],
            vec![0.0; if channels == 2 { frames } else { 0 }],
        ];
        Ok(Self {
            channels,
            taps,
            table,
            history,
            // Silence before the first frame, as far back as the first kernel reaches.
            held: taps / 2 - 1,
            silent: taps / 2 - 1,
            position: ((taps / 2 - 1) as i64) << FRACTION_BITS,
            step: fixed(nominal),
            target: fixed(nominal),
            nominal,
            lowest: nominal / max_relative,
            highest,
            frames_out,
        })
    }

    /// Sets the ratio relative to the nominal one (above 1: more output per input, as
    /// rubato's relative ratio), kept within the range given at construction. The next block
    /// ramps to it.
    pub fn set_relative(&mut self, relative: f64) {
        if relative.is_finite() && relative > 0.0 {
            self.target = fixed((self.nominal / relative).clamp(self.lowest, self.highest));
        }
    }

    /// Input frames the next [`process`](Self::process) takes.
    #[must_use]
    pub fn input_frames_next(&self) -> usize {
        let (last, _, _) = split(self.position_of(self.frames_out - 1));
        // The last frame's kernel reaches `taps / 2` frames past its own.
        (last + self.taps / 2 + 1).saturating_sub(self.held)
    }

    /// The most input frames a block can take.
    #[must_use]
    pub fn input_frames_max(&self) -> usize {
        // What is held and what comes never exceed the history (see `new`).
        self.history[0].len()
    }

    /// Resamples one block: `input` holds (interleaved) the frames
    /// [`input_frames_next`](Self::input_frames_next) asked for, `out` receives `frames_out`
    /// interleaved frames. Never allocates.
    ///
    /// # Errors
    /// `input` not the size asked for, or `out` too small.
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) -> Result<(), DspError> {
        let ch = self.channels;
        let need = self.input_frames_next();
        if input.len() != need * ch {
            return Err(DspError::WrongInputSize {
                have: input.len(),
                need: need * ch,
            });
        }
        if out.len() < self.frames_out * ch {
            return Err(DspError::OutputTooSmall {
                have: out.len(),
                need: self.frames_out * ch,
            });
        }
        let held = self.held;
        if ch == 1 {
            self.history[0][held..held + need].copy_from_slice(input);
        } else {
            let [left, right] = &mut self.history;
            for ((frame, l), r) in input
                .chunks_exact(2)
                .zip(&mut left[held..held + need])
                .zip(&mut right[held..held + need])
            {
                *l = frame[0];
                *r = frame[1];
            }
        }
        self.held += need;
        self.silent = if input.iter().all(|&x| x == 0.0) {
            self.silent + need
        } else {
            input.iter().rev().take_while(|&&x| x == 0.0).count() / ch
        };

        if self.silent >= self.held {
            out[..self.frames_out * ch].fill(0.0);
        } else {
            match (self.taps, ch) {
                (32, 1) => self.render::<32, 1>(out),
                (32, _) => self.render::<32, 2>(out),
                (64, 1) => self.render::<64, 1>(out),
                (64, _) => self.render::<64, 2>(out),
                (_, 1) => self.render::<128, 1>(out),
                _ => self.render::<128, 2>(out),
            }
        }

        // Move on: the next block starts where this one ended, at the ramp's end.
        let half = self.taps / 2;
        let next = self.position_of(self.frames_out);
        // The ramp's whole-unit rise ends within `frames_out` units (2e-7 of a frame) of the
        // target: the next block goes on from the target itself.
        self.step = self.target;
        let drop = (split(next).0 + 1).saturating_sub(half).min(self.held);
        for c in 0..ch {
            self.history[c].copy_within(drop..self.held, 0);
        }
        self.held -= drop;
        self.silent = self.silent.min(self.held);
        self.position = next - ((drop as i64) << FRACTION_BITS);
        Ok(())
    }

    /// Writes the block's frames from the history: `T` taps and `C` channels are constants,
    /// so that the compiler unrolls the kernel into vector instructions.
    fn render<const T: usize, const C: usize>(&self, out: &mut [f32]) {
        let (rows, _) = self.table.as_chunks::<T>();
        let ramp = self.ramp();
        let (mut position, mut step) = (ramp.start, ramp.step);
        for frame in out.chunks_exact_mut(C).take(self.frames_out) {
            // Frame n is at start + n step + rise n (n - 1) / 2, as `Ramp::at` says.
            let (whole, row, within) = split(position);
            position += step;
            step += ramp.rise;
            let first = (whole + 1).saturating_sub(T / 2);
            let (Some(near), Some(far)) = (rows.get(row), rows.get(row + 1)) else {
                return;
            };
            let input = |c: usize| {
                self.history[c]
                    .get(first..first + T)
                    .and_then(|x| <&[f32; T]>::try_from(x).ok())
            };
            let Some(left) = input(0) else { return };
            if C == 1 {
                frame[0] = filter(near, far, within, left);
            } else {
                let Some(right) = input(1) else { return };
                [frame[0], frame[1]] = filter2(near, far, within, left, right);
            }
        }
    }

    /// Where output frame `n` of the next block falls.
    fn position_of(&self, n: usize) -> i64 {
        self.ramp().at(n)
    }

    fn ramp(&self) -> Ramp {
        Ramp {
            start: self.position,
            step: self.step,
            rise: (self.target - self.step) / self.frames_out as i64,
        }
    }
}

/// Input frames per output frame as a fixed-point step.
fn fixed(frames: f64) -> i64 {
    (frames * (1u64 << FRACTION_BITS) as f64).round() as i64
}

/// A position as its whole frame, the table row at or below its fraction, and how far it lies
/// towards the next row (0 up to 1). Positions are never negative.
fn split(position: i64) -> (usize, usize, f32) {
    let position = position.max(0) as u64;
    let whole = (position >> FRACTION_BITS) as usize;
    let row = ((position >> WITHIN_BITS) as usize) & (PHASES - 1);
    let within = (position & ((1 << WITHIN_BITS) - 1)) as f32 / (1u32 << WITHIN_BITS) as f32;
    (whole, row, within)
}

/// The next block's positions: the step ramps linearly from its present value towards the
/// target across the block, by a whole number of fixed-point units a frame.
#[derive(Clone, Copy)]
struct Ramp {
    start: i64,
    step: i64,
    /// Added to the step at every frame.
    rise: i64,
}

impl Ramp {
    /// Exactly the sum the renderer's running position makes.
    fn at(self, n: usize) -> i64 {
        let n = n as i64;
        self.start + n * self.step + self.rise * (n * (n - 1) / 2)
    }
}

/// One output sample: `x` under the kernel `within` of the way from `near` to `far`, made as
/// it is used. Products side by side, then halved and added side by side down to four, as
/// element-wise loops compile to whole-register vector instructions where running sums do
/// not. Kept out of line, as [`filter2`] is, so that it compiles on its own.
#[inline(never)]
fn filter<const T: usize>(near: &[f32; T], far: &[f32; T], within: f32, x: &[f32; T]) -> f32 {
    let mut p = [0.0f32; T];
    for i in 0..T {
        p[i] = (near[i] + within * (far[i] - near[i])) * x[i];
    }
    fold(&mut p)
}

/// [`filter`] for two channels at once: the kernel is made once for both. Its own function,
/// not `filter` generic over the channel count: written over `[[f32; T]; C]` the stereo loop
/// spills its products to the stack and the sums go through an out-of-line call.
#[inline(never)]
fn filter2<const T: usize>(
    near: &[f32; T],
    far: &[f32; T],
    within: f32,
    left: &[f32; T],
    right: &[f32; T],
) -> [f32; 2] {
    let (mut l, mut r) = ([0.0f32; T], [0.0f32; T]);
    for i in 0..T {
        let k = near[i] + within * (far[i] - near[i]);
        l[i] = k * left[i];
        r[i] = k * right[i];
    }
    [fold(&mut l), fold(&mut r)]
}

/// The sum of `p` (a power of two long, 4 or more), pairwise: the top half onto the bottom
/// half until four are left.
#[inline(always)]
fn fold<const T: usize>(p: &mut [f32; T]) -> f32 {
    let mut n = T / 2;
    while n >= 4 {
        for i in 0..n {
            p[i] += p[i + n];
        }
        n /= 2;
    }
    (p[0] + p[2]) + (p[1] + p[3])
}

/// Taps and cutoff (relative to the input's Nyquist frequency) for a source at `rate`: the
/// passband reaches 20 kHz (or 5/12 of the lower rate, if that is less) and the stopband starts
/// as far above the lower rate's Nyquist frequency; Kaiser's formula gives the taps for
/// [`STOPBAND_DB`], rounded up to a power of two.
fn design(rate: u32) -> (usize, f64) {
    let rate = f64::from(rate);
    let low = rate.min(f64::from(SAMPLE_RATE));
    let pass = (low * 5.0 / 12.0).min(20_000.0);
    let transition = 2.0 * std::f64::consts::PI * (low - 2.0 * pass) / rate;
    let taps = ((STOPBAND_DB - 8.0) / (2.285 * transition)).ceil() as usize + 1;
    // 32, 64 or 128 (a source at 192 kHz needs 124): the kernels the renderer is built for.
    (taps.next_power_of_two().clamp(32, 128), low / rate)
}

/// The kernels for fractional delays 0..=1 in `PHASES` steps: tap `k` of delay `d` weighs the
/// input frame `k - (taps/2 - 1)` frames from the output frame, minus `d`. Each kernel sums to
/// one, so no delay changes the level.
fn kernels(taps: usize, cutoff: f64) -> Vec<f32> {
    let half = (taps / 2) as f64;
    let beta = 0.1102 * (STOPBAND_DB - 8.7);
    let mut table = Vec::with_capacity((PHASES + 1) * taps);
    for p in 0..=PHASES {
        let delay = p as f64 / PHASES as f64;
        let row: Vec<f64> = (0..taps)
            .map(|k| {
                let x = k as f64 - (half - 1.0) - delay;
                sinc(cutoff * x) * kaiser(x / half, beta)
            })
            .collect();
        let sum: f64 = row.iter().sum();
        table.extend(row.iter().map(|v| (v / sum) as f32));
    }
    table
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Kaiser's window over -1..1 (zero outside).
fn kaiser(x: f64, beta: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    bessel_i0(beta * (1.0 - x * x).sqrt()) / bessel_i0(beta)
}

/// The modified Bessel function of the first kind, order 0, by its series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let mut k = 1.0;
    while term > 1e-15 * sum {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sine of `hz` at `rate` through blocks of 960 at `relative`; returns the output
    /// and the input frames used.
    fn run(rate: u32, channels: usize, hz: f64, relative: f64, blocks: usize) -> (Vec<f32>, usize) {
        let mut r = SteeredResampler::new(rate, channels, 960, 1.01).unwrap();
        r.set_relative(relative);
        let mut fed = 0usize;
        let mut out = vec![0.0; 960 * channels];
        let mut all = Vec::new();
        let mut input = vec![0.0; r.input_frames_max() * channels];
        for _ in 0..blocks {
            let need = r.input_frames_next();
            for i in 0..need {
                let v = (0.5
                    * (2.0 * std::f64::consts::PI * hz * (fed + i) as f64 / f64::from(rate)).sin())
                    as f32;
                for c in 0..channels {
                    input[i * channels + c] = if c == 0 { v } else { -v };
                }
            }
            fed += need;
            r.process(&input[..need * channels], &mut out).unwrap();
            all.extend_from_slice(&out);
        }
        (all, fed)
    }

    /// The largest error of `out` (frames of 48 kHz, after the first block) against the sine
    /// of `hz` at `rate` the input held, sampled where the steering put each output frame: the
    /// first block ramps the step from nominal to `relative`, later ones hold it.
    fn worst_error(out: &[f32], channels: usize, rate: u32, hz: f64, relative: f64) -> f64 {
        let nominal = f64::from(rate) / 48_000.0;
        let step = nominal / relative;
        let mut worst = 0.0f64;
        for (n, frame) in out.chunks(channels).enumerate().skip(960) {
            let t = n as f64 * step + (nominal - step) * 961.0 / 2.0;
            let want = 0.5 * (2.0 * std::f64::consts::PI * hz * t / f64::from(rate)).sin();
            worst = worst.max((f64::from(frame[0]) - want).abs());
            if channels == 2 {
                worst = worst.max((f64::from(frame[1]) + want).abs());
            }
        }
        20.0 * (worst / 0.5).log10()
    }

    #[test]
    fn silence_comes_out_as_silence_and_a_sound_after_it_whole() {
        // The same sound after a second of silence, through a resampler that skips the kernel
        // on silence and, as a reference, one whose history never goes quiet (a 1e-30 offset,
        // far below anything audible, keeps it running): the outputs agree.
        for channels in [1, 2] {
            let mut quiet = SteeredResampler::new(44_100, channels, 960, 1.01).unwrap();
            let mut busy = SteeredResampler::new(44_100, channels, 960, 1.01).unwrap();
            let mut out_quiet = vec![1.0; 960 * channels];
            let mut out_busy = vec![0.0; 960 * channels];
            let mut fed = 0usize;
            for block in 0..100 {
                let need = quiet.input_frames_next();
                assert_eq!(need, busy.input_frames_next());
                let input: Vec<f32> = (fed..fed + need)
                    .flat_map(|n| {
                        let v = if n < 44_100 {
                            0.0
                        } else {
                            (0.5 * (2.0 * std::f64::consts::PI * 1_000.0 * n as f64 / 44_100.0)
                                .sin()) as f32
                        };
                        std::iter::repeat_n(v, channels)
                    })
                    .collect();
                fed += need;
                let nudged: Vec<f32> = input.iter().map(|x| x + 1e-30).collect();
                quiet.process(&input, &mut out_quiet).unwrap();
                busy.process(&nudged, &mut out_busy).unwrap();
                if block < 45 {
                    assert!(out_quiet.iter().all(|&x| x == 0.0), "block {block}");
                }
                for (a, b) in out_quiet.iter().zip(&out_busy) {
                    assert!((a - b).abs() < 1e-6, "block {block}: {a} against {b}");
                }
            }
        }
    }

    #[test]
    fn a_sine_at_48k_comes_through_clean_at_any_steering() {
        for relative in [1.0, 1.003, 0.997] {
            // Up to 20 kHz: the game's highs keep their level.
            for hz in [1_000.0, 12_000.0, 16_000.0, 20_000.0] {
                let (out, _) = run(48_000, 2, hz, relative, 20);
                let db = worst_error(&out, 2, 48_000, hz, relative);
                assert!(db < -70.0, "{hz} Hz at {relative}: error {db:.1} dB");
            }
        }
    }

    #[test]
    fn a_slower_or_faster_source_is_resampled_clean() {
        for (rate, hz) in [
            (44_100, 1_000.0),
            (44_100, 18_000.0),
            (96_000, 19_000.0),
            (16_000, 6_000.0),
        ] {
            let (out, _) = run(rate, 1, hz, 1.0, 20);
            let db = worst_error(&out, 1, rate, hz, 1.0);
            assert!(db < -70.0, "{rate} Hz: {hz} Hz has an error of {db:.1} dB");
        }
    }

    #[test]
    fn steering_takes_more_or_less_input_as_asked() {
        for (relative, rate) in [(1.0, 48_000), (1.002, 48_000), (0.998, 44_100)] {
            let blocks = 500;
            let (_, fed) = run(rate, 1, 440.0, relative, blocks);
            let want = blocks as f64 * 960.0 * f64::from(rate) / 48_000.0 / relative;
            // Within the kernel's reach (plus the first block's ramp from nominal).
            assert!(
                (fed as f64 - want).abs() < 32.0 + 960.0 * (1.0 - 1.0 / relative).abs(),
                "{rate} Hz at {relative}: {fed} frames for {want:.0}"
            );
        }
    }

    #[test]
    fn a_step_in_the_ratio_ramps_without_a_click() {
        let mut r = SteeredResampler::new(48_000, 1, 960, 1.01).unwrap();
        let mut out = vec![0.0; 960];
        let mut input = vec![0.0; r.input_frames_max()];
        let mut fed = 0usize;
        let mut prev = [0.0f32; 2];
        let mut worst = 0.0f32;
        for block in 0..100 {
            if block % 10 == 5 {
                r.set_relative(if block % 20 == 5 { 1.005 } else { 0.995 });
            }
            let need = r.input_frames_next();
            for (i, s) in input[..need].iter_mut().enumerate() {
                *s = (0.5
                    * (2.0 * std::f64::consts::PI * 1_000.0 * (fed + i) as f64 / 48_000.0).sin())
                    as f32;
            }
            fed += need;
            r.process(&input[..need], &mut out).unwrap();
            for &x in &out {
                if block > 0 {
                    worst = worst.max((x - 2.0 * prev[1] + prev[0]).abs());
                }
                prev = [prev[1], x];
            }
        }
        // A 1 kHz sine at 0.5 has a second difference of at most 0.5 (2 pi 1000/48000)^2.
        assert!(worst < 0.0092, "{worst}");
    }

    #[test]
    fn a_ramps_positions_are_the_running_sum_the_renderer_makes() {
        for rise in [-7_000, -1, 0, 3, 12_345] {
            let ramp = Ramp {
                start: 15 << FRACTION_BITS,
                step: fixed(0.918_75),
                rise,
            };
            let (mut position, mut step) = (ramp.start, ramp.step);
            for n in 0..2_000 {
                assert_eq!(ramp.at(n), position, "frame {n}, rise {rise}");
                position += step;
                step += rise;
            }
        }
        // A position splits into its frame, its row and the way to the next row.
        let p = (7 << FRACTION_BITS) + (3 << WITHIN_BITS) + (1 << (WITHIN_BITS - 1));
        assert_eq!(split(p), (7, 3, 0.5));
        assert_eq!(split((1 << FRACTION_BITS) - 1).1, PHASES - 1);
    }

    #[test]
    fn bad_parameters_and_wrong_blocks_are_errors() {
        assert!(SteeredResampler::new(7_000, 1, 960, 1.01).is_err());
        assert!(SteeredResampler::new(48_000, 3, 960, 1.01).is_err());
        assert!(SteeredResampler::new(48_000, 1, 0, 1.01).is_err());
        assert!(SteeredResampler::new(48_000, 1, 960, 0.5).is_err());
        let mut r = SteeredResampler::new(48_000, 2, 960, 1.01).unwrap();
        let mut out = vec![0.0; 1_920];
        assert!(r.process(&[0.0; 10], &mut out).is_err());
        let need = r.input_frames_next();
        assert!(r.process(&vec![0.0; need * 2], &mut out[..10]).is_err());
        r.process(&vec![0.0; need * 2], &mut out).unwrap();
    }
}
