//! Audio files for the tests and the programs that make and judge them: WAV in and out (hound),
//! what ffmpeg decodes, speech from espeak-ng, tones from sox. A test's files live in its own
//! temporary directory; nothing here writes anywhere else.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Tone, run};

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
        .args([
            "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", "48000", "-",
        ]));
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

impl Tone {
    /// Writes `seconds` of it at `rate` as a 16-bit WAV, the same on each of `channels`.
    pub fn write(self, path: &Path, seconds: f32, rate: u32, channels: u16) {
        self.write_while(path, seconds, rate, channels, |_| true);
    }

    /// The same, sounding only while `on(t)` holds (see [`Tone::samples_while`]).
    pub fn write_while(
        self,
        path: &Path,
        seconds: f32,
        rate: u32,
        channels: u16,
        on: impl Fn(f32) -> bool,
    ) {
        let samples: Vec<f32> = self
            .samples_while(seconds, rate, on)
            .into_iter()
            .flat_map(|x| std::iter::repeat_n(x, usize::from(channels)))
            .collect();
        write_wav(path, &samples, channels, rate);
    }
}

/// Writes `seconds` of silence at 48 kHz as a 16-bit WAV of `channels`.
pub fn write_silence(path: &Path, seconds: f32, channels: u16) {
    let frames = (48_000.0 * seconds) as usize;
    write_wav(
        path,
        &vec![0.0; frames * usize::from(channels)],
        channels,
        48_000,
    );
}

/// A sine made by sox: 48 kHz stereo 16-bit, `seconds` long, at `amplitude`.
pub fn sox_tone(dir: &Path, hz: u32, amplitude: f32, seconds: u32) -> PathBuf {
    let wav = dir.join(format!("tone-{hz}.wav"));
    run(Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "2", "-b", "16"])
        .arg(&wav)
        .args(["synth", &seconds.to_string(), "sine", &hz.to_string()])
        .args(["vol", &amplitude.to_string()]));
    wav
}
