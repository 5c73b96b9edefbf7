//! Recording a room: the program and each voice's track are files `opusinfo` accepts, ffmpeg
//! decodes to the program's length and lines up with the program; a recording killed mid-way
//! is repaired to what was written; a full disk stops recording with a clear error.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use booth::codec::opus::{EncoderSettings, MAX_PACKET, OpusDecoder, OpusEncoder};
use booth::server::recorder::{
    RecordError, Recorded, Recorder, RecorderEvent, VoiceIn, repair_file,
};

use crate::support::*;

const TICK: usize = 960;

fn program_settings() -> EncoderSettings {
    EncoderSettings::program_stereo(128_000)
}

fn packets(settings: &EncoderSettings, pcm: &[f32]) -> Vec<Vec<u8>> {
    let mut enc = OpusEncoder::new(settings).unwrap();
    let mut out = vec![0; MAX_PACKET];
    pcm.chunks(TICK * usize::from(settings.channels))
        .map(|f| {
            let n = enc.encode_frame(f, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect()
}

/// `opusinfo` reads the whole file and finds nothing wrong.
fn assert_opusinfo_accepts(path: &Path) {
    let out = run(Command::new("opusinfo").arg(path));
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("WARNING") && !text.contains("ERROR"),
        "{path:?}:\n{text}"
    );
}

fn events() -> (
    Box<dyn Fn(RecorderEvent) + Send>,
    mpsc::Receiver<RecorderEvent>,
) {
    let (tx, rx) = mpsc::channel();
    (
        Box::new(move |e| {
            let _ = tx.send(e);
        }),
        rx,
    )
}

/// How many samples `track`'s `at` range sits off the same range of `program` (both mono):
/// where their cross-correlation peaks, searched 12.5 ms either way.
fn offset(program: &[f32], track: &[f32], at: std::ops::Range<usize>) -> i64 {
    const SPAN: usize = 600;
    let part = &track[at.clone()];
    let score = |l: usize| -> f64 {
        let p = &program[at.start + l - SPAN..];
        part.iter()
            .zip(p)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum()
    };
    let best = (0..=2 * SPAN)
        .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        .unwrap();
    best as i64 - SPAN as i64
}

/// One speaker as packets (mono voice, heard from 2 s, silent 5-6 s), one host as PCM
/// (stereo, heard 1-8 s), over a quiet tone: 10 s. The program is made as the room makes it,
/// the speaker's packets decoded into it.
#[test]
fn a_recording_keeps_the_program_and_each_voice_on_its_timeline() {
    if !have_tool("opusinfo") || !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let ticks = 500;
    let speaker_pcm = pink_noise(ticks * TICK, -24.0, 1);
    let speaker = packets(&EncoderSettings::voice_mono(32_000), &speaker_pcm);
    let host_mono = pink_noise(ticks * TICK, -24.0, 2);
    let host = interleave(&host_mono, &host_mono);
    let speaker_heard = |t: usize| (100..250).contains(&t) || t >= 300;
    let host_heard = |t: usize| (50..400).contains(&t);

    let (on_event, rx) = events();
    let mut rec = Recorder::start(dir.path().join("ep"), &program_settings(), on_event).unwrap();
    let mut program_enc = OpusEncoder::new(&program_settings()).unwrap();
    let mut speaker_dec = OpusDecoder::new(2).unwrap();
    let mut decoded = vec![0.0; 2 * TICK];
    let mut program_pcm = Vec::new();
    let mut packet = vec![0; MAX_PACKET];
    for (t, speaker_packet) in speaker.iter().enumerate() {
        let mut mix: Vec<f32> = (0..2 * TICK)
            .map(|i| {
                0.05 * (std::f32::consts::TAU * 440.0 * ((t * TICK + i / 2) as f32) / 48e3).sin()
            })
            .collect();
        let frame = t * 2 * TICK..(t + 1) * 2 * TICK;
        let mut voices = Vec::new();
        if speaker_heard(t) {
            speaker_dec.decode(speaker_packet, &mut decoded).unwrap();
            mix.iter_mut().zip(&decoded).for_each(|(m, d)| *m += d);
            voices.push((7, "Ana María", VoiceIn::Packet(speaker_packet)));
        } else if t >= 100 {
            voices.push((7, "Ana María", VoiceIn::Silent));
        }
        if host_heard(t) {
            mix.iter_mut()
                .zip(&host[frame.clone()])
                .for_each(|(m, h)| *m += h);
            voices.push((1, "Host", VoiceIn::Pcm(&host[frame])));
        }
        let n = program_enc.encode_frame(&mix, &mut packet).unwrap();
        rec.tick(&packet[..n], &mix, &voices).unwrap();
        program_pcm.extend_from_slice(&mix);
    }
    let recorded = rec.finish_and_wait().unwrap();
    assert!(matches!(rx.try_recv(), Ok(RecorderEvent::Finished(Ok(_)))));
    check_files(&recorded, &program_pcm, speaker_heard, host_heard);
}

fn check_files(
    recorded: &Recorded,
    program_pcm: &[f32],
    speaker_heard: impl Fn(usize) -> bool,
    host_heard: impl Fn(usize) -> bool,
) {
    assert_eq!(recorded.duration_ms, 10_000);
    assert_eq!(recorded.stopped_by, None);
    let names: Vec<&str> = recorded.tracks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "Ana María"], "in the order first heard");
    assert!(recorded.tracks[1].1.ends_with("track-7-ana-mar-a.ogg"));

    let mut meter = ebur128::EbuR128::new(2, 48_000, ebur128::Mode::I).unwrap();
    meter.add_frames_f32(program_pcm).unwrap();
    let reference = meter.loudness_global().unwrap();
    let measured = recorded.loudness_lufs.unwrap();
    assert!(
        (measured - reference).abs() < 0.2,
        "{measured} vs {reference}"
    );

    let program = channel(&ffmpeg_decode(&recorded.program), 0);
    assert_eq!(
        recorded.program_bytes,
        std::fs::metadata(&recorded.program).unwrap().len()
    );
    for path in std::iter::once(&recorded.program).chain(recorded.tracks.iter().map(|(_, p)| p)) {
        assert_opusinfo_accepts(path);
        let frames = ffmpeg_decode(path).len() / 2;
        assert!(
            frames.abs_diff(500 * TICK) <= 1_920,
            "{path:?}: {frames} frames"
        );
    }
    for ((_, path), heard) in recorded
        .tracks
        .iter()
        .zip([&host_heard as &dyn Fn(usize) -> bool, &speaker_heard])
    {
        let track = channel(&ffmpeg_decode(path), 0);
        // Away from the edges (codec ramps), 100 ms windows: heard where speaking, silent
        // elsewhere.
        for w in 0..100 {
            let (t0, t1) = (w * 5, w * 5 + 4);
            if heard(t0) != heard(t1) || (w > 0 && heard(t0) != heard(t0 - 1)) {
                continue;
            }
            let level = to_db(rms_of(&track[t0 * TICK..(t1 + 1) * TICK]));
            if heard(t0) {
                assert!(level > -35.0, "{path:?} {} ms: {level:.1} dB", t0 * 20);
            } else {
                assert!(level < -60.0, "{path:?} {} ms: {level:.1} dB", t0 * 20);
            }
        }
        // On the program's timeline, to the sample or near it.
        // Both voices are heard from 3 to 3.5 s.
        let l = offset(&program, &track, 3 * 48_000..3 * 48_000 + 24_000);
        assert!(l.abs() <= 2, "{path:?} is {l} samples off the program");
    }
}

/// Records in real time into `BOOTH_RECORDING_CHILD_DIR` until killed, printing `ticks N`
/// every 50 ticks; without that variable (a normal test run) it does nothing.
#[test]
fn recording_child_until_killed() {
    let Ok(dir) = std::env::var("BOOTH_RECORDING_CHILD_DIR") else {
        return;
    };
    let program = packets(
        &program_settings(),
        &interleave(
            &pink_noise(50 * TICK, -20.0, 3),
            &pink_noise(50 * TICK, -20.0, 4),
        ),
    );
    let voice = packets(
        &EncoderSettings::voice_mono(32_000),
        &pink_noise(50 * TICK, -20.0, 5),
    );
    let (on_event, _rx) = events();
    let mut rec = Recorder::start(PathBuf::from(dir), &program_settings(), on_event).unwrap();
    let start = Instant::now();
    for t in 0.. {
        let voices = [(3, "Speaker", VoiceIn::Packet(&voice[t % 50]))];
        rec.tick(&program[t % 50], &[], &voices).unwrap();
        if t % 50 == 0 {
            println!("ticks {t}");
        }
        let due = start + Duration::from_millis(20 * (t as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}

/// `kill -9` of a process recording, partway: its files are repaired to what it wrote, less
/// than the last page and the unsynced bytes, and `opusinfo` accepts them.
#[test]
fn a_recording_killed_midway_is_repaired_to_what_was_written() {
    if !have_tool("opusinfo") {
        return;
    }
    let dir = tempdir();
    let mut child = test_in_a_child(&format!("{}::recording_child_until_killed", module_path!()))
        .env("BOOTH_RECORDING_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut written = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("ticks ") {
            written = n.parse::<u64>().unwrap();
            if written >= 300 {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();
    let written_ms = written * 20 + 150;
    for name in ["program.ogg", "track-3-speaker.ogg"] {
        let path = dir.path().join(name);
        let r = repair_file(&path).unwrap();
        assert!(!r.was_finished && r.has_audio, "{name}: {r:?}");
        assert_eq!(r.length, std::fs::metadata(&path).unwrap().len());
        assert!(
            r.duration_ms + 1_500 >= written_ms && r.duration_ms <= written_ms + 200,
            "{name}: kept {} ms of about {written_ms} ms written",
            r.duration_ms
        );
        assert_opusinfo_accepts(&path);
    }
}

/// A tmpfs mounted for one test and unmounted when it ends, passed or failed.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(dir.to_path_buf())),
            other => {
                assert!(
                    std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
                    "cannot mount a tmpfs (BOOTH_REQUIRE_TOOLS is set): {other:?}"
                );
                eprintln!("skipping: cannot mount a tmpfs here: {other:?}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_recording_with_an_error_that_says_so() {
    let dir = tempdir();
    let Some(_disk) = SmallDisk::mount(dir.path(), "256k") else {
        return;
    };
    let loud = interleave(
        &pink_noise(50 * TICK, -6.0, 6),
        &pink_noise(50 * TICK, -6.0, 7),
    );
    let program = packets(&EncoderSettings::program_stereo(510_000), &loud);
    let (on_event, rx) = events();
    let mut rec = Recorder::start(dir.path().join("ep"), &program_settings(), on_event).unwrap();
    let mut failed_at = None;
    for t in 0..3_000 {
        if let Err(e) = rec.tick(&program[t % 50], &[], &[]) {
            assert_eq!(e, RecordError::Stopped);
            failed_at = Some(t);
            break;
        }
        // Paced so the queue never fills: this is about the disk, not its speed.
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(failed_at.is_some(), "256 KiB never filled");
    let Ok(RecorderEvent::Failed(why)) = rx.recv_timeout(Duration::from_secs(5)) else {
        panic!("no Failed event");
    };
    assert!(matches!(why, RecordError::DiskFull { .. }), "{why:?}");
    assert!(why.to_string().contains("disk is full"), "{why}");
    assert!(rec.tick(&program[0], &[], &[]).is_err());
    let recorded = rec.finish_and_wait().unwrap();
    assert_eq!(recorded.stopped_by, Some(why));
    assert!(recorded.duration_ms > 1_000, "{recorded:?}");
    assert!(matches!(rx.recv(), Ok(RecorderEvent::Finished(Ok(_)))));
    if have_tool("opusinfo") {
        assert_opusinfo_accepts(&recorded.program);
    }
}
