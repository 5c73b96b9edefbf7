//! An independent WebRTC stack (aiortc, in the Python that `tests/run` prepares) against the
//! room server: it listens to Booth's program over WHEP, and publishes into a room over WHIP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::channel::{create_room, rt};
use super::{game_and_silence, host_playing, listener, serve};
use crate::support::{Process, channel, read_wav, tempdir, tone_db};

/// The Python with aiortc that `tests/run` prepares; `None` (skip) when absent, unless
/// `BOOTH_REQUIRE_TOOLS` is set.
pub(super) fn aiortc_python() -> Option<PathBuf> {
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

/// `tests/peers/aiortc_peer.py ARGS`, its output piped.
fn aiortc(python: &Path, args: &[&str]) -> Process {
    Process::spawn(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/aiortc_peer.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
}

/// The levels of `tone` and `off` (Hz) in the last two thirds of the left channel of the WAV
/// at `path`, dB.
fn tone_and_other(path: &Path, tone: f32, off: f32) -> (f32, f32) {
    let (x, _, _) = read_wav(path);
    let left = channel(&x, 0);
    let tail = &left[left.len() / 3..];
    (tone_db(tail, tone), tone_db(tail, off))
}

#[test]
fn an_independent_webrtc_stack_listens_and_publishes() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 14.0);
    let (_server, url) = serve(&d.join("data"));

    // aiortc as a WHEP listener of Booth's program.
    let host = host_playing(&["--server", &url], &game, &silence, 12.0, &[]);
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
    let (tone, off) = tone_and_other(&heard, 440.0, 700.0);
    assert!(
        tone > -15.0 && tone - off > 30.0,
        "aiortc heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1})"
    );
    drop(host);

    // aiortc as a WHIP publisher (with the host token of a new room), heard by booth listen.
    let created = rt().block_on(create_room(&url));
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
    listener(&format!("{url}/r/{id}"), &got, 4, &[]).wait_ok(Duration::from_secs(30));
    publisher.finish();
    let (tone, off) = tone_and_other(&got, 700.0, 440.0);
    assert!(
        tone > -20.0 && tone - off > 30.0,
        "booth listen heard aiortc's 700 Hz at {tone:.1} dB (440 Hz at {off:.1})"
    );
}
