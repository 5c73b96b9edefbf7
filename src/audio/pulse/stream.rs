//! A stream on its own connection: setting it up (the record or playback stream the server
//! creates, and the first samples' period), handing it to the pump, and the owner's handle
//! that starts, pauses and closes it.
//!
//! Setup blocks on the server's replies (within the caller's timeout); after that, nothing here
//! waits on the socket but the owner's own commands to a record stream.

use std::ffi::CString;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpal::{Error, ErrorKind, FrameCount, StreamConfig, StreamInstant};
use pulseaudio::protocol;

use super::client::{connect, io_error, protocol_error, request};
use super::connection::Connection;
use super::device::MAX_PERIOD_FRAMES;
use super::format::{Format, Samples};
use super::instant;
use super::pump::{ErrorCallback, Pumped, Way, pump};
use super::server_changes;

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
    pub(super) fn open(
        device: &str,
        config: &StreamConfig,
        format: Format,
        timeout: Duration,
        way: Way,
        error: ErrorCallback,
    ) -> Result<Self, Error> {
        let (socket, version) = connect(timeout)?;
        let mut setup = Setup {
            reader: BufReader::new(socket.try_clone().map_err(io_error)?),
            writer: socket,
            version,
            device,
        };
        let output = matches!(way, Way::Play { .. });
        let shape = WireShape::of(device, config, format)?;
        let created = if output {
            setup.create_playback(shape)?
        } else {
            let created = setup.create_record(shape)?;
            // Told when the server's defaults change (see `server_changes`). Its reply is not
            // waited for: the pump passes over it with the other messages it does not need.
            server_changes::subscribe(&mut setup.writer, 3, version)?;
            created
        };
        // From here the pump reads (and writes) what it can, once a period, without waiting.
        // The writer shares the socket and so its non-blocking mode: its cork commands are a
        // few dozen bytes into a send buffer the pump never fills (it writes a period, when
        // the server asks for one).
        let inbox = setup.reader.buffer().to_vec();
        let socket = setup.reader.into_inner();
        socket.set_nonblocking(true).map_err(io_error)?;

        let frame_bytes = format.bytes() * u32::from(config.channels);
        let period_frames = (created.period_bytes / frame_bytes).max(1);
        let flags = Arc::new(Flags::default());
        let start = Instant::now();
        let read = Connection {
            socket,
            inbox,
            version,
            channel: created.channel,
            stream_index: created.stream_index,
            output,
            channels: usize::from(config.channels),
            frame_bytes: frame_bytes as usize,
            period: Duration::from_secs_f64(
                f64::from(period_frames) / f64::from(config.sample_rate.max(1)),
            ),
            start,
            latency: Duration::from_micros(created.latency_micros),
            requested: created.requested,
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
            writer: Mutex::new(setup.writer),
            version,
            channel: created.channel,
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

/// What both kinds of stream are created with: the samples' shape on the wire, the device,
/// and the period asked for.
struct WireShape {
    sample_spec: protocol::SampleSpec,
    channel_map: protocol::ChannelMap,
    device: CString,
    flags: protocol::stream::StreamFlags,
    /// The period asked for, in bytes.
    period: u32,
}

impl WireShape {
    fn of(device: &str, config: &StreamConfig, format: Format) -> Result<Self, Error> {
        let frame_bytes = format.bytes() * u32::from(config.channels);
        let period = match config.buffer_size {
            cpal::BufferSize::Fixed(frames) => frames.clamp(1, MAX_PERIOD_FRAMES) * frame_bytes,
            // PulseAudio's own default is about two seconds; 20 ms suits a live mix.
            cpal::BufferSize::Default => config.sample_rate / 50 * frame_bytes,
        };
        Ok(Self {
            sample_spec: protocol::SampleSpec {
                format: format.on_the_wire(),
                channels: config.channels as u8,
                sample_rate: config.sample_rate,
            },
            channel_map: if config.channels == 1 {
                protocol::ChannelMap::mono()
            } else {
                protocol::ChannelMap::stereo()
            },
            device: CString::new(device).map_err(|_| {
                Error::with_message(ErrorKind::InvalidInput, "a device name holds a NUL byte")
            })?,
            flags: protocol::stream::StreamFlags {
                start_corked: true,
                adjust_latency: true,
                no_move: true,
                ..Default::default()
            },
            period,
        })
    }
}

/// What the server said when it created a stream.
struct Created {
    channel: u32,
    stream_index: u32,
    /// The period the server settled on, in bytes: a playback stream's request, a record
    /// stream's fragment.
    period_bytes: u32,
    latency_micros: u64,
    /// Playing: the bytes the server asked for with its reply.
    requested: usize,
}

/// A connection while its stream is set up: each request waits for its reply.
struct Setup<'a> {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    version: u16,
    device: &'a str,
}

impl Setup<'_> {
    fn create_playback(&mut self, shape: WireShape) -> Result<Created, Error> {
        let mut props = protocol::Props::new();
        props.set(protocol::Prop::MediaName, c"Booth monitor");
        let period = shape.period;
        let params = protocol::PlaybackStreamParams {
            sample_spec: shape.sample_spec,
            channel_map: shape.channel_map,
            sink_name: Some(shape.device),
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
            flags: shape.flags,
            props,
            ..Default::default()
        };
        let device = self.device;
        let created: protocol::CreatePlaybackStreamReply = request(
            &mut self.writer,
            &mut self.reader,
            (2, self.version),
            &protocol::Command::CreatePlaybackStream(params),
            "creating the playback stream",
            || {
                (
                    ErrorKind::DeviceNotAvailable,
                    format!("PulseAudio refused to play to '{device}'"),
                )
            },
        )?;
        Ok(Created {
            channel: created.channel,
            stream_index: created.stream_index,
            period_bytes: created.buffer_attr.minimum_request_length,
            latency_micros: created.stream_latency,
            requested: created.requested_bytes as usize,
        })
    }

    fn create_record(&mut self, shape: WireShape) -> Result<Created, Error> {
        let mut props = protocol::Props::new();
        props.set(protocol::Prop::MediaName, c"Booth capture");
        let params = protocol::RecordStreamParams {
            sample_spec: shape.sample_spec,
            channel_map: shape.channel_map,
            source_name: Some(shape.device),
            buffer_attr: protocol::stream::BufferAttr {
                fragment_size: shape.period,
                ..Default::default()
            },
            flags: shape.flags,
            props,
            ..Default::default()
        };
        let device = self.device;
        let created: protocol::CreateRecordStreamReply = request(
            &mut self.writer,
            &mut self.reader,
            (2, self.version),
            &protocol::Command::CreateRecordStream(params),
            "creating the record stream",
            || {
                (
                    ErrorKind::DeviceNotAvailable,
                    format!("PulseAudio refused to record from '{device}'"),
                )
            },
        )?;
        Ok(Created {
            channel: created.channel,
            stream_index: created.stream_index,
            period_bytes: created.buffer_attr.fragment_size,
            latency_micros: created.stream_latency,
            requested: 0,
        })
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
pub(super) struct Flags {
    /// Set by the stream when it is dropped.
    pub(super) closing: AtomicBool,
    /// Set by the pump once it has let the stream go.
    pub(super) done: AtomicBool,
    /// A playback stream's pause or start, for the pump to send: [`CORK`], [`UNCORK`], or 0
    /// for nothing asked.
    pub(super) cork: AtomicU8,
}

pub(super) const CORK: u8 = 1;
pub(super) const UNCORK: u8 = 2;
