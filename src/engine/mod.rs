//! The live host engine: game audio and the microphone in, 20 ms Opus frames of the finished
//! program out, on a thread of its own.
//!
//! Every 20 ms of the program clock (the monotonic clock) the engine pulls one block from each
//! input [`Lane`] (rings filled by devices or paced files, drift-steered into 48 kHz), runs the mic
//! chain (high-pass, optional noise suppression), the shared [`ProgramMix`] (ducker, mix, limiter,
//! meters), encodes the program once with Opus and hands the packet to every consumer (a room, a
//! recorder) without ever waiting for them: a consumer that falls behind loses frames, not the
//! engine its timing. A room in this process takes the program before Opus instead
//! ([`FrameSink::Program`]); with no consumer of packets (the overlay before going live, a host
//! live in its own server) nothing is encoded.
//!
//! Controls arrive as [`Command`]s, meter readings leave through atomics ([`MeterReadout`]) the
//! overlay reads once per frame, and [`EngineEvent`]s report what happened. The handle stops and
//! joins the thread when dropped.
//!
//! The engine thread's buffers are sized at start; per block it allocates only the packet copy
//! each consumer of packets receives. Device callbacks (in `audio`) only copy into the rings.

pub mod lane;
pub mod output;
pub mod paced;
pub mod record;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use lane::{Lane, LaneStats, PullReport};
pub use output::OutputLane;
pub use paced::PacedFile;
pub use record::Recorder;

use crate::codec::frame::EncodedFrame;
use crate::codec::opus::{FRAME_SAMPLES, MAX_PACKET};
use crate::codec::{CodecError, EncoderSettings, OpusEncoder};
use crate::dsp::{Biquad, Denoiser, DspError, ProgramMix, ProgramSettings, SAMPLE_RATE};

/// How much input the lanes keep queued: one device period of 10 ms plus jitter.
pub const LANE_LATENCY_S: f64 = 0.02;

/// Why the engine could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Settings or an input the DSP cannot take.
    #[error("{0}")]
    Dsp(#[from] DspError),
    /// The Opus encoder refused its settings.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// The engine thread could not be started.
    #[error("cannot start the engine thread: {0}")]
    Thread(String),
    /// The program is stereo; an encoder of another width would refuse every block.
    #[error("the live program is stereo: its Opus encoder must be too, not {0} channel(s)")]
    EncoderNotStereo(u8),
}

/// One of the engine's three feeds: which source an input lane reads (and which one a
/// [`Command::Replace`] replaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Game audio (loopback of what the computer plays).
    Game,
    /// The host's microphone.
    Mic,
    /// The room's other voices.
    Remote,
}

/// An input as the engine sees it: a ring of interleaved `f32` and what is in it.
#[derive(Debug)]
pub struct InputRing {
    /// Filled by a device callback or a paced file.
    pub ring: rtrb::Consumer<f32>,
    /// Its sample rate.
    pub rate: u32,
    /// Its channels, as the device delivers them (wider than stereo is folded on the engine
    /// thread).
    pub channels: usize,
    /// The most frames the source delivers at once (a device's period), 0 for a source that
    /// keeps pace with the engine. The lane keeps this much in hand beyond one pull, so a period
    /// that lands just after a pull does not leave the next one short.
    pub burst_frames: usize,
    /// The source sends nothing between phrases (the room's voices): an empty ring is a rest,
    /// not a fault, and each phrase starts with the lane's headroom in hand (see
    /// [`Lane::with_rests`]). Needs `burst_frames`.
    pub rests: bool,
    /// For a source read on demand (Booth's PulseAudio streams): reads the device now, on the
    /// engine thread, right before each pull, so the freshest samples are in the ring and no
    /// thread of the source's own wakes between blocks. It never waits.
    pub read_now: Option<fn()>,
}

/// The engine's input for the room's other voices, and its writing end for the network's
/// thread: 48 kHz stereo, written a 20 ms frame at a time, and only while someone speaks.
pub(crate) fn room_voices_ring() -> (rtrb::Producer<f32>, InputRing) {
    let (producer, ring) = rtrb::RingBuffer::new(SAMPLE_RATE as usize * 2);
    (
        producer,
        InputRing {
            ring,
            rate: SAMPLE_RATE,
            channels: 2,
            burst_frames: FRAME_SAMPLES,
            rests: true,
            read_now: None,
        },
    )
}

/// Controls, sent to the running engine.
#[derive(Debug)]
pub enum Command {
    /// New gains, ducking or mute.
    Settings(ProgramSettings),
    /// Noise suppression on the mic, on or off.
    NoiseSuppression(bool),
    /// Push-to-talk: when enabled, the mic is live only while the key is held.
    PushToTalk {
        /// Push-to-talk mode on.
        enabled: bool,
        /// The key is down.
        held: bool,
    },
    /// Replace an input (a device came back, or the user picked another); `None` removes it
    /// (silence).
    Replace(Feed, Option<InputRing>),
    /// Where the host hears the room's voices from now on (a new monitor output: a lane onto
    /// its ring, made by the sender, so an error reaches whoever chose the output); `None`
    /// stops playing them.
    Monitor(Option<Box<OutputLane>>),
    /// One more consumer of the program's frames (going live while the engine runs).
    AddConsumer(FrameSink),
    /// Stop after the current block.
    Stop,
}

/// What the engine reports.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// A consumer was too slow and missed frames.
    ConsumerBehind {
        /// Frames it missed so far.
        dropped: u64,
    },
    /// The engine fell behind the clock (the machine was too busy) and skipped ahead.
    Overloaded {
        /// How far behind it was.
        late: Duration,
    },
    /// New settings are in effect (the answer to [`Command::Settings`]).
    SettingsApplied(ProgramSettings),
    /// Settings the DSP refused; the previous ones stay.
    SettingsRefused(String),
    /// The engine stopped.
    Stopped,
}

impl std::fmt::Display for EngineEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConsumerBehind { dropped } => write!(
                f,
                "a consumer of the program is too slow: {dropped} frames missed so far"
            ),
            Self::Overloaded { late } => write!(
                f,
                "the machine is too busy: the engine fell {} ms behind and skipped ahead",
                late.as_millis()
            ),
            Self::SettingsApplied(_) => f.write_str("new settings in effect"),
            Self::SettingsRefused(why) => {
                write!(f, "settings refused, the previous ones stay: {why}")
            }
            Self::Stopped => f.write_str("the engine stopped"),
        }
    }
}

/// Where the engine hands its frames. It never waits for one: a full sink misses the frame.
#[derive(Debug)]
pub enum FrameSink {
    /// A thread's channel (a recorder).
    Thread(SyncSender<EncodedFrame>),
    /// An async task's channel (the WebRTC publisher): the task is woken straight from the
    /// engine thread, with no thread in between.
    Publisher(tokio::sync::mpsc::Sender<EncodedFrame>),
    /// The program itself, before Opus: 20 ms of 48 kHz interleaved stereo per block, whole
    /// blocks only, into a ring (the room's task in this process, which mixes and encodes it
    /// once for everyone: no second generation of Opus, no encode or decode between the host
    /// and its own server).
    Program(rtrb::Producer<f32>),
}

impl From<SyncSender<EncodedFrame>> for FrameSink {
    fn from(tx: SyncSender<EncodedFrame>) -> Self {
        Self::Thread(tx)
    }
}

/// What offering a frame to a sink came to.
enum Offered {
    Taken,
    Full,
    Gone,
    /// This block has no packet for it (the encoder failed on it).
    Nothing,
}

impl FrameSink {
    /// Whether it takes Opus packets (the engine encodes only while one does).
    fn wants_opus(&self) -> bool {
        !matches!(self, Self::Program(_))
    }

    /// Hands over this block: the packet (when it takes packets and there is one) or the
    /// program itself.
    fn offer(&mut self, pts: u64, packet: Option<&[u8]>, program: &[f32]) -> Offered {
        if self.wants_opus() && packet.is_none() {
            return Offered::Nothing;
        }
        let packet = packet.unwrap_or_default();
        match self {
            Self::Program(ring) => {
                if ring.is_abandoned() {
                    Offered::Gone
                } else if ring.slots() < program.len() {
                    Offered::Full
                } else {
                    let _ = ring.push_partial_slice(program);
                    Offered::Taken
                }
            }
            Self::Thread(tx) => match tx.try_send(EncodedFrame {
                pts,
                packet: packet.to_vec(),
            }) {
                Ok(()) => Offered::Taken,
                Err(TrySendError::Full(_)) => Offered::Full,
                Err(TrySendError::Disconnected(_)) => Offered::Gone,
            },
            Self::Publisher(tx) => match tx.try_send(EncodedFrame {
                pts,
                packet: packet.to_vec(),
            }) {
                Ok(()) => Offered::Taken,
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => Offered::Full,
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Offered::Gone,
            },
        }
    }
}

/// Meter readings shared with the UI: `f32` values stored as bits in atomics, written once per
/// block by the engine, read whenever the UI draws. No locks.
#[derive(Debug, Default)]
pub struct MeterReadout {
    program_peak_dbfs: AtomicU32,
    program_momentary_lufs: AtomicU32,
    program_short_term_lufs: AtomicU32,
    program_integrated_lufs: AtomicU32,
    duck_reduction_db: AtomicU32,
    game_peak_dbfs: AtomicU32,
    mic_peak_dbfs: AtomicU32,
    frames: AtomicU64,
    underruns_game: AtomicU64,
    underruns_mic: AtomicU64,
    denoiser_ran: AtomicU64,
    denoiser_rested: AtomicU64,
    encode_failures: AtomicU64,
}

/// A snapshot of [`MeterReadout`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Meters {
    /// Program sample peak over the last block, dBFS.
    pub program_peak_dbfs: f32,
    /// Program loudness, momentary, LUFS.
    pub program_momentary_lufs: f32,
    /// Program loudness, short-term, LUFS.
    pub program_short_term_lufs: f32,
    /// Program loudness since the start, LUFS.
    pub program_integrated_lufs: f32,
    /// How far the game is ducked now, dB.
    pub duck_reduction_db: f32,
    /// Game input peak over the last block, dBFS.
    pub game_peak_dbfs: f32,
    /// Mic input peak (after its chain) over the last block, dBFS.
    pub mic_peak_dbfs: f32,
    /// 20 ms frames made so far.
    pub frames: u64,
    /// Blocks the game input came up short.
    pub underruns_game: u64,
    /// Blocks the mic input came up short.
    pub underruns_mic: u64,
    /// 10 ms frames the noise suppression ran on, so far.
    pub denoiser_ran: u64,
    /// 10 ms frames it rested on while the host was not speaking (see [`crate::dsp::Denoiser`]).
    pub denoiser_rested: u64,
    /// 20 ms frames the Opus encoder refused: no packet went out for them (the recording and
    /// the room miss those 20 ms). Zero unless something is badly wrong.
    pub encode_failures: u64,
}

fn store(a: &AtomicU32, v: f32) {
    a.store(v.to_bits(), Ordering::Relaxed);
}

fn load(a: &AtomicU32) -> f32 {
    f32::from_bits(a.load(Ordering::Relaxed))
}

impl MeterReadout {
    /// Reads every meter.
    #[must_use]
    pub fn read(&self) -> Meters {
        Meters {
            program_peak_dbfs: load(&self.program_peak_dbfs),
            program_momentary_lufs: load(&self.program_momentary_lufs),
            program_short_term_lufs: load(&self.program_short_term_lufs),
            program_integrated_lufs: load(&self.program_integrated_lufs),
            duck_reduction_db: load(&self.duck_reduction_db),
            game_peak_dbfs: load(&self.game_peak_dbfs),
            mic_peak_dbfs: load(&self.mic_peak_dbfs),
            frames: self.frames.load(Ordering::Relaxed),
            underruns_game: self.underruns_game.load(Ordering::Relaxed),
            underruns_mic: self.underruns_mic.load(Ordering::Relaxed),
            denoiser_ran: self.denoiser_ran.load(Ordering::Relaxed),
            denoiser_rested: self.denoiser_rested.load(Ordering::Relaxed),
            encode_failures: self.encode_failures.load(Ordering::Relaxed),
        }
    }
}

/// How the engine starts.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Gains, ducking, ceiling, mute.
    pub settings: ProgramSettings,
    /// The program's Opus settings (stereo music, 128 kbit/s by default).
    pub encoder: EncoderSettings,
    /// Noise suppression on the mic at start.
    pub noise_suppression: bool,
    /// Stop by itself after this many 20 ms frames (`--seconds`).
    pub max_frames: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            settings: ProgramSettings::default(),
            encoder: EncoderSettings::program_stereo(128_000),
            noise_suppression: true,
            max_frames: None,
        }
    }
}

/// The running engine. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct EngineHandle {
    commands: Sender<Command>,
    events: Receiver<EngineEvent>,
    meters: Arc<MeterReadout>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Sends a control; false if the engine has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// The meters, to read once per UI frame.
    #[must_use]
    pub fn meters(&self) -> Arc<MeterReadout> {
        Arc::clone(&self.meters)
    }

    /// The next event, if any, without waiting.
    pub fn try_event(&self) -> Option<EngineEvent> {
        self.events.try_recv().ok()
    }

    /// Waits up to `timeout` for an event.
    pub fn wait_event(&self, timeout: Duration) -> Option<EngineEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Whether the engine thread has ended (stopped, or reached `max_frames`).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the engine and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The engine's inputs; any may be absent (it is silence then).
#[derive(Debug, Default)]
pub struct Inputs {
    /// Game audio, mono or stereo.
    pub game: Option<InputRing>,
    /// The host's microphone.
    pub mic: Option<InputRing>,
    /// The room's other voices as the host hears them: they duck the game, and are not mixed
    /// into the host's program (the room mixes everyone).
    pub remote: Option<InputRing>,
    /// Where the remote voices go to be heard by the host (48 kHz stereo, a playback ring).
    pub monitor: Option<rtrb::Producer<f32>>,
}

/// Starts the engine on its own thread. Frames go to `consumers`; each gets every frame unless
/// it falls behind (its channel full), in which case it misses frames.
///
/// # Errors
/// Settings the DSP or the encoder refuse, or no thread.
pub fn start(
    config: EngineConfig,
    inputs: Inputs,
    consumers: Vec<FrameSink>,
) -> Result<EngineHandle, EngineError> {
    let mut core = EngineCore::new(&config, inputs)?;
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let meters = Arc::new(MeterReadout::default());
    let thread_meters = Arc::clone(&meters);
    let max_frames = config.max_frames;
    let thread = std::thread::Builder::new()
        .name("booth-engine".into())
        .spawn(move || {
            core.run(&cmd_rx, &ev_tx, &thread_meters, consumers, max_frames);
            let _ = ev_tx.send(EngineEvent::Stopped);
        })
        .map_err(|e| EngineError::Thread(e.to_string()))?;
    Ok(EngineHandle {
        commands: cmd_tx,
        events: ev_rx,
        meters,
        thread: Some(thread),
    })
}

struct InputState {
    lane: Lane,
    read_now: Option<fn()>,
}

/// The engine's state, apart from the thread: one call of [`EngineCore::block`] makes one frame.
struct EngineCore {
    game: Option<InputState>,
    mic: Option<InputState>,
    remote: Option<InputState>,
    /// The room's voices to the host's ears, steered to the output's clock.
    monitor: Option<OutputLane>,
    program: ProgramMix,
    settings: ProgramSettings,
    encoder: OpusEncoder,
    /// No consumer took packets for a while: the encoder starts clean when one does.
    encoder_paused: bool,
    mic_hp: Biquad,
    denoiser: Denoiser,
    noise_suppression: bool,
    ptt_enabled: bool,
    ptt_held: bool,
    game_buf: Vec<f32>,
    mic_buf: Vec<f32>,
    remote_buf: Vec<f32>,
    out: Vec<f32>,
    packet: Vec<u8>,
    frames: u64,
}

fn input_state(ring: InputRing, out_channels: usize) -> Result<InputState, DspError> {
    let lane = Lane::new(
        ring.ring,
        ring.rate,
        ring.channels,
        out_channels,
        FRAME_SAMPLES,
        LANE_LATENCY_S,
    )?
    // A period may also come a little late: allow 2 ms of scheduling on top.
    .with_headroom(if ring.burst_frames == 0 {
        0
    } else {
        ring.burst_frames + ring.rate as usize / 500
    });
    Ok(InputState {
        read_now: ring.read_now,
        lane: if ring.rests { lane.with_rests() } else { lane },
    })
}

/// Pulls one block from an input, or writes silence without one; true when the input came up
/// short (an underrun).
fn pull_or_silence(input: &mut Option<InputState>, buf: &mut [f32]) -> bool {
    match input {
        Some(i) => i.lane.pull(buf).missing_frames > 0,
        None => {
            buf.fill(0.0);
            false
        }
    }
}

impl EngineCore {
    fn new(config: &EngineConfig, inputs: Inputs) -> Result<Self, EngineError> {
        if config.encoder.channels != 2 {
            return Err(EngineError::EncoderNotStereo(config.encoder.channels));
        }
        Ok(Self {
            game: inputs.game.map(|g| input_state(g, 2)).transpose()?,
            mic: inputs.mic.map(|m| input_state(m, 1)).transpose()?,
            remote: inputs.remote.map(|r| input_state(r, 1)).transpose()?,
            monitor: inputs
                .monitor
                .map(|ring| OutputLane::new(ring, 1))
                .transpose()?,
            program: ProgramMix::new(config.settings, FRAME_SAMPLES)?,
            settings: config.settings,
            encoder: OpusEncoder::new(&config.encoder)?,
            encoder_paused: false,
            mic_hp: Biquad::high_pass(80.0, std::f32::consts::FRAC_1_SQRT_2, SAMPLE_RATE),
            denoiser: Denoiser::new(),
            noise_suppression: config.noise_suppression,
            ptt_enabled: false,
            ptt_held: false,
            game_buf: vec![0.0; FRAME_SAMPLES * 2],
            mic_buf: vec![0.0; FRAME_SAMPLES],
            remote_buf: vec![0.0; FRAME_SAMPLES],
            out: vec![0.0; FRAME_SAMPLES * 2],
            packet: vec![0; MAX_PACKET],
            frames: 0,
        })
    }

    fn apply(
        &mut self,
        command: Command,
        consumers: &mut Vec<FrameSink>,
        events: &Sender<EngineEvent>,
    ) -> bool {
        match command {
            Command::Settings(s) => match self.program.set_settings(s) {
                Ok(()) => {
                    self.settings = s;
                    let _ = events.send(EngineEvent::SettingsApplied(self.program.settings()));
                }
                Err(e) => {
                    let _ = events.send(EngineEvent::SettingsRefused(e.to_string()));
                }
            },
            Command::Monitor(lane) => self.monitor = lane.map(|l| *l),
            Command::AddConsumer(c) => consumers.push(c),
            Command::NoiseSuppression(on) => self.noise_suppression = on,
            Command::PushToTalk { enabled, held } => {
                self.ptt_enabled = enabled;
                self.ptt_held = held;
            }
            Command::Replace(which, ring) => {
                let (slot, channels) = match which {
                    Feed::Game => (&mut self.game, 2),
                    Feed::Mic => (&mut self.mic, 1),
                    Feed::Remote => (&mut self.remote, 1),
                };
                *slot = ring.and_then(|r| input_state(r, channels).ok());
            }
            Command::Stop => return false,
        }
        true
    }

    fn run(
        &mut self,
        commands: &Receiver<Command>,
        events: &Sender<EngineEvent>,
        meters: &MeterReadout,
        mut consumers: Vec<FrameSink>,
        max_frames: Option<u64>,
    ) {
        let period = Duration::from_micros(20_000);
        let start = Instant::now();
        let mut dropped = 0u64;
        loop {
            loop {
                match commands.try_recv() {
                    Ok(c) => {
                        if !self.apply(c, &mut consumers, events) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if max_frames.is_some_and(|m| self.frames >= m) {
                return;
            }
            // Deadline-paced: frame n is due at start + n x 20 ms, so timing errors never add up.
            let due = start + period * u32::try_from(self.frames).unwrap_or(u32::MAX);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > period * 10 {
                let _ = events.send(EngineEvent::Overloaded { late: now - due });
            }
            let pts = self.frames * FRAME_SAMPLES as u64;
            let packet_len = self.block(meters, consumers.iter().any(FrameSink::wants_opus));
            let packet = packet_len.map(|n| &self.packet[..n]);
            let mut i = 0;
            while let Some(c) = consumers.get_mut(i) {
                match c.offer(pts, packet, &self.out) {
                    Offered::Taken | Offered::Nothing => {}
                    // A consumer that hung up (the room was left) is let go.
                    Offered::Gone => {
                        consumers.swap_remove(i);
                        continue;
                    }
                    Offered::Full => {
                        dropped += 1;
                        let _ = events.send(EngineEvent::ConsumerBehind { dropped });
                    }
                }
                i += 1;
            }
        }
    }

    /// Makes one 20 ms frame: pull, mic chain, program chain, and the Opus encode when `encode`
    /// (someone takes packets: Opus is the block's largest cost). Returns the packet's length,
    /// or `None` when there is no packet (none asked for, or the encoder failed).
    fn block(&mut self, meters: &MeterReadout, encode: bool) -> Option<usize> {
        for input in [&self.game, &self.mic, &self.remote].into_iter().flatten() {
            if let Some(read_now) = input.read_now {
                read_now();
            }
        }
        if pull_or_silence(&mut self.game, &mut self.game_buf) {
            meters.underruns_game.fetch_add(1, Ordering::Relaxed);
        }
        if pull_or_silence(&mut self.mic, &mut self.mic_buf) {
            meters.underruns_mic.fetch_add(1, Ordering::Relaxed);
        }
        pull_or_silence(&mut self.remote, &mut self.remote_buf);
        if let Some(monitor) = &mut self.monitor {
            // The host hears the room; a stalled player loses this block rather than the engine
            // waiting for it.
            monitor.push(&self.remote_buf);
        }
        let mut settings = self.settings;
        settings.voice_muted |= self.ptt_enabled && !self.ptt_held;
        self.mic_chain(settings.voice_muted);

        if settings != self.program.settings() {
            let _ = self.program.set_settings(settings);
        }
        self.program.process_keyed(
            &self.game_buf,
            &self.mic_buf,
            &self.remote_buf,
            &mut self.out,
        );

        let packet_len = if encode {
            self.encode(meters)
        } else {
            self.encoder_paused = true;
            None
        };
        self.frames += 1;

        let peak = |x: &[f32]| crate::dsp::gain_to_db(x.iter().fold(0f32, |m, s| m.max(s.abs())));
        store(&meters.game_peak_dbfs, peak(&self.game_buf));
        store(&meters.mic_peak_dbfs, peak(&self.mic_buf));
        store(
            &meters.duck_reduction_db,
            self.program.ducker().reduction_db(),
        );
        // Peaks every frame; momentary and short-term loudness as each 100 ms block completes
        // (ten times a second, as EBU Tech 3341 asks of a meter: a few additions each), and
        // integrated (a scan of the gating histogram) once a second.
        let m = self.program.meters();
        store(&meters.program_peak_dbfs, m.read_levels().peak_dbfs);
        if self.frames.is_multiple_of(5) {
            store(&meters.program_momentary_lufs, m.momentary_lufs());
            store(&meters.program_short_term_lufs, m.short_term_lufs());
        }
        if self.frames.is_multiple_of(50) {
            store(&meters.program_integrated_lufs, m.integrated_lufs());
        }
        let (ran, rested) = self.denoiser.counts();
        meters.denoiser_ran.store(ran, Ordering::Relaxed);
        meters.denoiser_rested.store(rested, Ordering::Relaxed);
        meters.frames.store(self.frames, Ordering::Relaxed);
        packet_len
    }

    /// Encodes the program block into `self.packet`; its length, or `None` when the encoder
    /// refused the block. A refusal is counted for the meters and the block goes out as no
    /// packet at all (a receiver conceals 20 ms it never got), not as an empty one.
    fn encode(&mut self, meters: &MeterReadout) -> Option<usize> {
        if self.encoder_paused {
            // Nothing from before the pause may leak into the first packet after it.
            let _ = self.encoder.reset();
            self.encoder_paused = false;
        }
        match self.encoder.encode_frame(&self.out, &mut self.packet) {
            Ok(n) => Some(n),
            Err(_) => {
                meters.encode_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// High-pass (rumble, desk thumps), then noise suppression when on. Voice only: the game
    /// is never processed this way.
    ///
    /// The denoiser is the costliest stage after Opus, so it does not run where its output
    /// cannot be heard: while the mic is muted (or push-to-talk is up), and on digital silence
    /// (a muted or unplugged mic, a null source), which it would only turn into silence. On a
    /// real microphone's noise floor it rests once it has heard no voice for half a second and
    /// has that floor well down ([`Denoiser`]).
    fn mic_chain(&mut self, muted: bool) {
        for s in &mut self.mic_buf {
            *s = self.mic_hp.process(*s);
        }
        self.mic_hp.flush_tiny();
        // Switched off, muted or silent, it skips the block, and starts clean after it: nothing
        // from before the gap is heard.
        if !self.noise_suppression || muted || self.mic_buf.iter().all(|&s| s == 0.0) {
            self.denoiser.skip();
            return;
        }
        for frame in self.mic_buf.chunks_exact_mut(Denoiser::FRAME) {
            self.denoiser.process(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine on a 48 kHz mic ring, and the ring's producer.
    fn engine() -> (EngineCore, rtrb::Producer<f32>) {
        let (tx, rx) = rtrb::RingBuffer::new(48_000);
        let inputs = Inputs {
            mic: Some(InputRing {
                ring: rx,
                rate: 48_000,
                channels: 1,
                burst_frames: 0,
                rests: false,
                read_now: None,
            }),
            ..Inputs::default()
        };
        (
            EngineCore::new(&EngineConfig::default(), inputs).unwrap(),
            tx,
        )
    }

    /// The room's voices as the host takes them in ([`room_voices_ring`]), their
    /// frames landing around the engine's pulls, every other one a moment after the pull it
    /// was meant for: from its first frame on, no pull comes up short.
    #[test]
    fn the_room_voices_ring_keeps_a_frame_in_hand() {
        let (mut tx, ring) = room_voices_ring();
        let mut voices = input_state(ring, 2).unwrap();
        let frame = [0.1f32; 1_920];
        let mut out = vec![0.0f32; 1_920];
        let mut short = 0;
        let mut heard = 0;
        for k in 0..500 {
            if k % 2 == 0 {
                let _ = tx.push_partial_slice(&frame);
            }
            short += usize::from(voices.lane.pull(&mut out).missing_frames > 0);
            heard += out.iter().filter(|&&x| x > 0.05).count();
            if k % 2 == 1 {
                let _ = tx.push_partial_slice(&frame);
            }
        }
        assert_eq!(short, 0, "short pulls");
        // And it plays them: all but the start's frame and 2 ms.
        assert!(heard >= 2 * (500 - 2) * 960, "{heard}");
    }

    fn voice_block(n: usize) -> Vec<f32> {
        (0..FRAME_SAMPLES)
            .map(|i| {
                let t = (n * FRAME_SAMPLES + i) as f32 / 48_000.0;
                0.2 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
            })
            .collect()
    }

    /// Runs `blocks` blocks, feeding each from `feed(n)`; returns how many frames the
    /// denoiser ran.
    fn run(
        core: &mut EngineCore,
        tx: &mut rtrb::Producer<f32>,
        blocks: usize,
        feed: impl Fn(usize) -> Vec<f32>,
    ) -> u64 {
        let meters = MeterReadout::default();
        let before = core.denoiser.counts().0;
        for n in 0..blocks {
            let _ = tx.push_partial_slice(&feed(n));
            core.block(&meters, true);
        }
        core.denoiser.counts().0 - before
    }

    #[test]
    fn the_denoiser_rests_while_the_mic_is_muted_or_silent_and_comes_back_clean() {
        let (mut core, mut tx) = engine();
        // Prime the lane, then speak: the denoiser runs on every 10 ms.
        run(&mut core, &mut tx, 5, voice_block);
        assert_eq!(run(&mut core, &mut tx, 50, voice_block), 100);

        // Muted: nothing to hear, nothing to denoise.
        core.settings.voice_muted = true;
        assert_eq!(run(&mut core, &mut tx, 50, voice_block), 0);
        core.settings.voice_muted = false;
        // Push-to-talk up: the same.
        core.ptt_enabled = true;
        assert_eq!(run(&mut core, &mut tx, 50, voice_block), 0);
        core.ptt_held = true;
        assert!(run(&mut core, &mut tx, 50, voice_block) >= 98);
        core.ptt_enabled = false;

        // Digital silence (once the lane and the high-pass have drained): skipped, and the
        // mic stays silent, with nothing of the voice before it.
        let silence = |_| vec![0.0; FRAME_SAMPLES];
        run(&mut core, &mut tx, 10, silence);
        assert_eq!(run(&mut core, &mut tx, 50, silence), 0);
        assert!(core.mic_buf.iter().all(|&s| s == 0.0));

        // The voice again: denoised from the first block after the pause.
        assert!(run(&mut core, &mut tx, 50, voice_block) >= 98);
        let peak = core.mic_buf.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.01, "the voice is not back: peak {peak}");

        // Switched off: it does not run. Back on, it starts clean, as after a pause.
        let (events, _) = mpsc::channel();
        let mut consumers = Vec::new();
        core.apply(Command::NoiseSuppression(false), &mut consumers, &events);
        assert_eq!(run(&mut core, &mut tx, 10, voice_block), 0);
        assert!(core.denoiser.starts_clean());
        core.apply(Command::NoiseSuppression(true), &mut consumers, &events);
        assert!(core.denoiser.starts_clean());
        assert!(run(&mut core, &mut tx, 10, voice_block) >= 18);
        assert!(!core.denoiser.starts_clean());
    }

    #[test]
    fn a_block_the_encoder_refuses_is_counted_and_goes_out_as_no_packet() {
        let (mut core, _tx) = engine();
        let meters = MeterReadout::default();
        assert!(core.block(&meters, true).is_some());
        // No room for any packet: libopus refuses the block.
        core.packet = Vec::new();
        assert_eq!(core.block(&meters, true), None);
        assert_eq!(meters.read().encode_failures, 1);
        // A consumer of packets is handed nothing for it, not an empty packet.
        let (tx, rx) = mpsc::sync_channel(4);
        let mut sink = FrameSink::from(tx);
        assert!(matches!(sink.offer(0, None, &core.out), Offered::Nothing));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_mono_encoder_for_the_stereo_program_is_refused_at_start() {
        let config = EngineConfig {
            encoder: EncoderSettings::voice_mono(32_000),
            ..EngineConfig::default()
        };
        let refused = EngineCore::new(&config, Inputs::default()).err();
        assert!(
            matches!(refused, Some(EngineError::EncoderNotStereo(1))),
            "{refused:?}"
        );
    }
}
