//! The room server end to end, with real processes on loopback: `booth serve`, `booth host
//! --headless` publishing by WHIP, `booth listen` clients by WHEP, and the WebSocket room channel.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    BoothProcess, Ears, GAME_TONE, Process, Tone, VOICE_TONE, channel, have_tool, loudest_tone_db,
    median, metric, opus_pre_skip, read_wav, sine_fit, sound_lock, sound_server, tempdir,
    thread_wakeups, tone_db, tone_levels, write_silence,
};

/// A room server on a free port; its base URL.
pub fn serve(data: &Path) -> (BoothProcess, String) {
    let p = BoothProcess::spawn(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--udp-port",
        "0",
        "--data",
        data.to_str().unwrap(),
    ]);
    let url = p.line("booth: serving rooms on ", Duration::from_secs(20));
    (p, url)
}

/// Per 100 ms window of the left channel: the level of `freq`, dB.
pub fn tone_track(path: &Path, freq: f32) -> Vec<f32> {
    let (x, channels, rate) = read_wav(path);
    assert_eq!((channels, rate), (2, 48_000));
    let left = channel(&x, 0);
    left.chunks(4_800).map(|w| tone_db(w, freq)).collect()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `booth host --headless` for `seconds` on a game file and a mic file, its voice unprocessed
/// (no noise suppression, no gate) so levels in the room match the files; `room` says where.
fn host_from_files(room: &[&str], game: &Path, mic: &Path, seconds: f32) -> BoothProcess {
    let seconds = seconds.to_string();
    let mut args = vec!["host", "--headless"];
    args.extend_from_slice(room);
    args.extend([
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        mic.to_str().unwrap(),
        "--no-noise-suppression",
        "--voice-gate",
        "0",
        "--seconds",
        &seconds,
    ]);
    BoothProcess::spawn(&args)
}

/// A speaker in `room` on `url`: `booth host --headless` with the speaker's `token`, its game
/// `silence` and its mic `voice` unprocessed (as `host_from_files`), for `seconds`.
fn speaker_from_files(
    url: &str,
    room: &str,
    token: &str,
    silence: &Path,
    voice: &Path,
    seconds: f32,
) -> BoothProcess {
    host_from_files(
        &["--server", url, "--room", room, "--token", token],
        silence,
        voice,
        seconds,
    )
}

/// A listener named Guest raises a hand and the host (`host_token`, over HTTP) brings them
/// on stage: their room channel (kept open: closing it leaves the room) and speaker's token.
async fn brought_on_stage(url: &str, room: &str, host_token: &str) -> (Ws, String) {
    let (mut g, gw) = join(url, room, None, "Guest").await;
    assert_eq!(
        act(&mut g, json!({"type": "raise_hand"})).await["type"],
        "ok"
    );
    let (s, body) = status_of(
        reqwest::Client::new()
            .post(format!("{url}/api/rooms/{room}/actions"))
            .bearer_auth(host_token)
            .json(&json!({"type": "approve", "target": gw["you"]["id"]})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    (g, gw["you"]["token"].as_str().unwrap().to_owned())
}

/// Writes `seconds` of a 440 Hz game (stereo) and a mic (mono) into `dir`; returns their paths.
/// The mic speaks 1.5 s bursts of 1 kHz every 4 s from 4 s on ([4, 5.5), [8, 9.5), ...), and is
/// silent for the last 4.5 s at least.
fn game_and_bursts(dir: &Path, seconds: f32) -> (PathBuf, PathBuf) {
    let game = dir.join("game.wav");
    let mic = dir.join("mic.wav");
    GAME_TONE.write(&game, seconds, 48_000, 2);
    VOICE_TONE.write_while(&mic, seconds, 48_000, 1, |t| {
        let start = 4.0 * (t / 4.0).floor();
        start >= 4.0 && start + 4.5 <= seconds && t < start + 1.5
    });
    (game, mic)
}

#[test]
fn three_listeners_hear_the_ducked_program_and_a_late_one_within_a_second() {
    let dir = tempdir();
    let d = dir.path();
    // 18 s: the files play from the engine's start, before the host is in the room, so a host
    // slow to start on a busy machine still has 11 s left for the listeners.
    let (game, mic) = game_and_bursts(d, 18.0);
    let (_server, url) = serve(&d.join("data"));
    let host = host_from_files(
        &["--server", &url, "--title", "Review night"],
        &game,
        &mic,
        18.0,
    );
    let link = host.line("listen: ", Duration::from_secs(20));
    assert!(link.starts_with(&url), "{link} is not on {url}");
    // The host alone on stage hears only its mix-minus: no program is encoded for an audience
    // that is not there yet.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(metric(&url, "program_frames_total"), 0);
    let outs: Vec<PathBuf> = (0..3).map(|i| d.join(format!("listener{i}.wav"))).collect();
    let listeners: Vec<BoothProcess> = outs
        .iter()
        .map(|o| {
            BoothProcess::spawn(&[
                "listen",
                &link,
                "--out",
                o.to_str().unwrap(),
                "--seconds",
                "11",
            ])
        })
        .collect();
    std::thread::sleep(Duration::from_secs(6));
    let late_out = d.join("late.wav");
    let late = BoothProcess::spawn(&[
        "listen",
        &link,
        "--out",
        late_out.to_str().unwrap(),
        "--seconds",
        "3",
    ]);
    for l in listeners {
        l.wait_ok(Duration::from_secs(40));
    }
    let late_err = late.wait_ok(Duration::from_secs(30));
    // Encoded once for all three (and the late one), once per 20 ms while they listened.
    let encoded = metric(&url, "program_frames_total");
    assert!(
        (450..=700).contains(&encoded),
        "{encoded} program frames for 11 s of listening"
    );
    host.wait_ok(Duration::from_secs(30));

    for out in &outs {
        let game = tone_track(out, 440.0);
        let voice = tone_track(out, 1000.0);
        let loud: Vec<usize> = (0..voice.len()).filter(|&i| voice[i] > -20.0).collect();
        assert!(
            loud.len() >= 20,
            "{}: the 1 kHz bursts are missing ({} loud windows): {voice:?}",
            out.display(),
            loud.len()
        );
        // Windows well inside a burst, and well clear of any.
        let inside: Vec<f32> = (1..voice.len() - 1)
            .filter(|&i| voice[i - 1] > -20.0 && voice[i] > -20.0 && voice[i + 1] > -20.0)
            .map(|i| game[i])
            .collect();
        let clear: Vec<f32> = (10..voice.len() - 10)
            .filter(|&i| voice[i - 10..i + 10].iter().all(|&v| v < -40.0))
            .map(|i| game[i])
            .collect();
        assert!(
            inside.len() >= 10 && clear.len() >= 5,
            "{}: inside {inside:?} clear {clear:?}",
            out.display()
        );
        let (ducked, open) = (median(&inside), median(&clear));
        assert!(
            open > -12.0,
            "{}: 440 Hz too quiet in the clear: {open:.1} dB",
            out.display()
        );
        let depth = open - ducked;
        assert!(
            (depth - 12.0).abs() <= 2.0,
            "{}: the game dips {depth:.1} dB under the bursts (want 12 +- 2)",
            out.display()
        );
    }

    // The late listener: audio within 1 s of asking for it.
    let connect_ms: f32 = late_err
        .split("connected in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no connect time in: {late_err}"));
    let game = tone_track(&late_out, 440.0);
    let first = game.iter().position(|&l| l > -30.0).unwrap_or(usize::MAX) as f32 * 100.0;
    assert!(
        connect_ms + first <= 1000.0,
        "the late listener heard the game {connect_ms} + {first} ms after asking"
    );
}

#[test]
fn a_host_with_its_own_server_publishes_into_it_directly_and_is_heard_over_webrtc() {
    let dir = tempdir();
    let d = dir.path();
    // 20 s: as above, and this host starts its own room server and is checked for 3 s before
    // the listener comes.
    let (game, mic) = game_and_bursts(d, 20.0);
    // No --server: the room server runs in the host's own process.
    let data = d.join("data");
    let room = ["--bind", "127.0.0.1:0", "--data", data.to_str().unwrap()];
    let host = host_from_files(&room, &game, &mic, 20.0);
    let link = host.line("listen: ", Duration::from_secs(20));
    let url = link.split("/r/").next().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(1));
    // The host publishes, and hears the room, with no packet on the network: its frames go
    // straight to the room's task (over WHIP they would be 50 packets a second).
    assert_eq!(metric(&url, "publishers"), 1);
    let before = metric(&url, "packets_in_total");
    let wakeups = || thread_wakeups(host.pid(), "booth-live").unwrap_or(0);
    let woken = wakeups();
    std::thread::sleep(Duration::from_secs(2));
    let packets_in = metric(&url, "packets_in_total") - before;
    assert!(
        packets_in <= 2,
        "{packets_in} packets came in over 2 s with only the host in the room"
    );
    // Nor does the network thread wake for every 20 ms frame while nobody is there to hear
    // it (that alone would be 50 a second; hearing the room, another 50): the room mixes a few
    // frames at once, and the host waits for the room's voices instead of ticking for them.
    let per_second = (wakeups() - woken) / 2;
    assert!(
        per_second < 40,
        "the host's network thread woke {per_second} times a second, alone in its room"
    );
    // Alone on stage the host hears nothing, and nothing is encoded for it.
    assert_eq!(metric(&url, "minus_frames_total"), 0);
    // And the audience hears it over WebRTC.
    let out = d.join("listener.wav");
    BoothProcess::spawn(&[
        "listen",
        &link,
        "--out",
        out.to_str().unwrap(),
        "--seconds",
        "8",
    ])
    .wait_ok(Duration::from_secs(40));
    let game = tone_track(&out, 440.0);
    let voice = tone_track(&out, 1000.0);
    // The game throughout, ducked or not.
    let heard = game.iter().filter(|&&l| l > -30.0).count();
    assert!(heard >= 75, "the game is missing: {game:?}");
    let loud = voice.iter().filter(|&&l| l > -20.0).count();
    assert!(loud >= 10, "the host's voice is missing: {voice:?}");
    // Where nobody speaks the game is at full level: a host fed its own program back (game and
    // voice) would duck its game all the time.
    let clear: Vec<f32> = (10..voice.len() - 10)
        .filter(|&i| voice[i - 10..i + 10].iter().all(|&v| v < -40.0))
        .map(|i| game[i])
        .collect();
    assert!(
        clear.len() >= 5 && clear.iter().all(|&l| l > -12.0),
        "the game dips where nobody speaks: {clear:?} (all: {game:?})"
    );
    // Nor while the audience listened: the host never hears the program (its own voice).
    assert_eq!(metric(&url, "minus_frames_total"), 0);
    host.wait_ok(Duration::from_secs(30));
}

// ------------------------------------------------------------------ HTTP and WebSocket helpers

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub async fn create_room(url: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{url}/api/rooms"))
        .json(&json!({"title": "Stage test", "game": "Tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.unwrap()
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to a room's channel and says hello; returns the socket and the welcome.
pub async fn join(url: &str, room: &str, token: Option<&str>, name: &str) -> (Ws, Value) {
    let ws_url = format!("{}/api/rooms/{room}/ws", url.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::Text(
        json!({"v": 1, "type": "hello", "token": token, "name": name})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let welcome = next_of(&mut ws, &["welcome", "error"]).await;
    (ws, welcome)
}

/// The next message of one of these types (others are skipped).
pub async fn next_of(ws: &mut Ws, types: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {types:?} message within 10 s"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if types.contains(&v["type"].as_str().unwrap_or("")) {
                    return v;
                }
            }
            Some(Ok(Message::Close(f))) => {
                return json!({"type": "closed", "reason": f.map(|f| f.reason.to_string())});
            }
            Some(Ok(_)) => {}
            other => return json!({"type": "closed", "reason": format!("{other:?}")}),
        }
    }
}

/// Sends an action and waits for its `ok` or `error`.
pub async fn act(ws: &mut Ws, action: Value) -> Value {
    let mut action = action;
    action["v"] = json!(1);
    action["ref"] = json!(unix_ms());
    ws.send(Message::Text(action.to_string().into()))
        .await
        .unwrap();
    next_of(ws, &["ok", "error"]).await
}

#[test]
fn a_raised_hand_goes_on_stage_is_heard_muted_unmuted_and_removed() {
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    let silence = d.join("silence.wav");
    let voice = d.join("voice.wav");
    GAME_TONE.write(&game, 40.0, 48_000, 2);
    write_silence(&silence, 40.0, 1);
    Tone {
        freq: 700.0,
        amp: 0.4,
    }
    .write(&voice, 40.0, 48_000, 1);
    let (_server, url) = serve(&d.join("data"));
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--server",
        &url,
        "--title",
        "Stage",
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "40",
    ]);
    let link = host.line("listen: ", Duration::from_secs(20));
    let room = host.line("room:   ", Duration::from_secs(5));
    let host_token = host.line("token:  ", Duration::from_secs(5));
    let heard = d.join("listener.wav");
    let listener = BoothProcess::spawn(&[
        "listen",
        &link,
        "--out",
        heard.to_str().unwrap(),
        "--seconds",
        "30",
    ]);
    let rt = rt();
    let (ws_host, ws_guest, guest_token, guest_id) = rt.block_on(async {
        let (mut h, hw) = join(&url, &room, Some(&host_token), "Host").await;
        assert_eq!(hw["you"]["role"], "host", "{hw}");
        let (mut g, gw) = join(&url, &room, None, "Guest").await;
        assert_eq!(gw["you"]["role"], "listener", "{gw}");
        let gid = gw["you"]["id"].clone();
        let gtoken = gw["you"]["token"].as_str().unwrap().to_owned();
        assert_eq!(
            act(&mut g, json!({"type": "raise_hand"})).await["type"],
            "ok"
        );
        let queue = next_of(&mut h, &["hand_queue"]).await;
        assert_eq!(queue["queue"][0]["id"], gid, "{queue}");
        let approved = act(&mut h, json!({"type": "approve", "target": gid})).await;
        assert_eq!(approved["type"], "ok", "{approved}");
        (h, g, gtoken, gid)
    });
    // The new speaker publishes 700 Hz and listens to their mix-minus.
    let speaker = speaker_from_files(&url, &room, &guest_token, &silence, &voice, 30.0);
    speaker.line("listen: ", Duration::from_secs(20));
    let minus = d.join("minus.wav");
    let minus_listener = BoothProcess::spawn(&[
        "listen",
        &link,
        "--token",
        &guest_token,
        "--out",
        minus.to_str().unwrap(),
        "--seconds",
        "5",
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let (mut ws_host, mut ws_guest) = (ws_host, ws_guest);
    let t_mute = unix_ms();
    rt.block_on(async {
        let r = act(&mut ws_host, json!({"type": "mute", "target": guest_id})).await;
        assert_eq!(r["type"], "ok", "{r}");
        // Only the speaker unmutes themself: the host cannot.
        let r = act(&mut ws_host, json!({"type": "unmute"})).await;
        assert_eq!(r["type"], "error", "{r}");
    });
    std::thread::sleep(Duration::from_secs(3));
    let t_unmute = unix_ms();
    rt.block_on(async {
        let r = act(&mut ws_guest, json!({"type": "unmute"})).await;
        assert_eq!(r["type"], "ok", "{r}");
    });
    std::thread::sleep(Duration::from_secs(3));
    let t_remove = unix_ms();
    rt.block_on(async {
        let r = act(&mut ws_host, json!({"type": "remove", "target": guest_id})).await;
        assert_eq!(r["type"], "ok", "{r}");
        let bye = next_of(&mut ws_guest, &["closed"]).await;
        assert_eq!(bye["type"], "closed");
        // Back with the same token: refused, on the channel and for publishing.
        let (_, again) = join(&url, &room, Some(&guest_token), "Guest").await;
        assert_eq!(again["type"], "error", "{again}");
        assert_eq!(again["code"], "removed", "{again}");
        let r = reqwest::Client::new()
            .post(format!("{url}/whip/{room}"))
            .bearer_auth(&guest_token)
            .header("content-type", "application/sdp")
            .body("v=0\r\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
    });
    // The speaker's publication was ended by the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !speaker.stderr().contains("room connection ended") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        speaker.stderr().contains("room connection ended"),
        "{}",
        speaker.stderr()
    );
    drop(speaker);
    minus_listener.wait_ok(Duration::from_secs(30));
    let listen_err = listener.wait_ok(Duration::from_secs(60));
    drop(host);

    // The mix-minus: the room (440 Hz) without the speaker's own voice.
    let (x, _, _) = read_wav(&minus);
    let left = channel(&x, 0);
    let tail = &left[left.len() / 2..];
    let (g, v) = (tone_db(tail, 440.0), tone_db(tail, 700.0));
    assert!(
        g > -20.0,
        "the mix-minus lacks the room: 440 Hz at {g:.1} dB"
    );
    assert!(
        g - v >= 30.0,
        "the speaker hears themself: 700 Hz {v:.1} dB vs 440 Hz {g:.1} dB"
    );

    // The listener: 440 throughout; 700 while on stage and unmuted, gone within 200 ms of the mute.
    let start: u64 = listen_err
        .split("first frame at unix ms ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no start time in: {listen_err}"));
    let (x, _, _) = read_wav(&heard);
    let left = channel(&x, 0);
    let at = |unix: u64| ((unix.saturating_sub(start)) as usize * 48).min(left.len());
    let level = |from: u64, to: u64, f: f32| tone_db(&left[at(from)..at(to)], f);
    let before_mute = level(t_mute - 1500, t_mute - 100, 700.0);
    let muted = level(t_mute + 200, t_unmute, 700.0);
    let unmuted = level(t_unmute + 500, t_remove - 100, 700.0);
    let removed = level(t_remove + 500, t_remove + 2000, 700.0);
    let game = level(t_mute - 1500, t_remove + 2000, 440.0);
    assert!(game > -15.0, "440 Hz missing: {game:.1} dB");
    assert!(
        before_mute > -20.0,
        "the speaker is not heard: {before_mute:.1} dB"
    );
    assert!(
        before_mute - muted >= 30.0,
        "muting left 700 Hz at {muted:.1} dB (was {before_mute:.1})"
    );
    assert!(
        unmuted > -20.0,
        "unmuted speaker not heard: {unmuted:.1} dB"
    );
    assert!(
        before_mute - removed >= 30.0,
        "the removed speaker is still heard: {removed:.1} dB"
    );
}

async fn status_of(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(json!({ "raw": body })),
    )
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
    let game = d.join("game.wav");
    let silence = d.join("silence.wav");
    GAME_TONE.write(&game, 16.0, 48_000, 2);
    write_silence(&silence, 16.0, 1);
    let (_server, url) = serve(&d.join("data"));
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--server",
        &url,
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "16",
    ]);
    let link = host.line("listen: ", Duration::from_secs(20));
    let room = host.line("room:   ", Duration::from_secs(5));
    let heard = d.join("heard.wav");
    let listener = BoothProcess::spawn(&[
        "listen",
        &link,
        "--out",
        heard.to_str().unwrap(),
        "--seconds",
        "10",
    ]);
    rt().block_on(async {
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
                assert!(body["message"].as_str().is_some_and(|m| m.len() > 10), "{what}: {body}");
            }
        }
        // The WebSocket: garbage gets an error and the connection stays.
        let (mut ws, welcome) = join(&url, &room, None, "Tester").await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        for (text, code) in [
            ("{not json", "invalid_json"),
            (r#"{"type": "teleport"}"#, "unknown_type"),
            (r#"{"type": "mute"}"#, "invalid_message"),
            (r#"{"no_type": 1}"#, "invalid_message"),
        ] {
            ws.send(Message::Text(text.into())).await.unwrap();
            let e = next_of(&mut ws, &["error", "closed"]).await;
            assert_eq!(e["code"], code, "{text}: {e}");
        }
        // A message longer than one read of the channel (4 KiB), under its limit, is read
        // whole across several.
        let long = format!(r#"{{"type": "teleport", "pad": "{}"}}"#, "x".repeat(12 * 1024));
        ws.send(Message::Text(long.into())).await.unwrap();
        let e = next_of(&mut ws, &["error", "closed"]).await;
        assert_eq!(e["code"], "unknown_type", "a 12 KiB message: {e}");
        ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
        assert_eq!(next_of(&mut ws, &["error"]).await["code"], "text_only");
        // A flood: rate limited, then the connection still answers.
        for _ in 0..200 {
            ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await.unwrap();
        }
        let e = next_of(&mut ws, &["error"]).await;
        assert_eq!(e["code"], "rate_limited", "{e}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = act(&mut ws, json!({"type": "react", "emoji": "🔥"})).await;
        assert_eq!(r["type"], "ok", "{r}");
        // A hello that is not a hello.
        let ws_url = format!("{}/api/rooms/{room}/ws", url.replacen("http", "ws", 1));
        let (mut bad, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        bad.send(Message::Text(r#"{"type":"raise_hand"}"#.into())).await.unwrap();
        let e = next_of(&mut bad, &["error"]).await;
        assert_eq!(e["code"], "hello_first", "{e}");
    });
    let listened = listener.wait_ok(Duration::from_secs(40));
    let hosted = host.stderr();
    drop(host);
    // The listener heard the program without a gap through all of it.
    let track = tone_track(&heard, 440.0);
    let quiet: Vec<usize> = (5..track.len()).filter(|&i| track[i] < -20.0).collect();
    // Where a gap came from: the host's inputs running short, or the way to the listener.
    let said = |err: &str, what: &str| -> String {
        err.lines()
            .filter(|l| l.contains(what))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        quiet.is_empty(),
        "the program dropped out at windows {quiet:?}: {track:?}\nthe host: {}\nthe listener: {}",
        said(&hosted, "short:"),
        said(&listened, "concealed")
    );
}

/// The Python with aiortc that `tests/run` prepares; `None` (skip) when absent, unless
/// `BOOTH_REQUIRE_TOOLS` is set.
fn aiortc_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BOOTH_PEERS_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers-venv/bin/python")),
    ];
    let found = candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import aiortc"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
            "aiortc is required (BOOTH_REQUIRE_TOOLS is set): tests/run installs it"
        );
        eprintln!("skipping: no Python with aiortc (tests/run installs one)");
    }
    found
}

fn aiortc(python: &Path, args: &[&str]) -> Process {
    Process::spawn(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/aiortc_peer.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
}

#[test]
fn an_independent_webrtc_stack_listens_and_publishes() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    let silence = d.join("silence.wav");
    GAME_TONE.write(&game, 14.0, 48_000, 2);
    write_silence(&silence, 14.0, 1);
    let (_server, url) = serve(&d.join("data"));

    // aiortc as a WHEP listener of Booth's program.
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--server",
        &url,
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "12",
    ]);
    let room = host.line("room:   ", Duration::from_secs(20));
    let heard = d.join("aiortc-heard.wav");
    let out = aiortc(
        &python,
        &[
            "whep",
            &format!("{url}/whep/{room}"),
            heard.to_str().unwrap(),
            "5",
        ],
    )
    .finish();
    assert!(
        out.status.success(),
        "aiortc WHEP failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (x, channels, _) = read_wav(&heard);
    let left = channel(&x, 0);
    let _ = channels;
    let tail = &left[left.len() / 3..];
    let (tone, off) = (tone_db(tail, 440.0), tone_db(tail, 700.0));
    assert!(
        tone > -15.0 && tone - off > 30.0,
        "aiortc heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1})"
    );
    drop(host);

    // aiortc as a WHIP publisher (with the host token of a new room), heard by booth listen.
    let rt = rt();
    let created = rt.block_on(create_room(&url));
    let (id, token) = (
        created["id"].as_str().unwrap(),
        created["host_token"].as_str().unwrap(),
    );
    let publisher = aiortc(
        &python,
        &["whip", &format!("{url}/whip/{id}"), token, "700", "9"],
    );
    std::thread::sleep(Duration::from_secs(2));
    let got = d.join("from-aiortc.wav");
    BoothProcess::spawn(&[
        "listen",
        &format!("{url}/r/{id}"),
        "--out",
        got.to_str().unwrap(),
        "--seconds",
        "4",
    ])
    .wait_ok(Duration::from_secs(30));
    publisher.finish();
    let (x, _, _) = read_wav(&got);
    let left = channel(&x, 0);
    let tail = &left[left.len() / 3..];
    let (tone, off) = (tone_db(tail, 700.0), tone_db(tail, 440.0));
    assert!(
        tone > -20.0 && tone - off > 30.0,
        "booth listen heard aiortc's 700 Hz at {tone:.1} dB (440 Hz at {off:.1})"
    );
}

#[test]
fn a_speakers_voice_ducks_the_game_in_the_hosts_program() {
    speaker_ducks_the_hosts_game(false);
}

/// The same with the room server in the host's own process: the host hears the room from it
/// directly, not over WebRTC.
#[test]
fn a_speakers_voice_ducks_the_game_of_a_host_running_its_own_server() {
    speaker_ducks_the_hosts_game(true);
}

fn speaker_ducks_the_hosts_game(embedded: bool) {
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    let silence = d.join("silence.wav");
    let voice = d.join("bursts.wav");
    GAME_TONE.write(&game, 30.0, 48_000, 2);
    write_silence(&silence, 30.0, 1);
    VOICE_TONE.write_while(&voice, 14.0, 48_000, 1, |t| {
        [(4.0, 6.0), (9.0, 11.0)]
            .iter()
            .any(|(a, b)| (*a..*b).contains(&t))
    });
    let data = d.join("data");
    let (_server, server_url) = if embedded {
        (None, String::new())
    } else {
        let (p, url) = serve(&data);
        (Some(p), url)
    };
    let mut args = vec!["host", "--headless"];
    if embedded {
        args.extend(["--bind", "127.0.0.1:0", "--data", data.to_str().unwrap()]);
    } else {
        args.extend(["--server", &server_url]);
    }
    args.extend([
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "30",
    ]);
    let host = BoothProcess::spawn(&args);
    let link = host.line("listen: ", Duration::from_secs(20));
    let url = link.split("/r/").next().unwrap().to_owned();
    let room = host.line("room:   ", Duration::from_secs(5));
    let host_token = host.line("token:  ", Duration::from_secs(5));
    let rt = rt();
    let (mut ws, guest_token) = rt.block_on(brought_on_stage(&url, &room, &host_token));
    let heard = d.join("heard.wav");
    let listener = BoothProcess::spawn(&[
        "listen",
        &link,
        "--out",
        heard.to_str().unwrap(),
        "--seconds",
        "14",
    ]);
    let speaker = speaker_from_files(&url, &room, &guest_token, &silence, &voice, 14.0);
    listener.wait_ok(Duration::from_secs(40));
    drop(speaker);
    drop(host);
    // Everyone in the room saw who spoke: the speaker's level went up during the bursts. The
    // host, silent over a loud game, stayed dark: its light follows the voice it reports, not
    // its program (a -9 dB game tone would read 0.85).
    let guest_id = rt.block_on(async {
        let mut loudest = 0.0f64;
        let mut id = Value::Null;
        // Every levels message's other members' loudest, while the guest spoke (up to the last
        // message with the guest loud: everyone was still there).
        let mut others = Vec::new();
        let mut others_while_speaking = 0.0f64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout_at(deadline, ws.next()).await
        {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "role_changed" && v["role"] == "speaker" {
                id = v["id"].clone();
            }
            if v["type"] == "levels" && !id.is_null() {
                let mut guest = 0.0f64;
                let mut other = 0.0f64;
                for pair in v["levels"].as_array().unwrap() {
                    let level = pair[1].as_f64().unwrap();
                    if pair[0] == id {
                        guest = guest.max(level);
                    } else {
                        other = other.max(level);
                    }
                }
                loudest = loudest.max(guest);
                others.push(other);
                if guest > 0.5 {
                    others_while_speaking = others.iter().copied().fold(0.0, f64::max);
                }
            }
        }
        assert!(
            loudest > 0.5,
            "the speaker's level never rose (loudest {loudest})"
        );
        assert!(
            others_while_speaking < 0.3,
            "the host's light followed its game, not its silent mic ({others_while_speaking:.2})"
        );
        id
    });
    assert!(!guest_id.is_null());
    let game = tone_track(&heard, 440.0);
    let voice = tone_track(&heard, 1000.0);
    // Well inside the bursts (the duck comes back from the host a round trip later) and clear.
    let inside: Vec<f32> = (3..voice.len() - 3)
        .filter(|&i| voice[i - 3..=i + 3].iter().all(|&v| v > -20.0))
        .map(|i| game[i])
        .collect();
    let clear: Vec<f32> = (12..voice.len() - 12)
        .filter(|&i| voice[i - 12..i + 12].iter().all(|&v| v < -40.0))
        .map(|i| game[i])
        .collect();
    assert!(
        inside.len() >= 10 && clear.len() >= 5,
        "inside {inside:?} clear {clear:?} voice {voice:?}"
    );
    let depth = median(&clear) - median(&inside);
    assert!(
        (depth - 12.0).abs() <= 2.5,
        "the speaker ducks the game by {depth:.1} dB (want 12)"
    );
}

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

#[test]
fn sessions_are_resources_and_recording_writes_the_program() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let p = BoothProcess::spawn(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--udp-port",
        "0",
        "--data",
        data.to_str().unwrap(),
        "--ice-server",
        "stun:stun.example.org:3478",
    ]);
    let url = p.line("booth: serving rooms on ", Duration::from_secs(20));
    rt().block_on(async {
        let http = reqwest::Client::new();
        let room = create_room(&url).await;
        let id = room["id"].as_str().unwrap();
        let host_token = room["host_token"].as_str().unwrap();
        // CORS preflight for a browser on another origin.
        let pre = http
            .request(reqwest::Method::OPTIONS, format!("{url}/whep/{id}"))
            .header("origin", "https://player.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{}", pre.status());
        assert_eq!(pre.headers()["access-control-allow-origin"], "*");

        let r = http
            .post(format!("{url}/whep/{id}"))
            .header("content-type", "application/sdp")
            .body(whep_offer())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        assert_eq!(r.headers()["content-type"], "application/sdp");
        assert!(r.headers().contains_key("etag"));
        let link = r.headers()["link"].to_str().unwrap().to_owned();
        assert_eq!(link, "<stun:stun.example.org:3478>; rel=\"ice-server\"");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&format!("/whep/{id}/")), "{location}");
        let answer = r.text().await.unwrap();
        assert!(answer.contains("m=audio") && answer.contains("opus/48000/2"), "{answer}");
        assert!(answer.contains("a=ice-lite"), "{answer}");
        let session = format!("{url}{location}");
        let patch = |body: &str, ct: &str| {
            http.patch(&session)
                .header("content-type", ct)
                .body(body.to_owned())
        };
        let (s, _) = status_of(patch(
            "a=ice-ufrag:xxxx\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50999 typ host\r\n",
            "application/trickle-ice-sdpfrag",
        ))
        .await;
        assert_eq!(s, 422, "an ICE restart is refused clearly");
        let (s, body) = status_of(patch("a=candidate:1 1 udp 2130706431 127.0.0.1 50999 typ host\r\n", "application/trickle-ice-sdpfrag")).await;
        assert_eq!(s, 204, "trickle: {body}");
        let (s, _) = status_of(patch("a=candidate:garbage\r\n", "application/trickle-ice-sdpfrag")).await;
        assert_eq!(s, 400);
        let (s, _) = status_of(patch("a=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n", "text/plain")).await;
        assert_eq!(s, 415);
        let (s, _) = status_of(http.delete(&session)).await;
        assert_eq!(s, 200);
        let (s, _) = status_of(http.delete(&session)).await;
        assert_eq!(s, 404);

        // A browser offers transport-wide congestion control; the room answers without it (no
        // bit rate here follows an estimate, and with it every listener reports on the program
        // about 20 times a second), and keeps the media id that BUNDLE needs.
        let twcc = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
        let offer = whep_offer().replacen("a=mid:", &format!("a=extmap:3 {twcc}\r\na=mid:"), 1);
        assert!(offer.contains(twcc), "{offer}");
        let r = http
            .post(format!("{url}/whep/{id}"))
            .header("content-type", "application/sdp")
            .body(offer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let answer = r.text().await.unwrap();
        assert!(!answer.contains(twcc), "{answer}");
        assert!(answer.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "{answer}");
        let (s, _) = status_of(http.delete(format!("{url}{location}"))).await;
        assert_eq!(s, 200);

        // Recording: on for two seconds, then off: an Ogg Opus file another program accepts.
        let actions = format!("{url}/api/rooms/{id}/actions");
        let (s, _) = status_of(http.post(&actions).bearer_auth(host_token).json(&json!({"type": "start_recording"}))).await;
        assert_eq!(s, 204);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (s, _) = status_of(http.post(&actions).bearer_auth(host_token).json(&json!({"type": "stop_recording"}))).await;
        assert_eq!(s, 204);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let file = data.join("rooms").join(id).join("program-1.ogg");
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(&file)
            .output()
            .unwrap();
        let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0);
        assert!((1.7..2.6).contains(&secs), "{}: {secs} s", file.display());
        // The audience's program is encoded for low delay (2.5 ms of Opus lookahead, not 6.5),
        // and the recording's header says so.
        assert_eq!(opus_pre_skip(&file), 120);
        // Metrics in Prometheus text.
        let text = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        for name in ["booth_rooms 1", "booth_packets_out_total", "booth_mix_ticks_total", "booth_listeners"] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        let (s, _) = status_of(http.get(format!("{url}/healthz"))).await;
        assert_eq!(s, 200);
    });
}

#[test]
fn booth_listen_plays_the_room_on_a_sound_device() {
    if !sound_server() || !have_tool("parec") {
        return;
    }
    let _sound = sound_lock();
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    let silence = d.join("silence.wav");
    GAME_TONE.write(&game, 12.0, 48_000, 2);
    write_silence(&silence, 12.0, 1);
    let (_server, url) = serve(&d.join("data"));
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--server",
        &url,
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "12",
    ]);
    let link = host.line("listen: ", Duration::from_secs(20));
    let phones = Ears::on("phones", &d.join("phones.raw"));
    BoothProcess::spawn(&["listen", &link, "--device", "phones", "--seconds", "4"])
        .wait_ok(Duration::from_secs(30));
    let samples = phones.heard();
    let loudest = loudest_tone_db(&samples, 440.0);
    assert!(
        loudest > -15.0,
        "the room was not heard on the device ({loudest:.1} dB, {} samples)",
        samples.len()
    );
}

#[test]
fn when_the_host_process_goes_away_the_room_says_so() {
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    GAME_TONE.write(&game, 30.0, 48_000, 2);
    let (_server, url) = serve(&d.join("data"));
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--server",
        &url,
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        game.to_str().unwrap(),
        "--seconds",
        "30",
    ]);
    let room = host.line("room:   ", Duration::from_secs(20));
    rt().block_on(async {
        let (mut ws, welcome) = join(&url, &room, None, "Listener").await;
        assert_eq!(welcome["room"]["host_away"], false, "{welcome}");
        drop(host);
        let away = next_of(&mut ws, &["host_away"]).await;
        assert_eq!(away["until_ms"], 60_000, "{away}");
    });
}

/// The host hears a speaker on the headset as the speaker spoke: every phrase whole, from its
/// first 5 ms to its last, over the room the host's own process runs (as the overlay does).
/// The room sends the host its guests only while they speak, a 20 ms frame at a time; each
/// phrase must start with enough in hand that a frame landing a moment after the engine's pull
/// is still in time (without that, the host's ring for them ran short, a click, as each
/// stream started, in 8 runs of 8 on a busy machine, and 164 times more in 28 s in one).
#[test]
fn the_host_hears_a_speakers_phrases_whole_on_the_headset() {
    if !sound_server() || !have_tool("parec") {
        return;
    }
    let _sound = sound_lock();
    let dir = tempdir();
    let d = dir.path();
    let silence = d.join("silence.wav");
    let voice = d.join("phrases.wav");
    write_silence(&silence, 40.0, 2);
    // Phrases of 2.5 s with pauses between 0.3 and 1.1 s.
    let phrases = [
        (1.0, 3.5),
        (3.8, 6.3),
        (7.0, 9.5),
        (10.6, 13.1),
        (13.5, 16.0),
    ];
    VOICE_TONE.write_while(&voice, 17.0, 48_000, 1, |t| {
        phrases.iter().any(|(a, b)| (*a..*b).contains(&t))
    });
    let data = d.join("data");
    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--bind",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
        "--game-file",
        silence.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--monitor-device",
        "phones",
        "--seconds",
        "40",
    ]);
    let link = host.line("listen: ", Duration::from_secs(20));
    let url = link.split("/r/").next().unwrap().to_owned();
    let room = host.line("room:   ", Duration::from_secs(5));
    let host_token = host.line("token:  ", Duration::from_secs(5));
    let rt = rt();
    let (_guest_ws, guest_token) = rt.block_on(brought_on_stage(&url, &room, &host_token));
    let phones = Ears::on("phones", &d.join("phones.raw"));
    let speaker = speaker_from_files(&url, &room, &guest_token, &silence, &voice, 18.0);
    speaker.wait_ok(Duration::from_secs(40));
    let samples = phones.heard();
    drop(host);

    // The speaker's tone per 5 ms; heard where it is within 6 dB of its loudest.
    let levels: Vec<f32> = tone_levels(&samples, 1000.0, 240);
    let loudest = levels.iter().copied().fold(f32::MIN, f32::max);
    assert!(
        loudest > -16.0,
        "the speaker was not heard ({loudest:.1} dB)"
    );
    let on: Vec<usize> = (0..levels.len())
        .filter(|&i| levels[i] > loudest - 6.0)
        .collect();
    // Phrases: runs of the tone apart by more than 200 ms; within one, every 5 ms holds it.
    let mut heard_phrases = Vec::new();
    let mut holes = Vec::new();
    let mut start = on[0];
    for pair in on.windows(2) {
        let gap = pair[1] - pair[0];
        if gap > 40 {
            heard_phrases.push((start * 5, (pair[0] - start + 1) * 5));
            start = pair[1];
        } else if gap > 1 {
            holes.push((pair[0] * 5 + 5, (gap - 1) * 5));
        }
    }
    heard_phrases.push((start * 5, (on[on.len() - 1] - start + 1) * 5));
    assert!(
        holes.is_empty(),
        "holes (at ms, ms long) in the speaker on the host's headset: {holes:?}; phrases \
         (at ms, ms long): {heard_phrases:?}"
    );
    assert_eq!(
        heard_phrases.len(),
        phrases.len(),
        "phrases (at ms, ms long): {heard_phrases:?}"
    );
    for (at, long) in &heard_phrases {
        assert!(
            (2_450..=2_550).contains(long),
            "a phrase of 2,500 ms was heard for {long} ms (at {at} ms): {heard_phrases:?}"
        );
    }
    // And it does not click: a pull short by a frame is no hole, but it breaks the tone's
    // shape. Every 5 ms well inside a phrase is the sine to within 32 dB (Opus leaves it at
    // about 40 dB here; a pull a frame short, about 25), but for at most two (a busy machine
    // may hold a thread of the speaker's, the room's or the host's once; the room's voices
    // steered to an empty ring, as they were, clicked up to 164 times in 28 s).
    let inside = |i: usize| (i.saturating_sub(8)..=i + 8).all(|j| on.binary_search(&j).is_ok());
    let clicks: Vec<(usize, f64)> = (0..levels.len())
        .filter(|&i| inside(i))
        .filter_map(|i| {
            let w = &samples[i * 240..(i + 1) * 240];
            let (residual, amplitude) = sine_fit(w, 1000.0, 48_000.0);
            let snr = 10.0 * (amplitude * amplitude / 2.0 * 240.0 / residual.max(1e-12)).log10();
            (snr < 32.0).then_some((i * 5, snr))
        })
        .collect();
    assert!(
        clicks.len() <= 2,
        "clicks in the speaker on the host's headset (at ms, sine-to-rest dB): {clicks:?}"
    );
}
