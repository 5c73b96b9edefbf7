//! `booth host --headless`: the live engine on real devices or paced files, recording the
//! program, watching the devices.
//!
//! This is the control side around the engine thread: it opens the inputs, starts the engine
//! and the recorder, asks the sound system about once a second whether each device is still
//! there (PulseAudio quietly moves a stream whose source vanished), and re-opens a lost device
//! (or the new default) when it comes back, handing the engine a fresh ring. The program never
//! stops for a lost input: it goes on without it.
//!
//! It never touches samples: audio stays on the devices' and the engine's threads, and this
//! side only opens, watches and hands over rings.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::audio::{
    AudioError, Capture, DeviceError, DeviceSelector, Playback, open_input_on, open_output_on,
    start_capture, start_playback,
};
use crate::codec::{CodecError, EncoderSettings};
use crate::dsp::ProgramSettings;
use crate::engine::{
    self, Command, EngineConfig, EngineError, EngineEvent, Feed, FrameSink, InputRing, Meters,
    PacedFile, Recorder,
};
use crate::live::LiveError;

/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputChoice {
    /// A capture device.
    Device(DeviceSelector),
    /// A file played in real time.
    File(PathBuf),
}

impl InputChoice {
    /// The file it plays, if it is one.
    fn file(&self) -> Option<&std::path::Path> {
        match self {
            InputChoice::File(path) => Some(path),
            InputChoice::Device(_) => None,
        }
    }
}

/// What `booth host --headless` was asked to do.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Game audio.
    pub game: InputChoice,
    /// Microphone.
    pub mic: InputChoice,
    /// The room's other voices from a file instead of from the room (rehearsals and tests).
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
    /// Publish the program into this WHIP endpoint instead of a Booth room.
    pub whip: Option<crate::whip_out::WhipTarget>,
}

pub use crate::live::RoomTarget;

/// What happened, for the terminal.
#[derive(Clone, Debug, PartialEq)]
pub enum HostStatus {
    /// Once a second: the meters.
    Meters(Meters),
    /// An input is gone; the program goes on without it.
    Lost(Feed, String),
    /// An input is back (the same device, or the new default): its device's name.
    Back(Feed, String),
    /// The output the room plays on (the monitor) is gone; the room goes on unheard there.
    MonitorLost(String),
    /// The monitor output is back: its device's name.
    MonitorBack(String),
    /// An input that takes the default device follows it to another: its name.
    Followed(Feed, String),
    /// An input opened at the start: what plays into it.
    Opened(Feed, Source),
    /// Something else the engine reported.
    Engine(EngineEvent),
    /// The program is live in a room.
    Live(crate::live::LiveRoom),
    /// The room connection ended; the program goes on locally.
    RoomLost(String),
    /// The program is published into a WHIP endpoint (its URL, without any password).
    Publishing(String),
    /// The WHIP endpoint's session ended: why.
    WhipLost(String),
    /// A message from the room's channel (`welcome`, `hand_queue`, `stage_changed`, ...; see the
    /// room protocol), or the answer to an invitation request.
    Room(crate::live::RoomNews),
}

/// What an input plays from, as people read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The device's name (as the sound settings show it), or the file's path.
    pub name: String,
    /// The rest: the device's id, its format and period (`game.monitor, 2 ch 48000 Hz, 10 ms
    /// periods`), or `file, paced in real time`.
    pub detail: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.detail)
    }
}

impl Feeder {
    /// What plays into the input; `None` while its device is lost.
    fn source(&self, file: Option<&std::path::Path>) -> Option<Source> {
        match self {
            Feeder::Device { capture, .. } => {
                let period = capture
                    .period_frames()
                    .map(|p| format!(", {} ms periods", period_ms(p, capture.sample_rate)))
                    .unwrap_or_default();
                Some(Source {
                    name: capture.info.name.clone(),
                    detail: format!(
                        "{}, {} ch {} Hz{period}",
                        capture.info.id, capture.channels, capture.sample_rate
                    ),
                })
            }
            Feeder::File(_) => Some(Source {
                name: file.map_or_else(String::new, |f| f.display().to_string()),
                detail: "a file, paced in real time".to_owned(),
            }),
            Feeder::Lost { .. } => None,
        }
    }
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSummary {
    /// The meters at the end.
    pub meters: Meters,
    /// Frames in the recording, if one was made.
    pub recorded_frames: Option<u64>,
}

/// Why the host could not start, go live, switch an input or finish. Messages name the device
/// or file and come from the layer that failed, as the user should read them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A capture or playback device could not be found, opened or started.
    #[error("{0}")]
    Device(#[source] DeviceError),
    /// A file to play as an input could not be opened or decoded.
    #[error("{0}")]
    File(#[source] AudioError),
    /// The engine would not start, or would not take the monitor output.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The recording could not be created.
    #[error("cannot record to '{}': {source}", .path.display())]
    RecordingNotStarted {
        /// The file asked for.
        path: PathBuf,
        /// What went wrong.
        source: CodecError,
    },
    /// The recording could not be written to its end.
    #[error("recording '{}': {source}", .path.display())]
    RecordingNotFinished {
        /// The file being written.
        path: PathBuf,
        /// What went wrong.
        source: CodecError,
    },
    /// Asked to go live while live already.
    #[error("already live: end the room first")]
    AlreadyLive,
    /// The room could not be reached, or refused the host.
    #[error("{0}")]
    GoingLive(#[source] LiveError),
    /// The WHIP endpoint could not be reached, refused the program, or never connected.
    #[error("{0}")]
    Whip(#[source] crate::whip_out::WhipOutError),
    /// The WHIP endpoint's session ended while the program ran.
    #[error("the WHIP endpoint's session ended: {0}")]
    WhipEnded(String),
}

/// A live input and what keeps it running.
#[derive(Debug)]
enum Feeder {
    Device {
        capture: Capture,
        selector: DeviceSelector,
    },
    File(
        #[expect(dead_code, reason = "held for its Drop: the file plays while it lives")] PacedFile,
    ),
    /// A device that is gone; re-opened when it returns, on the sound system it was on
    /// (`host`; any, for one missing from the start).
    Lost {
        selector: DeviceSelector,
        host: Option<String>,
    },
}

fn open(choice: &InputChoice, channels: usize) -> Result<(Feeder, InputRing), HostError> {
    match choice {
        InputChoice::File(path) => {
            let (feeder, ring) = PacedFile::start(path, channels).map_err(HostError::File)?;
            Ok((Feeder::File(feeder), ring))
        }
        InputChoice::Device(selector) => {
            let (capture, ring) = open_device(selector, channels, None)?;
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

/// A period of `frames` at `rate` in milliseconds, to a tenth: 10 for 480 frames at 48 kHz,
/// 6.7 for 320 (not 6.666666666666667).
fn period_ms(frames: u32, rate: u32) -> f64 {
    let ms = f64::from(frames) * 1000.0 / f64::from(rate.max(1));
    (ms * 10.0).round() / 10.0
}

/// What an input carries: the game in stereo, voices (the mic, the room's) in mono.
fn channels_of(which: Feed) -> usize {
    if which == Feed::Game { 2 } else { 1 }
}

/// Frames per capture callback: 10 ms at 48 kHz, half the engine's 20 ms pull.
const CAPTURE_PERIOD_FRAMES: u32 = 480;

/// Opens a device for an input of `channels` (a mono voice needs no more than one), on the
/// sound system called `host` (`None`: the one Booth uses).
fn open_device(
    selector: &DeviceSelector,
    channels: usize,
    host: Option<&str>,
) -> Result<(Capture, InputRing), HostError> {
    let (device, info) = open_input_on(selector, host).map_err(HostError::Device)?;
    start_device(&device, info, channels)
}

/// Starts capturing `device` (found as `info`) for an input of `channels`.
fn start_device(
    device: &cpal::Device,
    info: crate::audio::DeviceInfo,
    channels: usize,
) -> Result<(Capture, InputRing), HostError> {
    let want = u16::try_from(channels).ok();
    let (capture, ring) =
        start_capture(device, info, CAPTURE_PERIOD_FRAMES, 2.0, want).map_err(HostError::Device)?;
    let channels = usize::from(capture.channels);
    let ring = InputRing {
        ring,
        rate: capture.sample_rate,
        channels,
        // Where the sound system does not say, assume a 20 ms period.
        burst_frames: capture.period_frames().unwrap_or(capture.sample_rate / 50) as usize,
        rests: false,
        read_now: capture.read_now(),
    };
    Ok((capture, ring))
}

/// Runs until `seconds` pass (or forever), or until `stop` is set (Ctrl-C, SIGTERM: the
/// recording and an in-process server's episodes are then finished properly); `status` hears
/// what happens.
///
/// # Errors
/// An input that cannot be opened at the start, an unwritable recording, engine settings out of
/// range.
pub fn run_headless(
    opts: &HostOptions,
    stop: &std::sync::atomic::AtomicBool,
    status: &mut dyn FnMut(HostStatus),
) -> Result<HostSummary, HostError> {
    let mut session = HostSession::start(opts, Missing::Fail, status)?;
    // Engine events end the wait at once; the rest (devices, the room, `stop`) is looked at
    // twice a second: nothing here needs this thread awake more often than that.
    while !stop.load(std::sync::atomic::Ordering::Relaxed)
        && session.tick(Duration::from_millis(500), status)
        && session.whip_ended.is_none()
    {}
    // A program published nowhere any more is a failed run: say so once it is wound down.
    let whip_ended = session.whip_ended.take();
    let summary = session.finish()?;
    match whip_ended {
        Some(why) => Err(HostError::WhipEnded(why)),
        None => Ok(summary),
    }
}

/// What to do with an input device that cannot be opened at the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Refuse to start (the command line: a typo should say so at once).
    Fail,
    /// Start without it, report it lost, and pick it up when it appears (the overlay).
    Wait,
}

/// The running host: the engine, its inputs and outputs, and the room it is live in. The
/// headless command and the overlay drive it by calling [`HostSession::tick`] a few times a
/// second; controls go straight to the engine through [`HostSession::engine`].
#[derive(Debug)]
pub struct HostSession {
    game: Feeder,
    mic: Feeder,
    /// A rig's file of the room's voices, held while it plays.
    remote: Option<Feeder>,
    /// Whether the room's voices come from the room (not from a rig's file).
    remote_from_room: bool,
    playback: Option<Playback>,
    /// The output the room's voices play on, as asked for: opened again when it comes back,
    /// on the sound system it was lost from.
    monitor_name: Option<String>,
    monitor_host: Option<String>,
    engine: engine::EngineHandle,
    meters: std::sync::Arc<engine::MeterReadout>,
    live: Option<crate::live::GoLive>,
    room_messages: Option<std::sync::mpsc::Receiver<crate::live::RoomNews>>,
    /// The WHIP endpoint the program is published into (instead of a room).
    whip: Option<crate::whip_out::WhipOut>,
    /// Why the WHIP endpoint's session ended.
    whip_ended: Option<String>,
    /// The in-process server of a room that ended, kept for its episode until the next room.
    kept_server: Option<crate::live::KeptServer>,
    recorder: Option<Recorder>,
    last_check: Instant,
    last_meters: Instant,
    /// [`crate::audio::default_changes`] when the default devices were last looked at.
    defaults_seen: u64,
}

impl HostSession {
    /// Opens the inputs, starts the engine (and the recorder, and the room when `opts.room` is
    /// set).
    ///
    /// # Errors
    /// An input that cannot be opened (with [`Missing::Fail`]), an unwritable recording, engine
    /// settings out of range, a room that cannot be reached.
    pub fn start(
        opts: &HostOptions,
        missing: Missing,
        status: &mut dyn FnMut(HostStatus),
    ) -> Result<Self, HostError> {
        // A URL that cannot be a WHIP endpoint is said before any device opens.
        if let Some(target) = &opts.whip {
            crate::whip_out::check_url(&target.url).map_err(HostError::Whip)?;
        }
        let (game_feeder, game) = open_or_wait(Feed::Game, &opts.game, missing, status)?;
        let (mic_feeder, mic) = open_or_wait(Feed::Mic, &opts.mic, missing, status)?;
        for (which, feeder, choice) in [
            (Feed::Game, &game_feeder, &opts.game),
            (Feed::Mic, &mic_feeder, &opts.mic),
        ] {
            if let Some(source) = feeder.source(choice.file()) {
                status(HostStatus::Opened(which, source));
            }
        }
        let (remote_feeder, remote) = match &opts.remote {
            Some(choice) => {
                let (feeder, ring) = open(choice, channels_of(Feed::Remote))?;
                (Some(feeder), Some(ring))
            }
            None => (None, None),
        };
        let (playback, monitor) = match &opts.monitor_device {
            Some(name) => {
                let (playback, producer) = open_monitor(name, None)?;
                (Some(playback), Some(producer))
            }
            None => (None, None),
        };
        let config = engine_config(opts);
        let mut consumers: Vec<FrameSink> = Vec::new();
        let recorder = match &opts.record {
            Some(path) => Some(start_recorder(path, &config.encoder, &mut consumers)?),
            None => None,
        };
        let inputs = engine::Inputs {
            game,
            mic,
            remote,
            monitor,
        };
        let engine = engine::start(config, inputs, consumers)?;
        let meters = engine.meters();
        let mut session = Self {
            game: game_feeder,
            mic: mic_feeder,
            remote_from_room: remote_feeder.is_none(),
            remote: remote_feeder,
            playback,
            monitor_name: opts.monitor_device.clone(),
            monitor_host: None,
            engine,
            meters,
            live: None,
            room_messages: None,
            whip: None,
            whip_ended: None,
            kept_server: None,
            recorder,
            last_check: Instant::now(),
            last_meters: Instant::now(),
            defaults_seen: crate::audio::default_changes(),
        };
        if let Some(target) = &opts.whip {
            let mut consumers = Vec::new();
            let whip =
                crate::whip_out::WhipOut::start(target, &mut consumers).map_err(HostError::Whip)?;
            for c in consumers {
                let _ = session.engine.send(Command::AddConsumer(c));
            }
            status(HostStatus::Publishing(whip.url().to_owned()));
            session.whip = Some(whip);
        } else if let Some(target) = &opts.room {
            let room = session.go_live(target)?;
            status(HostStatus::Live(room));
        }
        Ok(session)
    }

    /// The engine, for controls ([`Command`]).
    #[must_use]
    pub fn engine(&self) -> &engine::EngineHandle {
        &self.engine
    }

    /// The meters, read once per UI frame.
    #[must_use]
    pub fn meters(&self) -> std::sync::Arc<engine::MeterReadout> {
        std::sync::Arc::clone(&self.meters)
    }

    /// The room the program is live in.
    #[must_use]
    pub fn live(&self) -> Option<&crate::live::GoLive> {
        self.live.as_ref()
    }

    /// Goes live while the engine runs: the program is published from the next frame, and the
    /// room's other voices duck the game and play on the monitor output.
    ///
    /// # Errors
    /// Already live, or the room cannot be reached or refuses.
    pub fn go_live(&mut self, target: &RoomTarget) -> Result<crate::live::LiveRoom, HostError> {
        if self.live.is_some() {
            return Err(HostError::AlreadyLive);
        }
        let (voices, ring) = if self.remote_from_room {
            let (producer, ring) = engine::room_voices_ring();
            (Some(producer), Some(ring))
        } else {
            (None, None)
        };
        // The next room's server takes the usual port again.
        self.kept_server = None;
        let mut consumers = Vec::new();
        let mut live = crate::live::GoLive::start(
            target,
            &mut consumers,
            voices,
            std::sync::Arc::clone(&self.meters),
        )
        .map_err(HostError::GoingLive)?;
        self.room_messages = live.take_messages();
        for c in consumers {
            let _ = self.engine.send(Command::AddConsumer(c));
        }
        if ring.is_some() {
            let _ = self.engine.send(Command::Replace(Feed::Remote, ring));
        }
        let room = live.room().clone();
        self.live = Some(live);
        Ok(room)
    }

    /// Leaves the room (the program goes on locally); the in-process server stops with it.
    pub fn leave_room(&mut self) {
        if let Some(live) = self.live.take() {
            live.stop();
            if self.remote_from_room {
                let _ = self.engine.send(Command::Replace(Feed::Remote, None));
            }
        }
    }

    /// Leaves the room like [`HostSession::leave_room`], but an in-process server keeps
    /// running (until the next room, or the end of the session): the episode the room recorded
    /// is rendered there and stays reachable for its host.
    pub fn leave_room_keeping_server(&mut self) {
        if let Some(live) = self.live.take() {
            self.kept_server = live.stop_keeping_server();
            if self.remote_from_room {
                let _ = self.engine.send(Command::Replace(Feed::Remote, None));
            }
        }
    }

    /// Switches an input to another device (or file); returns the name of what was opened.
    ///
    /// # Errors
    /// It cannot be opened; the input keeps what it had.
    pub fn switch_input(&mut self, which: Feed, choice: &InputChoice) -> Result<String, HostError> {
        let (feeder, ring) = open(choice, channels_of(which))?;
        let name = match &feeder {
            Feeder::Device { capture, .. } => capture.info.name.clone(),
            _ => match choice {
                InputChoice::File(p) => p.display().to_string(),
                InputChoice::Device(d) => format!("{d:?}"),
            },
        };
        let _ = self.engine.send(Command::Replace(which, Some(ring)));
        match which {
            Feed::Game => self.game = feeder,
            Feed::Mic => self.mic = feeder,
            Feed::Remote => self.remote = Some(feeder),
        }
        Ok(name)
    }

    /// Plays the room's voices on another output (`None`: nowhere).
    ///
    /// # Errors
    /// The output cannot be opened; the old one stays.
    pub fn set_monitor(&mut self, name: Option<&str>) -> Result<(), HostError> {
        let (playback, lane) = match name {
            Some(name) => {
                let (playback, lane) = open_monitor_lane(name, None)?;
                (Some(playback), Some(lane))
            }
            None => (None, None),
        };
        let _ = self.engine.send(Command::Monitor(lane));
        self.playback = playback;
        self.monitor_name = name.map(str::to_owned);
        self.monitor_host = None;
        Ok(())
    }

    /// The monitor output: a lost one is let go (and said), and played to again once it
    /// opens.
    fn watch_monitor(&mut self, status: &mut dyn FnMut(HostStatus)) {
        let Some(name) = &self.monitor_name else {
            return;
        };
        match &self.playback {
            Some(p) if !p.is_alive() => {
                let gone = p.info.name.clone();
                self.monitor_host = Some(p.info.host.clone());
                let _ = self.engine.send(Command::Monitor(None));
                self.playback = None;
                status(HostStatus::MonitorLost(format!(
                    "'{gone}' stopped playing: its device was removed or the sound server stopped"
                )));
            }
            Some(_) => {}
            None => {
                if let Ok((playback, lane)) = open_monitor_lane(name, self.monitor_host.as_deref())
                {
                    status(HostStatus::MonitorBack(playback.info.name.clone()));
                    let _ = self.engine.send(Command::Monitor(Some(lane)));
                    self.playback = Some(playback);
                }
            }
        }
    }

    /// Waits up to `wait` for engine events, watches the devices (about once a second) and the
    /// room; reports to `status`. False once the engine has stopped.
    pub fn tick(&mut self, wait: Duration, status: &mut dyn FnMut(HostStatus)) -> bool {
        if let Some(ev) = self.engine.wait_event(wait) {
            match ev {
                EngineEvent::Stopped => return false,
                other => status(HostStatus::Engine(other)),
            }
        }
        while let Some(ev) = self.engine.try_event() {
            match ev {
                EngineEvent::Stopped => return false,
                other => status(HostStatus::Engine(other)),
            }
        }
        if self.last_check.elapsed() >= Duration::from_secs(1) {
            self.last_check = Instant::now();
            let changes = crate::audio::default_changes();
            if changes != self.defaults_seen {
                self.defaults_seen = changes;
                follow_default(Feed::Game, &mut self.game, &self.engine, status);
                follow_default(Feed::Mic, &mut self.mic, &self.engine, status);
            }
            watch(Feed::Game, &mut self.game, &self.engine, status);
            watch(Feed::Mic, &mut self.mic, &self.engine, status);
            self.watch_monitor(status);
        }
        if let Some(live) = &self.live
            && let Some(why) = live.lost()
        {
            status(HostStatus::RoomLost(why));
        }
        if let Some(why) = self.whip.as_ref().and_then(crate::whip_out::WhipOut::lost) {
            status(HostStatus::WhipLost(why.clone()));
            self.whip_ended = Some(why);
        }
        if let Some(messages) = &self.room_messages {
            while let Ok(m) = messages.try_recv() {
                status(HostStatus::Room(m));
            }
        }
        if self.last_meters.elapsed() >= Duration::from_secs(1) {
            self.last_meters = Instant::now();
            status(HostStatus::Meters(self.meters.read()));
        }
        !self.engine.is_finished()
    }

    /// Stops everything; finishes the recording.
    ///
    /// # Errors
    /// The recording could not be finished.
    pub fn finish(mut self) -> Result<HostSummary, HostError> {
        let final_meters = self.meters.read();
        self.leave_room();
        if let Some(whip) = self.whip.take() {
            whip.stop();
        }
        self.engine.stop();
        let recorded_frames = match self.recorder {
            Some(rec) => {
                let path = rec.path().to_owned();
                Some(
                    rec.finish()
                        .map_err(|source| HostError::RecordingNotFinished { path, source })?,
                )
            }
            None => None,
        };
        Ok(HostSummary {
            meters: final_meters,
            recorded_frames,
        })
    }
}

/// Opens an input at the start. A device that cannot be opened is, with [`Missing::Wait`],
/// reported lost and waited for; otherwise its error ends the start.
fn open_or_wait(
    which: Feed,
    choice: &InputChoice,
    missing: Missing,
    status: &mut dyn FnMut(HostStatus),
) -> Result<(Feeder, Option<InputRing>), HostError> {
    match (open(choice, channels_of(which)), choice, missing) {
        (Ok((feeder, ring)), _, _) => Ok((feeder, Some(ring))),
        (Err(e), InputChoice::Device(selector), Missing::Wait) => {
            status(HostStatus::Lost(which, e.to_string()));
            Ok((
                Feeder::Lost {
                    selector: selector.clone(),
                    host: None,
                },
                None,
            ))
        }
        (Err(e), _, _) => Err(e),
    }
}

/// The engine's settings for `opts`: the program at the asked bitrate, stopping after
/// `opts.seconds` when given.
fn engine_config(opts: &HostOptions) -> EngineConfig {
    EngineConfig {
        settings: opts.settings,
        encoder: EncoderSettings::program_stereo(opts.bitrate_kbps.saturating_mul(1000)),
        noise_suppression: opts.noise_suppression,
        max_frames: opts.seconds.map(|s| (s.max(0.0) * 50.0).round() as u64),
    }
}

/// Starts recording the program to `path`, one more of the engine's consumers.
fn start_recorder(
    path: &std::path::Path,
    encoder: &EncoderSettings,
    consumers: &mut Vec<FrameSink>,
) -> Result<Recorder, HostError> {
    let (recorder, frames) =
        Recorder::start(path, encoder).map_err(|source| HostError::RecordingNotStarted {
            path: path.to_owned(),
            source,
        })?;
    consumers.push(frames.into());
    Ok(recorder)
}

/// Opens the output `name` on the sound system called `host` (`None`: the one Booth uses).
fn open_monitor(
    name: &str,
    host: Option<&str>,
) -> Result<(Playback, rtrb::Producer<f32>), HostError> {
    let (device, info) = open_output_on(name, host).map_err(HostError::Device)?;
    start_playback(&device, info, 0.5).map_err(HostError::Device)
}

/// [`open_monitor`] for an engine already running: the room's mono voices steered onto the
/// output's ring.
fn open_monitor_lane(
    name: &str,
    host: Option<&str>,
) -> Result<(Playback, Box<engine::OutputLane>), HostError> {
    let (playback, producer) = open_monitor(name, host)?;
    let lane = engine::OutputLane::new(producer, 1).map_err(EngineError::from)?;
    Ok((playback, Box::new(lane)))
}

/// An input on the default device (the default mic, the default output's monitor) moves to the
/// new default when the user picks another (headphones plugged in, say): the sound server
/// sends the game there, and the monitor of the old output would carry silence. A device the
/// user named stays.
fn follow_default(
    which: Feed,
    feeder: &mut Feeder,
    engine: &engine::EngineHandle,
    status: &mut dyn FnMut(HostStatus),
) {
    let Feeder::Device { capture, selector } = feeder else {
        return;
    };
    if !matches!(
        selector,
        DeviceSelector::DefaultMic | DeviceSelector::DefaultGameMonitor
    ) {
        return;
    }
    let Ok((device, now)) = open_input_on(selector, Some(&capture.info.host)) else {
        return;
    };
    if now.id == capture.info.id {
        return;
    }
    if let Ok((capture, ring)) = start_device(&device, now, channels_of(which)) {
        status(HostStatus::Followed(which, capture.info.name.clone()));
        let _ = engine.send(Command::Replace(which, Some(ring)));
        *feeder = Feeder::Device {
            capture,
            selector: selector.clone(),
        };
    }
}

/// Checks a device input; a lost one is retried, and handed back to the engine when it opens.
fn watch(
    which: Feed,
    feeder: &mut Feeder,
    engine: &engine::EngineHandle,
    status: &mut dyn FnMut(HostStatus),
) {
    match feeder {
        Feeder::File(_) => {}
        Feeder::Device { capture, selector } => {
            if let Err(e) = capture.check() {
                let selector = selector.clone();
                let host = Some(capture.info.host.clone());
                status(HostStatus::Lost(which, e.to_string()));
                let _ = engine.send(Command::Replace(which, None));
                *feeder = Feeder::Lost { selector, host };
            }
        }
        Feeder::Lost { selector, host } => {
            // The same device if it returns; for a default, whatever the new default is.
            if let Ok((capture, ring)) = open_device(selector, channels_of(which), host.as_deref())
            {
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

#[cfg(test)]
mod tests {
    use super::{CodecError, HostError, period_ms};

    #[test]
    fn periods_are_said_to_a_tenth_of_a_millisecond() {
        assert_eq!(format!("{}", period_ms(480, 48_000)), "10");
        assert_eq!(format!("{}", period_ms(320, 48_000)), "6.7");
        assert_eq!(format!("{}", period_ms(441, 44_100)), "10");
        assert_eq!(format!("{}", period_ms(256, 44_100)), "5.8");
        assert_eq!(format!("{}", period_ms(480, 0)), "480000");
    }

    #[test]
    fn a_host_error_says_which_file_and_what_went_wrong() {
        let refused = HostError::RecordingNotStarted {
            path: "show.wav".into(),
            source: CodecError::InvalidInput("name the file .ogg or .opus".into()),
        };
        assert_eq!(
            refused.to_string(),
            "cannot record to 'show.wav': name the file .ogg or .opus"
        );
        assert!(matches!(refused, HostError::RecordingNotStarted { .. }));
        assert_eq!(
            HostError::AlreadyLive.to_string(),
            "already live: end the room first"
        );
    }
}
