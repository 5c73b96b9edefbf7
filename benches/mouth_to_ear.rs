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

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booth::codec::frame::EncodedFrame;
use booth::engine::{self, EngineConfig, InputRing};
use booth::rtc::jitter::PlayoutDecoder;
use booth::rtc::peer::{ClientPeer, Mode};

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (mut server, url) = start_server(data.path());
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
    let (game_tx, engine, frames_rx) = start_engine(seconds);
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

/// Starts `booth serve` on free ports; it and its base URL.
fn start_server(data: &std::path::Path) -> (std::process::Child, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_booth"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--udp-port",
            "0",
            "--data",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start booth serve: {e}"));
    let out = server.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let url = BufReader::new(out)
        .lines()
        .find_map(|l| {
            l.ok()?
                .strip_prefix("booth: serving rooms on ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("booth serve did not start"));
    (server, url)
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

/// The engine as `booth host` runs it for `seconds`, on a game ring; the ring's writing end,
/// the engine, and the channel its frames come out of.
fn start_engine(
    seconds: u64,
) -> (
    rtrb::Producer<f32>,
    engine::EngineHandle,
    std::sync::mpsc::Receiver<EncodedFrame>,
) {
    let (game_tx, game_rx) = rtrb::RingBuffer::<f32>::new(48_000 * 2);
    let (_mic_tx, mic_rx) = rtrb::RingBuffer::<f32>::new(48_000);
    let ring = |ring, channels| InputRing {
        ring,
        rate: 48_000,
        channels,
        // The "device" delivers 10 ms periods on its own thread.
        burst_frames: 480,
        rests: false,
        read_now: None,
    };
    let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(100);
    let config = EngineConfig {
        noise_suppression: false,
        max_frames: Some(seconds * 50),
        ..EngineConfig::default()
    };
    let inputs = engine::Inputs {
        game: Some(ring(game_rx, 2)),
        mic: Some(ring(mic_rx, 1)),
        remote: None,
        monitor: None,
    };
    let engine = engine::start(config, inputs, vec![frames_tx.into()])
        .unwrap_or_else(|e| panic!("engine: {e}"));
    (game_tx, engine, frames_rx)
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
