//! A room under a flood of WHEP offers: sessions that never connect are capped per room (503)
//! and per client address (429), each refusal says why and when to come back, real listeners
//! still get in, a thousand trickled candidates cost nothing, and a listener who was there
//! first hears the program without a gap.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booth::rtc::RtcError;
use booth::rtc::peer::{ClientPeer, Mode};
use str0m::Candidate;
use str0m::media::{Direction, MediaKind};

use super::channel::rt;
use super::{LiveRoom, game_and_silence, host_from_files, listener, serve_with, tone_track};
use crate::support::{median, metric, tempdir};

const JUNK: usize = 3_000;
const REAL: usize = 200;

/// A listener's offer from a real str0m client; each use swaps in a fresh ICE username, as a
/// new client would have.
fn listener_offer() -> String {
    let mut client = booth::rtc::rtc_config().build(Instant::now());
    let local = SocketAddr::from(([127, 0, 0, 1], 9));
    client.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = client.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    change.apply().unwrap().0.to_sdp_string()
}

fn with_ufrag(offer: &str, n: usize) -> String {
    offer
        .lines()
        .map(|l| {
            if l.starts_with("a=ice-ufrag:") {
                format!("a=ice-ufrag:junk{n:06}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// Fires `JUNK` offers from three client addresses (most from the first, so it meets its own
/// cap while the room still has room), 64 at a time, and never does ICE. Returns
/// how many of each status came back, after checking every refusal names its cap and says
/// when to come back.
async fn flood(whep: &str) -> HashMap<u16, usize> {
    let offer = Arc::new(listener_offer());
    let clients: Vec<reqwest::Client> = [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]]
        .into_iter()
        .map(|ip| {
            reqwest::Client::builder()
                .local_address(IpAddr::from(ip))
                .build()
                .unwrap()
        })
        .collect();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for n in 0..JUNK {
        let from = match n % 10 {
            0..=7 => 0,
            8 => 1,
            _ => 2,
        };
        let (client, url, offer) = (clients[from].clone(), whep.to_owned(), offer.clone());
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("content-type", "application/sdp")
                .body(with_ufrag(&offer, n))
                .send()
                .await
                .unwrap();
            drop(permit);
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").cloned();
            let body = r.text().await.unwrap();
            if status != 201 {
                assert!(matches!(status, 429 | 503), "{status}: {body}");
                assert!(retry.is_some(), "{status} without Retry-After");
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let code = v["error"].as_str().unwrap();
                assert!(
                    matches!(code, "too_many_pending" | "too_many_sessions"),
                    "{body}"
                );
                assert!(!v["message"].as_str().unwrap().is_empty());
            }
            status
        }));
    }
    let mut counts = HashMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    counts
}

/// A listener that connects, asking again (as a client should) while the room or its address
/// is at a cap.
async fn real_listener(whep: String) -> ClientPeer {
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        match ClientPeer::connect(&whep, None, Mode::Listen, Duration::from_secs(30)).await {
            Ok(peer) => return peer,
            Err(RtcError::Refused { status, .. })
                if matches!(status, 429 | 503) && Instant::now() < until =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("a real listener could not connect: {e}"),
        }
    }
}

/// PATCHes 1,000 candidates to `peer`'s session: taken with 204, and the session plays on.
async fn trickle_a_thousand(peer: &mut ClientPeer) {
    let fragment: String = (0..1_000)
        .map(|i| {
            format!(
                "a=candidate:{i} 1 udp 2130706431 10.{}.{}.{} 9 typ host\r\n",
                i / 65_536 % 256,
                i / 256 % 256,
                i % 256
            )
        })
        .collect();
    let status = reqwest::Client::new()
        .patch(&peer.location)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body(fragment)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 204);
    while peer.incoming.try_recv().is_ok() {}
    let mut heard = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(_)) = tokio::time::timeout_at(end, peer.incoming.recv()).await {
        heard += 1;
    }
    assert!(heard > 30, "{heard} frames in the second after the trickle");
}

#[test]
fn a_flood_of_offers_is_capped_real_listeners_get_in_and_the_first_hears_no_gap() {
    let dir = tempdir();
    let d = dir.path();
    let (game, mic) = game_and_silence(d, 70.0);
    let limits = [
        "pending_sessions_per_room=100",
        "pending_sessions_per_address=40",
        "sessions_per_address=1000",
        "sessions_per_room=400",
    ];
    let mut args = Vec::new();
    for l in &limits {
        args.extend(["--limit", l]);
    }
    let (_server, url) = serve_with(&d.join("data"), &args);
    let host = host_from_files(&["--server", &url, "--title", "Flood"], &game, &mic, 70.0);
    let room = LiveRoom::of(&host);
    let whep = format!("{}/whep/{}", room.url, room.room);
    let out = d.join("first.wav");
    let first = listener(&room.link, &out, 45, &[]);
    let until = Instant::now() + Duration::from_secs(30);
    while metric(&url, "listeners") < 1 {
        assert!(Instant::now() < until, "the first listener never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt().block_on(async {
        let counts = flood(&whep).await;
        let taken = counts.get(&201).copied().unwrap_or(0);
        assert!(taken <= 100, "{counts:?}: more pending than the room's cap");
        assert!(counts.get(&429).copied().unwrap_or(0) > 0, "{counts:?}");
        assert!(counts.get(&503).copied().unwrap_or(0) > 0, "{counts:?}");
        eprintln!("flood of {JUNK} offers: {counts:?}");
        let started = Instant::now();
        let peers: Vec<_> = (0..REAL)
            .map(|_| tokio::spawn(real_listener(whep.clone())))
            .collect();
        let mut real = Vec::new();
        for p in peers {
            real.push(p.await.unwrap());
        }
        eprintln!("{REAL} real listeners in after {:?}", started.elapsed());
        trickle_a_thousand(&mut real[0]).await;
        for mut p in real {
            p.close().await;
        }
    });
    let listening = first.wait_ok(Duration::from_secs(90));
    assert_no_window_without_the_tone(&out, &listening);
}

/// Every 100 ms of what the first listener heard, from its first tone on, carries the tone.
fn assert_no_window_without_the_tone(out: &std::path::Path, stderr: &str) {
    let track = tone_track(out, 440.0);
    let start = track
        .iter()
        .position(|&db| db > -30.0)
        .unwrap_or_else(|| panic!("the first listener heard no tone: {stderr}"));
    // The last window may be cut short by the end of the recording.
    let heard = &track[start..track.len() - 1];
    assert!(heard.len() > 300, "{} windows heard", heard.len());
    let typical = median(heard);
    let gaps: Vec<usize> = heard
        .iter()
        .enumerate()
        .filter(|(_, db)| **db < typical - 10.0)
        .map(|(i, _)| i)
        .collect();
    assert!(
        gaps.is_empty(),
        "windows without the tone (typical {typical:.1} dB) at {gaps:?}"
    );
}
