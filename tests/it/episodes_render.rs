//! Rendering an episode: the MP3 that comes out of a recorded program, judged by ffmpeg and
//! ffprobe (its length, its loudness and true peak, its chapters) and the JSON chapters file.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use booth::codec::{EncoderSettings, OggOpusWriter};
use booth::episodes::Chapter;
use booth::episodes::render::{Artwork, CHAPTERS_FILE, MP3_FILE, RenderJob, render};
use ebur128::{EbuR128, Mode};

use crate::support::{Tone, ffmpeg_decode, have_tool, run, speech, tempdir};

const LABEL: &str = "Q&A <live> \"boss fight\" 🎮";
const SECONDS: usize = 25;

/// Integrated loudness of interleaved stereo per the `ebur128` crate, LUFS.
fn reference_loudness(stereo: &[f32]) -> f64 {
    let mut m = EbuR128::new(2, 48_000, Mode::I).unwrap();
    m.add_frames_f32(stereo).unwrap();
    m.loudness_global().unwrap()
}

/// 25 s of a room: speech over a quiet tone, with a loud 3 kHz blip every 4 s, at about -28
/// LUFS. Returns the stereo samples.
fn room_audio(dir: &Path) -> Vec<f32> {
    let words = speech(
        dir,
        "talk",
        "Welcome back to the room. Tonight we play the new level and take your questions.",
    );
    let frames = SECONDS * 48_000;
    let bed = Tone {
        freq: 220.0,
        amp: 0.05,
    }
    .samples(SECONDS as f32, 48_000);
    // The sentence again and again, half a second apart, over the bed.
    let period = words.len() + 24_000;
    let mut mono: Vec<f32> = (0..frames)
        .map(|i| bed[i] + words.get(i % period).map_or(0.0, |w| 0.5 * w))
        .collect();
    for start in (48_000..frames).step_by(4 * 48_000) {
        for (k, x) in mono[start..start + 240].iter_mut().enumerate() {
            *x += 0.9 * (2.0 * std::f32::consts::PI * 3_000.0 * k as f32 / 48_000.0).sin();
        }
    }
    let mut stereo: Vec<f32> = mono.iter().flat_map(|&x| [x, 0.8 * x]).collect();
    let k = 10f32.powf((-28.0 - reference_loudness(&stereo) as f32) / 20.0);
    stereo.iter_mut().for_each(|x| *x *= k);
    stereo
}

fn write_program(path: &Path, stereo: &[f32]) {
    let file = File::create(path).unwrap();
    let mut w = OggOpusWriter::new(file, &EncoderSettings::music_stereo(128_000), 48_000).unwrap();
    w.write(stereo).unwrap();
    w.finish().unwrap();
}

fn job(loudness_lufs: Option<f64>) -> RenderJob {
    RenderJob {
        title: "Launch night".into(),
        show_title: "Booth Live".into(),
        author: "Ana".into(),
        started_ms: 1_796_062_909_000,
        artwork: Some(Artwork {
            mime: "image/png".into(),
            bytes: b"\x89PNG\r\n\x1a\n not really a picture".to_vec(),
        }),
        chapters: vec![
            Chapter {
                start_ms: 12_500,
                title: LABEL.into(),
            },
            Chapter {
                start_ms: 0,
                title: "Intro".into(),
            },
            Chapter {
                start_ms: 5_000,
                title: "Patch notes".into(),
            },
        ],
        loudness_lufs,
    }
}

/// ffmpeg's EBU R128 summary of a file: (integrated LUFS, true peak dBTP).
fn ffmpeg_loudness(path: &Path) -> (f64, f64) {
    let out = run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-vn", "-af", "ebur128=peak=true", "-f", "null", "-"]));
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:").unwrap()..];
    let value = |key: &str| -> f64 {
        let at = summary.find(key).unwrap() + key.len();
        summary[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let true_peak = &summary[summary.find("True peak:").unwrap()..];
    let peak: f64 = true_peak["True peak:".len()..]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    (value("I:"), peak)
}

/// ffprobe's chapters of a file: (start s, title).
fn ffprobe_chapters(path: &Path) -> Vec<(f64, String)> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-show_chapters", "-of", "json"])
        .arg(path));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["start_time"].as_str().unwrap().parse().unwrap(),
                c["tags"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_rendition(dir: &Path, program_frames: usize) {
    let mp3 = dir.join(MP3_FILE);
    let decoded = ffmpeg_decode(&mp3);
    let seconds = decoded.len() as f64 / 2.0 / 48_000.0;
    let expected = program_frames as f64 / 48_000.0;
    assert!(
        (seconds - expected).abs() <= 0.1,
        "the MP3 lasts {seconds} s, the program {expected} s"
    );

    let (integrated, true_peak) = ffmpeg_loudness(&mp3);
    assert!(
        (integrated + 16.0).abs() <= 1.0,
        "integrated {integrated} LUFS"
    );
    assert!(true_peak <= -1.0, "true peak {true_peak} dBTP");

    let expected_chapters = [(0.0, "Intro"), (5.0, "Patch notes"), (12.5, LABEL)];
    let chapters = ffprobe_chapters(&mp3);
    assert_eq!(chapters.len(), 3, "{chapters:?}");
    for ((at, title), (want_at, want_title)) in chapters.iter().zip(expected_chapters) {
        assert!((at - want_at).abs() <= 0.5, "{title} at {at} s");
        assert_eq!(title, want_title);
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(CHAPTERS_FILE)).unwrap()).unwrap();
    assert_eq!(json["version"], "1.2.0");
    let listed = json["chapters"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (c, (want_at, want_title)) in listed.iter().zip(expected_chapters) {
        assert!((c["startTime"].as_f64().unwrap() - want_at).abs() <= 0.5);
        assert_eq!(c["title"], want_title);
    }
    // Only the finished files: no temporary left behind.
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "program.opus" && !n.starts_with("talk"))
        .collect();
    names.sort();
    assert_eq!(names, [CHAPTERS_FILE, MP3_FILE]);
}

/// The tools the spoken-room tests make and judge their audio with.
fn speech_and_ffmpeg() -> bool {
    ["ffmpeg", "ffprobe", "espeak-ng", "sox"]
        .iter()
        .all(|t| have_tool(t))
}

#[test]
fn a_program_renders_to_an_mp3_at_minus_16_lufs_with_its_chapters() {
    if !speech_and_ffmpeg() {
        return;
    }
    let dir = tempdir();
    let audio = room_audio(dir.path());
    let program = dir.path().join("program.opus");
    write_program(&program, &audio);
    // Measured while recording: the writer thread meters what it encodes.
    let measured = reference_loudness(&audio);
    let rendered = render(&program, dir.path(), &job(Some(measured))).unwrap();
    assert_eq!(rendered.loudness_lufs, Some(measured));
    assert_eq!(rendered.duration_ms, SECONDS as u64 * 1000);
    let size = std::fs::metadata(dir.path().join(MP3_FILE)).unwrap().len();
    assert_eq!(rendered.mp3_bytes, size);
    check_rendition(dir.path(), audio.len() / 2);
}

#[test]
fn a_program_of_unknown_loudness_is_measured_first() {
    if !speech_and_ffmpeg() {
        return;
    }
    let dir = tempdir();
    let audio = room_audio(dir.path());
    let program = dir.path().join("program.opus");
    write_program(&program, &audio);
    let rendered = render(&program, dir.path(), &job(None)).unwrap();
    let measured = rendered.loudness_lufs.unwrap();
    assert!((measured + 28.0).abs() < 0.5, "measured {measured} LUFS");
    check_rendition(dir.path(), audio.len() / 2);
}

#[test]
fn a_silent_program_renders_without_gain() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let program = dir.path().join("program.opus");
    write_program(&program, &vec![0.0; 2 * 48_000 * 3]);
    let rendered = render(&program, dir.path(), &job(None)).unwrap();
    assert_eq!(rendered.loudness_lufs, None);
    assert_eq!(rendered.gain_db, 0.0);
    let decoded = ffmpeg_decode(&dir.path().join(MP3_FILE));
    assert!((decoded.len() as f64 / 96_000.0 - 3.0).abs() <= 0.1);
    assert!(decoded.iter().all(|x| x.abs() < 1e-3));
}

#[test]
fn a_file_that_is_not_a_program_is_a_clear_error() {
    let dir = tempdir();
    let program = dir.path().join("program.opus");
    std::fs::write(&program, b"not ogg at all").unwrap();
    let err = render(&program, dir.path(), &job(Some(-20.0))).unwrap_err();
    assert!(err.to_string().contains("does not decode"), "{err}");
    let missing = render(&dir.path().join("gone.opus"), dir.path(), &job(None)).unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    assert!(!dir.path().join(MP3_FILE).exists());
}
