//! Real sound devices, through the private PulseAudio that `tests/sound-server.sh` starts (sink
//! `game` whose monitor is game audio, sink `mic_feed`, source `mic`): listing, picking by
//! name, and capturing a tone that `paplay` plays into the game sink.
//!
//! Without the sound server (`PULSE_SERVER` unset) these tests skip, unless
//! `BOOTH_REQUIRE_SOUND=1` (as `tests/run` sets), where they fail.

use std::cell::Cell;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use booth::audio::{
    DeviceError, DeviceSelector, Direction, list_devices, open_input, push_interleaved,
    start_capture,
};

use crate::alloc::{COUNT, COUNTING};
use crate::support::{
    PulseModule, Rng, Tone, have_tool, interleave, play, rms_of, run, sound_lock, sound_server,
    sox_tone, tempdir, test_in_a_child, thread_wakeups, zero_crossing_hz,
};

/// sox's own RMS amplitude of a file: the reference level.
fn sox_rms(wav: &Path) -> f32 {
    let out = run(Command::new("sox").arg(wav).args(["-n", "stat"]));
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.starts_with("RMS     amplitude"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RMS in sox stat output:\n{text}"))
}

/// Moves everything in the ring into `out`.
fn drain(consumer: &mut rtrb::Consumer<f32>, out: &mut Vec<f32>) {
    if let Ok(chunk) = consumer.read_chunk(consumer.slots()) {
        let (a, b) = chunk.as_slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
        chunk.commit_all();
    }
}

#[test]
fn listing_marks_the_game_monitor_and_the_mic() {
    if !sound_server() {
        return;
    }
    let devices = list_devices().unwrap();
    let by_id = |id: &str| {
        devices
            .iter()
            .find(|d| d.id == id)
            .unwrap_or_else(|| panic!("no device '{id}' in {devices:#?}"))
    };
    let monitor = by_id("game.monitor");
    assert_eq!(monitor.direction, Direction::Input);
    assert!(monitor.is_monitor);
    assert_eq!(monitor.host, "PulseAudio");
    assert!(monitor.takes_rate(48_000), "{monitor:?}");
    assert!(monitor.takes_channels(2), "{monitor:?}");
    assert!(monitor.is_default_game_audio, "{monitor:?}");
    // The test server's sinks run at 48 kHz, 16-bit stereo: that is what the device runs at.
    let native = monitor.native.as_ref().unwrap();
    assert_eq!(
        (
            native.channels,
            native.sample_rate,
            native.sample_format.as_str()
        ),
        (2, 48_000, "i16")
    );
    assert!(!by_id("mic_feed.monitor").is_default_game_audio);
    let mic = by_id("mic");
    assert_eq!(mic.direction, Direction::Input);
    assert!(!mic.is_monitor && !mic.is_default_game_audio);
    assert!(mic.is_default);
    let game = by_id("game");
    assert_eq!(game.direction, Direction::Output);
    assert!(game.is_default && !game.is_monitor);

    let json = serde_json::to_value(monitor).unwrap();
    assert_eq!(json["direction"], "input");
    assert_eq!(json["is_monitor"], true);
    assert_eq!(json["native"]["sample_rate"], 48_000);
    assert!(json["sample_rates"][0]["min"].as_u64().unwrap() <= 48_000);

    let (_, info) = open_input(&DeviceSelector::DefaultGameMonitor).unwrap();
    assert_eq!(info.id, "game.monitor");
    let (_, info) = open_input(&DeviceSelector::DefaultMic).unwrap();
    assert_eq!(info.id, "mic");
    let (_, info) = open_input(&DeviceSelector::Named("Mic".into())).unwrap();
    assert_eq!(info.id, "mic");
}

#[test]
fn booth_devices_shows_what_each_device_runs_at_and_what_booth_takes_it_for() {
    if !sound_server() {
        return;
    }
    let out = run(Command::new(crate::support::booth()).arg("devices"));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |id: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no line for '{id}' in\n{text}"))
            .to_owned()
    };
    let game = line("game.monitor");
    assert!(game.starts_with("input "), "{game}");
    assert!(game.contains("Monitor of Game"), "{game}");
    assert!(game.contains("2 ch 48000 Hz i16"), "{game}");
    assert!(game.ends_with("[default game audio]"), "{game}");
    assert!(line("mic_feed.monitor").ends_with("[loopback]"), "{text}");
    assert!(line("mic").ends_with("[default mic]"), "{text}");
    let sink = line("game");
    assert!(
        sink.starts_with("output ") && sink.ends_with("[default output]"),
        "{sink}"
    );
    // One column per field, so scripts can cut it: the header names them.
    let header = text.lines().next().unwrap();
    for column in ["ID", "NAME", "SYSTEM", "RUNS AT"] {
        assert!(header.contains(column), "{header}");
    }
}

#[test]
fn a_device_that_does_not_exist_is_an_error_listing_those_that_do() {
    if !sound_server() {
        return;
    }
    let err = open_input(&DeviceSelector::Named("USB Mic 3000".into())).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, DeviceError::NotFound { .. }), "{err:?}");
    assert!(msg.contains("'USB Mic 3000'"), "{msg}");
    assert!(msg.contains("'game.monitor'"), "{msg}");
    assert!(msg.contains("'mic'"), "{msg}");

    // "monitor" fits two inputs: the error names both instead of guessing.
    let err = open_input(&DeviceSelector::Named("monitor".into())).unwrap_err();
    match &err {
        DeviceError::Ambiguous { candidates, .. } => {
            assert!(candidates.iter().any(|c| c == "game.monitor"), "{err}");
            assert!(candidates.iter().any(|c| c == "mic_feed.monitor"), "{err}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

/// Plays a sox sine at `hz` (amplitude 0.5) into `sink` and captures it through `selector`
/// with `start_capture`, asking for `want_channels`: the tone must arrive within 2 s, at its
/// frequency and at the level sox measures in the file, with no overruns while the test drains
/// the ring.
fn hear_tone(
    selector: DeviceSelector,
    expect_id: &str,
    sink: &str,
    hz: u32,
    want_channels: Option<u16>,
) {
    let _sound = sound_lock();
    let dir = tempdir();
    let wav = sox_tone(dir.path(), hz, 0.5, 6);
    let want_rms = sox_rms(&wav);

    let (device, info) = open_input(&selector).unwrap();
    let (capture, mut ring) = start_capture(&device, info, 480, 2.0, want_channels).unwrap();
    assert_eq!(capture.info.id, expect_id);
    let rate = capture.sample_rate;
    let channels = usize::from(capture.channels);
    assert!(rate > 0 && channels > 0);
    if let Some(want) = want_channels {
        // The sound server downmixes a source to any count: what was asked for is what comes.
        assert_eq!(capture.channels, want, "asked for {want} channels");
    }

    let started = Instant::now();
    let _player = play(sink, &wav);
    let mut got = Vec::new();
    let block = (rate as usize / 100) * channels; // 10 ms
    let onset = loop {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no tone from {expect_id} within 2 s ({} samples, all quiet)",
            got.len()
        );
        drain(&mut ring, &mut got);
        if let Some(i) =
            (0..got.len() / block).find(|&i| rms_of(&got[i * block..(i + 1) * block]) > 0.1)
        {
            break i * block;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let latency = started.elapsed();

    // One second of tone, from 50 ms after it began.
    let from = onset + block * 5;
    let need = from + rate as usize * channels;
    while got.len() < need {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the tone stopped coming"
        );
        std::thread::sleep(Duration::from_millis(5));
        drain(&mut ring, &mut got);
    }
    let left: Vec<f32> = got[from..need].iter().step_by(channels).copied().collect();
    let heard = zero_crossing_hz(&left, f64::from(rate));
    let level = rms_of(&got[from..need]);
    eprintln!(
        "{expect_id}: {heard:.3} Hz, RMS {level:.4} (sox says the file is {want_rms:.4}), first \
         sound after {latency:?}, {rate} Hz x {channels}, period {:?} frames",
        capture.period_frames()
    );
    assert!(
        (heard - f64::from(hz)).abs() <= 2.0,
        "heard {heard} Hz, played {hz} Hz"
    );
    assert!(
        (level - want_rms).abs() <= 0.01,
        "RMS {level}, sox measured {want_rms} in the file"
    );
    assert_eq!(capture.stats.overruns.load(Ordering::Relaxed), 0);
    assert!(capture.is_alive());
    assert!(capture.stats.frames.load(Ordering::Relaxed) >= (need / channels) as u64);
}

#[test]
fn a_tone_played_into_the_game_sink_is_captured_from_its_monitor() {
    if !sound_server() || !have_tool("sox") || !have_tool("paplay") {
        return;
    }
    hear_tone(
        DeviceSelector::DefaultGameMonitor,
        "game.monitor",
        "game",
        440,
        None,
    );
}

#[test]
fn a_tone_fed_to_the_virtual_microphone_is_captured_from_the_default_mic() {
    if !sound_server() || !have_tool("sox") || !have_tool("paplay") {
        return;
    }
    // In mono, as the host opens a microphone (the virtual mic is stereo).
    hear_tone(DeviceSelector::DefaultMic, "mic", "mic_feed", 1000, Some(1));
}

#[test]
fn the_capture_callback_allocates_nothing() {
    let (mut producer, mut consumer) = rtrb::RingBuffer::new(4800);
    let stats = booth::audio::CaptureStats::new();
    let mut rng = Rng::new(37);
    let i16_block: Vec<i16> = (0..960).map(|_| rng.range(0, 2000) as i16 - 1000).collect();
    let f32_block: Vec<f32> = (0..960).map(|i| (i as f32 * 0.01).sin()).collect();
    let u8_block: Vec<u8> = (0..960).map(|i| (i % 256) as u8).collect();
    let mut sink = vec![0f32; 4800];

    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    for round in 0..200 {
        push_interleaved(&i16_block, 2, &mut producer, &stats);
        push_interleaved(&f32_block, 2, &mut producer, &stats);
        push_interleaved(&u8_block, 2, &mut producer, &stats);
        // Every third round the reader falls behind, so the ring fills and overruns.
        if round % 3 != 0 {
            let n = consumer.slots().min(sink.len());
            if let Ok(chunk) = consumer.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                sink[..a.len()].copy_from_slice(a);
                sink[a.len()..a.len() + b.len()].copy_from_slice(b);
                chunk.commit_all();
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(
        allocations, 0,
        "the capture callback allocated {allocations} times"
    );
    assert!(
        stats.overruns.load(Ordering::Relaxed) > 0,
        "the ring never filled"
    );
    assert_eq!(stats.frames.load(Ordering::Relaxed), 200 * 3 * 480);
}

#[test]
fn a_stream_read_on_demand_needs_no_wake_ups_of_its_own_and_is_read_without_one() {
    if !sound_server() || !have_tool("sox") || !have_tool("paplay") {
        return;
    }
    let _sound = sound_lock();
    let dir = tempdir();
    let wav = sox_tone(dir.path(), 440, 0.5, 8);
    let (device, info) = open_input(&DeviceSelector::Named("game.monitor".into())).unwrap();
    let (capture, mut ring) = start_capture(&device, info, 480, 2.0, None).unwrap();
    // Booth's PulseAudio streams are read by whoever drains them (the engine, once a block).
    let read_now = capture
        .read_now()
        .expect("a PulseAudio stream can be read on demand");
    let channels = usize::from(capture.channels);
    let rate = capture.sample_rate as usize;
    let _player = play("game", &wav);
    let mut got = Vec::new();

    // Read as the engine does, every 20 ms, for 2 s: the tone comes, and the pump thread stays
    // asleep after the first second (it wakes once per grace period, not once per 10 ms).
    let mut wakeups_then = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        read_now();
        drain(&mut ring, &mut got);
        if wakeups_then.is_none() && started.elapsed() >= Duration::from_secs(1) {
            wakeups_then = Some((
                thread_wakeups(std::process::id(), "booth-pulse").unwrap(),
                got.len(),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (then, got_then) = wakeups_then.unwrap();
    let pump_wakeups = thread_wakeups(std::process::id(), "booth-pulse").unwrap() - then;
    let frames_read = (got.len() - got_then) / channels;
    eprintln!(
        "read on demand: {frames_read} frames in the last second, pump thread woke {pump_wakeups} times"
    );
    assert!(
        pump_wakeups <= 20,
        "the pump thread woke {pump_wakeups} times in a second the stream was read on demand"
    );
    assert!(
        frames_read >= rate * 9 / 10,
        "{frames_read} frames in a second of reading on demand"
    );
    let tail = &got[got.len() - rate / 10 * channels..];
    assert!(rms_of(tail) > 0.1, "no tone in what was read on demand");

    // Nobody reads on demand any more: the pump thread takes over within its grace period.
    let before = got.len();
    std::thread::sleep(Duration::from_secs(1));
    drain(&mut ring, &mut got);
    let frames = (got.len() - before) / channels;
    assert!(
        frames >= rate * 8 / 10,
        "only {frames} frames came in the second after reading on demand stopped"
    );
    assert_eq!(capture.stats.overruns.load(Ordering::Relaxed), 0);
    assert!(capture.is_alive());
}

#[test]
fn a_device_that_goes_away_marks_the_capture_dead() {
    if !sound_server() || !have_tool("pactl") {
        return;
    }
    let sink = format!("booth_unplug_{}", std::process::id());
    let mut module = PulseModule::null_sink(&sink, 48_000);
    let (device, info) = open_input(&DeviceSelector::Named(format!("{sink}.monitor"))).unwrap();
    let (capture, _ring) = start_capture(&device, info, 480, 1.0, None).unwrap();
    assert!(capture.is_alive());
    capture.check().unwrap();

    module.unload();
    let unplugged = Instant::now();
    // Booth records PulseAudio sources with "don't move": the server ends the recording
    // instead of moving it to the default source (the mic), and the stream says so itself,
    // without anyone polling the device list.
    while capture.is_alive() {
        assert!(
            unplugged.elapsed() < Duration::from_secs(3),
            "the stream did not report its source gone within 3 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "the stream reported the loss after {:?}",
        unplugged.elapsed()
    );
    let err = loop {
        match capture.check() {
            Err(e) => break e,
            Ok(()) => assert!(
                unplugged.elapsed() < Duration::from_secs(3),
                "the capture still claims its device 3 s after it went away"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let msg = err.to_string();
    eprintln!("noticed after {:?}: {msg}", unplugged.elapsed());
    assert!(!capture.is_alive());
    assert!(
        msg.contains(&sink) && msg.contains("booth devices"),
        "{msg}"
    );
}

#[test]
fn a_sink_plays_on_booths_own_connection_and_its_loss_ends_the_playback() {
    use cpal::traits::DeviceTrait;
    if !sound_server() || !have_tool("pactl") {
        return;
    }
    let sink = format!("booth_phones_{}", std::process::id());
    let mut module = PulseModule::null_sink(&sink, 44_100);
    let (device, info) = booth::audio::open_output(&sink).unwrap();
    assert_eq!(
        device.id().map(|id| id.host()).ok(),
        Some(cpal::HostId::Custom),
        "a PulseAudio sink is played on Booth's own connection, not cpal's"
    );
    let (playback, mut ring) = booth::audio::start_playback(&device, info, 0.5).unwrap();
    let frames = || playback.stats.frames.load(Ordering::Relaxed);
    // A null sink nobody played to sleeps out its longest latency (2 s) before it notices a
    // new stream: wait until it asks for more than the first fill.
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let first = frames();
    while frames() == first {
        assert!(
            opened.elapsed() < Duration::from_secs(4),
            "the sink never asked for more than the first {first} frames"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Two seconds of a tone, pushed as the engine does: 20 ms at a time.
    let tone = Tone {
        freq: 440.0,
        amp: 0.3,
    }
    .samples(2.0, 48_000);
    let tone = interleave(&tone, &tone);
    let (began, before, short_before) = (
        Instant::now(),
        frames(),
        playback.stats.underruns.load(Ordering::Relaxed),
    );
    for (i, block) in tone.chunks(1_920).enumerate() {
        let _ = ring.push_partial_slice(block);
        let due = began + Duration::from_millis(20 * (i as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let played = frames() - before;
    let short = playback.stats.underruns.load(Ordering::Relaxed) - short_before;
    eprintln!("played {played} frames in 2 s, {short} of them silence");
    // The sink took the stream's 48 kHz at its pace (the server resamples to 44.1 kHz).
    assert!(
        (86_000..=106_000).contains(&played),
        "{played} frames asked for in 2 s"
    );
    assert!(short < 2_000, "{short} frames of silence in 2 s of a tone");
    assert!(playback.is_alive());

    module.unload();
    let unplugged = Instant::now();
    while playback.is_alive() {
        assert!(
            unplugged.elapsed() < Duration::from_secs(3),
            "the playback did not report its sink gone within 3 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// With no sound server at all, listing falls back to ALSA or reports an error; it never
/// panics. Runs this test binary again in a child with the PulseAudio variables removed.
#[test]
fn without_a_sound_server_listing_neither_panics_nor_hangs() {
    if std::env::var_os("BOOTH_DEVICES_CHILD").is_some() {
        match list_devices() {
            Ok(devices) => eprintln!("child: {} devices: {devices:?}", devices.len()),
            Err(e) => eprintln!("child: error: {e}"),
        }
        match open_input(&DeviceSelector::DefaultGameMonitor) {
            Ok((_, info)) => eprintln!("child: game monitor {}", info.id),
            Err(e) => eprintln!("child: game monitor: {e}"),
        }
        return;
    }
    let empty = tempdir();
    // libpulse (behind ALSA's `pulse` plugin) would otherwise start a PulseAudio of its own.
    let client_conf = empty.path().join("client.conf");
    std::fs::write(&client_conf, "autospawn = no\n").unwrap();
    let started = Instant::now();
    let out = test_in_a_child(concat!(
        module_path!(),
        "::without_a_sound_server_listing_neither_panics_nor_hangs"
    ))
    .env("BOOTH_DEVICES_CHILD", "1")
    .env_remove("PULSE_SERVER")
    .env_remove("PULSE_RUNTIME_PATH")
    .env("XDG_RUNTIME_DIR", empty.path())
    .env("XDG_CONFIG_HOME", empty.path())
    .env("HOME", empty.path())
    .env("PULSE_CLIENTCONFIG", &client_conf)
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "the child failed:\n{stderr}");
    assert!(stderr.contains("child: game monitor"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
}
