//! Mouth-to-ear latency through a room on loopback: from an impulse entering the host's capture
//! ring (where a device callback puts it) to the moment a listener plays it.
//!
//! `booth serve` runs as its own process. In this process: a feeder thread plays the part of a
//! 48 kHz capture device with 10 ms periods and puts an impulse in every 500 ms, noting when; the
//! engine mixes and encodes as in `booth host`; a WHIP client publishes the frames; a WHEP
//! client receives the program and plays it out exactly as `booth listen` does (jitter buffer,
//! a 20 ms clock, Opus decoding), and notes when each impulse is played (the tick that plays its
//! frame, plus its place in the frame). The output device's own buffer is not included.
//!
//! `cargo bench --bench mouth_to_ear [-- SECONDS]` prints p50/p95/p99 and the spread. A
//! measurement only: nothing here passes or fails on a number.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booth::rtc::jitter::PlayoutDecoder;
use booth::rtc::peer::{ClientPeer, Mode};

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (mut server, url, _) = common::start_server(data.path(), None, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let (room, token) = rt.block_on(common::create_room(&url, "latency"));
    let publisher = rt
        .block_on(ClientPeer::connect(
            &format!("{url}/whip/{room}"),
            Some(&token),
            Mode::Publish,
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("publish: {e}"));
    let listener = rt
        .block_on(ClientPeer::connect(
            &format!("{url}/whep/{room}"),
            None,
            Mode::Listen,
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("listen: {e}"));
    let played: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let playout = rt.spawn(play_out(listener, Arc::clone(&played)));

    // The engine, its "device", and the bridge from the engine's frames to the publisher.
    let (game_tx, engine, frames_rx) = common::start_engine(seconds, 10, 100);
    let frames = publisher.frames.clone();
    let bridge = std::thread::spawn(move || {
        while let Ok(f) = frames_rx.recv() {
            let _ = frames.blocking_send(f);
        }
    });
    let feeder = std::thread::spawn(move || common::feed_impulses(game_tx, seconds, 10));
    let pushes = feeder.join().unwrap_or_default();
    std::thread::sleep(Duration::from_millis(800));
    while !engine.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.stop();
    let _ = bridge.join();
    playout.abort();
    drop(publisher);
    let _ = server.kill();
    let _ = server.wait();

    let heard = played.lock().map(|h| h.clone()).unwrap_or_default();
    report(&pushes, &heard);
}

/// The listener plays out as `booth listen` does and notes in `heard` when it plays each
/// impulse.
async fn play_out(mut listener: ClientPeer, heard: Arc<Mutex<Vec<Instant>>>) {
    let mut playout = PlayoutDecoder::new(2, 10).unwrap_or_else(|e| panic!("{e}"));
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut quiet_until = Instant::now();
    loop {
        tokio::select! {
            f = listener.incoming.recv() => match f {
                Some(f) => playout.push(f.rtp_time, f.packet),
                None => break,
            },
            at = tick.tick() => {
                let at = at.into_std();
                let played = playout.next_frame();
                for (i, s) in played.pcm.iter().step_by(2).enumerate() {
                    let t = at + Duration::from_secs_f64(i as f64 / 48_000.0);
                    if s.abs() > 0.2 && t >= quiet_until {
                        if let Ok(mut h) = heard.lock() {
                            h.push(t);
                        }
                        quiet_until = t + Duration::from_millis(300);
                    }
                }
            }
        }
    }
    listener.close().await;
}

/// Each impulse heard against the last one pushed before it: p50/p95/p99 and the spread.
fn report(pushes: &[Instant], heard: &[Instant]) {
    let mut latencies: Vec<f64> = heard
        .iter()
        .filter_map(|t| {
            let push = pushes.iter().rev().find(|p| *p <= t)?;
            let ms = (*t - *push).as_secs_f64() * 1000.0;
            (ms < 450.0).then_some(ms)
        })
        .collect();
    if std::env::var_os("BOOTH_BENCH_VERBOSE").is_some() {
        let line: Vec<String> = latencies.iter().map(|l| format!("{l:.0}")).collect();
        println!("in order (ms): {}", line.join(" "));
    }
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        println!("no impulses heard");
        return;
    }
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "mouth -> ear through a room: {} of {} impulses heard, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
        latencies.len(),
        pushes.len(),
        pick(0.5),
        pick(0.95),
        pick(0.99),
        latencies[0],
        latencies[latencies.len() - 1]
    );
}
