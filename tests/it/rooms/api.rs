//! The room server's HTTP API and channel as a client meets them: WHEP sessions as resources
//! (CORS, trickle ICE, hang-up), recording, metrics, tokens that may not do what they ask, and
//! bad input answered with a clear error while the room plays on.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::channel::{Ws, act, channel_url, create_room, join, next_of, rt, status_of};
use super::{LiveRoom, game_and_silence, host_playing, listener, serve, serve_with, tone_track};
use crate::support::{opus_pre_skip, tempdir};

/// A real WHEP offer from Booth's own WebRTC configuration.
fn whep_offer() -> String {
    use str0m::media::{Direction, MediaKind};
    let mut rtc = booth::rtc::rtc_config().build(Instant::now());
    let addr = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _pending) = change.apply().unwrap();
    offer.to_sdp_string()
}

/// A WHEP session in room `id` on `url`, offered `offer`: the server's 201 answer.
async fn whep_session(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    offer: String,
) -> reqwest::Response {
    let r = http
        .post(format!("{url}/whep/{id}"))
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r
}

const TRICKLE: &str = "application/trickle-ice-sdpfrag";

#[test]
fn sessions_are_resources_and_recording_writes_the_program() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let (_server, url) = serve_with(&data, &["--ice-server", "stun:stun.example.org:3478"]);
    rt().block_on(async {
        let http = reqwest::Client::new();
        let room = create_room(&url).await;
        let id = room["id"].as_str().unwrap();
        let host_token = room["host_token"].as_str().unwrap();
        assert_a_browser_on_another_origin_may_ask(&http, &url, id).await;
        assert_a_whep_session_is_a_resource(&http, &url, id).await;
        assert_the_answer_leaves_out_congestion_control(&http, &url, id).await;
        assert_recording_writes_the_program(&http, &url, id, host_token, &data).await;
        // Metrics in Prometheus text.
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for name in [
            "booth_rooms 1",
            "booth_packets_out_total",
            "booth_mix_ticks_total",
            "booth_listeners",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        let (s, _) = status_of(http.get(format!("{url}/healthz"))).await;
        assert_eq!(s, 200);
    });
}

/// The CORS preflight for a browser on another origin, for room `id`'s WHEP endpoint.
async fn assert_a_browser_on_another_origin_may_ask(http: &reqwest::Client, url: &str, id: &str) {
    let pre = http
        .request(reqwest::Method::OPTIONS, format!("{url}/whep/{id}"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
}

/// A WHEP session in room `id`: created with an answer and the server's ICE servers, trickled
/// to (an ICE restart refused, bad fragments too), then hung up, once.
async fn assert_a_whep_session_is_a_resource(http: &reqwest::Client, url: &str, id: &str) {
    let r = whep_session(http, url, id, whep_offer()).await;
    assert_eq!(r.headers()["content-type"], "application/sdp");
    assert!(r.headers().contains_key("etag"));
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(link, "<stun:stun.example.org:3478>; rel=\"ice-server\"");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("/whep/{id}/")), "{location}");
    let answer = r.text().await.unwrap();
    assert!(
        answer.contains("m=audio") && answer.contains("opus/48000/2"),
        "{answer}"
    );
    assert!(answer.contains("a=ice-lite"), "{answer}");
    let session = format!("{url}{location}");
    let patch = |body: &str, ct: &str| {
        http.patch(&session)
            .header("content-type", ct)
            .body(body.to_owned())
    };
    let (s, _) = status_of(patch(
        "a=ice-ufrag:xxxx\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50999 typ host\r\n",
        TRICKLE,
    ))
    .await;
    assert_eq!(s, 422, "an ICE restart is refused clearly");
    let (s, body) = status_of(patch(
        "a=candidate:1 1 udp 2130706431 127.0.0.1 50999 typ host\r\n",
        TRICKLE,
    ))
    .await;
    assert_eq!(s, 204, "trickle: {body}");
    let (s, _) = status_of(patch("a=candidate:garbage\r\n", TRICKLE)).await;
    assert_eq!(s, 400);
    let (s, _) = status_of(patch(
        "a=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n",
        "text/plain",
    ))
    .await;
    assert_eq!(s, 415);
    let (s, _) = status_of(http.delete(&session)).await;
    assert_eq!(s, 200);
    let (s, _) = status_of(http.delete(&session)).await;
    assert_eq!(s, 404);
}

/// A browser offers transport-wide congestion control; the room answers without it (no bit
/// rate here follows an estimate, and with it every listener reports on the program about 20
/// times a second), and keeps the media id that BUNDLE needs.
async fn assert_the_answer_leaves_out_congestion_control(
    http: &reqwest::Client,
    url: &str,
    id: &str,
) {
    let twcc = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    let offer = whep_offer().replacen("a=mid:", &format!("a=extmap:3 {twcc}\r\na=mid:"), 1);
    assert!(offer.contains(twcc), "{offer}");
    let r = whep_session(http, url, id, offer).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let answer = r.text().await.unwrap();
    assert!(!answer.contains(twcc), "{answer}");
    assert!(
        answer.contains("urn:ietf:params:rtp-hdrext:sdes:mid"),
        "{answer}"
    );
    let (s, _) = status_of(http.delete(format!("{url}{location}"))).await;
    assert_eq!(s, 200);
}

/// Recording in room `id`, on for two seconds, then off: an Ogg Opus file under `data` that
/// another program (ffprobe) accepts, as long, and encoded for low delay.
async fn assert_recording_writes_the_program(
    http: &reqwest::Client,
    url: &str,
    id: &str,
    host_token: &str,
    data: &Path,
) {
    let actions = format!("{url}/api/rooms/{id}/actions");
    let (s, _) = status_of(
        http.post(&actions)
            .bearer_auth(host_token)
            .json(&json!({"type": "start_recording"})),
    )
    .await;
    assert_eq!(s, 204);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, _) = status_of(
        http.post(&actions)
            .bearer_auth(host_token)
            .json(&json!({"type": "stop_recording"})),
    )
    .await;
    assert_eq!(s, 204);
    // Stopping pauses the room's episode; its files are finished when the room ends.
    let (_, info) = status_of(http.get(format!("{url}/api/rooms/{id}"))).await;
    let episode = info["episode"]["id"].as_i64().unwrap();
    let (s, _) = status_of(
        http.post(&actions)
            .bearer_auth(host_token)
            .json(&json!({"type": "end"})),
    )
    .await;
    assert_eq!(s, 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let file = data
        .join("episodes")
        .join(episode.to_string())
        .join("program.ogg");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!((1.7..2.6).contains(&secs), "{}: {secs} s", file.display());
    // The audience's program is encoded for low delay (2.5 ms of Opus lookahead, not 6.5),
    // and the recording's header says so.
    assert_eq!(opus_pre_skip(&file), 120);
}

#[test]
fn a_listener_token_cannot_moderate_publish_or_end() {
    let dir = tempdir();
    let (_server, url) = serve(&dir.path().join("data"));
    rt().block_on(async {
        let http = reqwest::Client::new();
        let room = create_room(&url).await;
        let id = room["id"].as_str().unwrap();
        let host_token = room["host_token"].as_str().unwrap();
        let (mut host, _) = join(&url, id, Some(host_token), "Host").await;
        let (_l, lw) = join(&url, id, None, "Lis").await;
        let (_o, ow) = join(&url, id, None, "Other").await;
        let token = lw["you"]["token"].as_str().unwrap();
        let other = ow["you"]["id"].clone();
        let actions = format!("{url}/api/rooms/{id}/actions");
        for action in [
            json!({"type": "mute", "target": 1}),
            json!({"type": "approve", "target": other}),
            json!({"type": "remove", "target": other}),
            json!({"type": "move_to_audience", "target": 1}),
            json!({"type": "make_co_host", "target": other}),
            json!({"type": "start_recording"}),
            json!({"type": "end"}),
        ] {
            let (s, body) = status_of(http.post(&actions).bearer_auth(token).json(&action)).await;
            assert_eq!(s, 403, "{action} by a listener: {body}");
            assert_eq!(body["error"], "not_allowed", "{body}");
            let (s, _) = status_of(http.post(&actions).json(&action)).await;
            assert_eq!(s, 401, "{action} without a token");
            let forged = format!("p1.{}", "0".repeat(32));
            let (s, _) = status_of(http.post(&actions).bearer_auth(&forged).json(&action)).await;
            assert_eq!(s, 401, "{action} with a forged host token");
        }
        let (s, body) = status_of(
            http.post(format!("{url}/whip/{id}"))
                .bearer_auth(token)
                .header("content-type", "application/sdp")
                .body("v=0\r\n"),
        )
        .await;
        assert_eq!(
            (s, body["error"].as_str()),
            (403, Some("not_on_stage")),
            "{body}"
        );
        let (s, _) = status_of(
            http.post(format!("{url}/whip/{id}"))
                .header("content-type", "application/sdp")
                .body("v=0\r\n"),
        )
        .await;
        assert_eq!(s, 401);
        let (s, _) = status_of(
            http.post(format!("{url}/api/rooms/{id}/invites"))
                .bearer_auth(token)
                .json(&json!({"role": "co_host"})),
        )
        .await;
        assert_eq!(s, 403);
        // And over the WebSocket.
        let (mut l, _) = join(&url, id, Some(token), "Lis").await;
        let r = act(&mut l, json!({"type": "end"})).await;
        assert_eq!(
            (r["type"].as_str(), r["code"].as_str()),
            (Some("error"), Some("not_allowed")),
            "{r}"
        );
        // The room carries on: the host still runs it.
        let r = act(
            &mut host,
            json!({"type": "mark_moment", "label": "still here"}),
        )
        .await;
        assert_eq!(r["type"], "ok", "{r}");
        let (s, info) = status_of(http.get(format!("{url}/api/rooms/{id}"))).await;
        assert_eq!((s, info["ended"].as_bool()), (200, Some(false)), "{info}");
    });
}

#[test]
fn bad_input_gets_a_clear_error_and_the_room_carries_on() {
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 16.0);
    let (_server, url) = serve(&d.join("data"));
    let host = host_playing(&["--server", &url], &game, &silence, 16.0, &[]);
    let live = LiveRoom::of(&host);
    let heard = d.join("heard.wav");
    let audience = listener(&live.link, &heard, 10, &[]);
    rt().block_on(async {
        assert_bad_requests_get_a_clear_error(&url, &live.room).await;
        // The WebSocket: garbage gets an error and the connection stays.
        let (mut ws, welcome) = join(&url, &live.room, None, "Tester").await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_garbage_on_the_channel_gets_an_error(&mut ws).await;
        assert_a_flood_is_rate_limited_and_the_channel_answers_after(&mut ws).await;
        // A hello that is not a hello.
        let (mut bad, _) = tokio_tungstenite::connect_async(channel_url(&url, &live.room))
            .await
            .unwrap();
        bad.send(Message::Text(r#"{"type":"raise_hand"}"#.into()))
            .await
            .unwrap();
        let e = next_of(&mut bad, &["error"]).await;
        assert_eq!(e["code"], "hello_first", "{e}");
    });
    let listened = audience.wait_ok(Duration::from_secs(40));
    let hosted = host.stderr();
    drop(host);
    assert_the_program_had_no_gap(&heard, &hosted, &listened);
}

/// Bad requests to the HTTP API of the server at `url` (WHEP into `room`, rooms): each gets
/// its status, and a code and a message that explain it.
async fn assert_bad_requests_get_a_clear_error(url: &str, room: &str) {
    let http = reqwest::Client::new();
    let whep = format!("{url}/whep/{room}");
    let sdp = |body: String| {
        http.post(&whep)
            .header("content-type", "application/sdp")
            .body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("malformed SDP", sdp("this is not sdp\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n".into()), 400, "bad_sdp"),
        ("SDP without audio", sdp("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n".into()), 400, "no_audio"),
        ("SDP without Opus", sdp("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n".into()), 400, "no_opus"),
        ("wrong content type", http.post(&whep).header("content-type", "text/plain").body("v=0"), 415, "wrong_content_type"),
        ("unknown room", http.post(format!("{url}/whep/nosuchroom")).header("content-type", "application/sdp").body("v=0"), 404, "not_found"),
        ("body over 64 KiB", sdp("a".repeat(70 * 1024)), 413, ""),
        ("invalid JSON", http.post(format!("{url}/api/rooms")).header("content-type", "application/json").body("{not json"), 400, "invalid_json"),
        ("a room without a title", http.post(format!("{url}/api/rooms")).json(&json!({"title": "  "})), 400, "invalid_title"),
        ("hanging up an unknown session", http.delete(format!("{url}/whep/{room}/nosuchsession")), 404, "not_found"),
    ];
    for (what, req, want, code) in cases {
        let (s, body) = status_of(req).await;
        assert_eq!(s, want, "{what}: {body}");
        if !code.is_empty() {
            assert_eq!(body["error"], code, "{what}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| m.len() > 10),
                "{what}: {body}"
            );
        }
    }
}

/// Messages the channel cannot take (not JSON, unknown, incomplete, binary) each get an error
/// code, and a long one is read whole.
async fn assert_garbage_on_the_channel_gets_an_error(ws: &mut Ws) {
    for (text, code) in [
        ("{not json", "invalid_json"),
        (r#"{"type": "teleport"}"#, "unknown_type"),
        (r#"{"type": "mute"}"#, "invalid_message"),
        (r#"{"no_type": 1}"#, "invalid_message"),
    ] {
        ws.send(Message::Text(text.into())).await.unwrap();
        let e = next_of(ws, &["error", "closed"]).await;
        assert_eq!(e["code"], code, "{text}: {e}");
    }
    // A message longer than one read of the channel (4 KiB), under its limit, is read
    // whole across several.
    let long = format!(
        r#"{{"type": "teleport", "pad": "{}"}}"#,
        "x".repeat(12 * 1024)
    );
    ws.send(Message::Text(long.into())).await.unwrap();
    let e = next_of(ws, &["error", "closed"]).await;
    assert_eq!(e["code"], "unknown_type", "a 12 KiB message: {e}");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(next_of(ws, &["error"]).await["code"], "text_only");
}

/// A flood: rate limited, then the connection still answers.
async fn assert_a_flood_is_rate_limited_and_the_channel_answers_after(ws: &mut Ws) {
    for _ in 0..200 {
        ws.send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .unwrap();
    }
    let e = next_of(ws, &["error"]).await;
    assert_eq!(e["code"], "rate_limited", "{e}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = act(ws, json!({"type": "react", "emoji": "🔥"})).await;
    assert_eq!(r["type"], "ok", "{r}");
}

/// The listener heard the program (`heard`) without a gap through all of it; when it did not,
/// says where a gap came from: the host's inputs running short (`hosted`, the host's stderr),
/// or the way to the listener (`listened`).
fn assert_the_program_had_no_gap(heard: &Path, hosted: &str, listened: &str) {
    let track = tone_track(heard, 440.0);
    let quiet: Vec<usize> = (5..track.len()).filter(|&i| track[i] < -20.0).collect();
    let said = |err: &str, what: &str| -> String {
        err.lines()
            .filter(|l| l.contains(what))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        quiet.is_empty(),
        "the program dropped out at windows {quiet:?}: {track:?}\nthe host: {}\nthe listener: {}",
        said(hosted, "short:"),
        said(listened, "concealed")
    );
}
