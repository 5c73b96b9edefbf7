//! `booth host --headless`: the live engine on real devices or paced files, recording the
//! program, watching the devices.
//!
//! This is the control side around the engine thread: it opens the inputs, starts the engine
//! and the recorder, asks the sound system about once a second whether each device is still
//! there (PulseAudio quietly moves a stream whose source vanished), and re-opens a lost device
//! (or the new default) when it comes back, handing the engine a fresh ring. The program never
//! stops for a lost input: it goes on without it.

use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use crate::audio::{
    Capture, DeviceSelector, Playback, open_input, open_output, start_capture, start_playback,
};
use crate::codec::EncoderSettings;
use crate::dsp::ProgramSettings;
use crate::engine::{
    self, Command, EncodedFrame, EngineConfig, EngineEvent, Input, InputRing, Meters, PacedFile,
    Recorder,
};

/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputChoice {
    /// A capture device.
    Device(DeviceSelector),
    /// A file played in real time.
    File(PathBuf),
}

/// What `booth host --headless` was asked to do.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Game audio.
    pub game: InputChoice,
    /// Microphone.
    pub mic: InputChoice,
    /// The room's other voices (until the room server exists: a file, for rigs and tests).
    pub remote: Option<InputChoice>,
    /// Play the remote voices on this output device (a headset: not the output whose monitor
    /// is the game audio, or the guests come back into the program).
    pub monitor_device: Option<String>,
    /// Record the program here (Ogg Opus).
    pub record: Option<PathBuf>,
    /// Stop after this long.
    pub seconds: Option<f64>,
    /// Gains, ducking, mute.
    pub settings: ProgramSettings,
    /// Noise suppression on the mic.
    pub noise_suppression: bool,
    /// Program bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Go live in a room (publish the program by WHIP).
    pub room: Option<RoomTarget>,
}

/// Where the program goes live.
#[derive(Clone, Debug)]
pub struct RoomTarget {
    /// A room server's base URL; `None` starts one in this process.
    pub server: Option<String>,
    /// Where the in-process server listens.
    pub bind: std::net::SocketAddr,
    /// Its UDP media ports.
    pub udp_ports: (u16, u16),
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Title and game of a new room.
    pub title: String,
    /// The game being played.
    pub game: String,
    /// Join this room (with `token`) instead of creating one.
    pub room: Option<String>,
    /// The host's (or a speaker's) token for `room`.
    pub token: Option<String>,
}

/// What happened, for the terminal.
#[derive(Clone, Debug, PartialEq)]
pub enum HostStatus {
    /// Once a second: the meters.
    Meters(Meters),
    /// An input is gone; the program goes on without it.
    Lost(Input, String),
    /// An input is back (the same device, or the new default).
    Back(Input, String),
    /// Something else the engine reported.
    Engine(EngineEvent),
    /// The program is live in a room.
    Live(crate::live::LiveRoom),
    /// The room connection ended; the program goes on locally.
    RoomLost(String),
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSummary {
    /// The meters at the end.
    pub meters: Meters,
    /// Frames in the recording, if one was made.
    pub recorded_frames: Option<u64>,
}

/// Why `booth host` could not run. Messages name the device or file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HostError(String);

/// A live input and what keeps it running.
enum Feeder {
    Device {
        capture: Capture,
        selector: DeviceSelector,
    },
    File(
        #[expect(dead_code, reason = "held for its Drop: the file plays while it lives")] PacedFile,
    ),
    /// A device that is gone; re-opened when it returns.
    Lost { selector: DeviceSelector },
}

fn open(choice: &InputChoice, channels: usize) -> Result<(Feeder, InputRing), HostError> {
    match choice {
        InputChoice::File(path) => {
            let (feeder, ring) =
                PacedFile::start(path, channels).map_err(|e| HostError(e.to_string()))?;
            Ok((Feeder::File(feeder), ring))
        }
        InputChoice::Device(selector) => {
            let (capture, ring) = open_device(selector)?;
            Ok((
                Feeder::Device {
                    capture,
                    selector: selector.clone(),
                },
                ring,
            ))
        }
    }
}

fn open_device(selector: &DeviceSelector) -> Result<(Capture, InputRing), HostError> {
    let (device, info) = open_input(selector).map_err(|e| HostError(e.to_string()))?;
    let (capture, ring) =
        start_capture(&device, info, 480, 2.0).map_err(|e| HostError(e.to_string()))?;
    let channels = usize::from(capture.channels);
    let ring = InputRing {
        ring,
        rate: capture.sample_rate,
        channels,
    };
    Ok((capture, ring))
}

/// Runs until `seconds` pass (or forever); `status` hears what happens.
///
/// # Errors
/// An input that cannot be opened at the start, an unwritable recording, engine settings out of
/// range.
pub fn run_headless(
    opts: &HostOptions,
    status: &mut dyn FnMut(HostStatus),
) -> Result<HostSummary, HostError> {
    let (mut game_feeder, game) = open(&opts.game, 2)?;
    let (mut mic_feeder, mic) = open(&opts.mic, 1)?;
    let (_remote_feeder, remote) = match &opts.remote {
        Some(choice) => {
            let (feeder, ring) = open(choice, 1)?;
            (Some(feeder), Some(ring))
        }
        None => (None, None),
    };
    let (_playback, monitor): (Option<Playback>, _) = match &opts.monitor_device {
        Some(name) => {
            let (device, info) = open_output(name).map_err(|e| HostError(e.to_string()))?;
            let (playback, producer) =
                start_playback(&device, info, 0.5).map_err(|e| HostError(e.to_string()))?;
            (Some(playback), Some(producer))
        }
        None => (None, None),
    };
    let encoder = EncoderSettings::music_stereo(opts.bitrate_kbps.saturating_mul(1000));
    let config = EngineConfig {
        settings: opts.settings,
        encoder: encoder.clone(),
        noise_suppression: opts.noise_suppression,
        max_frames: opts.seconds.map(|s| (s.max(0.0) * 50.0).round() as u64),
    };
    let mut consumers: Vec<SyncSender<EncodedFrame>> = Vec::new();
    let recorder = match &opts.record {
        Some(path) => {
            let (rec, tx) = Recorder::start(path, &encoder)
                .map_err(|e| HostError(format!("cannot record to '{}': {e}", path.display())))?;
            consumers.push(tx);
            Some(rec)
        }
        None => None,
    };
    // Live in a room, the room's other voices come back over WHEP (the host's mix-minus): they
    // duck the game and play on the monitor device, as a remote file does in rigs.
    let (room_voices, remote) = match (&opts.room, remote) {
        (Some(_), None) => {
            let (producer, ring) = rtrb::RingBuffer::new(48_000 * 2);
            (
                Some(producer),
                Some(InputRing {
                    ring,
                    rate: 48_000,
                    channels: 2,
                }),
            )
        }
        (_, remote) => (None, remote),
    };
    let live = match &opts.room {
        Some(target) => {
            let live = crate::live::GoLive::start(target, &mut consumers, room_voices)
                .map_err(|e| HostError(e.to_string()))?;
            status(HostStatus::Live(live.room().clone()));
            Some(live)
        }
        None => None,
    };
    let inputs = engine::Inputs {
        game: Some(game),
        mic: Some(mic),
        remote,
        monitor,
    };
    let engine = engine::start(config, inputs, consumers).map_err(|e| HostError(e.to_string()))?;
    let meters = engine.meters();
    let mut last_check = Instant::now();
    let mut last_meters = Instant::now();
    loop {
        if let Some(ev) = engine.wait_event(Duration::from_millis(100)) {
            match ev {
                EngineEvent::Stopped => break,
                other => status(HostStatus::Engine(other)),
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            for (which, feeder) in [
                (Input::Game, &mut game_feeder),
                (Input::Mic, &mut mic_feeder),
            ] {
                watch(which, feeder, &engine, status);
            }
        }
        if let Some(live) = &live {
            live.set_voice_level(meters.read().mic_peak_dbfs);
        }
        if let Some(why) = live.as_ref().and_then(crate::live::GoLive::lost) {
            status(HostStatus::RoomLost(why));
        }
        if last_meters.elapsed() >= Duration::from_secs(1) {
            last_meters = Instant::now();
            status(HostStatus::Meters(meters.read()));
        }
        if engine.is_finished() {
            break;
        }
    }
    let final_meters = meters.read();
    engine.stop();
    if let Some(live) = live {
        live.stop();
    }
    let recorded_frames = match recorder {
        Some(rec) => {
            let path = rec.path().display().to_string();
            Some(
                rec.finish()
                    .map_err(|e| HostError(format!("recording '{path}': {e}")))?,
            )
        }
        None => None,
    };
    Ok(HostSummary {
        meters: final_meters,
        recorded_frames,
    })
}

/// Checks a device input; a lost one is retried, and handed back to the engine when it opens.
fn watch(
    which: Input,
    feeder: &mut Feeder,
    engine: &engine::EngineHandle,
    status: &mut dyn FnMut(HostStatus),
) {
    match feeder {
        Feeder::File(_) => {}
        Feeder::Device { capture, selector } => {
            if let Err(e) = capture.check() {
                let selector = selector.clone();
                status(HostStatus::Lost(which, e.to_string()));
                let _ = engine.send(Command::Replace(which, None));
                *feeder = Feeder::Lost { selector };
            }
        }
        Feeder::Lost { selector } => {
            // The same device if it returns; for a default, whatever the new default is.
            if let Ok((capture, ring)) = open_device(selector) {
                status(HostStatus::Back(which, capture.info.name.clone()));
                let _ = engine.send(Command::Replace(which, Some(ring)));
                *feeder = Feeder::Device {
                    capture,
                    selector: selector.clone(),
                };
            }
        }
    }
}
