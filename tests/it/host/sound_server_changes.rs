//! Changes to the whole sound server under a live host, each on a sound server of the test's
//! own (the shared one stays as every other test expects it): a restart, seen by the host and
//! by a device list, and the user switching the default output.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::recording_host;
use crate::support::{
    GAME_TONE, OwnSoundServer, Process, channel, ffmpeg_decode, have_tool, run, sound_server,
    tempdir, test_in_a_child, tone_db,
};

/// A 12 s game tone (440 Hz) in `dir`, for the tests on a server of their own.
fn game_tone(dir: &Path) -> PathBuf {
    let tone = dir.join("game.wav");
    GAME_TONE.write(&tone, 12.0, 48_000, 2);
    tone
}

/// The desktop's sound server restarts under a live host (it crashed, or PipeWire was
/// restarted): the devices come back on it, and only on it. While it is down, ALSA's own
/// devices still answer, and a device taken there would hold the hardware the server needs
/// (the ALSA plugin's `mic_capture` is no stand-in for the lost `mic`), and probing ALSA wakes
/// JACK, which fills the terminal with its errors.
#[test]
fn a_sound_server_that_restarts_gives_the_devices_back_on_it() {
    if !sound_server() || !have_tool("paplay") || !have_tool("pulseaudio") {
        return;
    }
    let server = OwnSoundServer::start();
    let dir = tempdir();
    let tone = game_tone(dir.path());
    let play = || server.play(&tone, &["--device=game"]);
    let _game = play();
    let out = dir.path().join("live.ogg");
    let devices = ["--game-device", "game.monitor", "--mic-device", "mic"];
    let booth_run = Process::spawn(server.client(&mut recording_host(10, &out, &devices)));
    std::thread::sleep(std::time::Duration::from_millis(3_000));
    server.down();
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    server.up();
    let _game_again = play();
    let output = booth_run.finish();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("booth: game audio lost"), "{err}");
    assert!(err.contains("booth: mic lost"), "{err}");
    // Back on the server, as the devices they were.
    assert!(
        err.contains("booth: game audio back: Monitor of Game\n"),
        "{err}"
    );
    assert!(err.contains("booth: mic back: Mic\n"), "{err}");
    let backs: Vec<&str> = err.lines().filter(|l| l.contains(" back: ")).collect();
    assert_eq!(backs.len(), 2, "{err}");
    assert!(!err.to_lowercase().contains("jack"), "{err}");
    // And the game is in the program again, to the end.
    let l = channel(&ffmpeg_decode(&out), 0);
    let end = &l[l.len() - 48_000..];
    assert!(tone_db(end, 440.0) > -12.0, "{:.1} dB", tone_db(end, 440.0));
}

/// The same restart seen from a device list (the overlay's, while its host picks a device): in a
/// process that found its devices on the sound server, a list made while the server is down
/// says it is not answering, rather than offering ALSA's devices under it (and waking JACK's
/// errors); the devices are listed again once it is back. The test binary runs itself as
/// that process, listing each time it is told to.
#[test]
fn a_device_list_while_the_sound_server_restarts_waits_for_it_not_for_alsa() {
    use std::time::{Duration, Instant};
    let wait_for = |file: &Path| {
        let since = Instant::now();
        while !file.exists() {
            assert!(since.elapsed() < Duration::from_secs(20), "{file:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    if let Some(dir) = std::env::var_os("BOOTH_LISTING_CHILD") {
        let dir = PathBuf::from(dir);
        for step in ["up", "down", "back"] {
            wait_for(&dir.join(step));
            match booth::audio::list_devices() {
                Ok(list) => {
                    let ids: Vec<String> = list
                        .iter()
                        .map(|d| format!("{}:{}", d.host, d.id))
                        .collect();
                    eprintln!("child {step}: {}", ids.join(" "));
                }
                Err(e) => eprintln!("child {step}: error: {e}"),
            }
            std::fs::write(dir.join(format!("{step}.done")), "").unwrap();
        }
        return;
    }
    if !sound_server() || !have_tool("pulseaudio") {
        return;
    }
    let server = OwnSoundServer::start();
    let steps = tempdir();
    let child = Process::spawn(
        server
            .client(&mut test_in_a_child(concat!(
                module_path!(),
                "::a_device_list_while_the_sound_server_restarts_waits_for_it_not_for_alsa"
            )))
            .env("BOOTH_LISTING_CHILD", steps.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let step = |name: &str| {
        std::fs::write(steps.path().join(name), "").unwrap();
        wait_for(&steps.path().join(format!("{name}.done")));
    };
    step("up");
    server.down();
    step("down");
    server.up();
    step("back");
    let output = child.finish();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    let said = |step: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix(&format!("child {step}: ")))
            .unwrap_or_else(|| panic!("no list {step}:\n{err}"))
            .to_owned()
    };
    for step in ["up", "back"] {
        let list = said(step);
        assert!(
            list.contains("PulseAudio:game.monitor") && list.contains("PulseAudio:mic"),
            "{step}: {list}"
        );
        assert!(!list.contains("ALSA:"), "{step}: {list}");
    }
    let down = said("down");
    assert!(
        down.starts_with("error: PulseAudio, where Booth found its devices, is not answering"),
        "with the server down: {down}"
    );
    assert!(!err.to_lowercase().contains("jack"), "{err}");
}

/// The user switches the computer's output (headphones plugged in): the sound server moves the
/// game there, so a host on the default output's monitor follows it, and the game stays in the
/// program (on the old output's monitor it would be silence from then on). A private server:
/// the shared one's defaults stay as the other tests expect them.
#[test]
fn the_game_audio_follows_the_default_output_when_the_user_switches_it() {
    if !sound_server() || !have_tool("paplay") || !have_tool("pactl") {
        return;
    }
    let server = OwnSoundServer::start();
    let dir = tempdir();
    // The game plays on the default output, as games do.
    let _game = server.play(&game_tone(dir.path()), &[]);
    let out = dir.path().join("live.ogg");
    // No --game-device: the monitor of the default output (`game`).
    let booth_run = Process::spawn(server.client(&mut recording_host(8, &out, &[])));
    std::thread::sleep(std::time::Duration::from_millis(3_000));
    run(server.client(Command::new("pactl").args(["set-default-sink", "phones"])));
    let output = booth_run.finish();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("booth: game audio: Monitor of Game (game.monitor"),
        "{err}"
    );
    assert!(
        err.contains("booth: game audio follows the new default: Monitor of Phones"),
        "{err}"
    );
    assert!(!err.contains(" lost"), "{err}");
    // The game before the switch and in the last second, now played on the new output.
    let l = channel(&ffmpeg_decode(&out), 0);
    for (when, part) in [
        ("before", &l[48_000..96_000]),
        ("after", &l[l.len() - 48_000..]),
    ] {
        let level = tone_db(part, 440.0);
        assert!(level > -12.0, "the game {when} the switch: {level:.1} dB");
    }
}
