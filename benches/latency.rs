//! Latency of the live engine: from an impulse entering the capture ring (where a device
//! callback puts it) to the encoded Opus frame that carries it being handed to consumers.
//!
//! A feeder thread plays the part of a 48 kHz stereo capture device with PERIOD_MS periods
//! (10 by default, as Booth opens devices), putting a single full-scale sample into the game
//! input every 500 ms and noting when. The engine runs as in `booth host`; a consumer thread
//! waiting on the engine's channel notes when each frame reaches it (the frame itself carries
//! only its stream position), and the frames are decoded to find each impulse. Prints the
//! median and p99 over the run. An impulse at the device itself waits up to one period more
//! (in the device) before it reaches the ring.
//! `cargo bench --bench latency [-- SECONDS [PERIOD_MS]]`. A measurement only: nothing here
//! passes or fails on a number.

mod common;

use std::time::{Duration, Instant};

use booth::codec::frame::EncodedFrame;
use booth::codec::opus::FRAME_SAMPLES;
use booth::codec::{EncoderSettings, OpusDecoder, OpusEncoder};
use booth::engine::EngineConfig;

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = numbers.first().copied().unwrap_or(20);
    let period_ms = numbers.get(1).copied().unwrap_or(10).clamp(1, 100);
    let encoder = EngineConfig::default().encoder;
    let (game_tx, engine, frames_rx) = common::start_engine(seconds, period_ms, 10_000);
    // The consumer: each frame and when it was handed over, until the engine hangs up.
    let consumer = std::thread::spawn(move || {
        let mut received = Vec::new();
        while let Ok(f) = frames_rx.recv() {
            received.push((Instant::now(), f));
        }
        received
    });

    let feeder = std::thread::spawn(move || common::feed_impulses(game_tx, seconds, period_ms));
    let pushes = feeder.join().unwrap_or_default();
    while !engine.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.stop();
    let received = consumer.join().unwrap_or_default();
    let mut latencies = latencies(&encoder, received, &pushes);
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        println!("no impulses found");
        return;
    }
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{period_ms} ms periods, impulse -> encoded frame: {} impulses, median {:.1} ms, p99 {:.1} \
         ms, min {:.1} ms, max {:.1} ms",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies[0],
        latencies[latencies.len() - 1]
    );
}

/// Each impulse's latency, ms: from its push to when the frame that carries it was handed
/// over. Decodes every frame in order; each impulse's decoded position (less the decoder's
/// pre-skip) says which frame carried it.
fn latencies(
    encoder: &EncoderSettings,
    received: Vec<(Instant, EncodedFrame)>,
    pushes: &[Instant],
) -> Vec<f64> {
    let pre_skip = OpusEncoder::new(encoder)
        .map(|e| e.lookahead())
        .unwrap_or(312);
    let mut dec = OpusDecoder::new(2).unwrap_or_else(|e| panic!("{e}"));
    let mut pcm = vec![0.0f32; OpusDecoder::MAX_FRAME_SAMPLES * 2];
    let mut frames = Vec::new();
    let mut decoded: Vec<f32> = Vec::new();
    for (handed_over, f) in received {
        let n = dec.decode(&f.packet, &mut pcm).unwrap_or(0);
        decoded.extend(pcm[..n * 2].iter().step_by(2));
        frames.push(handed_over);
    }
    // Each peak belongs to the last impulse pushed before its frame was handed over (impulses
    // are 500 ms apart; a device lane starts after measuring its fill, so the first may be
    // unheard).
    let mut latencies = Vec::new();
    let mut i = pre_skip;
    while let Some(off) = decoded[i.min(decoded.len())..]
        .iter()
        .position(|x| x.abs() > 0.2)
    {
        let at = i + off;
        i = at + 4_800;
        let Some(&handed_over) = frames.get((at - pre_skip) / FRAME_SAMPLES) else {
            break;
        };
        if let Some(push) = pushes.iter().rev().find(|p| **p <= handed_over) {
            latencies.push((handed_over - *push).as_secs_f64() * 1000.0);
        }
    }
    latencies
}
