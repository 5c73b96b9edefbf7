//! Renders an episode from a program file, for `benches/render_vs_ffmpeg.sh`; also makes the
//! long program it renders.
//!
//! ```text
//! render_episode program WAV SECONDS OUT.opus   # WAV (48 kHz stereo) repeated to SECONDS, as
//!                                               # Booth records it; prints its loudness, LUFS
//! render_episode render OUT.opus DIR [LUFS]     # render() into DIR; prints the result
//! ```

use std::path::Path;

use anyhow::{Context, Result, bail};
use booth::codec::{EncoderSettings, OggOpusWriter};
use booth::dsp::LoudnessMeter;
use booth::episodes::Chapter;
use booth::episodes::render::{RenderJob, render};

fn make_program(wav: &Path, seconds: u64, out: &Path) -> Result<()> {
    let mut r = hound::WavReader::open(wav).with_context(|| format!("{}", wav.display()))?;
    let spec = r.spec();
    if spec.channels != 2 || spec.sample_rate != 48_000 {
        bail!("{}: expected 48 kHz stereo", wav.display());
    }
    let material: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|s| s as f32 / scale))
                .collect::<Result<_, _>>()?
        }
    };
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    // What a room's recorder writes (the engine's program settings).
    let mut w = OggOpusWriter::new(file, &EncoderSettings::program_stereo(128_000), 48_000)?;
    let mut meter = LoudnessMeter::new();
    let mut left = seconds * 48_000 * 2;
    while left > 0 {
        for block in material.chunks(1_920) {
            let n = block.len().min(usize::try_from(left)?);
            w.write(&block[..n])?;
            meter.process(&block[..n]);
            left -= n as u64;
            if left == 0 {
                break;
            }
        }
    }
    w.finish()?;
    println!("{:.2}", meter.integrated_lufs());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["program", wav, seconds, out] => {
            make_program(Path::new(wav), seconds.parse()?, Path::new(out))
        }
        ["render", program, dir, rest @ ..] => {
            let loudness_lufs = rest.first().map(|l| l.parse()).transpose()?;
            let job = RenderJob {
                title: "Benchmark".into(),
                show_title: "Booth Live".into(),
                author: "Booth".into(),
                chapters: (0..12)
                    .map(|i| Chapter {
                        start_ms: i * 300_000,
                        title: format!("Part {}", i + 1),
                    })
                    .collect(),
                loudness_lufs,
                ..RenderJob::default()
            };
            let done = render(Path::new(program), Path::new(dir), &job)?;
            println!("{done:?}");
            Ok(())
        }
        _ => {
            bail!("usage: render_episode program WAV SECONDS OUT.opus | render OUT.opus DIR [LUFS]")
        }
    }
}
