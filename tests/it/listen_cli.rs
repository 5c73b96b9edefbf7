//! `booth listen` as a user runs it on a machine with no sound server: what reaches the
//! terminal is Booth's own message, not the noise of the sound libraries it probed on the way
//! (alsa-lib and its plugins, JACK's client library).

use std::process::Command;

use crate::support::{booth, tempdir};

/// What the sound libraries print when their probing finds nothing: alsa-lib's own messages
/// start `ALSA lib`, JACK's client library names JACK or its server.
fn is_probing_noise(line: &str) -> bool {
    line.contains("ALSA") || line.to_lowercase().contains("jack") || line.contains("server socket")
}

#[test]
fn without_a_sound_server_listen_prints_its_own_error_and_nothing_else() {
    // An empty runtime and config dir: no PulseAudio or PipeWire socket, no asoundrc.
    let nothing = tempdir();
    let out = Command::new(booth())
        .args(["listen", "http://127.0.0.1:9/r/x", "--seconds", "1"])
        .env("XDG_RUNTIME_DIR", nothing.path())
        .env("XDG_CONFIG_HOME", nothing.path())
        .env("HOME", nothing.path())
        .env(
            "PULSE_SERVER",
            format!("unix:{}/none", nothing.path().display()),
        )
        .env_remove("PULSE_COOKIE")
        .env_remove("BOOTH_AUDIO_HOST")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "listening to nothing succeeded:\n{stderr}"
    );
    let noise: Vec<&str> = stderr.lines().filter(|l| is_probing_noise(l)).collect();
    assert!(
        noise.is_empty(),
        "{} lines of sound-library noise reached the terminal:\n{stderr}",
        noise.len()
    );
    // Booth's one line: no output device here (or, on a machine with a sound card, nothing
    // listening at the room's address).
    let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(said.len(), 1, "more than Booth's message:\n{stderr}");
    assert!(said[0].starts_with("booth: "), "{stderr}");
}
