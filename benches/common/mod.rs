//! What the benches share: a "device" feeding impulses into the engine's game ring, and
//! talking to a `booth serve` they started. Benchmarks only; a failure panics with what went
//! wrong.

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use booth::codec::frame::EncodedFrame;
use booth::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusEncoder};
use booth::engine::{self, EngineConfig, InputRing};
use booth::room::protocol::{CreatedRoom, NewRoom};

/// A new room titled `title` on the server at `url`: its id and the host's token.
pub async fn create_room(url: &str, title: &str) -> (String, String) {
    let new = NewRoom {
        title: title.to_owned(),
        game: "bench".to_owned(),
        host_name: None,
        record: false,
        icecast: None,
    };
    let room: CreatedRoom = reqwest::Client::new()
        .post(format!("{url}/api/rooms"))
        .json(&new)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("create room: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("the server's room: {e}"));
    (room.id, room.host_token)
}

/// The "device": periods of `period_ms` for `seconds`, an impulse every 500 ms, paced by the
/// clock; when each impulse went into the ring.
pub fn feed_impulses(game_tx: rtrb::Producer<f32>, seconds: u64, period_ms: u64) -> Vec<Instant> {
    feed_impulses_every(game_tx, seconds, period_ms, 500)
}

/// As [`feed_impulses`], with an impulse every `spacing_ms` (at least two periods apart), the
/// first half a spacing in: for latencies longer than half a second.
pub fn feed_impulses_every(
    mut game_tx: rtrb::Producer<f32>,
    seconds: u64,
    period_ms: u64,
    spacing_ms: u64,
) -> Vec<Instant> {
    let start = Instant::now();
    let mut pushes = Vec::new();
    let mut period = vec![0.0f32; 96 * period_ms as usize];
    let every = (spacing_ms / period_ms).max(2);
    for n in 0..seconds * 1000 / period_ms {
        let due = start + Duration::from_millis(period_ms * n);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        period.fill(0.0);
        let impulse = n % every == every / 2;
        if impulse {
            period[0] = 0.9;
            period[1] = 0.9;
        }
        let _ = game_tx.push_partial_slice(&period);
        if impulse {
            pushes.push(Instant::now());
        }
    }
    pushes
}

/// Starts `booth serve` on free ports with `extra` arguments, under `taskset -c CPU` when `cpu`
/// is given; it, its base URL, and the process id of booth itself (not of `taskset`).
pub fn start_server(data: &Path, cpu: Option<&str>, extra: &[&str]) -> (Child, String, u32) {
    let booth = env!("CARGO_BIN_EXE_booth");
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu, booth]);
            c
        }
        None => Command::new(booth),
    };
    let mut server = command
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--udp-port",
            "0",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start booth serve: {e}"));
    let pid = server.id();
    let out = server.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let mut lines = BufReader::new(out).lines();
    let url = lines
        .find_map(|l| {
            l.ok()?
                .strip_prefix("booth: serving rooms on ")
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("booth serve did not start"));
    // Keep reading what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    // `taskset` runs booth in its own place, but should it ever fork instead, measure the
    // process that is booth.
    let pid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(pid);
    (server, url, pid)
}

/// The program a WHIP publisher sends: a 440 Hz tone, encoded and sent a 20 ms frame at a
/// time, until the publisher hangs up.
pub async fn publish_tone(frames: tokio::sync::mpsc::Sender<EncodedFrame>) {
    let mut enc = OpusEncoder::new(&EncoderSettings::music_stereo(128_000))
        .unwrap_or_else(|e| panic!("encoder: {e}"));
    let mut pcm = vec![0f32; FRAME_SAMPLES * 2];
    let mut out = vec![0u8; MAX_PACKET];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut n = 0u64;
    loop {
        tick.tick().await;
        for (i, s) in pcm.chunks_exact_mut(2).enumerate() {
            let t = (n * FRAME_SAMPLES as u64 + i as u64) as f32 / 48_000.0;
            let v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin();
            s[0] = v;
            s[1] = v;
        }
        let Ok(len) = enc.encode_frame(&pcm, &mut out) else {
            break;
        };
        let frame = EncodedFrame {
            pts: n * FRAME_SAMPLES as u64,
            packet: out[..len].to_vec(),
        };
        if frames.send(frame).await.is_err() {
            break;
        }
        n += 1;
    }
}

/// The engine as `booth host` runs it for `seconds`, on a game ring a "device" fills with
/// `period_ms` periods; the ring's writing end, the engine, and the channel its frames come out
/// of (holding up to `queue` frames).
pub fn start_engine(
    seconds: u64,
    period_ms: u64,
    queue: usize,
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
        // The "device" delivers a period at a time on its own thread.
        burst_frames: 48 * period_ms as usize,
        rests: false,
        read_now: None,
    };
    let (frames_tx, frames_rx) = std::sync::mpsc::sync_channel(queue);
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
