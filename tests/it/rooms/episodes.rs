//! Rooms that become podcast episodes, end to end with real processes: a room recorded from its
//! start, with a speaker on stage and moments marked, published as an MP3 with chapters, its
//! tracks, its feed read by two podcast parsers and its media served by ranges; a server killed
//! while it records, whose episode is repaired and published at the next start; and a disk that
//! fills while a room records, which stops the recording and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::channel::{Ws, act, brought_on_stage, join, next_of, rt, status_of, unix_ms};
use super::{
    BoothProcess, LiveRoom, game_and_bursts, game_and_silence, host_from_files, host_playing,
    listener, serve, serve_with, speaker_from_files, tone_track,
};
use crate::support::{Tone, channel, ffmpeg_decode, have_tool, run, tempdir, tone_db};

const TITLE: &str = "Boss & <Co> \"live\" 🎮";
/// The speaker's voice: a tone neither the game (440 Hz) nor the host's voice (1 kHz) has.
const SPEAKER_TONE: Tone = Tone {
    freq: 700.0,
    amp: 0.4,
};

fn tools() -> bool {
    ["ffmpeg", "ffprobe", "opusinfo", "curl"]
        .iter()
        .all(|t| have_tool(t))
}

/// An episode as the API gives it.
fn episode(url: &str, id: i64) -> Value {
    let text = crate::support::http_get(&format!("{url}/api/episodes/{id}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Waits until episode `id` is published (failing on `failed`), within `within`.
fn published(url: &str, id: i64, within: Duration) -> Value {
    let end = Instant::now() + within;
    loop {
        let e = episode(url, id);
        match e["status"].as_str() {
            Some("published") => return e,
            Some("failed") => panic!("episode {id} failed: {e}"),
            _ => {}
        }
        assert!(Instant::now() < end, "episode {id} not published: {e}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The episode number in an episode page's link.
fn id_in(page: &str) -> i64 {
    let id = page.split_whitespace().next().unwrap().rsplit('/').next();
    id.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no episode number in {page}"))
}

/// Sleeps until `at` (unix ms).
fn sleep_until(at: u64) {
    let now = unix_ms();
    if at > now {
        std::thread::sleep(Duration::from_millis(at - now));
    }
}

/// An episode's file on disk.
fn file_of(data: &Path, e: &Value, file: &str) -> PathBuf {
    data.join("episodes").join(e["id"].to_string()).join(file)
}

#[test]
fn a_recorded_room_is_published_as_an_episode_with_chapters_tracks_and_a_feed() {
    if !tools() {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("data");
    let (server, url) = serve(&data);
    let (game, mic) = game_and_bursts(d, 140.0);
    let host = host_playing(
        &[
            "--server",
            &url,
            "--title",
            TITLE,
            "--game",
            "Elden Ring",
            "--episode",
        ],
        &game,
        &mic,
        140.0,
        &[],
    );
    let live = LiveRoom::of(&host);
    let id = id_in(&host.line("episode: ", Duration::from_secs(5)));
    let started = episode(&url, id)["started_ms"].as_u64().unwrap();
    let rt = rt();
    let (mut ws_host, _) = rt.block_on(join(&url, &live.room, Some(&live.host_token), "Host"));
    let speaker = speaker_on_stage(d, &live, &rt);
    check_live_item(&url, id);
    mark_and_end(&rt, &mut ws_host, started);
    let e = published(&url, id, Duration::from_secs(120));
    drop((speaker, host));
    check_mp3(&data, &e);
    check_chapters(&data, &e);
    check_speaker_track(&data, &e);
    check_feed(&url, &e, &data);
    check_ranges(&e, &data);
    check_cli(&data, id);
    drop(server);
}

/// A listener raises a hand, is brought on stage, and speaks (700 Hz) from its own process.
fn speaker_on_stage(d: &Path, live: &LiveRoom, rt: &tokio::runtime::Runtime) -> (BoothProcess, Ws) {
    let (_, silence) = game_and_silence(d, 110.0);
    let voice = d.join("speaker.wav");
    SPEAKER_TONE.write(&voice, 110.0, 48_000, 1);
    let (guest, token) = rt.block_on(brought_on_stage(&live.url, &live.room, &live.host_token));
    let p = speaker_from_files(&live.url, &live.room, &token, &silence, &voice, 110.0);
    p.line("listen: ", Duration::from_secs(20));
    (p, guest)
}

/// While the room records, the feed carries it as a live item.
fn check_live_item(url: &str, id: i64) {
    let xml = crate::support::http_get(&format!("{url}/podcast.xml"));
    let parsed = parse_feed(&xml);
    let live = &parsed["live"];
    assert_eq!(live.as_array().map(Vec::len), Some(1), "{parsed}\n{xml}");
    assert_eq!(live[0]["status"], "live", "{parsed}");
    assert_eq!(live[0]["title"], TITLE, "{parsed}");
    assert!(
        live[0]["link"].as_str().unwrap().contains("/r/"),
        "{parsed}"
    );
    // A podcast app plays the live item from the room's MP3 stream.
    let stream = live[0]["enclosure"].as_str().unwrap_or_default();
    assert!(
        stream.starts_with(&format!("{url}/live/")) && stream.ends_with(".mp3"),
        "{parsed}"
    );
    assert_eq!(live[0]["type"], "audio/mpeg", "{parsed}");
    let e = episode(url, id);
    assert_eq!(e["status"], "recording", "{e}");
}

/// Moments at 0:30 ("Boss fight") and 1:10 (no label), then the end at 2:00.
fn mark_and_end(rt: &tokio::runtime::Runtime, ws: &mut Ws, started: u64) {
    sleep_until(started + 30_000);
    let r = rt.block_on(act(
        ws,
        json!({"type": "mark_moment", "label": "Boss fight"}),
    ));
    assert_eq!(r["type"], "ok", "{r}");
    sleep_until(started + 70_000);
    let r = rt.block_on(act(ws, json!({"type": "mark_moment"})));
    assert_eq!(r["type"], "ok", "{r}");
    sleep_until(started + 120_000);
    let r = rt.block_on(act(ws, json!({"type": "end"})));
    assert_eq!(r["type"], "ok", "{r}");
}

/// What ffmpeg's `ebur128=peak=true` reads of a file: integrated loudness and true peak.
fn ebur128(path: &Path) -> (f64, f64) {
    let out = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128=peak=true", "-f", "null", "-"]));
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap_or("");
    let after = |key: &str| -> f64 {
        summary
            .split(key)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no '{key}' in {summary}"))
    };
    (after("I:"), after("Peak:"))
}

fn check_mp3(data: &Path, e: &Value) {
    let mp3 = file_of(data, e, e["files"]["mp3"].as_str().unwrap());
    let program = file_of(data, e, e["files"]["program"].as_str().unwrap());
    let (m, p) = (ffmpeg_decode(&mp3).len(), ffmpeg_decode(&program).len());
    let diff = (m as f64 - p as f64).abs() / 96_000.0;
    assert!(
        diff < 0.1,
        "MP3 {m} vs program {p} samples: {diff:.3} s apart"
    );
    let seconds = p as f64 / 96_000.0;
    assert!(
        (115.0..125.0).contains(&seconds),
        "program of {seconds:.1} s"
    );
    let (lufs, peak) = ebur128(&mp3);
    eprintln!("episode: MP3 {m} vs program {p} samples, {lufs} LUFS, true peak {peak} dBTP");
    assert!((-17.0..=-15.0).contains(&lufs), "integrated {lufs} LUFS");
    assert!(peak <= -1.0, "true peak {peak} dBTP");
}

fn check_chapters(data: &Path, e: &Value) {
    let want = [(0.0, "Start"), (30.0, "Boss fight"), (70.0, "Moment 2")];
    let json_file = file_of(data, e, e["files"]["chapters"].as_str().unwrap());
    let chapters: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let listed = chapters["chapters"].as_array().unwrap();
    assert_eq!(listed.len(), want.len(), "{chapters}");
    for (c, (at, label)) in listed.iter().zip(want) {
        assert_eq!(c["title"], label, "{chapters}");
        let t = c["startTime"].as_f64().unwrap();
        assert!((t - at).abs() <= 0.5, "{label} at {t} s, not {at}");
    }
    let mp3 = file_of(data, e, e["files"]["mp3"].as_str().unwrap());
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-show_chapters", "-of", "json"])
        .arg(&mp3));
    let probed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = probed["chapters"].as_array().unwrap();
    assert_eq!(listed.len(), want.len(), "{probed}");
    for (c, (at, label)) in listed.iter().zip(want) {
        assert_eq!(c["tags"]["title"], label, "{probed}");
        let t: f64 = c["start_time"].as_str().unwrap().parse().unwrap();
        eprintln!("episode: MP3 chapter '{label}' at {t} s (marked at {at} s)");
        assert!(
            (t - at).abs() <= 0.5,
            "MP3 chapter {label} at {t} s, not {at}"
        );
    }
}

/// The speaker's own track holds the speaker (700 Hz), not the game (440 Hz), and lines up
/// with the program.
fn check_speaker_track(data: &Path, e: &Value) {
    let tracks = e["files"]["tracks"].as_array().unwrap();
    let track = tracks
        .iter()
        .find(|t| t["name"] == "Guest")
        .unwrap_or_else(|| panic!("no track for the speaker: {e}"));
    let x = ffmpeg_decode(&file_of(data, e, track["file"].as_str().unwrap()));
    let program = ffmpeg_decode(&file_of(data, e, e["files"]["program"].as_str().unwrap()));
    let apart = (x.len() as f64 - program.len() as f64).abs() / 96_000.0;
    assert!(
        apart < 0.1,
        "the track is {apart:.2} s off the program's length"
    );
    let left = channel(&x, 0);
    // 40 s to 80 s: the speaker speaks throughout.
    let middle = &left[40 * 48_000..80 * 48_000];
    let (voice, game) = (tone_db(middle, 700.0), tone_db(middle, 440.0));
    eprintln!("episode: the speaker's track: voice {voice:.1} dB, game {game:.1} dB");
    assert!(voice > -20.0, "the speaker at {voice:.1} dB in their track");
    assert!(
        game < voice - 50.0,
        "the game at {game:.1} dB in the speaker's track"
    );
    let people = e["people"].as_array().unwrap();
    assert!(people.iter().any(|p| p["name"] == "Guest"), "{e}");
}

/// Both podcast parsers and an XML parser read the feed: the episode with its title unchanged,
/// its enclosure and exact length, its duration.
fn check_feed(url: &str, e: &Value, data: &Path) {
    let xml = crate::support::http_get(&format!("{url}/podcast.xml"));
    let parsed = parse_feed(&xml);
    let mp3 = file_of(data, e, e["files"]["mp3"].as_str().unwrap());
    let size = std::fs::metadata(&mp3).unwrap().len();
    let seconds = e["duration_ms"].as_u64().unwrap() / 1000;
    assert_eq!(parsed["feedparser"]["bozo"], false, "{parsed}");
    for parser in ["feedparser", "podcastparser"] {
        let (title, url, length, d) = item_seen(&parsed, parser, &e["guid"])
            .unwrap_or_else(|| panic!("{parser} does not see the episode: {parsed}"));
        assert_eq!(title, TITLE, "{parser}: {parsed}");
        assert_eq!(length, size, "{parser}: {parsed}");
        assert_eq!(url, e["audio"].as_str().unwrap(), "{parser}: {parsed}");
        assert!(d.abs_diff(seconds) <= 1, "{parser}: {d} s, not {seconds}");
    }
    assert_eq!(parsed["live"].as_array().map(Vec::len), Some(0), "{parsed}");
}

/// The feed as two podcast parsers and `xml.etree` read it (`tests/peers/feed_check.py`).
fn parse_feed(xml: &str) -> Value {
    let python = crate::feed::feed_parsers_python().expect("feedparser and podcastparser");
    let dir = tempdir();
    let path = dir.path().join("feed.xml");
    std::fs::write(&path, xml).unwrap();
    crate::feed::parsed(&python, &path)
}

/// The episode with `guid` as `parser` saw it: title, enclosure URL and length, duration in s.
fn item_seen(parsed: &Value, parser: &str, guid: &Value) -> Option<(String, String, u64, u64)> {
    let episodes = parsed[parser]["episodes"].as_array()?;
    let e = episodes.iter().find(|e| &e["guid"] == guid)?;
    let duration = match &e["duration"] {
        Value::String(s) => s
            .split(':')
            .fold(0, |t, p| t * 60 + p.parse::<u64>().unwrap_or(0)),
        v => v.as_u64().unwrap_or(0),
    };
    let enclosure = &e["enclosures"][0];
    Some((
        e["title"].as_str()?.to_owned(),
        enclosure["url"].as_str()?.to_owned(),
        enclosure["length"].as_u64()?,
        duration,
    ))
}

/// `curl -r 1000-1999` on the MP3: 206 and exactly those 1000 bytes.
fn check_ranges(e: &Value, data: &Path) {
    let url = e["audio"].as_str().unwrap();
    let out = run(Command::new("curl")
        .args(["-s", "-r", "1000-1999", "-o", "-", "-w", "%{http_code}"])
        .arg(url));
    let (body, code) = out.stdout.split_at(out.stdout.len() - 3);
    assert_eq!(code, b"206");
    let mp3 = std::fs::read(file_of(data, e, e["files"]["mp3"].as_str().unwrap())).unwrap();
    assert_eq!(body, &mp3[1000..2000]);
}

/// `booth episodes` on the data directory lists and shows it.
fn check_cli(data: &Path, id: i64) {
    let out = run(Command::new(crate::support::booth())
        .args(["episodes", "list", "--data"])
        .arg(data));
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("published") && list.contains(TITLE), "{list}");
    let out = run(Command::new(crate::support::booth())
        .args(["episodes", "show", &id.to_string(), "--data"])
        .arg(data));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("Boss fight") && shown.contains("Guest"),
        "{shown}"
    );
}

/// A room recording from its start with the host publishing `game` (and a silent mic):
/// the server, the room's listener link, host token and episode number.
fn recording_room(
    d: &Path,
    data: &Path,
    seconds: f32,
) -> (BoothProcess, BoothProcess, LiveRoom, i64) {
    let (game, silence) = game_and_silence(d, seconds);
    let (server, url) = serve_with(data, &[]);
    let rt = rt();
    let (s, created) = rt.block_on(status_of(
        reqwest::Client::new()
            .post(format!("{url}/api/rooms"))
            .json(&json!({"title": "Crash test", "record": true})),
    ));
    assert_eq!(s, 201, "{created}");
    let id = created["episode"]["id"].as_i64().unwrap();
    let room = created["id"].as_str().unwrap().to_owned();
    let token = created["host_token"].as_str().unwrap().to_owned();
    let host = host_from_files(
        &["--server", &url, "--room", &room, "--token", &token],
        &game,
        &silence,
        seconds,
    );
    let live = LiveRoom::of(&host);
    (server, host, live, id)
}

#[test]
fn a_server_killed_while_recording_keeps_a_repaired_episode_and_publishes_it() {
    if !tools() {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("data");
    let (server, _host, live, id) = recording_room(d, &data, 45.0);
    let url = live.url.clone();
    let started = episode(&url, id)["started_ms"].as_u64().unwrap();
    sleep_until(started + 30_000);
    run(Command::new("kill").args(["-9", &server.pid().to_string()]));
    drop(server);
    let (_server, url) = serve_with(&data, &[]);
    let e = published(&url, id, Duration::from_secs(60));
    assert_eq!(e["cut_short"], true, "{e}");
    let ms = e["duration_ms"].as_u64().unwrap();
    eprintln!("episode: {ms} ms kept of a recording killed 30 s in");
    assert!(ms >= 27_000, "only {ms} ms kept");
    let program = file_of(&data, &e, e["files"]["program"].as_str().unwrap());
    let out = run(Command::new("opusinfo").arg(&program));
    let said = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        !said.contains("warning") && !said.contains("error"),
        "{said}"
    );
    let xml = crate::support::http_get(&format!("{url}/podcast.xml"));
    let parsed = parse_feed(&xml);
    for parser in ["feedparser", "podcastparser"] {
        assert!(item_seen(&parsed, parser, &e["guid"]).is_some(), "{parsed}");
    }
}

/// A small tmpfs, unmounted when the test ends however it ends.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
                "cannot mount a tmpfs (BOOTH_REQUIRE_TOOLS is set): run as root"
            );
            eprintln!("skipping: cannot mount a tmpfs here");
            return None;
        }
        Some(Self(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_recording_and_listeners_hear_no_gap() {
    if !tools() {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let Some(disk) = SmallDisk::mount(&d.join("small"), "320k") else {
        return;
    };
    let (server, _host, live, _id) = recording_room(d, &disk.0, 60.0);
    let rt = rt();
    let (mut ws, _) = rt.block_on(join(&live.url, &live.room, Some(&live.host_token), "Host"));
    let heard = d.join("listener.wav");
    let audience = listener(&live.link, &heard, 40, &[]);
    let failed = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(35), next_of_forever(&mut ws, "error")).await
    });
    let failed = failed.expect("no recording_failed error within 35 s");
    assert_eq!(failed["code"], "recording_failed", "{failed}");
    let why = failed["message"].as_str().unwrap().to_lowercase();
    assert!(why.contains("full") || why.contains("space"), "{failed}");
    let off = rt.block_on(next_of(&mut ws, &["recording"]));
    assert_eq!(off["on"], false, "{off}");
    audience.wait_ok(Duration::from_secs(60));
    // The game, every 100 ms of what the listener heard, across the failure.
    let levels = tone_track(&heard, 440.0);
    let quiet: Vec<usize> = (10..levels.len() - 10)
        .filter(|&i| levels[i] < -20.0)
        .collect();
    assert!(quiet.is_empty(), "gaps at {quiet:?} (x100 ms): {levels:?}");
    drop(server);
}

/// The next message of `kind`, however long it takes (the caller times out).
async fn next_of_forever(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = next_of_patient(ws).await;
        if m["type"] == kind || m["type"] == "closed" {
            return m;
        }
    }
}

async fn next_of_patient(ws: &mut Ws) -> Value {
    use futures_util::StreamExt;
    match ws.next().await {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
            serde_json::from_str(&t).unwrap_or(Value::Null)
        }
        other => json!({"type": "closed", "reason": format!("{other:?}")}),
    }
}

#[test]
fn sigterm_finishes_a_recording_properly_and_the_next_start_publishes_it() {
    if !tools() {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let data = d.join("data");
    let (server, _host, live, id) = recording_room(d, &data, 30.0);
    let started = episode(&live.url, id)["started_ms"].as_u64().unwrap();
    sleep_until(started + 8_000);
    run(Command::new("kill").args(["-TERM", &server.pid().to_string()]));
    server.wait_ok(Duration::from_secs(20));
    // Finished, not repaired: the whole program, with its end, and nothing cut short.
    let out = run(Command::new(crate::support::booth())
        .args(["episodes", "show", &id.to_string(), "--data"])
        .arg(&data));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("status:      rendering"), "{shown}");
    assert!(!shown.contains("cut short"), "{shown}");
    let program = data
        .join("episodes")
        .join(id.to_string())
        .join("program.ogg");
    let out = run(Command::new("opusinfo").arg(&program));
    let said = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        !said.contains("warning") && !said.contains("error"),
        "{said}"
    );
    let (_server, url) = serve_with(&data, &[]);
    let e = published(&url, id, Duration::from_secs(60));
    assert_eq!(e["cut_short"], false, "{e}");
    assert!(e["duration_ms"].as_u64().unwrap() >= 7_000, "{e}");
}
