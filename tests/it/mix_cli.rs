//! `booth mix` end to end, as a user runs it: real files in, a file other programs accept out.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    GAME_TONE, Rng, Tone, booth, channel, ffmpeg_decode, have_tool, interleave, pink_noise,
    read_wav, rms_of, run, tempdir, to_db, write_wav,
};

/// Game: a 440 Hz tone on the left only, 44.1 kHz stereo, 3.0 s. Voice: 1 kHz in bursts of half a
/// second from each whole second on, 16 kHz mono, 2.0 s (shorter: padded with silence).
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let game = dir.join("game.wav");
    let left = GAME_TONE.samples(3.0, 44_100);
    let right = vec![0.0; left.len()];
    write_wav(&game, &interleave(&left, &right), 2, 44_100);
    let mic = dir.join("mic.wav");
    let bursts = Tone {
        freq: 1000.0,
        amp: 0.3,
    };
    bursts.write_while(&mic, 2.0, 16_000, 1, |t| t.fract() < 0.5);
    (game, mic)
}

/// Runs `booth mix --game G --mic M --out O [extra...]`.
fn booth_mix(game: &Path, mic: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(booth())
        .arg("mix")
        .arg("--game")
        .arg(game)
        .arg("--mic")
        .arg(mic)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run booth: {e}"))
}

#[test]
fn ogg_opus_output_is_valid_has_the_input_length_and_keeps_stereo() {
    if !have_tool("opusinfo") || !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let (game, mic) = inputs(dir.path());
    let out = dir.path().join("program.opus");
    let o = booth_mix(&game, &mic, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = String::from_utf8_lossy(&o.stdout);
    for word in ["duration", "LUFS", "peak", "ducked"] {
        assert!(summary.contains(word), "summary lacks {word}: {summary}");
    }

    // opusinfo accepts it without warnings.
    let info = run(Command::new("opusinfo").arg(&out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&info.stdout),
        String::from_utf8_lossy(&info.stderr)
    );
    assert!(!text.to_lowercase().contains("warning"), "opusinfo: {text}");
    assert!(!text.to_lowercase().contains("error"), "opusinfo: {text}");

    // ffmpeg decodes it, pre-skip applied: 3.0 s (the longer input) within 20 ms.
    let decoded = ffmpeg_decode(&out);
    let seconds = decoded.len() as f64 / 2.0 / 48_000.0;
    assert!((seconds - 3.0).abs() <= 0.020, "decoded {seconds:.4} s");

    // Stereo kept: the left-only game tone stays left. Judge it after the voice ends (2 s).
    let l = channel(&decoded, 0);
    let r = channel(&decoded, 1);
    let tail = 2_200 * 48..2_900 * 48;
    let (ld, rd) = (to_db(rms_of(&l[tail.clone()])), to_db(rms_of(&r[tail])));
    assert!(ld > -12.0, "left {ld:.1} dB");
    assert!(ld - rd > 30.0, "left {ld:.1} dB, right {rd:.1} dB");
}

#[test]
fn wav_output_lines_up_with_the_inputs_and_ducks_under_the_voice() {
    let dir = tempdir();
    let (game, mic) = inputs(dir.path());
    let out = dir.path().join("program.wav");
    let o = booth_mix(&game, &mic, &out, &["--duck-depth", "10"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (samples, channels, rate) = read_wav(&out);
    assert_eq!((channels, rate), (2, 48_000));
    assert_eq!(samples.len() / 2, 48_000 * 3, "exact length");
    let l = channel(&samples, 0);
    let r = channel(&samples, 1);
    // The right channel carries only the (centred) voice: bursts in 0-0.5 s and 1-1.5 s.
    assert!(to_db(rms_of(&r[100 * 48..400 * 48])) > -20.0);
    assert!(
        to_db(rms_of(&r[600 * 48..900 * 48])) < -60.0,
        "no voice between bursts"
    );
    // The left has the game tone: ducked by ~10 dB while the burst plays (voice subtracted by
    // taking the right channel away), full between bursts once released.
    let game_l: Vec<f32> = l.iter().zip(&r).map(|(a, b)| a - b).collect();
    let full = to_db(rms_of(&game_l[2_300 * 48..2_900 * 48]));
    let ducked = to_db(rms_of(&game_l[1_100 * 48..1_400 * 48]));
    assert!(
        (full - ducked - 10.0).abs() < 1.0,
        "full {full:.1} ducked {ducked:.1}"
    );
    // Lined up: the burst starts at 1.000 s in the output too (within 1 ms).
    let onset = r[950 * 48..]
        .iter()
        .position(|x| x.abs() > 0.05)
        .map(|i| i + 950 * 48);
    let onset_ms = onset.unwrap_or(0) as f64 / 48.0;
    assert!((onset_ms - 1000.0).abs() <= 1.0, "burst at {onset_ms} ms");
}

#[test]
fn every_input_format_is_read() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let (game, mic) = inputs(dir.path());
    // FLAC and MP3 game, Ogg Vorbis and Ogg Opus voice, 5.1 game as well.
    let convert = |src: &Path, name: &str, args: &[&str]| {
        let dst = dir.path().join(name);
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i"])
            .arg(src)
            .args(args)
            .arg(&dst));
        dst
    };
    let cases = [
        (
            convert(&game, "g.flac", &[]),
            convert(&mic, "m.ogg", &["-c:a", "libvorbis"]),
        ),
        (
            convert(&game, "g.mp3", &[]),
            convert(&mic, "m.opus", &["-c:a", "libopus"]),
        ),
        (
            convert(&game, "g24.wav", &["-c:a", "pcm_s24le"]),
            convert(&mic, "m-float.wav", &["-c:a", "pcm_f32le"]),
        ),
        (
            convert(&game, "g32.wav", &["-c:a", "pcm_s32le"]),
            convert(&mic, "m.mp3", &[]),
        ),
        (
            convert(
                &game,
                "g51.wav",
                &[
                    "-af",
                    "pan=5.1|FL=c0|FR=c1|FC=0*c0|LFE=0*c0|BL=0*c0|BR=0*c0",
                ],
            ),
            mic.clone(),
        ),
    ];
    for (g, m) in cases {
        let out = dir.path().join("out.wav");
        let o = booth_mix(&g, &m, &out, &[]);
        assert!(
            o.status.success(),
            "{g:?} + {m:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (samples, _, _) = read_wav(&out);
        let secs = samples.len() as f64 / 2.0 / 48_000.0;
        // MP3 adds encoder padding ffmpeg may keep; everything else is exact.
        assert!((secs - 3.0).abs() < 0.06, "{g:?}: {secs} s");
        let l = channel(&samples, 0);
        let r = channel(&samples, 1);
        let tail = 2_300 * 48..2_800 * 48;
        // The tone is -9 dBFS RMS; a 5.1 downmix normalised like ffmpeg's puts a front channel
        // 7.7 dB lower.
        let floor = if g.to_string_lossy().contains("51") {
            -20.0
        } else {
            -12.0
        };
        assert!(
            to_db(rms_of(&l[tail.clone()])) > floor,
            "{g:?}: game tone missing"
        );
        assert!(
            to_db(rms_of(&r[tail])) < -30.0,
            "{g:?}: left-only tone leaked right"
        );
    }
}

fn assert_fails_naming(game: &Path, mic: &Path, out: &Path, named: &str) {
    let o = booth_mix(game, mic, out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "should fail: {game:?} {mic:?} {out:?}");
    assert!(err.contains(named), "error does not name {named}: {err}");
    assert!(!out.exists(), "output left behind after: {err}");
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap_or(Path::new(".")))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftovers
            .iter()
            .any(|n| n.to_string_lossy().contains("partial")),
        "temporary file left: {leftovers:?}"
    );
}

#[test]
fn bad_inputs_fail_with_the_file_named_and_leave_no_output() {
    let dir = tempdir();
    let (game, mic) = inputs(dir.path());
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir).unwrap_or_else(|e| panic!("{e}"));
    let out = outdir.join("program.ogg");

    // Corrupt: a real FLAC file whose last two thirds are random bytes, and a WAV cut off
    // inside its header.
    let flac = dir.path().join("broken.flac");
    let real = dir.path().join("real.flac");
    if have_tool("ffmpeg") {
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i"])
            .arg(&game)
            .arg(&real));
        let mut bytes = std::fs::read(&real).unwrap_or_default();
        let mid = bytes.len() / 3;
        let mut rng = Rng::new(37);
        for b in &mut bytes[mid..] {
            *b = rng.next_u64() as u8;
        }
        std::fs::write(&flac, bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_fails_naming(&flac, &mic, &out, "broken.flac");
    }
    // A WAV cut off in the middle of its audio (its header promises more).
    let short = dir.path().join("short.wav");
    let bytes = std::fs::read(&game).unwrap_or_default();
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    assert_fails_naming(&short, &mic, &out, "short.wav");
    let cut = dir.path().join("cut.wav");
    let bytes = std::fs::read(&game).unwrap_or_default();
    std::fs::write(&cut, &bytes[..30]).unwrap_or_else(|e| panic!("{e}"));
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap_or_else(|e| panic!("{e}"));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not audio at all, just some words")
        .unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("missing.wav");

    for (bad, name) in [
        (&cut, "cut.wav"),
        (&empty, "empty.wav"),
        (&text, "notes.txt"),
        (&missing, "missing.wav"),
    ] {
        assert_fails_naming(&game, bad, &out, name);
    }

    // An output nobody can write: a directory that does not exist.
    let nowhere = dir.path().join("no-such-dir").join("program.wav");
    assert_fails_naming(&game, &mic, &nowhere, "program.wav");
    // An output format Booth does not write.
    let mp4 = outdir.join("program.mp4");
    assert_fails_naming(&game, &mic, &mp4, "program.mp4");
}

#[test]
fn normalize_brings_the_program_to_the_target_loudness() {
    let dir = tempdir();
    let game = dir.path().join("quiet-game.wav");
    let l = pink_noise(48_000 * 8, -38.0, 21);
    let r = pink_noise(48_000 * 8, -38.0, 22);
    write_wav(&game, &interleave(&l, &r), 2, 48_000);
    let mic = dir.path().join("silent-mic.wav");
    write_wav(&mic, &vec![0.0; 48_000], 1, 48_000);
    let out = dir.path().join("loud.wav");
    let o = booth_mix(&game, &mic, &out, &["--normalize", "-16"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if have_tool("ffmpeg") {
        // ffmpeg's own EBU R128 meter is the judge.
        let o = run(Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-i"])
            .arg(&out)
            .args(["-af", "ebur128", "-f", "null", "-"]));
        let log = String::from_utf8_lossy(&o.stderr);
        let i_line = log
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with("I:"))
            .unwrap_or_default();
        let lufs: f32 = i_line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f32::NAN);
        assert!(
            (lufs + 16.0).abs() <= 0.5,
            "integrated {lufs} LUFS ({i_line})"
        );
    }
}
