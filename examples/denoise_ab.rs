//! Puts a voice through Booth's noise suppression, resting on noise or running on every frame,
//! for `benches/denoise_quality.sh`:
//!
//!   cargo run --release --example denoise_ab -- IN.wav always|rest OUT.wav
//!
//! IN is 48 kHz mono 16-bit (the mic after its high-pass, as the engine has it). OUT is the
//! denoised voice, lined up with IN (the denoiser's 10 ms taken off). Prints the share of
//! frames the denoiser rested and its time per 10 ms frame.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use booth::dsp::{Biquad, Denoiser, SAMPLE_RATE};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, mode, output] = args.as_slice() else {
        bail!("usage: denoise_ab IN.wav always|rest OUT.wav");
    };
    let may_rest = match mode.as_str() {
        "always" => false,
        "rest" => true,
        other => bail!("no mode '{other}': always or rest"),
    };
    let mut reader = hound::WavReader::open(input).with_context(|| format!("reading {input}"))?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.sample_rate != SAMPLE_RATE || spec.bits_per_sample != 16 {
        bail!("{input}: 48 kHz mono 16-bit, please (sox IN -r 48000 -c 1 -b 16 OUT.wav)");
    }
    let mut pcm: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.map(|s| f32::from(s) / 32_768.0))
        .collect::<Result<_, _>>()?;
    let mut hp = Biquad::high_pass(80.0, std::f32::consts::FRAC_1_SQRT_2, SAMPLE_RATE);
    for s in &mut pcm {
        *s = hp.process(*s);
    }
    let n = pcm.len();
    pcm.resize(n + 2 * Denoiser::FRAME, 0.0);

    let mut denoiser = Denoiser::new().with_rest(may_rest);
    let mut spent = Duration::ZERO;
    let mut frames = 0u32;
    for frame in pcm.chunks_exact_mut(Denoiser::FRAME) {
        let t = Instant::now();
        denoiser.process(frame);
        spent += t.elapsed();
        frames += 1;
    }
    let (ran, rested) = denoiser.counts();
    let out = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(output, out)?;
    for &s in pcm.iter().skip(Denoiser::FRAME).take(n) {
        writer.write_sample((s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)?;
    }
    writer.finalize()?;
    println!(
        "{mode}: ran {ran} frames, rested {rested} ({:.0}%), {:.1} us a frame",
        100.0 * rested as f64 / f64::from(frames.max(1)),
        spent.as_secs_f64() * 1e6 / f64::from(frames.max(1))
    );
    Ok(())
}
