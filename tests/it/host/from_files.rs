//! The live program from files paced in real time (`--offline --game-file --mic-file`), and
//! the engine fed by paced files in this process: what a host records is the game ducked under
//! its voice, the voice whole after a rest of the noise suppression, and never a guest.

use std::process::Command;

use super::{GUEST_SPEAKS, game_and_guest};
use crate::support::{
    GAME_TONE, VOICE_TONE, booth, channel, ffmpeg_decode, have_tool, pink_noise, rms_of, run,
    speech, steady_tone_db, tempdir, to_db, tone_db, write_wav,
};

#[test]
fn live_program_from_paced_files_is_ducked_and_recorded() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let game = dir.path().join("game.wav");
    GAME_TONE.write(&game, 6.0, 44_100, 2);
    // Voice: silence 0-1 s, a 1 kHz burst 1-2 s, silence 2-3 s, a burst 3-4 s.
    let mic = dir.path().join("mic.wav");
    VOICE_TONE.write_while(&mic, 4.0, 16_000, 1, |t| t as u32 % 2 == 1);
    let out = dir.path().join("live.ogg");
    let o = run(Command::new(booth())
        .args([
            "host",
            "--headless",
            "--offline",
            "--seconds",
            "4.5",
            "--duck-depth",
            "12",
            "--game-file",
        ])
        .arg(&game)
        .arg("--mic-file")
        .arg(&mic)
        .arg("--record")
        .arg(&out));
    let summary = String::from_utf8_lossy(&o.stdout);
    // 4.5 s at 50 frames a second. (Underruns are reported but not held against a test machine
    // busy compiling: the audio checks below are what a listener would notice.)
    assert!(summary.contains("frames     225"), "{summary}");

    let decoded = ffmpeg_decode(&out);
    let secs = decoded.len() as f64 / 2.0 / 48_000.0;
    assert!((secs - 4.5).abs() < 0.05, "recorded {secs} s");
    // The live program is encoded for low delay: Opus holds back 2.5 ms, not the 6.5 ms of its
    // music tuning.
    assert_eq!(crate::support::opus_pre_skip(&out), 120);
    let l = channel(&decoded, 0);
    // Find the first burst in the recording (the pipeline adds some latency) and measure there.
    let burst_at = l
        .chunks(480)
        .position(|w| tone_db(w, 1000.0) > -20.0)
        .map(|i| i * 480)
        .unwrap_or_else(|| panic!("no 1 kHz burst in the recording"));
    let ms = |t: f64| (t * 48.0) as usize;
    let during = &l[burst_at + ms(200.0)..burst_at + ms(800.0)];
    let before = &l[burst_at - ms(700.0)..burst_at - ms(100.0)];
    // Averaged over 100 ms windows, so a drift correction's tiny pitch change cannot pull the
    // correlation down.
    let level = |x: &[f32], f: f32| {
        let w: Vec<f32> = x.chunks_exact(ms(100.0)).map(|c| tone_db(c, f)).collect();
        w.iter().sum::<f32>() / w.len() as f32
    };
    let game_full = level(before, 440.0);
    let game_ducked = level(during, 440.0);
    assert!(game_full > -10.0, "game tone {game_full:.1} dB");
    assert!(
        (game_full - game_ducked - 12.0).abs() <= 1.5,
        "ducked by {:.1} dB",
        game_full - game_ducked
    );
    assert!(level(during, 1000.0) > -15.0, "the voice is missing");
    assert!(to_db(rms_of(before)) > -12.0);
}

/// A real microphone is never silent. Over its noise floor the host speaks, listens for eight
/// seconds, and speaks again: the noise suppression rests while the host listens (the summary
/// says how much), and the words after the rest are in the recording as loud as before it.
#[test]
fn noise_suppression_rests_while_the_host_listens_and_wakes_for_the_voice() {
    if !have_tool("ffmpeg") || !have_tool("espeak-ng") || !have_tool("sox") {
        return;
    }
    let dir = tempdir();
    let words = speech(
        dir.path(),
        "words",
        "Hold on. Three enemies on the left side, behind the wall.",
    );
    let at = |s: f64| (s * 48_000.0) as usize;
    let (first, second, end) = (at(0.5), at(11.0), at(11.0) + words.len() + at(1.0));
    let mut mic = pink_noise(end, -60.0, 7);
    for start in [first, second] {
        for (m, w) in mic[start..].iter_mut().zip(&words) {
            *m += 0.5 * w;
        }
    }
    let mic_path = dir.path().join("mic.wav");
    write_wav(&mic_path, &mic, 1, 48_000);
    let game = dir.path().join("game.wav");
    write_wav(&game, &vec![0.0; end * 2], 2, 48_000);
    let out = dir.path().join("live.ogg");
    let seconds = format!("{:.2}", end as f64 / 48_000.0);
    let o = run(Command::new(booth())
        .args([
            "host",
            "--headless",
            "--offline",
            "--seconds",
            &seconds,
            "--game-file",
        ])
        .arg(&game)
        .arg("--mic-file")
        .arg(&mic_path)
        .arg("--record")
        .arg(&out));
    let summary = String::from_utf8_lossy(&o.stdout);
    let rested: f64 = summary
        .lines()
        .find_map(|l| l.strip_prefix("denoiser   rested "))
        .and_then(|l| l.split('%').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no denoiser line: {summary}"));
    // The floor alone from about 3.5 s to 11 s; the denoiser takes a few seconds to turn it down
    // far enough, then rests until the words come back.
    assert!(
        rested >= 15.0,
        "the denoiser rested only {rested}% of the time: {summary}"
    );

    let decoded = ffmpeg_decode(&out);
    let l = channel(&decoded, 0);
    // Each time the words were said, with room for the program's latency either side.
    let span = |start: usize| {
        &l[start.saturating_sub(at(0.2))..(start + words.len() + at(0.2)).min(l.len())]
    };
    let (a, b) = (to_db(rms_of(span(first))), to_db(rms_of(span(second))));
    assert!(
        a > -40.0,
        "the first words are not in the recording: {a:.1} dBFS"
    );
    assert!(
        (a - b).abs() < 1.5,
        "the words after the rest came out at {b:.1} dBFS, before it {a:.1}"
    );
    // And the floor between them stayed down.
    let pause = to_db(rms_of(&l[at(6.0)..at(10.5)]));
    assert!(
        pause < -75.0,
        "the floor came through the pause at {pause:.1} dBFS"
    );
}

#[test]
fn a_recording_named_other_than_ogg_is_refused_and_nothing_is_written() {
    let dir = tempdir();
    let (game, voice) = game_and_guest(dir.path(), 1.0, GUEST_SPEAKS);
    let out = dir.path().join("live.wav");
    let o = Command::new(booth())
        .args(["host", "--headless", "--offline", "--seconds", "1"])
        .arg("--game-file")
        .arg(&game)
        .arg("--mic-file")
        .arg(&voice)
        .arg("--record")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("booth: {e}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("live.wav"), "{err}");
    assert!(err.contains(".ogg or .opus"), "{err}");
    assert!(!out.exists(), "a file was written");
}

#[test]
fn remote_voices_duck_the_game_without_entering_the_program() {
    use booth::engine::{self, EngineConfig, Inputs, PacedFile};
    let dir = tempdir();
    let (game, remote) = game_and_guest(dir.path(), 5.0, GUEST_SPEAKS);
    let (_g, game_ring) = PacedFile::start(&game, 2).unwrap();
    let (_r, remote_ring) = PacedFile::start(&remote, 1).unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(1_000);
    let config = EngineConfig {
        max_frames: Some(200),
        ..EngineConfig::default()
    };
    let handle = engine::start(
        config,
        Inputs {
            game: Some(game_ring),
            mic: None,
            remote: Some(remote_ring),
            monitor: None,
        },
        vec![tx.into()],
    )
    .unwrap();
    while !handle.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    handle.stop();
    let mut dec = booth::codec::OpusDecoder::new(2).unwrap();
    let mut pcm = vec![0.0f32; booth::codec::OpusDecoder::MAX_FRAME_SAMPLES * 2];
    let mut left = Vec::new();
    while let Ok(f) = rx.try_recv() {
        let n = dec.decode(&f.packet, &mut pcm).unwrap();
        left.extend(pcm[..n * 2].iter().step_by(2));
    }
    assert_eq!(left.len(), 200 * 960);
    let window = |from_ms: usize| &left[from_ms * 48..(from_ms + 400) * 48];
    // Latency moves things by tens of ms; these windows sit well inside each part.
    let full = steady_tone_db(window(700), 440.0);
    let ducked = steady_tone_db(window(2_300), 440.0);
    assert!(full > -10.0, "game {full:.1} dB");
    assert!(
        (full - ducked - 12.0).abs() <= 1.0,
        "ducked {:.1} dB",
        full - ducked
    );
    let guest_in_program = tone_db(window(2_300), 1000.0);
    assert!(
        guest_in_program < full - 50.0,
        "the guest leaked into the host's program at {guest_in_program:.1} dB"
    );
}
