//! How whole a steady tone came through a recording: for `benches/soak.sh`, which plays a tone
//! into the game device for an hour and records the program. A sample dropped or repeated
//! anywhere on the way (a ring run dry or overfull, a resampler step, a lost packet) shows as a
//! step in the tone's phase and as a window the tone no longer fits.
//!
//!   cargo run --release --example tone_check -- FILE [HZ=440] [SKIP_S=2]
//!
//! FILE is anything Booth plays from a file (the Ogg Opus recording). The first channel is cut
//! into 5 ms windows from SKIP_S on (the start, while the lanes fill, is left out, and so is the
//! last frame, where the recording was cut); each is fitted with a sine at HZ. Prints the length,
//! the fit's signal-to-residual ratio (lowest, 0.1th percentile, median, windows under 30 dB), the
//! tone's level and how far it wandered, and the largest step in the tone's phase across two
//! windows beyond its advance in the 100 ms before, in samples (a dropped or repeated sample is a
//! step of 1, counted at the two window pairs that hold it; steering the ratio moves it by
//! thousandths). Exits non-zero when a step of half a sample or more, or a window under 30 dB, was
//! found. It only reads the file.
use std::f64::consts::TAU;
use std::path::Path;

use anyhow::{Context, bail};
use booth::audio::FileSource;

/// Window length, samples (5 ms at 48 kHz).
const WINDOW: usize = 240;
/// A window whose tone fits worse than this (dB) is called broken.
const BROKEN_DB: f64 = 30.0;
/// A phase step this large (samples) is called a drop or repeat.
const STEP_SAMPLES: f64 = 0.5;
/// Windows whose phase advance makes the steady one a step is measured against (100 ms).
const BASELINE: usize = 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        bail!("usage: tone_check FILE [HZ=440] [SKIP_S=2]");
    };
    let hz: f64 = args.get(1).map_or(Ok(440.0), |a| a.parse()).context("HZ")?;
    let skip_s: f64 = args
        .get(2)
        .map_or(Ok(2.0), |a| a.parse())
        .context("SKIP_S")?;
    let mut source = FileSource::open(Path::new(input))?;
    let mut tone = analyse(&mut source, hz, skip_s)?;
    // The recording's last frame is where it was cut: left out like the start.
    let end = tone.seconds - 0.025;
    tone.windows.retain(|w| w.0 < end);
    tone.steps.retain(|s| s.0 < end);
    if tone.windows.is_empty() {
        bail!("{input}: no window between the first {skip_s} s and the last 25 ms");
    }
    if !report(input, skip_s, &tone) {
        std::process::exit(1);
    }
    Ok(())
}

/// The tone as the recording carries it.
struct Tone {
    /// The recording's length.
    seconds: f64,
    /// Each window's start (s), fit (dB) and the tone's amplitude.
    windows: Vec<(f64, f64, f64)>,
    /// Where the tone's phase stepped (s), and by how many samples.
    steps: Vec<(f64, f64)>,
}

/// Fits every window of the first channel after `skip_s` with a sine at `hz`.
fn analyse(source: &mut FileSource, hz: f64, skip_s: f64) -> anyhow::Result<Tone> {
    let rate = f64::from(source.sample_rate());
    let channels = source.channels();
    let skip = (skip_s * rate) as u64;
    // The window's basis, the same for every window: each is fitted from its own start.
    let w = TAU * hz / rate;
    let basis: Vec<(f64, f64)> = (0..WINDOW).map(|n| (w * n as f64).sin_cos()).collect();
    let fit = Fit::new(&basis);
    let mut phase_steps = PhaseSteps::new(w);
    let mut window = Vec::with_capacity(WINDOW);
    let mut seen = 0u64;
    let mut tone = Tone {
        seconds: 0.0,
        windows: Vec::new(),
        steps: Vec::new(),
    };
    while let Some(block) = source.read()? {
        for frame in block.chunks_exact(channels) {
            seen += 1;
            if seen <= skip {
                continue;
            }
            window.push(f64::from(frame[0]));
            if window.len() < WINDOW {
                continue;
            }
            let at = (seen - WINDOW as u64) as f64 / rate;
            let (snr, amplitude, phase) = fit.of(&window, &basis);
            window.clear();
            tone.windows.push((at, snr, amplitude));
            if let Some(step) = phase_steps.next(phase) {
                tone.steps.push((at, step));
            }
        }
    }
    tone.seconds = seen as f64 / rate;
    Ok(tone)
}

/// How far the phase moves beyond the steady advance, window to window, against how far it
/// moved in the windows before: a drop or repeat moves it by a sample once, spread over the
/// two windows around it wherever in a window it falls.
struct PhaseSteps {
    /// The tone's advance per sample, and per window.
    w: f64,
    steady: f64,
    last_phase: Option<f64>,
    /// The last advances beyond the steady one (the steering's share, which moves slowly),
    /// and the last window's departure from their mean.
    advances: [f64; BASELINE],
    advanced: usize,
    last_departure: f64,
}

impl PhaseSteps {
    fn new(w: f64) -> Self {
        Self {
            w,
            steady: (w * WINDOW as f64).rem_euclid(TAU),
            last_phase: None,
            advances: [0.0; BASELINE],
            advanced: 0,
            last_departure: 0.0,
        }
    }

    /// Takes the next window's phase; the step in samples across it and the window before,
    /// once there is a baseline to measure it against.
    fn next(&mut self, phase: f64) -> Option<f64> {
        let last = self.last_phase.replace(phase)?;
        let advance = wrap(phase - last - self.steady);
        let mut step = None;
        if self.advanced >= BASELINE {
            let mean = self.advances.iter().sum::<f64>() / BASELINE as f64;
            let departure = wrap(advance - mean) / self.w;
            step = Some((departure + self.last_departure).abs());
            self.last_departure = departure;
        }
        self.advances[self.advanced % BASELINE] = advance;
        self.advanced += 1;
        step
    }
}

/// Prints what the tone went through; false when a window broke or the phase stepped.
fn report(input: &str, skip_s: f64, tone: &Tone) -> bool {
    let Tone {
        seconds,
        windows,
        steps,
    } = tone;
    let broken: Vec<_> = windows.iter().filter(|w| w.1 < BROKEN_DB).collect();
    let levels = windows.iter().fold((f64::MAX, 0.0f64), |(low, high), w| {
        (low.min(w.2), high.max(w.2))
    });
    let mut sorted: Vec<f64> = windows.iter().map(|w| w.1).collect();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let worst_step = steps
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0.0, 0.0));
    let big_steps: Vec<_> = steps.iter().filter(|s| s.1 >= STEP_SAMPLES).collect();
    println!(
        "{input}: {seconds:.1} s, {} windows of 5 ms after the first {skip_s} s",
        windows.len()
    );
    println!(
        "tone fit: lowest {:.1} dB, 0.1th percentile {:.1} dB, median {:.1} dB; {} windows under {BROKEN_DB} dB",
        sorted[0],
        pct(0.001),
        pct(0.5),
        broken.len()
    );
    println!(
        "tone level: {:.1} to {:.1} dBFS",
        20.0 * levels.0.max(1e-9).log10(),
        20.0 * levels.1.max(1e-9).log10()
    );
    println!(
        "largest phase step: {:.3} samples at {:.2} s; {} window pairs step {STEP_SAMPLES} sample or more",
        worst_step.1,
        worst_step.0,
        big_steps.len()
    );
    for (at, snr, _) in broken.iter().take(10) {
        println!("  broken window at {at:.3} s: {snr:.1} dB");
    }
    for (at, step) in big_steps.iter().take(10) {
        println!("  phase step at {at:.3} s: {step:.2} samples");
    }
    broken.is_empty() && big_steps.is_empty()
}

/// The phase wrapped into -pi..pi.
fn wrap(x: f64) -> f64 {
    (x + TAU / 2.0).rem_euclid(TAU) - TAU / 2.0
}

/// Least squares of `a sin + b cos + c` over a window, with the normal equations' inverse
/// worked out once (the basis is the same for every window).
struct Fit {
    inverse: [[f64; 3]; 3],
}

impl Fit {
    fn new(basis: &[(f64, f64)]) -> Self {
        let mut m = [[0.0; 3]; 3];
        for &(s, c) in basis {
            let b = [s, c, 1.0];
            for i in 0..3 {
                for j in 0..3 {
                    m[i][j] += b[i] * b[j];
                }
            }
        }
        Self { inverse: invert(m) }
    }

    /// Signal-to-residual ratio (dB), amplitude and phase of the tone in `x`.
    fn of(&self, x: &[f64], basis: &[(f64, f64)]) -> (f64, f64, f64) {
        let mut v = [0.0; 3];
        for (&s, &(sn, cs)) in x.iter().zip(basis) {
            v[0] += sn * s;
            v[1] += cs * s;
            v[2] += s;
        }
        let k: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| self.inverse[i][j] * v[j]).sum());
        let (mut signal, mut residual) = (0.0, 0.0);
        for (&s, &(sn, cs)) in x.iter().zip(basis) {
            let model = k[0] * sn + k[1] * cs;
            signal += model * model;
            let e = s - model - k[2];
            residual += e * e;
        }
        let snr = 10.0 * (signal / residual.max(1e-30)).log10();
        (snr, k[0].hypot(k[1]), k[1].atan2(k[0]))
    }
}

/// The inverse of a 3x3 matrix (the normal equations of a window, never singular for a
/// window of more than a period's fraction).
fn invert(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    std::array::from_fn(|i| std::array::from_fn(|j| c(j, i) / det))
}
