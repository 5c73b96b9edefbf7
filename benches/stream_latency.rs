//! Glass to glass through a room's HTTP streams on loopback: from an impulse entering the host's
//! capture ring to (a) the arrival of the bytes that carry it at a client and (b) the moment a
//! player that plays continuously from its first audio plays it. For the MP3 stream
//! (`/live/{room}.mp3`) and for HLS (`/hls/{room}/index.m3u8`).
//!
//! `booth serve` runs as its own process. In this process: a feeder thread plays the part of a
//! 48 kHz capture device with 10 ms periods and puts an impulse in every 4.15 s, noting when; the
//! engine mixes and encodes as in `booth host`; a WHIP client publishes the frames. Clients of
//! two kinds read the room's program:
//! - MP3: an HTTP/1.0 GET of the endless stream, read as bytes arrive, cut into frames and
//!   decoded frame by frame (symphonia, one decoder for the stream). Its player starts with the
//!   first audio the server sends (for a player joining a running stream, the server's
//!   half-second burst). One joins before any audio is made, one 3 s after the publisher.
//! - HLS: the playlist polled every 250 ms, each new segment fetched once listed and decoded by
//!   one continuous decoder. Its player starts at the third-last segment of the first playlist
//!   it gets, as HLS players do. One is the room's first (its request starts HLS, so its first
//!   playlist lists one segment), one joins 12 s later.
//!
//! A player plays each frame (MP3) or segment (HLS) at `max(its clock, the arrival)`, stalling
//! when the next audio has not come. The first MP3 client joins before any audio is made, so its
//! frames count the stream's samples from 0, the clock the HLS segments' timestamps give: HLS
//! impulses are matched to that client's by that position (HLS is seconds late, more than an
//! impulse's spacing), MP3 impulses to the last one pushed before they arrived. The output
//! device's own buffer is not included.
//!
//! `cargo bench --bench stream_latency [-- SECONDS]` (default 40). A measurement only: nothing
//! here passes or fails on a number.

mod common;

use std::time::{Duration, Instant};

use booth::rtc::peer::{ClientPeer, Mode};
use booth::server::live::hls::{MP3_FRAME_SAMPLES, mp3_frame_len};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_MP3, CodecParameters, Decoder, DecoderOptions};
use symphonia::core::formats::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Impulses are this far apart: about 4 s, for latencies of seconds, but not a multiple of a
/// 2 s HLS segment (nor of a 96 ms MP3 chunk), so that they fall at different places in them.
const SPACING_MS: u64 = 4_150;
/// A decoded sample above this is an impulse.
const THRESHOLD: f32 = 0.2;
/// Samples (48 kHz) after an impulse in which no other is looked for.
const QUIET: u64 = 48_000;
const RATE: f64 = 48_000.0;

/// A piece of the stream as a client got it: an MP3 frame, or an HLS segment.
#[derive(Debug)]
struct Piece {
    arrived: Instant,
    /// Its first sample on the stream's clock (48 kHz samples).
    pos: u64,
    /// Its length in samples.
    len: u64,
    /// Impulses in it: their offsets in samples.
    impulses: Vec<u64>,
}

/// One decoder for a whole stream, and the impulses it has found.
struct Mp3Stream {
    decoder: Box<dyn Decoder>,
    samples: Option<SampleBuffer<f32>>,
    /// Samples decoded so far, and the first one in which an impulse may be found again.
    decoded: u64,
    quiet_until: u64,
}

impl Mp3Stream {
    fn new() -> Self {
        let mut params = CodecParameters::new();
        params.for_codec(CODEC_TYPE_MP3);
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .unwrap_or_else(|e| panic!("MP3 decoder: {e}"));
        Self {
            decoder,
            samples: None,
            decoded: 0,
            quiet_until: 0,
        }
    }

    /// Decodes one frame: the impulses in it (offsets in samples).
    fn frame(&mut self, data: &[u8]) -> Vec<u64> {
        let packet = Packet::new_from_slice(0, self.decoded, MP3_FRAME_SAMPLES, data);
        let mut found = Vec::new();
        // A frame that cannot be decoded (the first, before the bit reservoir fills) is
        // silence to a player.
        if let Ok(buf) = self.decoder.decode(&packet) {
            let spec = *buf.spec();
            let channels = spec.channels.count().max(1);
            let sb = self
                .samples
                .get_or_insert_with(|| SampleBuffer::new(buf.capacity() as u64, spec));
            sb.copy_interleaved_ref(buf);
            for (i, s) in sb.samples().chunks(channels).enumerate() {
                let at = self.decoded + i as u64;
                if s.iter().any(|v| v.abs() > THRESHOLD) && at >= self.quiet_until {
                    found.push(i as u64);
                    self.quiet_until = at + QUIET;
                }
            }
        }
        self.decoded += MP3_FRAME_SAMPLES;
        found
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (mut server, url, _) = common::start_server(data.path(), None, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let (room, token) = rt.block_on(common::create_room(&url, "stream latency"));
    let now = Instant::now();
    // Late enough for HLS, seconds behind, to get the last impulse.
    let until = now + Duration::from_secs(seconds + 16);
    let mp3 = |after: u64| rt.spawn(mp3_client(url.clone(), room.clone(), after, until));
    let hls = |after: u64| rt.spawn(hls_client(url.clone(), room.clone(), after, until));
    // The reference first: it hears the stream from its first sample.
    let reference = mp3(0);
    std::thread::sleep(Duration::from_millis(500));
    let publisher = rt
        .block_on(ClientPeer::connect(
            &format!("{url}/whip/{room}"),
            Some(&token),
            Mode::Publish,
            Duration::from_secs(10),
        ))
        .unwrap_or_else(|e| panic!("publish: {e}"));
    let clients = [
        ("MP3, a player joining the running stream", mp3(3_000)),
        ("HLS, the first player (it starts HLS)", hls(0)),
        ("HLS, a player joining running HLS", hls(12_000)),
    ];

    let (game_tx, engine, frames_rx) = common::start_engine(seconds + 1, 10, 100);
    let frames = publisher.frames.clone();
    let bridge = std::thread::spawn(move || {
        while let Ok(f) = frames_rx.recv() {
            let _ = frames.blocking_send(f);
        }
    });
    let feeder =
        std::thread::spawn(move || common::feed_impulses_every(game_tx, seconds, 10, SPACING_MS));
    let pushes = feeder.join().unwrap_or_default();
    while !engine.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    engine.stop();
    let _ = bridge.join();
    let got = |c: tokio::task::JoinHandle<Vec<Piece>>| {
        rt.block_on(c).unwrap_or_else(|e| panic!("a client: {e}"))
    };
    let reference = got(reference);
    let clients: Vec<(&str, Vec<Piece>)> = clients.into_iter().map(|(n, c)| (n, got(c))).collect();
    drop(publisher);
    let _ = server.kill();
    let _ = server.wait();
    report(&pushes, &reference, &clients);
}

/// Reads the MP3 stream from `after_ms` on until `until`: its frames, each with the arrival of
/// its last byte. A client that joins before any audio is made has its frames' places on the
/// stream's clock (else they count from the first it got).
async fn mp3_client(url: String, room: String, after_ms: u64, until: Instant) -> Vec<Piece> {
    tokio::time::sleep(Duration::from_millis(after_ms)).await;
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut tcp = tokio::net::TcpStream::connect(host)
        .await
        .unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    let request = format!("GET /live/{room}.mp3 HTTP/1.0\r\nHost: {host}\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("MP3 request: {e}"));
    let mut stream = Mp3Stream::new();
    let mut pieces = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut in_body = false;
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::from_std(until);
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        let arrived = Instant::now();
        pending.extend_from_slice(&buf[..n]);
        if !in_body {
            let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            assert!(head.contains(" 200 "), "the MP3 stream answered {head}");
            pending.drain(..end + 4);
            in_body = true;
        }
        let mut at = 0;
        while pending.len() - at >= 4 {
            let Some(len) = mp3_frame_len(&pending[at..]) else {
                at += 1;
                continue;
            };
            if pending.len() - at < len {
                break;
            }
            let pos = stream.decoded;
            let impulses = stream.frame(&pending[at..at + len]);
            pieces.push(Piece {
                arrived,
                pos,
                len: MP3_FRAME_SAMPLES,
                impulses,
            });
            at += len;
        }
        pending.drain(..at);
    }
    pieces
}

/// Plays HLS as a player does from `after_ms` on until `until`: the segments from the third-last of the first
/// playlist on, each with the moment it had fully arrived.
async fn hls_client(url: String, room: String, after_ms: u64, until: Instant) -> Vec<Piece> {
    tokio::time::sleep(Duration::from_millis(after_ms)).await;
    let http = reqwest::Client::new();
    let base = format!("{url}/hls/{room}");
    let mut stream = Mp3Stream::new();
    let mut pieces = Vec::new();
    let mut next: Option<u64> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    while Instant::now() < until {
        poll.tick().await;
        let Some(listed) = playlist(&http, &base).await else {
            continue;
        };
        let from = *next.get_or_insert_with(|| listed[listed.len().saturating_sub(3)]);
        for seq in listed.into_iter().filter(|s| *s >= from) {
            let body = http
                .get(format!("{base}/{seq}.mp3"))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            let Ok(body) = body else { continue };
            let Ok(bytes) = body.bytes().await else {
                continue;
            };
            let arrived = Instant::now();
            next = Some(seq + 1);
            pieces.push(segment(&mut stream, &bytes, arrived));
        }
    }
    pieces
}

/// The segments a playlist lists (none while HLS is starting).
async fn playlist(http: &reqwest::Client, base: &str) -> Option<Vec<u64>> {
    let text = http
        .get(format!("{base}/index.m3u8"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .ok()?
        .text()
        .await
        .ok()?;
    let listed: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_suffix(".mp3")?.parse().ok())
        .collect();
    (!listed.is_empty()).then_some(listed)
}

/// Decodes a segment: its ID3 timestamp tag gives its place on the stream's clock.
fn segment(stream: &mut Mp3Stream, bytes: &[u8], arrived: Instant) -> Piece {
    let (tag_len, pos) = match bytes {
        [b'I', b'D', b'3', _, _, _, s @ ..] if s.len() >= 4 => {
            let size = s[..4]
                .iter()
                .fold(0usize, |n, b| (n << 7) | usize::from(b & 0x7F));
            let end = 10 + size;
            let ts = bytes
                .get(end.saturating_sub(8)..end)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            // The tag's clock is 90 kHz.
            (end, ts * 8 / 15)
        }
        _ => panic!("an HLS segment without its ID3 timestamp"),
    };
    let mut impulses = Vec::new();
    let mut len = 0;
    let mut at = tag_len;
    while let Some(frame_len) = bytes.get(at..).and_then(mp3_frame_len) {
        let Some(frame) = bytes.get(at..at + frame_len) else {
            break;
        };
        impulses.extend(stream.frame(frame).into_iter().map(|i| i + len));
        len += MP3_FRAME_SAMPLES;
        at += frame_len;
    }
    Piece {
        arrived,
        pos,
        len,
        impulses,
    }
}

/// An impulse a client got: where it is on the stream's clock, when its bytes came, when the
/// player played it.
#[derive(Debug, Clone, Copy)]
struct Heard {
    pos: u64,
    arrived: Instant,
    played: Instant,
}

/// What a player that starts with the first piece and plays on, stalling when the next piece
/// has not come, makes of `pieces`.
fn play(pieces: &[Piece]) -> Vec<Heard> {
    let mut clock = pieces.first().map(|p| p.arrived);
    let mut heard = Vec::new();
    for p in pieces {
        let start = clock.map_or(p.arrived, |c| c.max(p.arrived));
        for offset in &p.impulses {
            heard.push(Heard {
                pos: p.pos + offset,
                arrived: p.arrived,
                played: start + secs(*offset),
            });
        }
        clock = Some(start + secs(p.len));
    }
    heard
}

fn secs(samples: u64) -> Duration {
    Duration::from_secs_f64(samples as f64 / RATE)
}

/// p50, p95 and max of `ms`, as text.
fn spread(ms: &mut [f64]) -> String {
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return "none".to_owned();
    }
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        pick(0.5),
        pick(0.95),
        ms[ms.len() - 1]
    )
}

fn report(pushes: &[Instant], reference: &[Piece], clients: &[(&str, Vec<Piece>)]) {
    // MP3 is well under a spacing late: each impulse is the last one pushed before it came.
    let last_push = |h: Heard| Some((h, *pushes.iter().rev().find(|p| **p <= h.arrived)?));
    let known: Vec<(Heard, Instant)> = play(reference).into_iter().filter_map(last_push).collect();
    // HLS: the impulse at the same place on the stream's clock (within a quarter second).
    let same_place = |h: Heard| {
        let (_, push) = known.iter().find(|(k, _)| k.pos.abs_diff(h.pos) < 12_000)?;
        Some((h, *push))
    };
    println!("{} impulses pushed, {SPACING_MS} ms apart", pushes.len());
    let joined = |pieces: &[Piece]| pieces.first().map_or_else(Instant::now, |p| p.arrived);
    print_client(
        "MP3, joined before the audio began",
        &known,
        joined(reference),
        0.0,
    );
    for (name, pieces) in clients {
        let heard: Vec<(Heard, Instant)> = if name.starts_with("HLS") {
            play(pieces).into_iter().filter_map(same_place).collect()
        } else {
            play(pieces).into_iter().filter_map(last_push).collect()
        };
        let segment_ms = if name.starts_with("HLS") && !pieces.is_empty() {
            pieces.iter().map(|p| p.len).sum::<u64>() as f64 / pieces.len() as f64 / RATE * 1e3
        } else {
            0.0
        };
        print_client(name, &heard, joined(pieces), segment_ms);
    }
}

/// One client's line (and, for HLS, the same in segments of `segment_ms`).
/// "Decoded" counts only the impulses pushed after the client's first audio came: the older
/// ones in what it was sent first measure when it joined, not the stream.
fn print_client(name: &str, heard: &[(Heard, Instant)], joined: Instant, segment_ms: f64) {
    let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
    let mut decoded: Vec<f64> = heard
        .iter()
        .filter(|(_, p)| *p >= joined)
        .map(|(h, p)| ms(*p, h.arrived))
        .collect();
    let mut played: Vec<f64> = heard.iter().map(|(h, p)| ms(*p, h.played)).collect();
    if std::env::var_os("BOOTH_BENCH_VERBOSE").is_some() {
        let line: Vec<String> = played.iter().map(|l| format!("{l:.0}")).collect();
        println!("  played, in order (ms): {}", line.join(" "));
    }
    println!(
        "{name}: {} impulses played; decoded ({} pushed after it joined) {}; played {}",
        heard.len(),
        decoded.len(),
        spread(&mut decoded),
        spread(&mut played)
    );
    if segment_ms > 0.0 && !played.is_empty() {
        let per = |v: f64| v / segment_ms;
        println!(
            "  in segments of {segment_ms:.0} ms: decoded p50 {:.2}, played p50 {:.2}, played max {:.2}",
            per(decoded.get(decoded.len() / 2).copied().unwrap_or(f64::NAN)),
            per(played[played.len() / 2]),
            per(played[played.len() - 1])
        );
    }
}
