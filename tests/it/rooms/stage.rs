//! Speakers on the stage: a raised hand brought up, heard, muted, unmuted and removed; a
//! speaker's voice ducking the host's game; the host hearing a speaker whole on the headset;
//! and the room telling everyone when the host's process goes away.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::channel::{Ws, act, brought_on_stage, join, next_of, rt, unix_ms};
use super::{
    BoothProcess, LiveRoom, game_and_silence, game_under_the_voice, game_where_nobody_speaks,
    host_playing, listener, said_number, serve, speaker_from_files, tone_track,
};
use crate::support::{
    Ears, GAME_TONE, Tone, VOICE_TONE, channel, have_tool, median, read_wav, sine_fit, sound_lock,
    sound_server, tempdir, tone_db, tone_levels, write_silence,
};

/// When the host moderated a speaker, unix ms: their mute, their own unmute, their removal.
struct Moderation {
    muted_at: u64,
    unmuted_at: u64,
    removed_at: u64,
}

#[test]
fn a_raised_hand_goes_on_stage_is_heard_muted_unmuted_and_removed() {
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 40.0);
    let voice = d.join("voice.wav");
    Tone {
        freq: 700.0,
        amp: 0.4,
    }
    .write(&voice, 40.0, 48_000, 1);
    let (_server, url) = serve(&d.join("data"));
    let host = host_playing(
        &["--server", &url, "--title", "Stage"],
        &game,
        &silence,
        40.0,
        &[],
    );
    let live = LiveRoom::of(&host);
    let heard = d.join("listener.wav");
    let audience = listener(&live.link, &heard, 30, &[]);
    let rt = rt();
    let (mut ws_host, mut ws_guest, guest_token, guest_id) =
        rt.block_on(hand_raised_and_approved(&live));
    // The new speaker publishes 700 Hz and listens to their mix-minus.
    let speaker = speaker_from_files(&live.url, &live.room, &guest_token, &silence, &voice, 30.0);
    speaker.line("listen: ", Duration::from_secs(20));
    let minus = d.join("minus.wav");
    let minus_listener = listener(&live.link, &minus, 5, &["--token", &guest_token]);
    std::thread::sleep(Duration::from_secs(4));
    let muted_at = unix_ms();
    rt.block_on(host_mutes(&mut ws_host, &guest_id));
    std::thread::sleep(Duration::from_secs(3));
    let unmuted_at = unix_ms();
    rt.block_on(async {
        let r = act(&mut ws_guest, json!({"type": "unmute"})).await;
        assert_eq!(r["type"], "ok", "{r}");
    });
    std::thread::sleep(Duration::from_secs(3));
    let removed_at = unix_ms();
    rt.block_on(host_removes(
        &live,
        &mut ws_host,
        &mut ws_guest,
        &guest_id,
        &guest_token,
    ));
    assert_the_server_ended_the_publication(&speaker);
    drop(speaker);
    minus_listener.wait_ok(Duration::from_secs(30));
    let listen_err = audience.wait_ok(Duration::from_secs(60));
    drop(host);
    assert_the_mix_minus_is_the_room_without_the_speaker(&minus);
    let moderation = Moderation {
        muted_at,
        unmuted_at,
        removed_at,
    };
    assert_the_audience_heard_the_moderation(&heard, &listen_err, &moderation);
}

/// Host and Guest join; Guest raises a hand, the host sees it queued and approves it. Returns
/// both channels, the guest's token and id.
async fn hand_raised_and_approved(live: &LiveRoom) -> (Ws, Ws, String, Value) {
    let (mut h, hw) = join(&live.url, &live.room, Some(&live.host_token), "Host").await;
    assert_eq!(hw["you"]["role"], "host", "{hw}");
    let (mut g, gw) = join(&live.url, &live.room, None, "Guest").await;
    assert_eq!(gw["you"]["role"], "listener", "{gw}");
    let gid = gw["you"]["id"].clone();
    let gtoken = gw["you"]["token"].as_str().unwrap().to_owned();
    // What the page offers a listener: a hand to raise, no microphone.
    assert!(offers(&gw["you"]["actions"], "raise_hand"), "{gw}");
    assert!(!offers(&gw["you"]["actions"], "mute_self"), "{gw}");
    assert_eq!(
        act(&mut g, json!({"type": "raise_hand"})).await["type"],
        "ok"
    );
    let raised = next_of(&mut h, &["hand_raised"]).await;
    assert_eq!(raised["entry"]["id"], gid, "{raised}");
    let approved = act(&mut h, json!({"type": "approve", "target": gid})).await;
    assert_eq!(approved["type"], "ok", "{approved}");
    // On stage, the room tells the guest what they may do now: speak, not raise a hand.
    let allowed = next_of(&mut g, &["allowed"]).await;
    assert!(offers(&allowed["actions"], "mute_self"), "{allowed}");
    assert!(!offers(&allowed["actions"], "raise_hand"), "{allowed}");
    (h, g, gtoken, gid)
}

/// Whether a list of action types (`you.actions`, `allowed`) holds `action`.
fn offers(actions: &Value, action: &str) -> bool {
    actions
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == action))
}

/// The host mutes the guest, and cannot unmute them.
async fn host_mutes(ws_host: &mut Ws, guest_id: &Value) {
    let r = act(ws_host, json!({"type": "mute", "target": guest_id})).await;
    assert_eq!(r["type"], "ok", "{r}");
    // Only the speaker unmutes themself: the host cannot.
    let r = act(ws_host, json!({"type": "unmute"})).await;
    assert_eq!(r["type"], "error", "{r}");
}

/// The host removes the guest: their channel closes, and their token is refused on the
/// channel and for publishing.
async fn host_removes(
    live: &LiveRoom,
    ws_host: &mut Ws,
    ws_guest: &mut Ws,
    guest_id: &Value,
    guest_token: &str,
) {
    let r = act(ws_host, json!({"type": "remove", "target": guest_id})).await;
    assert_eq!(r["type"], "ok", "{r}");
    let bye = next_of(ws_guest, &["closed"]).await;
    assert_eq!(bye["type"], "closed");
    // Back with the same token: refused, on the channel and for publishing.
    let (_, again) = join(&live.url, &live.room, Some(guest_token), "Guest").await;
    assert_eq!(again["type"], "error", "{again}");
    assert_eq!(again["code"], "removed", "{again}");
    let r = reqwest::Client::new()
        .post(format!("{}/whip/{}", live.url, live.room))
        .bearer_auth(guest_token)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

/// Within 10 s the removed speaker's `booth host` says its room connection ended.
fn assert_the_server_ended_the_publication(speaker: &BoothProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !speaker.stderr().contains("room connection ended") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        speaker.stderr().contains("room connection ended"),
        "{}",
        speaker.stderr()
    );
}

/// The mix-minus recording: the room (440 Hz) without the speaker's own voice (700 Hz).
fn assert_the_mix_minus_is_the_room_without_the_speaker(minus: &Path) {
    let (x, _, _) = read_wav(minus);
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
}

/// The listener's recording `heard` (its stderr `listen_err` says when it starts): 440 Hz
/// throughout; 700 Hz while on stage and unmuted, gone within 200 ms of the mute.
fn assert_the_audience_heard_the_moderation(heard: &Path, listen_err: &str, m: &Moderation) {
    let start: u64 = said_number(listen_err, "first frame at unix ms ");
    let (x, _, _) = read_wav(heard);
    let left = channel(&x, 0);
    let at = |unix: u64| ((unix.saturating_sub(start)) as usize * 48).min(left.len());
    let level = |from: u64, to: u64, f: f32| tone_db(&left[at(from)..at(to)], f);
    let before_mute = level(m.muted_at - 1500, m.muted_at - 100, 700.0);
    let muted = level(m.muted_at + 200, m.unmuted_at, 700.0);
    let unmuted = level(m.unmuted_at + 500, m.removed_at - 100, 700.0);
    let removed = level(m.removed_at + 500, m.removed_at + 2000, 700.0);
    let game = level(m.muted_at - 1500, m.removed_at + 2000, 440.0);
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

/// A speaker on stage speaks 1 kHz bursts (4-6 s and 9-11 s) while the host plays its game;
/// `embedded`: the room server runs in the host's process.
fn speaker_ducks_the_hosts_game(embedded: bool) {
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 30.0);
    let voice = d.join("bursts.wav");
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
    let room = if embedded {
        vec!["--bind", "127.0.0.1:0", "--data", data.to_str().unwrap()]
    } else {
        vec!["--server", &server_url]
    };
    let host = host_playing(&room, &game, &silence, 30.0, &[]);
    let live = LiveRoom::of(&host);
    let rt = rt();
    let (mut ws, guest_token) =
        rt.block_on(brought_on_stage(&live.url, &live.room, &live.host_token));
    let heard = d.join("heard.wav");
    let audience = listener(&live.link, &heard, 14, &[]);
    let speaker = speaker_from_files(&live.url, &live.room, &guest_token, &silence, &voice, 14.0);
    audience.wait_ok(Duration::from_secs(40));
    drop(speaker);
    drop(host);
    let guest_id = rt.block_on(assert_only_the_speakers_light_went_up(&mut ws));
    assert!(!guest_id.is_null());
    assert_the_speaker_ducks_the_game_12_db(&heard);
}

/// Everyone in the room saw who spoke: the speaker's level went up during the bursts. The
/// host, silent over a loud game, stayed dark: its light follows the voice it reports, not its
/// program (a -9 dB game tone would read 0.85). Reads what is left on the guest's channel `ws`;
/// returns the speaker's id.
async fn assert_only_the_speakers_light_went_up(ws: &mut Ws) -> Value {
    let mut loudest = 0.0f64;
    let mut id = Value::Null;
    // Every levels message's other members' loudest, while the guest spoke (up to the last
    // message with the guest loud: everyone was still there).
    let mut others = Vec::new();
    let mut others_while_speaking = 0.0f64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout_at(deadline, ws.next()).await {
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "role_changed" && v["role"] == "speaker" {
            id = v["id"].clone();
        }
        if v["type"] == "levels" && !id.is_null() {
            let (guest, other) = loudest_of(&v["levels"], &id);
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
}

/// From a `levels` message's pairs of (id, level): the loudest of member `id`, and the loudest
/// of everyone else.
fn loudest_of(levels: &Value, id: &Value) -> (f64, f64) {
    let mut guest = 0.0f64;
    let mut other = 0.0f64;
    for pair in levels.as_array().unwrap() {
        let level = pair[1].as_f64().unwrap();
        if pair[0] == *id {
            guest = guest.max(level);
        } else {
            other = other.max(level);
        }
    }
    (guest, other)
}

/// In the listener's recording `heard`, the game dips 12 +- 2.5 dB under the speaker's bursts.
fn assert_the_speaker_ducks_the_game_12_db(heard: &Path) {
    let game = tone_track(heard, 440.0);
    let voice = tone_track(heard, 1000.0);
    // Well inside the bursts (the duck comes back from the host a round trip later) and clear.
    let inside = game_under_the_voice(&game, &voice, 3);
    let clear = game_where_nobody_speaks(&game, &voice, 12);
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

#[test]
fn when_the_host_process_goes_away_the_room_says_so() {
    let dir = tempdir();
    let d = dir.path();
    let game = d.join("game.wav");
    GAME_TONE.write(&game, 30.0, 48_000, 2);
    let (_server, url) = serve(&d.join("data"));
    let host = host_playing(&["--server", &url], &game, &game, 30.0, &[]);
    let room = host.line("room:   ", Duration::from_secs(20));
    rt().block_on(async {
        let (mut ws, welcome) = join(&url, &room, None, "Listener").await;
        assert_eq!(welcome["room"]["host_away"], false, "{welcome}");
        drop(host);
        let away = next_of(&mut ws, &["host_away"]).await;
        assert_eq!(away["until_ms"], 60_000, "{away}");
    });
}

/// Phrases of 2.5 s with pauses between 0.3 and 1.1 s, as (from, to) in seconds.
const PHRASES: [(f32, f32); 5] = [
    (1.0, 3.5),
    (3.8, 6.3),
    (7.0, 9.5),
    (10.6, 13.1),
    (13.5, 16.0),
];

/// The host hears a speaker on the headset as the speaker spoke: every phrase whole, from its
/// first 5 ms to its last, over the room the host's own process runs (as the overlay does).
/// The room sends the host its guests only while they speak, a 20 ms frame at a time; each
/// phrase must start with enough in hand that a frame landing a moment after the engine's pull
/// is still in time: otherwise the host's ring for that voice runs short as each phrase
/// starts, and the headset clicks.
#[test]
fn the_host_hears_a_speakers_phrases_whole_on_the_headset() {
    if !sound_server() || !have_tool("parec") {
        return;
    }
    let _sound = sound_lock();
    let dir = tempdir();
    let samples = what_the_host_heard_of_the_phrases(dir.path());
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
    assert_every_phrase_whole(&on);
    // And it does not click: a pull short by a frame is no hole, but it breaks the tone's
    // shape. Every 5 ms well inside a phrase is the sine to within 32 dB (Opus leaves it at
    // about 40 dB here; a pull a frame short, about 25), but for at most two: a busy machine
    // may hold up a thread of the speaker's, the room's or the host's for a moment, while
    // voices steered to an empty ring click many times a phrase.
    let clicks = clicks_inside_the_phrases(&samples, &on);
    assert!(
        clicks.len() <= 2,
        "clicks in the speaker on the host's headset (at ms, sine-to-rest dB): {clicks:?}"
    );
}

/// A host running its own room plays the room on `phones`; a speaker brought on stage says
/// the [`PHRASES`]. What `phones` played, from before the speaker started to their end.
fn what_the_host_heard_of_the_phrases(d: &Path) -> Vec<f32> {
    let silence = d.join("silence.wav");
    let voice = d.join("phrases.wav");
    write_silence(&silence, 40.0, 2);
    VOICE_TONE.write_while(&voice, 17.0, 48_000, 1, |t| {
        PHRASES.iter().any(|(a, b)| (*a..*b).contains(&t))
    });
    let data = d.join("data");
    let host = host_playing(
        &["--bind", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &silence,
        &silence,
        40.0,
        &["--monitor-device", "phones"],
    );
    let live = LiveRoom::of(&host);
    let rt = rt();
    let (_guest_ws, guest_token) =
        rt.block_on(brought_on_stage(&live.url, &live.room, &live.host_token));
    let phones = Ears::on("phones", &d.join("phones.raw"));
    let speaker = speaker_from_files(&live.url, &live.room, &guest_token, &silence, &voice, 18.0);
    speaker.wait_ok(Duration::from_secs(40));
    let samples = phones.heard();
    drop(host);
    samples
}

/// The 5 ms windows `on` that hold the tone make the [`PHRASES`], each 2,500 +- 50 ms long and
/// with no hole: runs of the tone apart by more than 200 ms; within one, every 5 ms holds it.
fn assert_every_phrase_whole(on: &[usize]) {
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
        PHRASES.len(),
        "phrases (at ms, ms long): {heard_phrases:?}"
    );
    for (at, long) in &heard_phrases {
        assert!(
            (2_450..=2_550).contains(long),
            "a phrase of 2,500 ms was heard for {long} ms (at {at} ms): {heard_phrases:?}"
        );
    }
}

/// The 5 ms windows of `samples` well inside a phrase (8 windows either side hold the tone,
/// by `on`) that are not the sine to within 32 dB: (at ms, sine-to-rest dB).
fn clicks_inside_the_phrases(samples: &[f32], on: &[usize]) -> Vec<(usize, f64)> {
    let inside = |i: usize| (i.saturating_sub(8)..=i + 8).all(|j| on.binary_search(&j).is_ok());
    (0..samples.len() / 240)
        .filter(|&i| inside(i))
        .filter_map(|i| {
            let w = &samples[i * 240..(i + 1) * 240];
            let (residual, amplitude) = sine_fit(w, 1000.0, 48_000.0);
            let snr = 10.0 * (amplitude * amplitude / 2.0 * 240.0 / residual.max(1e-12)).log10();
            (snr < 32.0).then_some((i * 5, snr))
        })
        .collect()
}
