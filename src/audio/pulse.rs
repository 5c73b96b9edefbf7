//! PulseAudio capture and playback on lean connections of Booth's own, handed to the rest of
//! Booth as cpal devices (cpal's `custom` host), so audio code is the same for every sound
//! system.
//!
//! Why: cpal 0.18's PulseAudio host runs every stream through the `pulseaudio` crate's client,
//! whose reactor zeroes a 1 MiB buffer on every socket read (and a request's worth on every
//! write), and polls the stream's latency after every packet (another two reads). With two
//! streams on a sink that renders every 5 ms that is about 700 reads and 1.4 GB of `memset` a
//! second: most of Booth's CPU. Here each stream has its own connection, and one pump serves
//! them all: once a period it reads whatever each server connection holds into buffers that
//! are reused, hands each record stream's samples to its callback in one call, and fills what
//! each playback stream's server asked for in one call. Messages are encoded and decoded with
//! that crate's `protocol` module, so the wire format is not Booth's to get wrong.
//!
//! Devices are still listed (and picked) through cpal's PulseAudio host; only the stream is
//! ours. Streams are created with PulseAudio's "don't move" flag: when their device goes away
//! the server ends the stream (instead of quietly moving it to the default device), and the
//! error callback says so at once, without polling the device list.
//!
//! The pump is the "device callback": per period it reads, converts and calls the callbacks,
//! and writes what the servers asked for, nothing else (no allocation once its buffers have
//! grown to a period's worth, no waiting: a socket that takes no more keeps the rest for the
//! next round, no log). It runs on the engine's thread, right before the engine pulls its
//! inputs ([`pump_now`]), so the engine finds the freshest samples and no thread wakes between
//! its blocks; the pump thread serves the streams only while nobody else does (a capture or a
//! playback with no engine, or an engine that stopped).
//!
//! A playback stream's commands (start, pause) go through the pump too, between whole
//! messages: only the pump writes on that socket.
//!
//! `unsafe` is allowed here for one call: cpal's `Data::from_parts`, the only way a custom
//! device can hand samples to cpal's callback (or take them from it). The samples are a plain
//! `Vec<i16>` or `Vec<f32>` this module owns; each block says why the pointer and length are
//! sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use cpal::{
    Data, DeviceDescription, DeviceDescriptionBuilder, DeviceDirection, DeviceId, Error, ErrorKind,
    FrameCount, InputCallbackInfo, InputStreamTimestamp, OutputCallbackInfo, OutputStreamTimestamp,
    SampleFormat, StreamConfig, StreamInstant, SupportedBufferSize, SupportedStreamConfig,
    SupportedStreamConfigRange,
};
use pulseaudio::protocol;

/// How long connecting and creating a stream may take when the caller gives no timeout.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest period Booth asks for: two seconds at 48 kHz.
const MAX_PERIOD_FRAMES: FrameCount = 96_000;

/// A PulseAudio device on Booth's own connection.
///
/// A source (a microphone, or the `*.monitor` of an output) is captured as 16-bit integers
/// when that is the source's own format (so the server converts nothing and half the bytes
/// cross the socket), else as `f32`; in its own channel count or, on request, in one (the
/// server downmixes, and sends half the bytes of a stereo microphone).
///
/// A sink (an output: headphones, speakers) is played in one or two channels at any rate, as
/// 16-bit integers or `f32`: the server converts to what the sink runs at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PulseDevice {
    /// The device's PulseAudio name (`game.monitor`, `phones`), as cpal's host lists it.
    id: String,
    /// What people see.
    name: String,
    /// A sink (played to), not a source (recorded from).
    output: bool,
    /// At most two: the server downmixes anything wider (game audio is stereo).
    channels: u16,
    /// The device's own rate: no resampling on the server.
    sample_rate: u32,
    /// The device's own format if that is 16-bit, else f32.
    format: Format,
}

impl PulseDevice {
    /// The source cpal's PulseAudio host lists as `device`, named `id`, in the channel count
    /// (at most two) and rate it has.
    ///
    /// # Errors
    /// The source cannot say its format (it went away while being asked).
    pub fn source(device: &cpal::Device, id: &str, name: &str) -> Result<Self, Error> {
        Self::of(device.default_input_config()?, id, name, false)
    }

    /// The sink cpal's PulseAudio host lists as `device`, named `id`.
    ///
    /// # Errors
    /// The sink cannot say its format (it went away while being asked).
    pub fn sink(device: &cpal::Device, id: &str, name: &str) -> Result<Self, Error> {
        Self::of(device.default_output_config()?, id, name, true)
    }

    fn of(own: SupportedStreamConfig, id: &str, name: &str, output: bool) -> Result<Self, Error> {
        Ok(Self {
            id: id.to_owned(),
            name: name.to_owned(),
            output,
            channels: own.channels().clamp(1, 2),
            sample_rate: own.sample_rate(),
            format: Format::of(own.sample_format()).unwrap_or(Format::F32),
        })
    }

    /// As a cpal device.
    pub fn into_cpal(self) -> cpal::Device {
        cpal::Device::from(cpal::platform::CustomDevice::from_device(self))
    }

    fn config(&self) -> SupportedStreamConfig {
        SupportedStreamConfig::new(
            self.channels,
            self.sample_rate,
            SupportedBufferSize::Range {
                min: 1,
                max: MAX_PERIOD_FRAMES,
            },
            self.format.sample_format(),
        )
    }

    /// The configurations in `channels` and `rates`, each in the device's own format or f32.
    fn ranges(&self, channels: [u16; 2], rates: (u32, u32)) -> Vec<SupportedStreamConfigRange> {
        let mut configs = Vec::new();
        for channels in channels {
            for format in [self.format.sample_format(), SampleFormat::F32] {
                let config = SupportedStreamConfigRange::new(
                    channels,
                    rates.0,
                    rates.1,
                    SupportedBufferSize::Range {
                        min: 1,
                        max: MAX_PERIOD_FRAMES,
                    },
                    format,
                );
                if !configs.contains(&config) {
                    configs.push(config);
                }
            }
        }
        configs
    }

    fn not_this_way(&self) -> Error {
        Error::with_message(
            ErrorKind::UnsupportedOperation,
            if self.output {
                "a PulseAudio sink is played to, not recorded from (record its .monitor)"
            } else {
                "a PulseAudio source is recorded from, not played to"
            },
        )
    }
}

impl std::fmt::Display for PulseDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Whether `device` is a [`PulseDevice`]: its stream reports a vanished device itself, and is
/// served by [`pump_now`].
pub fn is_lean(device: &cpal::Device) -> bool {
    device
        .id()
        .is_ok_and(|id| id.host() == cpal::HostId::Custom && id.id().starts_with("pulse:"))
}

impl DeviceTrait for PulseDevice {
    type SupportedInputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type SupportedOutputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type Stream = PulseStream;

    fn description(&self) -> Result<DeviceDescription, Error> {
        Ok(DeviceDescriptionBuilder::new(&self.name)
            .driver("PulseAudio")
            .direction(if self.output {
                DeviceDirection::Output
            } else {
                DeviceDirection::Input
            })
            .build())
    }

    fn id(&self) -> Result<DeviceId, Error> {
        Ok(DeviceId::new(
            cpal::HostId::Custom,
            format!("pulse:{}", self.id),
        ))
    }

    fn supported_input_configs(&self) -> Result<Self::SupportedInputConfigs, Error> {
        if self.output {
            return Ok(Vec::new().into_iter());
        }
        // Its own channels, or mono, at its own rate.
        Ok(self
            .ranges([self.channels, 1], (self.sample_rate, self.sample_rate))
            .into_iter())
    }

    fn supported_output_configs(&self) -> Result<Self::SupportedOutputConfigs, Error> {
        if !self.output {
            return Ok(Vec::new().into_iter());
        }
        // Mono or stereo, at any rate: the server converts.
        Ok(self
            .ranges([self.channels, 3 - self.channels], PLAY_RATES)
            .into_iter())
    }

    fn default_input_config(&self) -> Result<SupportedStreamConfig, Error> {
        if self.output {
            return Err(self.not_this_way());
        }
        Ok(self.config())
    }

    fn default_output_config(&self) -> Result<SupportedStreamConfig, Error> {
        if !self.output {
            return Err(self.not_this_way());
        }
        Ok(self.config())
    }

    fn build_input_stream_raw<D, E>(
        &self,
        config: StreamConfig,
        sample_format: SampleFormat,
        data_callback: D,
        error_callback: E,
        timeout: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&Data, &InputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        if self.output {
            return Err(self.not_this_way());
        }
        let format = checked_format(&config, sample_format, "captured")?;
        PulseStream::open(
            &self.id,
            &config,
            format,
            timeout.unwrap_or(SETUP_TIMEOUT),
            Way::Record {
                data: Box::new(data_callback),
            },
            Box::new(error_callback),
        )
    }

    fn build_output_stream_raw<D, E>(
        &self,
        config: StreamConfig,
        sample_format: SampleFormat,
        data_callback: D,
        error_callback: E,
        timeout: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        if !self.output {
            return Err(self.not_this_way());
        }
        let format = checked_format(&config, sample_format, "played")?;
        if !(PLAY_RATES.0..=PLAY_RATES.1).contains(&config.sample_rate) {
            return Err(Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "a PulseAudio sink is played at {} to {} Hz, not {}",
                    PLAY_RATES.0, PLAY_RATES.1, config.sample_rate
                ),
            ));
        }
        PulseStream::open(
            &self.id,
            &config,
            format,
            timeout.unwrap_or(SETUP_TIMEOUT),
            Way::Play {
                data: Box::new(data_callback),
                outbox: Vec::new(),
                sent: 0,
            },
            Box::new(error_callback),
        )
    }
}

/// The rates a sink is played at (the server resamples to the sink's own).
const PLAY_RATES: (u32, u32) = (8_000, 192_000);

/// The format a stream of `config` in `sample_format` is carried in, if Booth carries it.
fn checked_format(
    config: &StreamConfig,
    sample_format: SampleFormat,
    how: &str,
) -> Result<Format, Error> {
    Format::of(sample_format)
        .filter(|_| (1..=2).contains(&config.channels))
        .ok_or_else(|| {
            Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "a PulseAudio device is {how} as 1 or 2 channels of i16 or f32, not {} of \
                     {sample_format}",
                    config.channels
                ),
            )
        })
}

/// A running record or playback stream on its own connection. Dropping it closes the
/// connection and waits until the pump has let it go: its callbacks never run after that.
pub struct PulseStream {
    writer: Mutex<UnixStream>,
    version: u16,
    channel: u32,
    output: bool,
    seq: AtomicU32,
    period_frames: FrameCount,
    start: Instant,
    flags: Arc<Flags>,
}

impl PulseStream {
    fn open(
        device: &str,
        config: &StreamConfig,
        format: Format,
        timeout: Duration,
        way: Way,
        error: ErrorCallback,
    ) -> Result<Self, Error> {
        let (socket, version) = connect(timeout)?;
        let mut reader = BufReader::new(socket.try_clone().map_err(io_error)?);
        let mut writer = socket;

        let output = matches!(way, Way::Play { .. });
        let frame_bytes = format.bytes() * u32::from(config.channels);
        let period = match config.buffer_size {
            cpal::BufferSize::Fixed(frames) => frames.clamp(1, MAX_PERIOD_FRAMES) * frame_bytes,
            // PulseAudio's own default is about two seconds; 20 ms suits a live mix.
            cpal::BufferSize::Default => config.sample_rate / 50 * frame_bytes,
        };
        let sample_spec = protocol::SampleSpec {
            format: format.on_the_wire(),
            channels: config.channels as u8,
            sample_rate: config.sample_rate,
        };
        let channel_map = if config.channels == 1 {
            protocol::ChannelMap::mono()
        } else {
            protocol::ChannelMap::stereo()
        };
        let mut props = protocol::Props::new();
        let name = CString::new(device).map_err(|_| {
            Error::with_message(ErrorKind::InvalidInput, "a device name holds a NUL byte")
        })?;
        let flags = protocol::stream::StreamFlags {
            start_corked: true,
            adjust_latency: true,
            no_move: true,
            ..Default::default()
        };
        let mut requested = 0;
        let (channel, stream_index, buffer_attr, latency) = if output {
            props.set(protocol::Prop::MediaName, c"Booth monitor");
            let params = protocol::PlaybackStreamParams {
                sample_spec,
                channel_map,
                sink_name: Some(name),
                // The pump comes once a period: the server holds three, and asks for one at a
                // time, so a late pump finds two still queued rather than a sink run dry.
                buffer_attr: protocol::stream::BufferAttr {
                    max_length: period.saturating_mul(4),
                    target_length: period.saturating_mul(3),
                    minimum_request_length: period,
                    // Plays from the first period on (the server's default waits for a full
                    // buffer, and may ask for less than that to begin with).
                    pre_buffering: period,
                    ..Default::default()
                },
                flags,
                props,
                ..Default::default()
            };
            let created: protocol::CreatePlaybackStreamReply = request(
                &mut writer,
                &mut reader,
                (2, version),
                &protocol::Command::CreatePlaybackStream(params),
                "creating the playback stream",
                || {
                    (
                        ErrorKind::DeviceNotAvailable,
                        format!("PulseAudio refused to play to '{device}'"),
                    )
                },
            )?;
            requested = created.requested_bytes as usize;
            (
                created.channel,
                created.stream_index,
                created.buffer_attr.minimum_request_length,
                created.stream_latency,
            )
        } else {
            props.set(protocol::Prop::MediaName, c"Booth capture");
            let params = protocol::RecordStreamParams {
                sample_spec,
                channel_map,
                source_name: Some(name),
                buffer_attr: protocol::stream::BufferAttr {
                    fragment_size: period,
                    ..Default::default()
                },
                flags,
                props,
                ..Default::default()
            };
            let created: protocol::CreateRecordStreamReply = request(
                &mut writer,
                &mut reader,
                (2, version),
                &protocol::Command::CreateRecordStream(params),
                "creating the record stream",
                || {
                    (
                        ErrorKind::DeviceNotAvailable,
                        format!("PulseAudio refused to record from '{device}'"),
                    )
                },
            )?;
            (
                created.channel,
                created.stream_index,
                created.buffer_attr.fragment_size,
                created.stream_latency,
            )
        };
        if !output {
            // Told when the server's defaults change (see `server_changes`). Its reply is not
            // waited for: the pump passes over it with the other messages it does not need.
            protocol::write_command_message(
                &mut writer,
                3,
                &protocol::Command::Subscribe(protocol::SubscriptionMask::SERVER),
                version,
            )
            .map_err(|e| protocol_error("asking to hear of the server's changes", &e))?;
        }
        // From here the pump reads (and writes) what it can, once a period, without waiting.
        // The writer shares the socket and so its non-blocking mode: its cork commands are a
        // few dozen bytes into a send buffer the pump never fills (it writes a period, when
        // the server asks for one).
        let inbox = reader.buffer().to_vec();
        let socket = reader.into_inner();
        socket.set_nonblocking(true).map_err(io_error)?;

        let period_frames = (buffer_attr / frame_bytes).max(1);
        let flags = Arc::new(Flags::default());
        let start = Instant::now();
        let read = Connection {
            socket,
            inbox,
            version,
            channel,
            stream_index,
            output,
            channels: usize::from(config.channels),
            frame_bytes: frame_bytes as usize,
            period: Duration::from_secs_f64(
                f64::from(period_frames) / f64::from(config.sample_rate.max(1)),
            ),
            start,
            latency: Duration::from_micros(latency),
            requested,
            seq: 4,
        };
        pump(Pumped {
            read,
            way,
            error,
            samples: match format {
                Format::I16 => Samples::I16(Vec::new()),
                Format::F32 => Samples::F32(Vec::new()),
            },
            flags: Arc::clone(&flags),
        })?;
        Ok(Self {
            writer: Mutex::new(writer),
            version,
            channel,
            output,
            seq: AtomicU32::new(4),
            period_frames,
            start,
            flags,
        })
    }

    fn cork(&self, cork: bool) -> Result<(), Error> {
        if self.output {
            // The pump writes this stream's data on the same socket: the command goes through
            // it, between whole messages, at its next round (within a period).
            self.flags
                .cork
                .store(if cork { CORK } else { UNCORK }, Ordering::Relaxed);
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let command = protocol::Command::CorkRecordStream(protocol::stream::CorkStreamParams {
            channel: self.channel,
            cork,
        });
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        protocol::write_command_message(&mut *writer, seq, &command, self.version)
            .map_err(|e| protocol_error("starting or pausing the stream", &e))
    }
}

impl cpal::traits::StreamTrait for PulseStream {
    fn play(&self) -> Result<(), Error> {
        self.cork(false)
    }

    fn pause(&self) -> Result<(), Error> {
        self.cork(true)
    }

    fn now(&self) -> StreamInstant {
        instant(self.start.elapsed())
    }

    fn buffer_size(&self) -> Result<FrameCount, Error> {
        Ok(self.period_frames)
    }
}

impl Drop for PulseStream {
    fn drop(&mut self) {
        self.flags.closing.store(true, Ordering::Relaxed);
        if let Ok(writer) = self.writer.get_mut() {
            let _ = writer.shutdown(std::net::Shutdown::Both);
        }
        // The callbacks may be running now (on the pump thread or the engine's): once the pump
        // has let the stream go they never run again, as with any cpal stream that is dropped.
        let asked = Instant::now();
        while !self.flags.done.load(Ordering::Acquire) && asked.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A stream's shared state with the pump.
#[derive(Default)]
struct Flags {
    /// Set by the stream when it is dropped.
    closing: AtomicBool,
    /// Set by the pump once it has let the stream go.
    done: AtomicBool,
    /// A playback stream's pause or start, for the pump to send: [`CORK`], [`UNCORK`], or 0
    /// for nothing asked.
    cork: AtomicU8,
}

const CORK: u8 = 1;
const UNCORK: u8 = 2;

/// The sample formats a stream is captured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Format {
    I16,
    F32,
}

impl Format {
    fn of(format: SampleFormat) -> Option<Self> {
        match format {
            SampleFormat::I16 => Some(Self::I16),
            SampleFormat::F32 => Some(Self::F32),
            _ => None,
        }
    }

    fn sample_format(self) -> SampleFormat {
        match self {
            Self::I16 => SampleFormat::I16,
            Self::F32 => SampleFormat::F32,
        }
    }

    fn bytes(self) -> u32 {
        match self {
            Self::I16 => 2,
            Self::F32 => 4,
        }
    }

    /// In this machine's byte order, as samples are handed on.
    fn on_the_wire(self) -> protocol::SampleFormat {
        let little = cfg!(target_endian = "little");
        match (self, little) {
            (Self::I16, true) => protocol::SampleFormat::S16Le,
            (Self::I16, false) => protocol::SampleFormat::S16Be,
            (Self::F32, true) => protocol::SampleFormat::Float32Le,
            (Self::F32, false) => protocol::SampleFormat::Float32Be,
        }
    }
}

/// Samples waiting for a stream's callback, in the stream's format.
enum Samples {
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl Samples {
    fn len(&self) -> usize {
        match self {
            Self::I16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    /// Appends the whole samples of `bytes` (in this machine's byte order).
    fn extend_from_bytes(&mut self, bytes: &[u8]) {
        match self {
            Self::I16(v) => v.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_ne_bytes([b[0], b[1]])),
            ),
            Self::F32(v) => v.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            ),
        }
    }

    /// At least `n` long (a playback buffer), zeros where it grew.
    fn ensure(&mut self, n: usize) {
        match self {
            Self::I16(v) if v.len() < n => v.resize(n, 0),
            Self::F32(v) if v.len() < n => v.resize(n, 0.0),
            _ => {}
        }
    }

    /// Appends the first `n` samples to `out` as bytes, in this machine's byte order.
    fn append_bytes(&self, n: usize, out: &mut Vec<u8>) {
        match self {
            Self::I16(v) => v[..n]
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_ne_bytes())),
            Self::F32(v) => v[..n]
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_ne_bytes())),
        }
    }

    /// Drops the first `n`, handed over.
    fn consume(&mut self, n: usize) {
        match self {
            Self::I16(v) => drop(v.drain(..n)),
            Self::F32(v) => drop(v.drain(..n)),
        }
    }
}

/// A record stream's data callback, boxed so one thread can serve callbacks of any type.
type DataCallback = Box<dyn FnMut(&Data, &InputCallbackInfo) + Send>;
/// A playback stream's data callback.
type PlayCallback = Box<dyn FnMut(&mut Data, &OutputCallbackInfo) + Send>;
/// A stream's error callback.
type ErrorCallback = Box<dyn FnMut(Error) + Send>;

/// Which way a stream's samples go, and what the pump keeps for that.
enum Way {
    /// From the server to the callback.
    Record { data: DataCallback },
    /// From the callback to the server, as much as the server asked for.
    Play {
        data: PlayCallback,
        /// The message being sent (a descriptor and the samples, or a command): reused, so it
        /// grows to a request's worth and stays.
        outbox: Vec<u8>,
        /// How much of it the socket took so far.
        sent: usize,
    },
}

/// One stream, as the pump serves it.
struct Pumped {
    read: Connection,
    way: Way,
    error: ErrorCallback,
    /// Recording: samples waiting for the callback. Playing: the callback's buffer. Grows to
    /// the largest period's worth, then stays.
    samples: Samples,
    flags: Arc<Flags>,
}

/// Every stream, the pump thread, and when a caller last served the streams itself.
struct Pump {
    served: Mutex<Served>,
    /// Microseconds since `epoch` when [`pump_now`] last served the streams; 0 for never.
    driven_at: AtomicU64,
    epoch: Instant,
    thread: Mutex<Option<std::thread::Thread>>,
}

/// What serving needs: the streams and one read buffer for all of them.
struct Served {
    streams: Vec<Pumped>,
    read_buf: Vec<u8>,
}

impl Served {
    /// Reads each stream's connection and calls its callbacks; lets ended streams go. Returns
    /// the shortest period asked for, `None` with no streams.
    fn serve_all(&mut self) -> Option<Duration> {
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].serve(&mut self.read_buf) {
                i += 1;
            } else {
                let gone = self.streams.swap_remove(i);
                let flags = Arc::clone(&gone.flags);
                drop(gone);
                flags.done.store(true, Ordering::Release);
            }
        }
        self.streams.iter().map(|s| s.read.period).min()
    }
}

static PUMP: OnceLock<Pump> = OnceLock::new();

/// How many times a sound server Booth records from said that its settings changed (its
/// default output or input, above all): each record stream asks to be told.
static SERVER_CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many times a sound server Booth records from has said that its defaults (or another of
/// its settings) changed. The host compares it once a second, to follow a default device; it
/// moves only while a record stream of Booth's own is open.
pub fn server_changes() -> u64 {
    SERVER_CHANGES.load(Ordering::Relaxed)
}

/// While a caller serves the streams through [`pump_now`] at least this often, the pump thread
/// stays asleep; when it stops, the thread takes over after this long.
const DRIVEN_GRACE: Duration = Duration::from_millis(100);

/// Calls within this long of the last one find nothing new and return at once (every lane of
/// the engine calls, once a block).
const DRIVEN_REPEAT: Duration = Duration::from_millis(1);

fn the_pump() -> &'static Pump {
    PUMP.get_or_init(|| Pump {
        served: Mutex::new(Served {
            streams: Vec::new(),
            read_buf: vec![0u8; 64 * 1024],
        }),
        driven_at: AtomicU64::new(0),
        epoch: Instant::now(),
        thread: Mutex::new(None),
    })
}

impl Pump {
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// When a caller last served the streams, if that was within `within` of `now`.
    fn driven_within(&self, now: Instant, within: Duration) -> Option<Instant> {
        let at = self.driven_at.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        let at = self.epoch + Duration::from_micros(at);
        (now.saturating_duration_since(at) < within).then_some(at)
    }
}

/// Hands a stream to the pump: one thread serves every PulseAudio source, so two captures wake
/// once a period, not twice; or none does, while the engine serves them ([`pump_now`]).
fn pump(stream: Pumped) -> Result<(), Error> {
    let pump = the_pump();
    pump.served
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .streams
        .push(stream);
    let mut thread = pump.thread.lock().unwrap_or_else(|e| e.into_inner());
    match thread.as_ref() {
        Some(t) => t.unpark(),
        None => {
            let handle = std::thread::Builder::new()
                .name("booth-pulse".to_owned())
                .spawn(run_pump)
                .map_err(io_error)?;
            *thread = Some(handle.thread().clone());
        }
    }
    Ok(())
}

/// Serves every PulseAudio stream now, on the caller's thread: reads what each server sent and
/// calls the streams' callbacks (which only copy into their rings). The engine calls it right
/// before it pulls its inputs, once a block: the samples are as fresh as they can be, and no
/// thread of its own wakes between the engine's blocks (the pump thread sleeps while this is
/// called at least every [`DRIVEN_GRACE`]).
///
/// Never waits: while the pump thread is serving (it took over from a caller that stopped), this
/// returns at once and the thread's serving stands for it. Allocation-free once the streams'
/// buffers have grown to a period's worth.
pub fn pump_now() {
    let Some(pump) = PUMP.get() else {
        return;
    };
    let now = Instant::now();
    if pump.driven_within(now, DRIVEN_REPEAT).is_some() {
        return;
    }
    let mut served = match pump.served.try_lock() {
        Ok(served) => served,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    served.serve_all();
    pump.driven_at.store(pump.micros(now), Ordering::Relaxed);
}

/// Wakes once a period (the shortest asked for), reads everything each server sent
/// meanwhile, and hands each stream's samples to its callback in one call, as a device with
/// that period would. The server sends as often as its source renders (every 5 ms on a busy
/// low-latency sink); waking for each packet would cost a context switch each, more than the
/// copying itself. With no streams it sleeps until one comes; while a caller serves the
/// streams ([`pump_now`]) it sleeps until that caller stops.
fn run_pump() {
    let pump = the_pump();
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if let Some(at) = pump.driven_within(now, DRIVEN_GRACE) {
            std::thread::sleep((at + DRIVEN_GRACE).saturating_duration_since(now));
            next = Instant::now();
            continue;
        }
        let period = pump
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .serve_all();
        let Some(period) = period else {
            // Unparked by the next stream (a wake-up for nothing only comes round again).
            std::thread::park();
            next = Instant::now();
            continue;
        };
        // Deadline-paced; after a stall (a suspended machine) start afresh from now.
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

impl Pumped {
    /// Reads what has come and hands it over (recording), or writes what the server asked for
    /// (playing); false once the stream has ended (closed by its owner, or by the server, which
    /// the error callback is told).
    fn serve(&mut self, read_buf: &mut [u8]) -> bool {
        if self.flags.closing.load(Ordering::Relaxed) {
            return false;
        }
        let drained = self.read.drain(read_buf);
        let recording = matches!(self.way, Way::Record { .. });
        let mut ended = self
            .read
            .take_messages(recording.then_some(&mut self.samples));
        if ended.is_none()
            && let Drained::Closed(why) = drained
        {
            ended = Some(why);
        }
        if ended.is_none() {
            ended = match &mut self.way {
                Way::Record { data } => {
                    hand_over(&mut self.samples, &self.read, data);
                    None
                }
                Way::Play { data, outbox, sent } => self
                    .read
                    .play(&self.flags.cork, &mut self.samples, data, outbox, sent)
                    .err(),
            };
        }
        match ended {
            Some(why) => {
                if !self.flags.closing.load(Ordering::Relaxed) {
                    (self.error)(why);
                }
                false
            }
            None => true,
        }
    }
}

/// Hands the whole frames in `samples` to a record stream's callback, in one call.
fn hand_over(samples: &mut Samples, read: &Connection, data: &mut DataCallback) {
    let whole = samples.len() - samples.len() % read.channels;
    if whole == 0 {
        return;
    }
    let now = read.start.elapsed();
    let info = InputCallbackInfo::new(InputStreamTimestamp {
        callback: instant(now),
        capture: instant(now.saturating_sub(read.latency)),
    });
    // SAFETY: cpal's only way to make `Data`; `whole` initialised samples of the format named
    // start at the pointer (a `Vec` of that very type, so aligned for it), and `samples` is
    // neither moved nor touched until the callback (which only reads through `Data`) returns.
    let data_view = unsafe {
        match samples {
            Samples::I16(v) => Data::from_parts(v.as_mut_ptr().cast(), whole, SampleFormat::I16),
            Samples::F32(v) => Data::from_parts(v.as_mut_ptr().cast(), whole, SampleFormat::F32),
        }
    };
    data(&data_view, &info);
    samples.consume(whole);
}

/// A stream's connection and what the pump knows of it.
struct Connection {
    socket: UnixStream,
    /// Bytes read and not yet handled: whole messages are taken from the front.
    inbox: Vec<u8>,
    version: u16,
    channel: u32,
    stream_index: u32,
    /// A playback stream (else a record stream).
    output: bool,
    channels: usize,
    frame_bytes: usize,
    /// How often the pump should wake to hand over what has come: the period asked for.
    period: Duration,
    start: Instant,
    latency: Duration,
    /// Playing: the bytes the server asked for and has not been sent yet.
    requested: usize,
    /// The sequence number of the next command the pump sends.
    seq: u32,
}

/// What reading found.
enum Drained {
    /// Everything the socket had was read (possibly nothing).
    Empty,
    /// The connection closed or failed.
    Closed(Error),
}

impl Connection {
    /// Reads everything the socket holds now into the inbox.
    fn drain(&mut self, read_buf: &mut [u8]) -> Drained {
        loop {
            match self.socket.read(read_buf) {
                Ok(0) => {
                    return Drained::Closed(lost_connection(&"the server closed it"));
                }
                Ok(n) => {
                    self.inbox.extend_from_slice(&read_buf[..n]);
                    // A stream socket's read takes everything queued up to the buffer's size:
                    // a short one emptied it, and asking again would only hear "would block".
                    if n < read_buf.len() {
                        return Drained::Empty;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Drained::Empty,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Drained::Closed(lost_connection(&e)),
            }
        }
    }

    /// Takes the whole messages from the front of the inbox: samples of this stream are
    /// appended to `samples` (recording; a playback stream is sent none), requests for more
    /// are added up (playing); `Some` when a message ends the stream.
    fn take_messages(&mut self, mut samples: Option<&mut Samples>) -> Option<Error> {
        let mut at = 0;
        let mut ended = None;
        while self.inbox.len() - at >= protocol::DESCRIPTOR_SIZE {
            let desc = match protocol::read_descriptor(&mut &self.inbox[at..]) {
                Ok(desc) => desc,
                Err(e) => {
                    ended = Some(lost_connection(&e));
                    break;
                }
            };
            if desc.length as usize > protocol::MAX_MEMBLOCKQ_LENGTH {
                ended = Some(lost_connection(&format!(
                    "a message of {} bytes, more than the protocol allows",
                    desc.length
                )));
                break;
            }
            let body = at + protocol::DESCRIPTOR_SIZE;
            let end = body + desc.length as usize;
            if self.inbox.len() < end {
                break;
            }
            if desc.channel == u32::MAX {
                match self.command(&self.inbox[body..end]) {
                    Heard::Nothing => {}
                    Heard::Requested(bytes) => {
                        self.requested = self.requested.saturating_add(bytes as usize);
                    }
                    Heard::Ended(why) => {
                        ended = Some(why);
                        at = end;
                        break;
                    }
                }
            } else if desc.channel == self.channel
                && let Some(samples) = samples.as_deref_mut()
            {
                // PulseAudio sends whole frames; whole samples are all this relies on.
                samples.extend_from_bytes(&self.inbox[body..end]);
            }
            at = end;
        }
        self.inbox.drain(..at);
        ended
    }

    /// A message from the server.
    fn command(&self, message: &[u8]) -> Heard {
        let mut cursor = std::io::Cursor::new(message);
        let Ok((_, command)) = protocol::Command::read_tag_prefixed(&mut cursor, self.version)
        else {
            // A message this client does not know: not about the data, so not fatal.
            return Heard::Nothing;
        };
        let ended = |why: &'static str| {
            Heard::Ended(Error::with_message(ErrorKind::DeviceNotAvailable, why))
        };
        match command {
            protocol::Command::RecordStreamKilled(channel)
                if !self.output && channel == self.channel =>
            {
                ended("PulseAudio ended the recording: its source was removed")
            }
            protocol::Command::RecordStreamMoved(params)
                if !self.output && params.stream_index == self.stream_index =>
            {
                ended("PulseAudio moved the recording to another source")
            }
            protocol::Command::PlaybackStreamKilled(channel)
                if self.output && channel == self.channel =>
            {
                ended("PulseAudio ended the playback: its output was removed")
            }
            protocol::Command::PlaybackStreamMoved(params)
                if self.output && params.stream_index == self.stream_index =>
            {
                ended("PulseAudio moved the playback to another output")
            }
            protocol::Command::Request(request)
                if self.output && request.channel == self.channel =>
            {
                Heard::Requested(request.length)
            }
            protocol::Command::SubscribeEvent(event)
                if event.event_facility == protocol::SubscriptionEventFacility::Server =>
            {
                SERVER_CHANGES.fetch_add(1, Ordering::Relaxed);
                Heard::Nothing
            }
            _ => Heard::Nothing,
        }
    }

    /// Playing: sends what is still pending; once nothing is, the pause or start the owner
    /// asked for (`cork`), then as many whole frames as the server asked for, filled by the
    /// callback in one call. Never waits: what the socket does not take now goes next time.
    fn play(
        &mut self,
        cork: &AtomicU8,
        samples: &mut Samples,
        data: &mut PlayCallback,
        outbox: &mut Vec<u8>,
        sent: &mut usize,
    ) -> Result<(), Error> {
        self.send(outbox, sent)?;
        if *sent < outbox.len() {
            return Ok(());
        }
        let asked = cork.swap(0, Ordering::Relaxed);
        if asked != 0 {
            outbox.clear();
            *sent = 0;
            let command =
                protocol::Command::CorkPlaybackStream(protocol::stream::CorkStreamParams {
                    channel: self.channel,
                    cork: asked == CORK,
                });
            protocol::write_command_message(&mut *outbox, self.seq, &command, self.version)
                .map_err(|e| protocol_error("starting or pausing the playback", &e))?;
            self.seq = self.seq.wrapping_add(1);
            self.send(outbox, sent)?;
            if *sent < outbox.len() {
                return Ok(());
            }
        }
        // A message is at most what the protocol allows (the server never asks for more).
        let frames = self.requested.min(protocol::MAX_MEMBLOCKQ_LENGTH) / self.frame_bytes;
        if frames == 0 {
            return Ok(());
        }
        let n = frames * self.channels;
        samples.ensure(n);
        let now = self.start.elapsed();
        let info = OutputCallbackInfo::new(OutputStreamTimestamp {
            callback: instant(now),
            playback: instant(now + self.latency),
        });
        // SAFETY: cpal's only way to make `Data`; `n` initialised samples of the format named
        // start at the pointer (a `Vec` of that very type, at least `n` long, so aligned and
        // large enough), and `samples` is neither moved nor touched until the callback (which
        // writes only through `Data`, within its length) returns.
        let mut view = unsafe {
            match samples {
                Samples::I16(v) => Data::from_parts(v.as_mut_ptr().cast(), n, SampleFormat::I16),
                Samples::F32(v) => Data::from_parts(v.as_mut_ptr().cast(), n, SampleFormat::F32),
            }
        };
        data(&mut view, &info);
        outbox.clear();
        *sent = 0;
        let bytes = frames * self.frame_bytes;
        let mut head = [0u8; protocol::DESCRIPTOR_SIZE];
        protocol::encode_descriptor(
            &mut head,
            &protocol::Descriptor {
                length: u32::try_from(bytes).unwrap_or(u32::MAX),
                channel: self.channel,
                offset: 0,
                flags: protocol::DescriptorFlags::empty(),
            },
        );
        outbox.extend_from_slice(&head);
        samples.append_bytes(n, outbox);
        self.requested -= bytes;
        self.send(outbox, sent)
    }

    /// Writes what the socket takes now of `outbox` past `sent`.
    fn send(&mut self, outbox: &[u8], sent: &mut usize) -> Result<(), Error> {
        while *sent < outbox.len() {
            match self.socket.write(&outbox[*sent..]) {
                Ok(0) => return Err(lost_connection(&"the server takes nothing more")),
                Ok(n) => *sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lost_connection(&e)),
            }
        }
        Ok(())
    }
}

/// What a message from the server comes to.
enum Heard {
    Nothing,
    /// A playback stream's server wants this many more bytes.
    Requested(u32),
    /// The stream is over.
    Ended(Error),
}

/// Connects and authenticates; the socket has `timeout` on reads and writes until the stream
/// is set up.
fn connect(timeout: Duration) -> Result<(UnixStream, u16), Error> {
    let path = pulseaudio::socket_path_from_env().ok_or_else(|| {
        Error::with_message(
            ErrorKind::HostUnavailable,
            "no PulseAudio server socket (PULSE_SERVER, XDG_RUNTIME_DIR/pulse/native)",
        )
    })?;
    let socket = UnixStream::connect(&path).map_err(|e| {
        Error::with_message(
            ErrorKind::HostUnavailable,
            format!("cannot connect to PulseAudio at {}: {e}", path.display()),
        )
    })?;
    socket.set_read_timeout(Some(timeout)).map_err(io_error)?;
    socket.set_write_timeout(Some(timeout)).map_err(io_error)?;
    let mut reader = BufReader::new(socket.try_clone().map_err(io_error)?);
    let mut writer = socket;

    let cookie = pulseaudio::cookie_path_from_env()
        .and_then(|p| std::fs::read(p).ok())
        .unwrap_or_default();
    let auth = protocol::AuthParams {
        version: protocol::MAX_VERSION,
        supports_shm: false,
        supports_memfd: false,
        cookie,
    };
    let reply: protocol::AuthReply = request(
        &mut writer,
        &mut reader,
        (0, protocol::MAX_VERSION),
        &protocol::Command::Auth(auth),
        "authenticating",
        || {
            (
                ErrorKind::PermissionDenied,
                "PulseAudio refused Booth's connection".to_owned(),
            )
        },
    )?;
    let version = reply.version.min(protocol::MAX_VERSION);

    let mut props = protocol::Props::new();
    props.set(protocol::Prop::ApplicationName, c"Booth");
    let _: protocol::SetClientNameReply = request(
        &mut writer,
        &mut reader,
        (1, version),
        &protocol::Command::SetClientName(props),
        "naming the client",
        || {
            (
                ErrorKind::DeviceNotAvailable,
                "PulseAudio refused Booth's name".to_owned(),
            )
        },
    )?;
    // Nothing is buffered past the replies: the server says nothing unasked before a stream.
    Ok((writer, version))
}

/// Sends `command` (sequence number and protocol version in `seq_version`) and reads its reply.
/// A refusal from the server becomes the error `refused` describes, with the server's code.
fn request<R: protocol::CommandReply>(
    writer: &mut UnixStream,
    reader: &mut BufReader<UnixStream>,
    (seq, version): (u32, u16),
    command: &protocol::Command,
    doing: &str,
    refused: impl FnOnce() -> (ErrorKind, String),
) -> Result<R, Error> {
    protocol::write_command_message(writer, seq, command, version)
        .map_err(|e| protocol_error(doing, &e))?;
    match protocol::read_reply_message::<R>(reader, version) {
        Ok((_, reply)) => Ok(reply),
        Err(protocol::ProtocolError::ServerError(code)) => {
            let (kind, what) = refused();
            Err(Error::with_message(kind, format!("{what}: {code:?}")))
        }
        Err(other) => Err(protocol_error(doing, &other)),
    }
}

fn instant(d: Duration) -> StreamInstant {
    StreamInstant::new(d.as_secs(), d.subsec_nanos())
}

fn io_error(e: std::io::Error) -> Error {
    Error::with_message(
        ErrorKind::BackendError,
        format!("PulseAudio connection: {e}"),
    )
}

fn protocol_error(doing: &str, e: &protocol::ProtocolError) -> Error {
    Error::with_message(
        ErrorKind::DeviceNotAvailable,
        format!("PulseAudio failed while {doing}: {e}"),
    )
}

fn lost_connection(e: &dyn std::fmt::Display) -> Error {
    Error::with_message(
        ErrorKind::HostUnavailable,
        format!("the PulseAudio connection closed: {e}"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        playback_connection().0
    }

    /// A connection for a stereo f32 stream, and the server's end of its socket.
    fn playback_connection() -> (Connection, UnixStream) {
        let (socket, server) = UnixStream::pair().unwrap();
        socket.set_nonblocking(true).unwrap();
        let r = Connection {
            socket,
            inbox: Vec::new(),
            version: protocol::MAX_VERSION,
            channel: 7,
            stream_index: 70,
            output: false,
            channels: 2,
            frame_bytes: 8,
            period: Duration::from_millis(20),
            start: Instant::now(),
            latency: Duration::ZERO,
            requested: 0,
            seq: 3,
        };
        (r, server)
    }

    fn data_message(channel: u32, samples: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        let desc = protocol::Descriptor {
            length: (samples.len() * 4) as u32,
            channel,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut out, &desc).unwrap();
        for s in samples {
            out.extend_from_slice(&s.to_ne_bytes());
        }
        out
    }

    fn command_message(command: &protocol::Command) -> Vec<u8> {
        let mut out = Vec::new();
        protocol::write_command_message(&mut out, u32::MAX, command, protocol::MAX_VERSION)
            .unwrap();
        out
    }

    #[test]
    fn samples_of_this_stream_are_taken_across_split_reads() {
        let mut r = connection();
        let mut bytes = data_message(7, &[0.5, -0.5, 0.25, -0.25]);
        bytes.extend(data_message(8, &[9.0, 9.0]));
        bytes.extend(command_message(&protocol::Command::Overflow(7)));
        bytes.extend(data_message(7, &[1.0, -1.0]));
        let mut samples = Samples::F32(Vec::new());
        // Fed a few bytes at a time, as reads may split messages anywhere.
        for chunk in bytes.chunks(5) {
            r.inbox.extend_from_slice(chunk);
            assert!(r.take_messages(Some(&mut samples)).is_none());
        }
        let Samples::F32(samples) = samples else {
            panic!("f32 samples became i16");
        };
        assert_eq!(samples, [0.5, -0.5, 0.25, -0.25, 1.0, -1.0]);
        assert!(r.inbox.is_empty());
    }

    #[test]
    fn sixteen_bit_samples_are_taken_whole() {
        let mut r = connection();
        let mut bytes = Vec::new();
        let values: [i16; 4] = [16_384, -16_384, i16::MAX, i16::MIN];
        let desc = protocol::Descriptor {
            length: 8,
            channel: 7,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut bytes, &desc).unwrap();
        for v in values {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        let mut samples = Samples::I16(Vec::new());
        for chunk in bytes.chunks(3) {
            r.inbox.extend_from_slice(chunk);
            assert!(r.take_messages(Some(&mut samples)).is_none());
        }
        assert_eq!(samples.len(), 4);
        samples.consume(2);
        let Samples::I16(samples) = samples else {
            panic!("i16 samples became f32");
        };
        assert_eq!(samples, [i16::MAX, i16::MIN]);
    }

    #[test]
    fn a_killed_or_moved_stream_ends_and_others_do_not() {
        let mut r = connection();
        let mut samples = Samples::F32(Vec::new());
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(8));
        assert!(r.take_messages(Some(&mut samples)).is_none());
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(7));
        let why = r.take_messages(Some(&mut samples)).unwrap();
        assert_eq!(why.kind(), ErrorKind::DeviceNotAvailable);
        assert!(why.to_string().contains("removed"), "{why}");

        let moved = |stream_index| {
            command_message(&protocol::Command::RecordStreamMoved(
                protocol::RecordStreamMovedParams {
                    stream_index,
                    device_index: 3,
                    device_name: c"mic".to_owned(),
                    device_suspended: false,
                    buffer_attr: protocol::stream::BufferAttr::default(),
                    configured_source_latency: 0,
                },
            ))
        };
        r.inbox = moved(71);
        assert!(r.take_messages(Some(&mut samples)).is_none());
        r.inbox = moved(70);
        assert!(r.take_messages(Some(&mut samples)).is_some());
    }

    #[test]
    fn playback_sends_what_the_server_asked_for_in_whole_frames_and_corks_between_messages() {
        let (mut r, mut server) = playback_connection();
        r.output = true;
        // Two requests, the second not a whole frame: 3 frames and a half asked for.
        let request = |length| {
            command_message(&protocol::Command::Request(protocol::Request {
                channel: 7,
                length,
            }))
        };
        r.inbox = request(16);
        r.inbox.extend(request(12));
        // Another stream's request is not this one's.
        r.inbox.extend(command_message(&protocol::Command::Request(
            protocol::Request {
                channel: 8,
                length: 800,
            },
        )));
        assert!(r.take_messages(None).is_none());
        assert_eq!(r.requested, 28);

        let mut samples = Samples::F32(Vec::new());
        let calls = Arc::new(AtomicU32::new(0));
        let called = Arc::clone(&calls);
        let mut data: PlayCallback = Box::new(move |d: &mut Data, _: &OutputCallbackInfo| {
            called.fetch_add(1, Ordering::Relaxed);
            let out = d.as_slice_mut::<f32>().unwrap();
            for (i, s) in out.iter_mut().enumerate() {
                *s = i as f32;
            }
        });
        let (mut outbox, mut sent) = (Vec::new(), 0);
        let cork = AtomicU8::new(UNCORK);
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert_eq!(cork.load(Ordering::Relaxed), 0, "the start was sent");
        // The half frame stays asked for.
        assert_eq!(r.requested, 4);

        let mut wire = vec![0u8; 4096];
        let n = server.read(&mut wire).unwrap();
        let wire = &wire[..n];
        // First the start (a command on channel -1), then one data message of 3 frames.
        let command = protocol::read_descriptor(&mut &wire[..]).unwrap();
        assert_eq!(command.channel, u32::MAX);
        let at = protocol::DESCRIPTOR_SIZE + command.length as usize;
        let mut body = std::io::Cursor::new(&wire[protocol::DESCRIPTOR_SIZE..at]);
        let (_, sent_command) =
            protocol::Command::read_tag_prefixed(&mut body, protocol::MAX_VERSION).unwrap();
        assert!(matches!(
            sent_command,
            protocol::Command::CorkPlaybackStream(p) if p.channel == 7 && !p.cork
        ));
        let desc = protocol::read_descriptor(&mut &wire[at..]).unwrap();
        assert_eq!((desc.channel, desc.length), (7, 24));
        let values: Vec<f32> = wire[at + protocol::DESCRIPTOR_SIZE..]
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

        // Nothing more asked for: nothing sent, the callback not called.
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        let mut more = [0u8; 16];
        server.set_nonblocking(true).unwrap();
        assert!(server.read(&mut more).is_err(), "nothing was asked for");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_removed_output_ends_the_playback() {
        let (mut r, _server) = playback_connection();
        r.output = true;
        // A record stream's end on the same channel number is not this stream's.
        r.inbox = command_message(&protocol::Command::RecordStreamKilled(7));
        assert!(r.take_messages(None).is_none());
        r.inbox = command_message(&protocol::Command::PlaybackStreamKilled(7));
        let why = r.take_messages(None).unwrap();
        assert!(why.to_string().contains("output was removed"), "{why}");
    }

    #[test]
    fn a_server_that_stops_reading_holds_the_rest_for_later_and_the_pump_never_waits() {
        let (mut r, mut server) = playback_connection();
        r.output = true;
        // Far more than a socket buffers: the write takes part, the rest waits.
        r.requested = 2 * 1024 * 1024;
        let mut samples = Samples::F32(Vec::new());
        let mut data: PlayCallback = Box::new(|_: &mut Data, _: &OutputCallbackInfo| {});
        let (mut outbox, mut sent) = (Vec::new(), 0);
        let cork = AtomicU8::new(0);
        let began = Instant::now();
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert!(began.elapsed() < Duration::from_secs(1));
        assert!(
            sent > 0 && sent < outbox.len(),
            "sent {sent} of {}",
            outbox.len()
        );
        // A pause asked for now waits for the message in flight to go whole.
        cork.store(CORK, Ordering::Relaxed);
        r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
            .unwrap();
        assert_eq!(cork.load(Ordering::Relaxed), CORK);
        // The server reads everything: the rest goes, then the pause.
        let total = outbox.len();
        let reader = std::thread::spawn(move || {
            let mut got = 0usize;
            let mut buf = vec![0u8; 1 << 16];
            server
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            while let Ok(n) = server.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got
        });
        let until = Instant::now() + Duration::from_secs(5);
        while cork.load(Ordering::Relaxed) != 0 && Instant::now() < until {
            r.play(&cork, &mut samples, &mut data, &mut outbox, &mut sent)
                .unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(cork.load(Ordering::Relaxed), 0, "the pause was never sent");
        let pause = outbox.len();
        drop(r);
        assert_eq!(reader.join().unwrap(), total + pause);
    }

    #[test]
    fn junk_from_the_server_is_an_error_not_a_panic() {
        let mut r = connection();
        let mut samples = Samples::F32(Vec::new());
        // A command message whose body is not a command: ignored.
        let mut junk = Vec::new();
        let desc = protocol::Descriptor {
            length: 3,
            channel: u32::MAX,
            offset: 0,
            flags: protocol::DescriptorFlags::empty(),
        };
        protocol::write_descriptor(&mut junk, &desc).unwrap();
        junk.extend_from_slice(&[0xff, 0x00, 0x13]);
        r.inbox = junk;
        assert!(r.take_messages(Some(&mut samples)).is_none());
        // A data message whose length is not whole samples: the whole samples are kept.
        let mut odd = data_message(7, &[0.5]);
        odd[3] = 6;
        odd.extend_from_slice(&[1, 2]);
        r.inbox = odd;
        assert!(r.take_messages(Some(&mut samples)).is_none());
        assert!(matches!(&samples, Samples::F32(v) if v == &[0.5]));
        // A length no server sends: the connection is given up, nothing is waited for.
        let mut huge = data_message(7, &[]);
        huge[0] = 0x7f;
        r.inbox = huge;
        assert!(r.take_messages(Some(&mut samples)).is_some());
    }
}
