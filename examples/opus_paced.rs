//! libopus alone, as a live host runs it: encodes a clip with the live program's tuning one
//! 20 ms frame at a time on the wall clock (each frame due 20 ms after the one before, sleeping
//! in between, as the engine does), over and over until stopped. `benches/host_cpu.sh`
//! measures it beside `booth host` in the same rounds, so the host's CPU can be read against
//! the encoder's on the same machine in the same minute:
//!
//!   cargo run --release --example opus_paced -- IN.wav [KBIT/S=128] [COMPLEXITY=10]
//!
//! IN is 48 kHz stereo, in any format Booth plays from a file. It is read before the first
//! frame; nothing is written.
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use booth::audio::FileSource;
use booth::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusEncoder, SAMPLE_RATE};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, kbps, complexity) = match args.as_slice() {
        [i] => (i, 128, 10),
        [i, k] => (i, k.parse::<u32>().context("KBIT/S")?, 10),
        [i, k, c] => (
            i,
            k.parse::<u32>().context("KBIT/S")?,
            c.parse::<u8>().context("COMPLEXITY")?,
        ),
        _ => bail!("usage: opus_paced IN.wav [KBIT/S] [COMPLEXITY]"),
    };
    let mut source = FileSource::open(Path::new(input))?;
    if source.channels() != 2 || source.sample_rate() != SAMPLE_RATE {
        bail!("{input}: 48 kHz stereo, please (sox IN -r 48000 -c 2 OUT.wav)");
    }
    let mut pcm = Vec::new();
    while let Some(block) = source.read()? {
        pcm.extend_from_slice(block);
    }
    if pcm.len() < 2 * FRAME_SAMPLES {
        bail!("{input}: shorter than one 20 ms frame");
    }
    let mut settings = EncoderSettings::program_stereo(kbps.saturating_mul(1000));
    settings.complexity = complexity;
    let mut encoder = OpusEncoder::new(&settings)?;
    let mut packet = vec![0u8; MAX_PACKET];
    let period = Duration::from_millis(20);
    let mut due = Instant::now();
    for frame in pcm.chunks_exact(2 * FRAME_SAMPLES).cycle() {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        encoder.encode_frame(frame, &mut packet)?;
        due += period;
    }
    Ok(())
}
