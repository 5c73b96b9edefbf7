//! WHIP out: the program published into a WHIP endpoint Booth did not write (aiohttp + aiortc,
//! `tests/peers/whip_endpoint.py`), straight from `booth host --whip`.
//!
//! aiortc's ICE skips 127.0.0.1, so the endpoint listens on this machine's routed address (the
//! one a room server puts in its candidates, as in the interop test), and Booth's client peer,
//! which binds towards the endpoint, meets it there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::game_and_silence;
use super::interop::aiortc_python;
use crate::support::{BoothProcess, channel, read_wav, tempdir, tone_db};

/// The endpoint: its process, the directory it records into, and its URL.
struct Endpoint {
    process: BoothProcess,
    dir: PathBuf,
    url: String,
}

impl Endpoint {
    /// Starts `whip_endpoint.py` on the routed address, recording into `dir`, wanting `token`.
    fn start(python: &Path, dir: &Path, token: &str) -> Self {
        let ip = routed_ip();
        let process = BoothProcess::start(
            Command::new(python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/whip_endpoint.py"))
                .args([&ip.to_string(), "0", dir.to_str().unwrap(), token]),
        );
        let url = process.line("listening ", Duration::from_secs(30));
        Self {
            process,
            dir: dir.to_owned(),
            url,
        }
    }

    /// The recording of session `n`.
    fn recording(&self, n: u32) -> PathBuf {
        self.dir.join(format!("session-{n}.wav"))
    }

    /// Waits for a line the endpoint prints (`session 1 deleted`).
    fn said(&self, line: &str, within: Duration) {
        self.process.line(line, within);
    }
}

/// The address packets to another machine leave from: not loopback (aiortc skips it).
fn routed_ip() -> IpAddr {
    let ip = booth::rtc::local_ip_towards(IpAddr::from([192, 0, 2, 1]));
    assert!(
        !ip.is_loopback(),
        "this machine has no address besides loopback; aiortc needs one (see tests/run)"
    );
    ip
}

/// Waits until the WAV at `path` holds `seconds` of audio (the endpoint rewrites its header on
/// every write), then reads its left channel at 48 kHz.
fn recorded_left(path: &Path, seconds: f32, within: Duration) -> Vec<f32> {
    let end = Instant::now() + within;
    let bytes_wanted = (seconds * 48_000.0 * 4.0) as u64;
    while path.metadata().map_or(0, |m| m.len()) < bytes_wanted {
        assert!(
            Instant::now() < end,
            "{} did not reach {seconds} s within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (x, channels, rate) = read_wav(path);
    assert_eq!((channels, rate), (2, 48_000), "{}", path.display());
    channel(&x, 0)
}

/// The levels of 440 Hz and of 700 Hz (nothing plays there) in the last two thirds of `left`.
fn tone_and_other(left: &[f32]) -> (f32, f32) {
    let tail = &left[left.len() / 3..];
    (tone_db(tail, 440.0), tone_db(tail, 700.0))
}

#[test]
fn booth_host_publishes_into_a_whip_endpoint_booth_did_not_write() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 10.0);
    let endpoint = Endpoint::start(&python, d, "whip-secret");

    // A wrong token: the endpoint's refusal, with its status, and no room server started.
    let mut refused = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--whip",
        &endpoint.url,
        "--token",
        "not-it",
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "2",
    ]);
    let status = refused.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "a refused WHIP session exited 0");
    let said = refused.stderr();
    assert!(
        said.contains("refused the program (401)") && !said.contains("not-it"),
        "{said}"
    );
    assert!(!said.contains("serving rooms"), "{said}");

    let host = BoothProcess::spawn(&[
        "host",
        "--headless",
        "--whip",
        &endpoint.url,
        "--token",
        "whip-secret",
        "--game-file",
        game.to_str().unwrap(),
        "--mic-file",
        silence.to_str().unwrap(),
        "--seconds",
        "8",
        "--no-noise-suppression",
        "--voice-gate",
        "0",
    ]);
    assert_eq!(
        host.line("whip:   ", Duration::from_secs(30)),
        endpoint.url,
        "booth host does not say where it publishes"
    );
    let err = host.wait_ok(Duration::from_secs(60));
    assert!(
        !err.contains("whip-secret"),
        "the token was printed:\n{err}"
    );
    // Hanging up is a DELETE of the session, which the endpoint saw.
    endpoint.said("session 1 deleted", Duration::from_secs(10));
    let left = recorded_left(&endpoint.recording(1), 5.0, Duration::from_secs(10));
    let (tone, off) = tone_and_other(&left);
    eprintln!("the WHIP endpoint heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1} dB)");
    // The game is 440 Hz at -9 dBFS RMS; the program carries it through Opus and WebRTC.
    assert!(
        (-15.0..-3.0).contains(&tone) && tone - off > 30.0,
        "the WHIP endpoint heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1} dB)"
    );
}
