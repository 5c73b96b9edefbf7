//! Listening to a room: the host's program reaches every listener once, ducked under the
//! host's voice, quickly for a latecomer, over WebRTC from a server in the host's own process,
//! and on a sound device.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    BoothProcess, game_and_bursts, game_and_silence, game_under_the_voice,
    game_where_nobody_speaks, host_from_files, host_playing, listener, said_number, serve,
    tone_track,
};
use crate::support::{
    Ears, have_tool, loudest_tone_db, median, metric, sound_lock, sound_server, tempdir,
    thread_wakeups,
};

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
    let late_out = d.join("late.wav");
    let late_err = three_listeners_and_a_late_one(&link, &outs, &late_out);
    // Encoded once for all three (and the late one), once per 20 ms while they listened.
    let encoded = metric(&url, "program_frames_total");
    assert!(
        (450..=700).contains(&encoded),
        "{encoded} program frames for 11 s of listening"
    );
    host.wait_ok(Duration::from_secs(30));
    for out in &outs {
        assert_the_game_dips_12_db_under_the_bursts(out);
    }
    assert_heard_within_a_second_of_asking(&late_err, &late_out);
}

/// Three listeners record 11 s of the room into `outs`; 6 s in, a late one records 3 s into
/// `late_out`. Returns the late one's stderr.
fn three_listeners_and_a_late_one(link: &str, outs: &[PathBuf], late_out: &Path) -> String {
    let listeners: Vec<BoothProcess> = outs.iter().map(|o| listener(link, o, 11, &[])).collect();
    std::thread::sleep(Duration::from_secs(6));
    let late = listener(link, late_out, 3, &[]);
    for l in listeners {
        l.wait_ok(Duration::from_secs(40));
    }
    late.wait_ok(Duration::from_secs(30))
}

/// In a listener's recording `out`, the 1 kHz bursts are there and the 440 Hz game dips
/// 12 +- 2 dB under them from its full level between them.
fn assert_the_game_dips_12_db_under_the_bursts(out: &Path) {
    let game = tone_track(out, 440.0);
    let voice = tone_track(out, 1000.0);
    let loud: Vec<usize> = (0..voice.len()).filter(|&i| voice[i] > -20.0).collect();
    assert!(
        loud.len() >= 20,
        "{}: the 1 kHz bursts are missing ({} loud windows): {voice:?}",
        out.display(),
        loud.len()
    );
    let inside = game_under_the_voice(&game, &voice, 1);
    let clear = game_where_nobody_speaks(&game, &voice, 10);
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

/// The late listener (its stderr `late_err`, its recording `late_out`) heard the game within
/// 1 s of asking for it: its time to connect, and then to the first window with the game.
fn assert_heard_within_a_second_of_asking(late_err: &str, late_out: &Path) {
    let connect_ms: f32 = said_number(late_err, "connected in ");
    let game = tone_track(late_out, 440.0);
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
    assert_alone_in_its_room_the_host_costs_no_packets_and_few_wakeups(&host, &url);
    // Alone on stage the host hears nothing, and nothing is encoded for it.
    assert_eq!(metric(&url, "minus_frames_total"), 0);
    // And the audience hears it over WebRTC.
    let out = d.join("listener.wav");
    listener(&link, &out, 8, &[]).wait_ok(Duration::from_secs(40));
    assert_the_game_plays_on_at_full_level_where_nobody_speaks(&out);
    // Nor while the audience listened: the host never hears the program (its own voice).
    assert_eq!(metric(&url, "minus_frames_total"), 0);
    host.wait_ok(Duration::from_secs(30));
}

/// Over 2 s of a host alone in the room of its own process (at `url`): it publishes, with no
/// packet on the network, and its network thread wakes fewer than 40 times a second.
fn assert_alone_in_its_room_the_host_costs_no_packets_and_few_wakeups(
    host: &BoothProcess,
    url: &str,
) {
    // The host publishes, and hears the room, with no packet on the network: its frames go
    // straight to the room's task (over WHIP they would be 50 packets a second).
    assert_eq!(metric(url, "publishers"), 1);
    let before = metric(url, "packets_in_total");
    let wakeups = || thread_wakeups(host.pid(), "booth-live").unwrap_or(0);
    let woken = wakeups();
    std::thread::sleep(Duration::from_secs(2));
    let packets_in = metric(url, "packets_in_total") - before;
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
}

/// In a listener's recording `out`: the game throughout, the host's voice, and where nobody
/// speaks the game at full level.
fn assert_the_game_plays_on_at_full_level_where_nobody_speaks(out: &Path) {
    let game = tone_track(out, 440.0);
    let voice = tone_track(out, 1000.0);
    // The game throughout, ducked or not.
    let heard = game.iter().filter(|&&l| l > -30.0).count();
    assert!(heard >= 75, "the game is missing: {game:?}");
    let loud = voice.iter().filter(|&&l| l > -20.0).count();
    assert!(loud >= 10, "the host's voice is missing: {voice:?}");
    // Where nobody speaks the game is at full level: a host fed its own program back (game and
    // voice) would duck its game all the time.
    let clear = game_where_nobody_speaks(&game, &voice, 10);
    assert!(
        clear.len() >= 5 && clear.iter().all(|&l| l > -12.0),
        "the game dips where nobody speaks: {clear:?} (all: {game:?})"
    );
}

#[test]
fn booth_listen_plays_the_room_on_a_sound_device() {
    if !sound_server() || !have_tool("parec") {
        return;
    }
    let _sound = sound_lock();
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 12.0);
    let (_server, url) = serve(&d.join("data"));
    let host = host_playing(&["--server", &url], &game, &silence, 12.0, &[]);
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
