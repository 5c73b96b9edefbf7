//! `booth host --headless` end to end: the live program from files paced in real time and from
//! the test sound server's devices, recorded as it goes out. Here: the inputs and the host
//! command the tests share; the tests are in the submodules, by where the sound comes from. A
//! test that plays into the shared sound server holds `sound_lock` while it does, so that no
//! two tests' tones ever mix.

mod from_files;
mod on_devices;
mod sound_server_changes;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{GAME_TONE, VOICE_TONE, booth};

/// The guest in the tests of the room's voices: speaking from 1.5 s to 3 s.
const GUEST_SPEAKS: std::ops::Range<f32> = 1.5..3.0;

/// Writes `seconds` of the game tone (stereo, 48 kHz) and of a guest (mono, 48 kHz: the voice
/// stand-in while `speaks`, seconds) into `dir`; returns their paths.
fn game_and_guest(dir: &Path, seconds: f32, speaks: std::ops::Range<f32>) -> (PathBuf, PathBuf) {
    let game = dir.join("game.wav");
    let guest = dir.join("guest.wav");
    GAME_TONE.write(&game, seconds, 48_000, 2);
    VOICE_TONE.write_while(&guest, seconds, 48_000, 1, |t| speaks.contains(&t));
    (game, guest)
}

/// `booth host --headless --offline --seconds SECONDS --record OUT` (and `more`), its output
/// piped: a host recording the live program from the sound server's devices.
fn recording_host(seconds: u32, out: &Path, more: &[&str]) -> Command {
    let mut cmd = Command::new(booth());
    cmd.args(["host", "--headless", "--offline", "--seconds"])
        .arg(seconds.to_string())
        .args(more)
        .arg("--record")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}
