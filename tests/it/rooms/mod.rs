//! The room server end to end, with real processes on loopback: `booth serve`, `booth host
//! --headless` publishing by WHIP, `booth listen` clients by WHEP, and the WebSocket room channel.
//! Here: the processes and files every room test starts from, and how a recording of the room
//! is read; the tests are in the submodules, by theme. Every test starts its own server on a
//! free loopback port, so no two tests ever share a room, a port or a recording.

mod api;
mod channel;
mod edge;
mod episodes;
pub(crate) mod icecast;
mod interop;
mod limits;
mod listening;
mod people;
mod sessions_cap;
mod stage;
mod streams;
mod whip_out;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{
    BoothProcess, GAME_TONE, VOICE_TONE, channel, read_wav, tone_db, write_silence,
};

/// A room server on a free port; its base URL.
fn serve(data: &Path) -> (BoothProcess, String) {
    serve_with(data, &[])
}

/// The same, with more options for `booth serve`.
fn serve_with(data: &Path, more: &[&str]) -> (BoothProcess, String) {
    let mut args = vec![
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--udp-port",
        "0",
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let p = BoothProcess::spawn(&args);
    let url = p.line("booth: serving rooms on ", Duration::from_secs(20));
    (p, url)
}

/// `booth host --headless` for `seconds` on a game file and a mic file; `room` says where
/// (`--server URL`, or `--bind` and `--data` for a room server in the host's own process) and
/// `more` adds options.
fn host_playing(
    room: &[&str],
    game: &Path,
    mic: &Path,
    seconds: f32,
    more: &[&str],
) -> BoothProcess {
    let seconds = seconds.to_string();
    let mut args = vec!["host", "--headless"];
    args.extend_from_slice(room);
    args.extend([
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        mic.to_str().unwrap(),
        "--seconds",
        &seconds,
    ]);
    args.extend_from_slice(more);
    BoothProcess::spawn(&args)
}

/// `host_playing` with its voice unprocessed (no noise suppression, no gate), so levels in
/// the room match the files.
fn host_from_files(room: &[&str], game: &Path, mic: &Path, seconds: f32) -> BoothProcess {
    host_playing(
        room,
        game,
        mic,
        seconds,
        &["--no-noise-suppression", "--voice-gate", "0"],
    )
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

/// `booth listen LINK` recording `seconds` of the room into `out`; `more` adds options.
fn listener(link: &str, out: &Path, seconds: u32, more: &[&str]) -> BoothProcess {
    let seconds = seconds.to_string();
    let mut args = vec![
        "listen",
        link,
        "--out",
        out.to_str().unwrap(),
        "--seconds",
        &seconds,
    ];
    args.extend_from_slice(more);
    BoothProcess::spawn(&args)
}

/// What a host prints once its room is live.
struct LiveRoom {
    /// The listener link, `{url}/r/{room}`.
    link: String,
    /// The room server's base URL.
    url: String,
    room: String,
    host_token: String,
}

impl LiveRoom {
    /// Read from `host`'s stdout: the link within 20 s, then the room and the host's token.
    fn of(host: &BoothProcess) -> Self {
        let link = host.line("listen: ", Duration::from_secs(20));
        let url = link.split("/r/").next().unwrap().to_owned();
        let room = host.line("room:   ", Duration::from_secs(5));
        let host_token = host.line("token:  ", Duration::from_secs(5));
        Self {
            link,
            url,
            room,
            host_token,
        }
    }
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

/// Writes `seconds` of a 440 Hz game (stereo) and a silent mic (mono) into `dir`; returns their
/// paths.
fn game_and_silence(dir: &Path, seconds: f32) -> (PathBuf, PathBuf) {
    let game = dir.join("game.wav");
    let silence = dir.join("silence.wav");
    GAME_TONE.write(&game, seconds, 48_000, 2);
    write_silence(&silence, seconds, 1);
    (game, silence)
}

/// Per 100 ms window of the left channel: the level of `freq`, dB.
fn tone_track(path: &Path, freq: f32) -> Vec<f32> {
    let (x, channels, rate) = read_wav(path);
    assert_eq!((channels, rate), (2, 48_000));
    let left = channel(&x, 0);
    left.chunks(4_800).map(|w| tone_db(w, freq)).collect()
}

/// The `game` track's windows well inside the `voice` track's bursts: the voice is up (over
/// -20 dB) from `margin` windows before to `margin` after.
fn game_under_the_voice(game: &[f32], voice: &[f32], margin: usize) -> Vec<f32> {
    (margin..voice.len() - margin)
        .filter(|&i| voice[i - margin..=i + margin].iter().all(|&v| v > -20.0))
        .map(|i| game[i])
        .collect()
}

/// The `game` track's windows well clear of any voice: under -40 dB from `margin` windows
/// before to `margin` - 1 after.
fn game_where_nobody_speaks(game: &[f32], voice: &[f32], margin: usize) -> Vec<f32> {
    (margin..voice.len() - margin)
        .filter(|&i| voice[i - margin..i + margin].iter().all(|&v| v < -40.0))
        .map(|i| game[i])
        .collect()
}

/// The number after `prefix` in `booth listen`'s stderr (`connected in`, `first frame at unix
/// ms`).
fn said_number<T: std::str::FromStr>(stderr: &str, prefix: &str) -> T {
    stderr
        .split(prefix)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no '{prefix}' number in: {stderr}"))
}
