//! The microphone's noise suppression: nnnoiseless (RNNoise), resting while the host is not
//! speaking.
//!
//! The denoiser is the costliest stage of the live engine after Opus, and a real microphone is
//! never silent: its noise floor would keep the denoiser's network running all the time, although
//! a host spends much of a room listening. So once the denoiser's own voice detector has heard
//! nothing but noise for half a second, and it has turned that noise 30 dB down, it rests: what it
//! left of the noise is then turned down by the same amount, measured while it ran, and fades on,
//! at almost no cost. The first frame that rises above the noise it learned, broadband or in any
//! octave from 400 Hz to 6.4 kHz (where a voice's harmonics and fricatives stand out of a floor
//! before its whole level does), wakes it: it catches up on the frames just before, so its windows
//! and pitch history hold the present, and takes over in a crossfade. Its output is 10 ms late
//! (one frame); resting keeps that timing, so nothing shifts.
//!
//! Samples are `f32`, full scale 1.0, 48 kHz mono, in frames of [`Denoiser::FRAME`]. It never
//! allocates after construction. It is for the voice alone: the game is never denoised.

use super::Biquad;

/// Frames the voice detector must call noise before the denoiser rests (0.5 s: longer than the
/// pauses between words).
const REST_AFTER_FRAMES: u32 = 50;
/// A frame is noise when the detector gives it a voice probability below this.
const NOISE_VAD: f32 = 0.1;
/// Frames caught up on when it wakes (80 ms): its windows and pitch history (36 ms) come back to
/// the present. Its recurrent layers keep what they learned of the noise: after a rest of half
/// a second, four frames give the same output as a denoiser that never rested; eight leave a
/// margin.
const CATCH_UP_FRAMES: usize = 8;
/// The frames kept: those caught up on, and the newest.
const HISTORY_FRAMES: usize = CATCH_UP_FRAMES + 1;
/// How far above the learned noise a frame must rise to wake it (energy ratio: 4 dB).
const WAKE_RATIO: f32 = 2.5;
/// The same in one octave (5 dB: an octave's level over 10 ms wavers more than the whole's).
const BAND_WAKE_RATIO: f32 = 3.2;
/// The octaves watched: their centre frequencies (400-800 Hz ... 3.2-6.4 kHz).
const BANDS: [f32; 4] = [566.0, 1_131.0, 2_263.0, 4_525.0];
/// How fast the noise estimate follows the frames called noise while it runs (per frame).
const LEARN: f32 = 0.1;
/// And how fast the rest gain follows what the denoiser leaves of the noise: its last few frames,
/// the quietest it has made the noise yet.
const LEARN_GAIN: f32 = 0.3;
/// How fast the estimate may rise while resting (per frame: a fan spinning up, not a voice).
const DRIFT_UP: f32 = 0.005;
/// And how fast it may fall (per frame: the noise stopped).
const DRIFT_DOWN: f32 = 0.05;
/// While it rests, what is left of the noise keeps fading, as the denoiser's own residue does the
/// longer it hears nothing but noise (per frame: about 26 dB a second).
const REST_FADE: f32 = 0.97;
/// It rests only once it turns the noise down this far (amplitude: 30 dB). RNNoise deepens its
/// suppression over seconds of steady noise (from about 6 dB down after one second to 40 dB
/// after three, on a steady floor). Resting earlier would freeze it shallow, and a wake that
/// brings no voice (a click, a cough) would then let the floor through for a second or two,
/// where a denoiser that never rested would have it 40 dB down. Noise it cannot turn down
/// this far (babble, music from speakers) keeps it running.
const REST_DEPTH: f32 = 0.03;
/// Or once what it leaves of the noise is this quiet (mean square: -90 dBFS), however shallow:
/// woken without a voice, it then lets through about what it left when it began to rest. A good
/// microphone's floor gets there long before it is 30 dB down: on a floor at -60 dBFS a host
/// who mostly listens lets it rest about half the time instead of an eighth, at the same
/// ViSQOL scores.
const REST_QUIET: f32 = 1e-9;
/// A rest gain below this (-120 dB) is silence.
const SILENT_GAIN: f32 = 1e-6;
/// Full scale in the 16-bit units nnnoiseless works in.
const SCALE: f32 = 32_768.0;

/// nnnoiseless with a rest while nothing but noise comes in. See the module documentation.
pub struct Denoiser {
    state: Box<nnnoiseless::DenoiseState<'static>>,
    /// Whether it may rest at all (off: it runs on every frame, as nnnoiseless alone).
    may_rest: bool,
    resting: bool,
    /// It skipped frames: the next one it hears starts clean.
    missed: bool,
    /// The last frames in (full scale), a ring of frames, for the catch-up and the 10 ms delay.
    history: Vec<f32>,
    /// The ring's slot of the newest frame.
    newest: usize,
    input: Vec<f32>,
    output: Vec<f32>,
    bands: [Biquad; BANDS.len()],
    /// The octave filters ran over the frame before this one.
    watched_last: bool,
    quiet_frames: u32,
    /// Mean square of a noise frame, broadband and in each octave.
    noise: f32,
    band_noise: [f32; BANDS.len()],
    /// The denoiser's output level against its input on noise (amplitude).
    rest_gain: f32,
    /// Frames it ran (not counting catch-up) and frames it rested, since it was made.
    ran: u64,
    rested: u64,
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser")
            .field("resting", &self.resting)
            .field("ran", &self.ran)
            .field("rested", &self.rested)
            .finish_non_exhaustive()
    }
}

impl Default for Denoiser {
    fn default() -> Self {
        Self::new()
    }
}

impl Denoiser {
    /// Samples in a frame (10 ms at 48 kHz).
    pub const FRAME: usize = nnnoiseless::DenoiseState::FRAME_SIZE;

    /// A denoiser that rests on noise.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: nnnoiseless::DenoiseState::new(),
            may_rest: true,
            resting: false,
            missed: false,
            history: vec![0.0; HISTORY_FRAMES * Self::FRAME],
            newest: 0,
            input: vec![0.0; Self::FRAME],
            output: vec![0.0; Self::FRAME],
            bands: BANDS
                .map(|f| Biquad::band_pass(f, std::f32::consts::SQRT_2, super::SAMPLE_RATE)),
            watched_last: false,
            quiet_frames: 0,
            noise: 0.0,
            band_noise: [0.0; BANDS.len()],
            rest_gain: 0.0,
            ran: 0,
            rested: 0,
        }
    }

    /// Lets it rest on noise (the default), or makes it run on every frame.
    #[must_use]
    pub fn with_rest(mut self, may_rest: bool) -> Self {
        self.may_rest = may_rest;
        self
    }

    /// Whether it is resting now.
    #[must_use]
    pub fn resting(&self) -> bool {
        self.resting
    }

    /// Frames it ran and frames it rested, so far.
    #[must_use]
    pub fn counts(&self) -> (u64, u64) {
        (self.ran, self.rested)
    }

    /// A frame it does not hear (the mic muted or digital silence, or suppression switched
    /// off): costs nothing, and the next frame it hears starts clean, with nothing from before
    /// the gap in its windows.
    pub fn skip(&mut self) {
        self.missed = true;
    }

    /// Whether it skipped frames since it last ran, so the next frame it hears starts clean.
    #[must_use]
    pub fn starts_clean(&self) -> bool {
        self.missed
    }

    /// Clears what it holds of the mic: the next frame starts as after silence. What its
    /// recurrent layers learned of the noise stays.
    fn start_clean(&mut self) {
        self.missed = false;
        self.history.fill(0.0);
        self.input.fill(0.0);
        self.state.process_frame(&mut self.output, &self.input);
        self.bands.iter_mut().for_each(Biquad::reset);
        self.watched_last = false;
        self.resting = false;
        self.quiet_frames = 0;
    }

    /// Denoises one frame of [`Denoiser::FRAME`] samples in place: its samples come out 10 ms
    /// (one frame) later. A slice of any other length is left as it is.
    pub fn process(&mut self, frame: &mut [f32]) {
        if frame.len() != Self::FRAME {
            return;
        }
        if self.missed {
            self.start_clean();
        }
        self.newest = (self.newest + 1) % HISTORY_FRAMES;
        self.slot_mut(self.newest).copy_from_slice(frame);

        if self.resting {
            let (energy, band_energy) = self.watch();
            if self.wakes(energy, &band_energy) {
                self.wake(frame);
            } else {
                self.rest(frame, energy, &band_energy);
            }
            return;
        }
        self.run_and_learn(frame);
    }

    /// Whether a frame of these energies rises far enough above the learned noise, broadband
    /// or in any octave, to wake it.
    fn wakes(&self, energy: f32, band_energy: &[f32; BANDS.len()]) -> bool {
        energy > self.noise * WAKE_RATIO
            || band_energy
                .iter()
                .zip(&self.band_noise)
                .any(|(&e, &n)| e > n * BAND_WAKE_RATIO)
    }

    /// Rests on a frame of noise: follows its level slowly and plays the frame before, turned
    /// down as far as the denoiser turned the noise down.
    fn rest(&mut self, frame: &mut [f32], energy: f32, band_energy: &[f32; BANDS.len()]) {
        self.noise = follow_slowly(self.noise, energy);
        for (n, &e) in self.band_noise.iter_mut().zip(band_energy) {
            *n = follow_slowly(*n, e);
        }
        self.rest_gain *= REST_FADE;
        if self.rest_gain < SILENT_GAIN {
            // Faded out (and never into subnormal numbers, a hundred times slower).
            self.rest_gain = 0.0;
            frame.fill(0.0);
        } else {
            // One frame late, as the denoiser's own output.
            for (s, &p) in frame
                .iter_mut()
                .zip(self.slot(self.newest + HISTORY_FRAMES - 1))
            {
                *s = p * self.rest_gain;
            }
        }
        self.rested += 1;
    }

    /// Wakes on a frame that may hold a voice: catches up on the frames before this one, then
    /// takes over from the rest's output over this frame.
    fn wake(&mut self, frame: &mut [f32]) {
        for k in 1..HISTORY_FRAMES {
            let slot = (self.newest + k) % HISTORY_FRAMES;
            let at = slot * Self::FRAME;
            for (d, &s) in self
                .input
                .iter_mut()
                .zip(&self.history[at..at + Self::FRAME])
            {
                *d = s * SCALE;
            }
            self.state.process_frame(&mut self.output, &self.input);
        }
        self.run(frame);
        let previous = self.slot(self.newest + HISTORY_FRAMES - 1);
        crossfade(frame, previous, self.rest_gain, true);
        self.resting = false;
        self.quiet_frames = 0;
    }

    /// Runs the denoiser on a frame; on noise, learns its level and what the denoiser leaves
    /// of it, and starts to rest once it has heard enough of it turned far enough down.
    fn run_and_learn(&mut self, frame: &mut [f32]) {
        let vad = self.run(frame);
        if !self.may_rest || vad >= NOISE_VAD {
            self.quiet_frames = 0;
            self.watched_last = false;
            return;
        }
        let (energy, band_energy) = self.watch();
        let out = mean_square(frame);
        if self.quiet_frames == 0 {
            self.noise = energy;
            self.band_noise = band_energy;
            self.rest_gain = ratio(out, energy);
        } else {
            self.noise += LEARN * (energy - self.noise);
            for (n, &e) in self.band_noise.iter_mut().zip(&band_energy) {
                *n += LEARN * (e - *n);
            }
            self.rest_gain += LEARN_GAIN * (ratio(out, energy) - self.rest_gain);
        }
        self.quiet_frames += 1;
        let residue = self.rest_gain * self.rest_gain * self.noise;
        if self.quiet_frames >= REST_AFTER_FRAMES
            && self.noise > 0.0
            && (self.rest_gain < REST_DEPTH || residue < REST_QUIET)
        {
            // From the next frame on, the rest's output: fade to it over this one.
            let previous = self.slot(self.newest + HISTORY_FRAMES - 1);
            crossfade(frame, previous, self.rest_gain, false);
            self.resting = true;
        }
    }

    /// The newest frame's mean square, broadband and in each octave, for the watch while it
    /// rests and the noise it learns while it runs: a voice costs nothing more than the
    /// denoiser. The octave filters run in one pass, their recurrences side by side; when they
    /// skipped the frame before (a voice), they run over it first, so nothing from long ago
    /// rings into this one.
    fn watch(&mut self) -> (f32, [f32; BANDS.len()]) {
        let at = |slot: usize| slot % HISTORY_FRAMES * Self::FRAME;
        if !self.watched_last {
            let before = at(self.newest + HISTORY_FRAMES - 1);
            for &s in &self.history[before..before + Self::FRAME] {
                for band in &mut self.bands {
                    band.process(s);
                }
            }
            self.watched_last = true;
        }
        let newest = at(self.newest);
        let frame = &self.history[newest..newest + Self::FRAME];
        let mut bands = [0.0; BANDS.len()];
        for &s in frame {
            for (band, e) in self.bands.iter_mut().zip(&mut bands) {
                let y = band.process(s);
                *e += y * y;
            }
        }
        for band in &mut self.bands {
            band.flush_tiny();
        }
        (mean_square(frame), bands.map(|e| e / Self::FRAME as f32))
    }

    /// The history's frame in `slot` (taken modulo the ring's length).
    fn slot(&self, slot: usize) -> &[f32] {
        let at = slot % HISTORY_FRAMES * Self::FRAME;
        &self.history[at..at + Self::FRAME]
    }

    fn slot_mut(&mut self, slot: usize) -> &mut [f32] {
        let at = slot % HISTORY_FRAMES * Self::FRAME;
        &mut self.history[at..at + Self::FRAME]
    }

    /// Runs nnnoiseless on a frame in place; its voice probability.
    fn run(&mut self, frame: &mut [f32]) -> f32 {
        for (d, &s) in self.input.iter_mut().zip(frame.iter()) {
            *d = s * SCALE;
        }
        let vad = self.state.process_frame(&mut self.output, &self.input);
        for (s, &d) in frame.iter_mut().zip(self.output.iter()) {
            *s = d / SCALE;
        }
        self.ran += 1;
        vad
    }
}

fn mean_square(x: &[f32]) -> f32 {
    x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32
}

/// Output amplitude against input amplitude, from their mean squares.
fn ratio(out: f32, energy: f32) -> f32 {
    if energy > 0.0 {
        (out / energy).sqrt()
    } else {
        0.0
    }
}

/// Down within a few hundred milliseconds, up ten times slower.
fn follow_slowly(level: f32, energy: f32) -> f32 {
    let rate = if energy < level { DRIFT_DOWN } else { DRIFT_UP };
    level + rate * (energy - level)
}

/// Crossfades (equal gain, over the frame) between the denoiser's output in `frame` and the
/// rest's, `previous` x `gain`: from the rest to the denoiser when `to_denoiser`, else back.
fn crossfade(frame: &mut [f32], previous: &[f32], gain: f32, to_denoiser: bool) {
    let n = frame.len() as f32;
    for (i, (s, &p)) in frame.iter_mut().zip(previous).enumerate() {
        let w = (i as f32 + 0.5) / n;
        let d = if to_denoiser { w } else { 1.0 - w };
        *s = d * *s + (1.0 - d) * p * gain;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::SAMPLE_RATE;

    /// A steady noise floor, about -55 dBFS RMS, spectrally tilted like a room's.
    struct Floor {
        seed: u32,
        low: f32,
    }

    impl Floor {
        fn new() -> Self {
            Self { seed: 1, low: 0.0 }
        }

        fn next(&mut self) -> f32 {
            self.seed = self
                .seed
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let white = (self.seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
            self.low += 0.2 * (white - self.low);
            0.004 * (self.low + 0.3 * white)
        }
    }

    /// A sung vowel: a 140 Hz glottal pulse train through two formants, rising and falling in
    /// syllables of 250 ms.
    struct Vowel {
        n: usize,
        f1: Biquad,
        f2: Biquad,
    }

    impl Vowel {
        fn new() -> Self {
            Self {
                n: 0,
                f1: Biquad::low_pass(700.0, 4.0, SAMPLE_RATE),
                f2: Biquad::low_pass(1_200.0, 6.0, SAMPLE_RATE),
            }
        }

        fn next(&mut self) -> f32 {
            let period = SAMPLE_RATE as usize / 140;
            let pulse = if self.n.is_multiple_of(period) {
                1.0
            } else {
                0.0
            };
            let t = self.n as f32 / SAMPLE_RATE as f32;
            let syllable = 0.2 + 0.8 * (std::f32::consts::PI * 4.0 * t).sin().abs();
            self.n += 1;
            0.5 * syllable * (self.f1.process(pulse) + 0.5 * self.f2.process(pulse))
        }
    }

    fn frame(mut f: impl FnMut() -> f32) -> Vec<f32> {
        (0..Denoiser::FRAME).map(|_| f()).collect()
    }

    fn rms_db(x: &[f32]) -> f32 {
        10.0 * (mean_square(x) + 1e-20).log10()
    }

    #[test]
    fn it_rests_on_a_noise_floor_and_keeps_it_down() {
        let mut d = Denoiser::new();
        let mut floor = Floor::new();
        let mut last = Vec::new();
        let mut since = None;
        for n in 0..400 {
            let mut f = frame(|| floor.next());
            d.process(&mut f);
            if d.resting() {
                since.get_or_insert(n);
            } else {
                assert!(since.is_none(), "woke at frame {n} on the floor alone");
            }
            last = f;
        }
        // A fresh denoiser takes about a second to be sure of the floor; then it rests.
        let since = since.unwrap_or(400);
        assert!(since < 250, "rested only from frame {since}");
        let (ran, rested) = d.counts();
        assert_eq!((ran, rested), (since + 1, 399 - since));
        assert!(
            rms_db(&last) < -90.0,
            "the rest lets {} dB through",
            rms_db(&last)
        );
        // Long at rest, what was left of the floor has faded to nothing (not to subnormal
        // numbers, which would cost a hundred times more to multiply).
        for _ in 0..3_000 {
            let mut f = frame(|| floor.next());
            d.process(&mut f);
            last = f;
        }
        assert!(d.resting());
        assert!(last.iter().all(|&s| s == 0.0));
        assert_eq!(d.rest_gain.to_bits(), 0);

        // The same floor, a denoiser that never rests: it never does.
        let mut always = Denoiser::new().with_rest(false);
        let mut floor = Floor::new();
        for _ in 0..400 {
            always.process(&mut frame(|| floor.next()));
        }
        assert_eq!(always.counts(), (400, 0));
    }

    /// A denoiser that rests and one that never does, on the same floor until the first rests,
    /// then the vowel (at `level`) over it for two seconds: the frame the resting one woke at
    /// (0: the vowel's first), and how far below the voice the two outputs differ, dB.
    fn rest_against_always(level: f32) -> (usize, f32) {
        let mut resting = Denoiser::new();
        let mut always = Denoiser::new().with_rest(false);
        let mut floor = Floor::new();
        for _ in 0..300 {
            let f = frame(|| floor.next());
            resting.process(&mut f.clone());
            always.process(&mut f.clone());
        }
        assert!(resting.resting());

        let mut vowel = Vowel::new();
        let mut woke = None;
        let (mut signal, mut apart) = (0.0f32, 0.0f32);
        for n in 0..200 {
            let f = frame(|| floor.next() + level * vowel.next());
            let (mut a, mut r) = (f.clone(), f);
            always.process(&mut a);
            resting.process(&mut r);
            if !resting.resting() {
                woke.get_or_insert(n);
            }
            signal += mean_square(&a);
            apart += a
                .iter()
                .zip(&r)
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f32>()
                / Denoiser::FRAME as f32;
        }
        assert!(signal > 0.0, "the vowel was not heard");
        (
            woke.unwrap_or(200),
            10.0 * (signal / apart.max(1e-20)).log10(),
        )
    }

    #[test]
    fn a_voice_wakes_it_on_its_first_frame_and_sounds_as_if_it_never_rested() {
        // Loud (19 dB over the floor), and soft (7 dB over it, its syllables' starts under it).
        for (level, name) in [(1.0, "loud"), (0.25, "soft")] {
            let (woke, below) = rest_against_always(level);
            assert_eq!(woke, 0, "a {name} voice woke it only at frame {woke}");
            assert!(
                below > 30.0,
                "resting changed a {name} voice: the difference only {below:.1} dB below it"
            );
        }
    }

    #[test]
    fn a_wake_without_a_voice_lets_no_more_noise_through_than_never_resting() {
        let mut resting = Denoiser::new();
        let mut always = Denoiser::new().with_rest(false);
        let mut floor = Floor::new();
        let mut both = |f: Vec<f32>| {
            let (mut a, mut r) = (f.clone(), f);
            always.process(&mut a);
            resting.process(&mut r);
            (a, r, resting.resting())
        };
        let mut rested = false;
        for _ in 0..400 {
            rested |= both(frame(|| floor.next())).2;
        }
        assert!(rested);
        let mut click = frame(|| floor.next());
        click[100] += 0.5;
        assert!(!both(click).2, "a click did not wake it");
        let (mut a, mut r) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let (x, y, _) = both(frame(|| floor.next()));
            a.extend(x);
            r.extend(y);
        }
        // A second of the floor after it: as far down as from a denoiser that never rested.
        assert!(
            rms_db(&r) < rms_db(&a) + 3.0,
            "after the click the floor came through at {:.1} dB, against {:.1} dB",
            rms_db(&r),
            rms_db(&a)
        );
    }

    /// Frames until a fresh denoiser rests on the floor scaled by `scale`, and the level it lets
    /// through after a click wakes it from that rest, dB (over the second after the click).
    fn rest_then_click(scale: f32) -> (usize, f32) {
        let mut d = Denoiser::new();
        let mut floor = Floor::new();
        let mut since = None;
        for n in 0..400 {
            d.process(&mut frame(|| scale * floor.next()));
            if d.resting() {
                since.get_or_insert(n);
            }
        }
        let mut click = frame(|| scale * floor.next());
        click[100] += 0.5;
        d.process(&mut click);
        let mut after = Vec::new();
        for n in 0..105 {
            let mut f = frame(|| scale * floor.next());
            d.process(&mut f);
            // The click itself comes out in the first frames.
            if n >= 5 {
                after.extend(f);
            }
        }
        (since.unwrap_or(400), rms_db(&after))
    }

    #[test]
    fn a_quiet_floor_rests_sooner_and_a_wake_lets_no_more_of_it_through_than_it_left() {
        let (loud_since, _) = rest_then_click(1.0);
        // The floor 20 dB down (about -78 dBFS): what the denoiser leaves of it is soon under
        // -90 dBFS, long before it is 30 dB down.
        let (quiet_since, after) = rest_then_click(0.1);
        assert!(
            quiet_since + 30 < loud_since,
            "a quiet floor rested from frame {quiet_since}, a louder one from {loud_since}"
        );
        assert!(
            after < -85.0,
            "woken by a click, it let the floor through at {after:.1} dB"
        );
    }

    #[test]
    fn the_rest_is_as_late_as_the_denoiser_and_its_edges_are_smooth() {
        let mut d = Denoiser::new();
        let mut floor = Floor::new();
        let mut out = Vec::new();
        let mut frames = 0;
        while !d.resting() {
            let mut f = frame(|| floor.next());
            d.process(&mut f);
            out.extend_from_slice(&f);
            frames += 1;
            assert!(frames < 500, "it never rested");
        }
        for _ in 0..20 {
            let mut f = frame(|| floor.next());
            d.process(&mut f);
            out.extend_from_slice(&f);
        }
        // A click 30 dB over the floor wakes it; it comes out a frame later, as from the
        // denoiser.
        let mut click = vec![0.0; Denoiser::FRAME];
        click[100] = 0.5;
        d.process(&mut click);
        assert!(!d.resting());
        let mut next = frame(|| floor.next());
        d.process(&mut next);
        let at = next
            .iter()
            .enumerate()
            .fold(
                (0, 0f32),
                |m, (i, s)| if s.abs() > m.1 { (i, s.abs()) } else { m },
            )
            .0;
        assert!(
            (60..140).contains(&at),
            "the click came out at {at}, not about 100"
        );
        // No step anywhere along the way: neighbouring samples never jump by more than the
        // floor itself does.
        out.extend_from_slice(&click);
        let jump = out
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0f32, f32::max);
        assert!(jump < 0.02, "a step of {jump} going to rest and back");
    }

    /// On a quiet floor (so what it leaves is audible to a test, about -100 dBFS) the rest
    /// carries on at the level the denoiser left, and plays each frame one frame late, as the
    /// denoiser does: a mark too small to wake it comes out where it went in, a frame later.
    #[test]
    fn the_rest_plays_the_floor_a_frame_late_at_the_level_the_denoiser_left() {
        let scale = 0.1;
        let mut d = Denoiser::new();
        let mut floor = Floor::new();
        let mut before = Vec::new();
        while !d.resting() {
            let mut f = frame(|| scale * floor.next());
            d.process(&mut f);
            before.push(rms_db(&f));
            assert!(before.len() < 500, "it never rested");
        }
        let peak_at = |f: &[f32]| {
            f.iter()
                .enumerate()
                .fold(
                    (0, 0f32),
                    |m, (i, s)| if s.abs() > m.1 { (i, s.abs()) } else { m },
                )
                .0
        };
        let mut after = Vec::new();
        let mut peaks = Vec::new();
        for n in 0..4 {
            let mut f = frame(|| scale * floor.next());
            if n == 1 {
                f[100] += 0.002;
            }
            d.process(&mut f);
            assert!(d.resting(), "the mark woke it");
            after.push(rms_db(&f));
            peaks.push(peak_at(&f));
        }
        assert_ne!(peaks[1], 100, "the mark came out at once, not a frame late");
        assert_eq!(peaks[2], 100, "the mark did not come out a frame late");
        let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len() as f32;
        let (was, is) = (mean(&before[before.len() - 3..]), mean(&after));
        assert!(
            (was - is).abs() < 3.0,
            "the floor went from {was:.1} dB to {is:.1} dB as it began to rest"
        );
    }

    /// A voice, then a gap it skips (muted, say), then the floor again: the first frame after
    /// the gap holds nothing of the voice from before it (the denoiser's output is a frame
    /// late, so without a clean start that frame would be the voice's last).
    #[test]
    fn after_a_gap_nothing_from_before_it_is_heard() {
        let mut d = Denoiser::new();
        let mut floor = Floor::new();
        let mut vowel = Vowel::new();
        let mut voice = Vec::new();
        for _ in 0..50 {
            let mut f = frame(|| floor.next() + vowel.next());
            d.process(&mut f);
            voice.extend(f);
        }
        for _ in 0..10 {
            d.skip();
        }
        assert!(d.starts_clean());
        let mut first = frame(|| floor.next());
        d.process(&mut first);
        assert!(!d.starts_clean());
        assert!(
            rms_db(&first) < rms_db(&voice) - 30.0,
            "the frame after the gap came out at {:.1} dB, the voice before it at {:.1} dB",
            rms_db(&first),
            rms_db(&voice)
        );
    }

    #[test]
    fn a_frame_of_the_wrong_length_is_left_alone() {
        let mut d = Denoiser::new();
        let mut short = vec![0.25; 100];
        d.process(&mut short);
        assert!(short.iter().all(|&s| s == 0.25));
        assert_eq!(d.counts(), (0, 0));
    }
}
