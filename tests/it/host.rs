//! `booth host --headless` end to end with file sources paced in real time: the recording holds
//! the game tone, ducked while the voice plays, and the voice.

use std::process::Command;

use crate::support::{
    booth, channel, ffmpeg_decode, have_tool, rms_of, run, tempdir, to_db, write_wav,
};

/// Level of `freq` in `x` (48 kHz), dB, by correlating with a sine and cosine.
fn tone_db(x: &[f32], freq: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq / 48_000.0;
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for (n, &v) in x.iter().enumerate() {
        let (sn, cs) = (w * n as f32).sin_cos();
        s += f64::from(v * sn);
        c += f64::from(v * cs);
    }
    let amp = 2.0 * (s * s + c * c).sqrt() / x.len() as f64;
    // As the RMS of a sine of that amplitude.
    to_db((amp / std::f64::consts::SQRT_2) as f32)
}

#[test]
fn live_program_from_paced_files_is_ducked_and_recorded() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let game = dir.path().join("game.wav");
    let tone: Vec<f32> = (0..44_100 * 6)
        .flat_map(|n| {
            let x = 0.5 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 44_100.0).sin();
            [x, x]
        })
        .collect();
    write_wav(&game, &tone, 2, 44_100);
    // Voice: silence 0-1 s, a 1 kHz burst 1-2 s, silence 2-3 s, a burst 3-4 s.
    let mic = dir.path().join("mic.wav");
    let bursts: Vec<f32> = (0..16_000 * 4)
        .map(|n| {
            let on = (n / 16_000) % 2 == 1;
            if on {
                0.4 * (2.0 * std::f32::consts::PI * 1000.0 * n as f32 / 16_000.0).sin()
            } else {
                0.0
            }
        })
        .collect();
    write_wav(&mic, &bursts, 1, 16_000);
    let out = dir.path().join("live.ogg");
    let o = run(Command::new(booth())
        .args([
            "host",
            "--headless",
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
