//! Signals, external tools and measurements shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Interleaves two mono signals.
pub fn interleave(l: &[f32], r: &[f32]) -> Vec<f32> {
    l.iter().zip(r).flat_map(|(&a, &b)| [a, b]).collect()
}

/// One channel of interleaved stereo.
pub fn channel(stereo: &[f32], ch: usize) -> Vec<f32> {
    stereo.iter().skip(ch).step_by(2).copied().collect()
}

/// Whether an external program is on PATH. Tests that need one skip without it, unless
/// `BOOTH_REQUIRE_TOOLS=1` (as `tests/run` sets), where a missing tool fails the test.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
            "{name} is required (BOOTH_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Spoken words from espeak-ng, at 48 kHz mono, peak-normalised to -3 dBFS by sox.
pub fn speech(dir: &Path, name: &str, text: &str) -> Vec<f32> {
    let raw = dir.join(format!("{name}-espeak.wav"));
    let wav = dir.join(format!("{name}.wav"));
    run(Command::new("espeak-ng")
        .args(["-s", "150", "-w"])
        .arg(&raw)
        .arg(text));
    run(Command::new("sox")
        .arg(&raw)
        .args(["-r", "48000", "-c", "1", "-b", "32", "-e", "floating-point"])
        .arg(&wav)
        .args(["norm", "-3"]));
    read_wav_mono(&wav)
}

pub fn read_wav_mono(path: &Path) -> Vec<f32> {
    let (samples, channels, _) = read_wav(path);
    samples.chunks(channels).map(|f| f[0]).collect()
}

/// Reads any WAV with hound into f32 samples; returns (samples, channels, rate).
pub fn read_wav(path: &Path) -> (Vec<f32>, usize, u32) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let spec = r.spec();
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap_or(0.0)).collect(),
        hound::SampleFormat::Int => {
            let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.unwrap_or(0) as f32 / scale)
                .collect()
        }
    };
    (samples, spec.channels as usize, spec.sample_rate)
}

/// Writes interleaved f32 samples as a 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[f32], channels: u16, rate: u32) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    for &s in samples {
        w.write_sample((s * 32767.0).round().clamp(-32768.0, 32767.0) as i16)
            .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    }
    w.finalize().unwrap_or_else(|e| panic!("{path:?}: {e}"));
}

/// Decodes any file ffmpeg reads to 48 kHz stereo f32 samples.
pub fn ffmpeg_decode(path: &Path) -> Vec<f32> {
    let out = run(Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"]));
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The encoder delay an Ogg Opus file declares (OpusHead's pre-skip), in 48 kHz samples: what a
/// player drops from the start, and what the encoder held back before a sound came out.
pub fn opus_pre_skip(path: &Path) -> u16 {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    booth::codec::ogg_opus::OggOpusReader::new(std::io::BufReader::new(file))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
        .pre_skip()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

pub fn booth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_booth"))
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

/// The body of a GET, as text.
pub fn http_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

/// One counter or gauge from a Booth server's `/metrics`.
pub fn metric(server: &str, name: &str) -> u64 {
    let text = http_get(&format!("{server}/metrics"));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("booth_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no booth_{name} in /metrics:\n{text}"))
}

/// Voluntary context switches (wake-ups) so far of process `pid`'s thread named `name`.
pub fn thread_wakeups(pid: u32, name: &str) -> Option<u64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}
