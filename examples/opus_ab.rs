//! Puts a WAV through one of Booth's Opus tunings and back, for `benches/opus_quality.sh`:
//!
//!   cargo run --release --example opus_ab -- IN.wav music|program KBIT/S OUT.wav [COMPLEXITY]
//!
//! IN is 48 kHz stereo 16-bit. `music` is `EncoderSettings::music_stereo` (files), `program`
//! is `EncoderSettings::program_stereo` (the live program). OUT is the decoded audio, lined up
//! with IN (the encoder's lookahead taken off). COMPLEXITY (0-10) replaces the tuning's 10.
//! Prints the bitrate and the encoder's time per frame.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use booth::codec::opus::{
    EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusDecoder, OpusEncoder, SAMPLE_RATE,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, tuning, kbps, output, complexity) = match args.as_slice() {
        [i, t, k, o] => (i, t, k, o, None),
        [i, t, k, o, c] => (i, t, k, o, Some(c.parse::<u8>().context("COMPLEXITY")?)),
        _ => bail!("usage: opus_ab IN.wav music|program KBIT/S OUT.wav [COMPLEXITY]"),
    };
    let mut reader = hound::WavReader::open(input).with_context(|| format!("reading {input}"))?;
    let spec = reader.spec();
    if spec.channels != 2 || spec.sample_rate != SAMPLE_RATE || spec.bits_per_sample != 16 {
        bail!("{input}: 48 kHz stereo 16-bit, please (sox IN -r 48000 -c 2 -b 16 OUT.wav)");
    }
    let pcm: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| s.map(|s| f32::from(s) / 32_768.0))
        .collect::<Result<_, _>>()?;
    let bitrate = kbps.parse::<u32>().context("KBIT/S")?.saturating_mul(1000);
    let mut settings = match tuning.as_str() {
        "music" => EncoderSettings::music_stereo(bitrate),
        "program" => EncoderSettings::program_stereo(bitrate),
        other => bail!("no tuning '{other}': music or program"),
    };
    if let Some(c) = complexity {
        settings.complexity = c;
    }
    let mut encoder = OpusEncoder::new(&settings)?;
    let mut decoder = OpusDecoder::new(2)?;
    let lookahead = encoder.lookahead();

    // Enough silence after the end that the lookahead's worth comes out too.
    let mut padded = pcm.clone();
    padded.resize(pcm.len() + 4 * FRAME_SAMPLES, 0.0);
    let mut packet = vec![0u8; MAX_PACKET];
    let mut frame = vec![0f32; 2 * OpusDecoder::MAX_FRAME_SAMPLES];
    let mut decoded = Vec::with_capacity(padded.len());
    let (mut bytes, mut frames, mut encoding) = (0usize, 0u32, Duration::ZERO);
    for chunk in padded.chunks_exact(2 * FRAME_SAMPLES) {
        let t = Instant::now();
        let n = encoder.encode_frame(chunk, &mut packet)?;
        encoding += t.elapsed();
        bytes += n;
        frames += 1;
        let got = decoder.decode(&packet[..n], &mut frame)?;
        decoded.extend_from_slice(&frame[..got * 2]);
    }
    println!(
        "{tuning}: {:.1} kbit/s, lookahead {lookahead} samples, encode {:.0} us a frame",
        bytes as f64 * 8.0 / (f64::from(frames) * 0.02) / 1000.0,
        encoding.as_secs_f64() * 1e6 / f64::from(frames)
    );

    let mut writer = hound::WavWriter::create(output, spec)?;
    for &v in &decoded[lookahead * 2..lookahead * 2 + pcm.len()] {
        writer.write_sample((v * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}
