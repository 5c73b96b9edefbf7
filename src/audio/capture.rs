//! Real-time capture: a cpal input stream whose callback copies the device's samples, as
//! interleaved `f32`, into a wait-free ring ([`rtrb`]) that the engine thread drains.
//!
//! The callback runs on the sound system's real-time thread. It must never allocate, lock, log,
//! make a system call or wait: it converts, copies, commits and counts in atomics
//! ([`CaptureStats`]), nothing else. When the ring is full it keeps the whole frames that fit
//! and counts the rest as overruns; it never overwrites samples the engine has not read.
//! Everything that may block (opening, starting, stopping the stream) happens on the caller's
//! thread, here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{BufferSize, ErrorKind, FromSample, SampleFormat, SizedSample, StreamConfig};

use super::devices::{DeviceError, DeviceInfo, still_present};

/// How long the sound system may take to create a stream before Booth gives up on it.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters the capture callback keeps, read by anyone (meters, the engine, `booth host`).
#[derive(Debug)]
pub struct CaptureStats {
    /// Frames the device delivered, kept or not.
    pub frames: AtomicU64,
    /// Frames dropped because the ring was full: the engine fell behind by more than the ring.
    pub overruns: AtomicU64,
    /// Errors the stream reported, fatal or not (an ALSA xrun counts here too).
    pub errors: AtomicU64,
    /// False once the stream reported an error it does not recover from: the device is gone,
    /// the sound server stopped. Transient xruns and reroutes leave it true.
    pub alive: AtomicBool,
}

impl CaptureStats {
    /// Zero counts, alive.
    pub fn new() -> Self {
        Self {
            frames: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            alive: AtomicBool::new(true),
        }
    }
}

impl Default for CaptureStats {
    fn default() -> Self {
        Self::new()
    }
}

/// A running capture stream. Dropping it stops the stream; the ring's consumer then reads
/// what is left and sees the producer abandoned.
pub struct Capture {
    // Boxed: cpal's stream is a large per-platform enum, and a `Capture` is moved around
    // (into the engine, into enums of sources) while it runs.
    stream: Box<cpal::Stream>,
    /// The device being captured.
    pub info: DeviceInfo,
    /// Frames per second in the ring.
    pub sample_rate: u32,
    /// Samples per frame in the ring (interleaved).
    pub channels: u16,
    /// What the callback has counted so far.
    pub stats: Arc<CaptureStats>,
    /// The stream itself reports a device that went away (Booth's PulseAudio streams do), so
    /// [`check`](Self::check) need not ask the sound server.
    reports_loss: bool,
    /// Reads the device on the caller's thread, for a stream read on demand (Booth's
    /// PulseAudio streams: see [`read_now`](Self::read_now)).
    read_now: Option<fn()>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("info", &self.info)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Whether the stream still delivers: false after the device or the sound server went away.
    pub fn is_alive(&self) -> bool {
        self.stats.alive.load(Ordering::Relaxed)
    }

    /// For a stream that can be read on demand (Booth's PulseAudio streams): a function that
    /// reads what the device has sent and runs the callback now, on the caller's thread, without
    /// waiting. The engine calls it before each pull, so no capture thread wakes between its
    /// blocks. `None` for streams the sound system drives on its own thread.
    pub fn read_now(&self) -> Option<fn()> {
        self.read_now
    }

    /// Frames per callback the sound system settled on, where it says.
    pub fn period_frames(&self) -> Option<u32> {
        self.stream.buffer_size().ok()
    }

    /// Checks that the stream still records the device it was opened on, and stops it (and
    /// marks it dead) when the device is gone.
    ///
    /// Needed because a stream error is not the only way a device goes away: when a PulseAudio
    /// source disappears, the server moves its recordings to the default source, and cpal 0.18's
    /// streams do not report the move. The game capture would quietly become the microphone.
    /// Booth's own PulseAudio streams (see `audio::pulse`) report it themselves, so for them this
    /// asks nothing of the server.
    ///
    /// Blocks for a round trip to the sound server (milliseconds): call it from a control
    /// thread about once a second, never from an audio callback or the engine's block loop.
    ///
    /// # Errors
    ///
    /// [`DeviceError::Stream`] (see [`gone_error`](Self::gone_error)) when the stream failed
    /// or its device is gone; the sound system's own error when it cannot be asked.
    pub fn check(&self) -> Result<(), DeviceError> {
        if self.is_alive() && self.reports_loss {
            return Ok(());
        }
        if self.is_alive() {
            match still_present(&self.info) {
                Ok(true) => return Ok(()),
                Ok(false) | Err(DeviceError::NoHost(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.stats.alive.store(false, Ordering::Relaxed);
        // Whatever it records now is not the device the user picked.
        let _ = self.stream.pause();
        Err(self.gone_error())
    }

    /// The error to show once [`is_alive`](Self::is_alive) turns false.
    pub fn gone_error(&self) -> DeviceError {
        DeviceError::Stream(format!(
            "input device '{}' ({}) stopped delivering sound: it was unplugged or the sound \
             server went away; pick another (see `booth devices`)",
            self.info.name, self.info.id
        ))
    }
}

/// Opens `device` in its own default format and starts capturing into a new ring.
///
/// `period_frames` asks for that many frames per callback (480 = 10 ms at 48 kHz); without it
/// PulseAudio delivers ~2 s at a time. A device that refuses a fixed period gets its default.
/// `ring_seconds` sizes the ring (at least four periods). `channels` asks for fewer channels
/// than the device's own (1 for a voice) where the device offers that count in its own rate and
/// format: less to carry and fold. Samples of any format arrive in the ring as interleaved
/// `f32` at the device's rate and the channel count opened (see [`Capture`]).
///
/// A Windows output device (a `loopback:` input) is opened in loopback mode with its output
/// format.
///
/// # Errors
///
/// [`DeviceError::StreamConfig`] when the device has no usable format,
/// [`DeviceError::Stream`] when the stream cannot be created or started (device gone, busy,
/// access denied).
pub fn start_capture(
    device: &cpal::Device,
    info: DeviceInfo,
    period_frames: u32,
    ring_seconds: f32,
    channels: Option<u16>,
) -> Result<(Capture, rtrb::Consumer<f32>), DeviceError> {
    let supported = if device.supports_input() {
        device
            .default_input_config()
            .map(|own| fewer_channels(device, own, channels))
    } else {
        // WASAPI loopback: an output device opened for input records what it plays.
        device.default_output_config()
    }
    .map_err(|e| open_error(&info, &e))?;
    let channels = supported.channels();
    let sample_rate = supported.sample_rate();
    let format = supported.sample_format();

    let period = match (period_frames, supported.buffer_size()) {
        (0, _) => None,
        (n, cpal::SupportedBufferSize::Range { min, max }) => Some(n.clamp(*min, *max)),
        (n, cpal::SupportedBufferSize::Unknown) => Some(n),
    };
    let ring_frames = (f64::from(ring_seconds.max(0.0)) * f64::from(sample_rate)) as usize;
    let min_frames = period.map_or(sample_rate as usize / 5, |p| p as usize * 4);
    let capacity = ring_frames.max(min_frames).max(1) * usize::from(channels.max(1));

    let stats = Arc::new(CaptureStats::new());
    let open = |buffer_size| {
        let config = StreamConfig {
            channels,
            sample_rate,
            buffer_size,
        };
        let (producer, consumer) = rtrb::RingBuffer::new(capacity);
        let stats = Arc::clone(&stats);
        let stream = match format {
            SampleFormat::I8 => build::<i8>(device, config, producer, stats),
            SampleFormat::I16 => build::<i16>(device, config, producer, stats),
            SampleFormat::I24 => build::<cpal::I24>(device, config, producer, stats),
            SampleFormat::I32 => build::<i32>(device, config, producer, stats),
            SampleFormat::I64 => build::<i64>(device, config, producer, stats),
            SampleFormat::U8 => build::<u8>(device, config, producer, stats),
            SampleFormat::U16 => build::<u16>(device, config, producer, stats),
            SampleFormat::U24 => build::<cpal::U24>(device, config, producer, stats),
            SampleFormat::U32 => build::<u32>(device, config, producer, stats),
            SampleFormat::U64 => build::<u64>(device, config, producer, stats),
            SampleFormat::F32 => build::<f32>(device, config, producer, stats),
            SampleFormat::F64 => build::<f64>(device, config, producer, stats),
            other => {
                return Err(DeviceError::StreamConfig(format!(
                    "input device '{}' delivers {other} samples, which Booth cannot record; pick \
                     another (see `booth devices`)",
                    info.name
                )));
            }
        };
        stream
            .map(|s| (s, consumer))
            .map_err(|e| open_error(&info, &e))
    };
    let (stream, consumer) = match period {
        Some(frames) => match open(BufferSize::Fixed(frames)) {
            // Some devices take no fixed period; their default still works, with more latency.
            Err(DeviceError::StreamConfig(_)) => open(BufferSize::Default)?,
            other => other?,
        },
        None => open(BufferSize::Default)?,
    };
    stream.play().map_err(|e| open_error(&info, &e))?;
    Ok((
        Capture {
            stream: Box::new(stream),
            info,
            sample_rate,
            channels,
            stats,
            reports_loss: reports_loss(device),
            read_now: read_now(device),
        },
        consumer,
    ))
}

/// `own`, or the same rate and format in `want` channels when that is fewer and the device
/// offers it.
fn fewer_channels(
    device: &cpal::Device,
    own: cpal::SupportedStreamConfig,
    want: Option<u16>,
) -> cpal::SupportedStreamConfig {
    let Some(want) = want.filter(|&w| w > 0 && w < own.channels()) else {
        return own;
    };
    let Ok(mut configs) = device.supported_input_configs() else {
        return own;
    };
    configs
        .find(|c| {
            c.channels() == want
                && c.sample_format() == own.sample_format()
                && (c.min_sample_rate()..=c.max_sample_rate()).contains(&own.sample_rate())
        })
        .map_or(own, |c| c.with_sample_rate(own.sample_rate()))
}

fn reports_loss(device: &cpal::Device) -> bool {
    #[cfg(target_os = "linux")]
    return super::pulse::is_lean(device);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = device;
        false
    }
}

fn read_now(device: &cpal::Device) -> Option<fn()> {
    #[cfg(target_os = "linux")]
    return super::pulse::is_lean(device).then_some(super::pulse::pump_now as fn());
    #[cfg(not(target_os = "linux"))]
    {
        let _ = device;
        None
    }
}

fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut producer: rtrb::Producer<f32>,
    stats: Arc<CaptureStats>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels);
    let data_stats = Arc::clone(&stats);
    device.build_input_stream(
        config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            push_interleaved(data, channels, &mut producer, &data_stats);
        },
        move |error: cpal::Error| note_stream_error(&stats, error.kind()),
        Some(OPEN_TIMEOUT),
    )
}

/// The whole capture callback: converts `data` (interleaved, `channels` per frame) to `f32`
/// and appends it to the ring. When the ring lacks room it keeps the whole frames that fit and
/// adds the rest to `stats.overruns`. Real-time safe: no allocation, lock, log or system call.
///
/// Public so that tests can run it without a device (and under a counting allocator).
pub fn push_interleaved<T>(
    data: &[T],
    channels: usize,
    producer: &mut rtrb::Producer<f32>,
    stats: &CaptureStats,
) where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = channels.max(1);
    let free = producer.slots();
    let keep = if data.len() <= free {
        data.len()
    } else {
        free - free % channels
    };
    if keep > 0
        && let Ok(chunk) = producer.write_chunk_uninit(keep)
    {
        chunk.fill_from_iter(data[..keep].iter().map(|&s| s.to_sample::<f32>()));
    }
    let frames = (data.len() / channels) as u64;
    let dropped = ((data.len() - keep) / channels) as u64;
    stats.frames.fetch_add(frames, Ordering::Relaxed);
    if dropped > 0 {
        stats.overruns.fetch_add(dropped, Ordering::Relaxed);
    }
}

/// The error callback's body: count, and mark the stream dead unless the error is transient.
fn note_stream_error(stats: &CaptureStats, kind: ErrorKind) {
    stats.errors.fetch_add(1, Ordering::Relaxed);
    let transient = matches!(
        kind,
        ErrorKind::Xrun | ErrorKind::DeviceChanged | ErrorKind::RealtimeDenied
    );
    if !transient {
        stats.alive.store(false, Ordering::Relaxed);
    }
}

/// A stream that could not be opened or started, in words a user can act on.
fn open_error(info: &DeviceInfo, e: &cpal::Error) -> DeviceError {
    let who = format!("input device '{}' ({})", info.name, info.id);
    match e.kind() {
        ErrorKind::DeviceNotAvailable | ErrorKind::StreamInvalidated => DeviceError::Stream(
            format!("{who} is gone ({e}): pick another (see `booth devices`)"),
        ),
        ErrorKind::DeviceBusy => DeviceError::Stream(format!(
            "{who} is busy ({e}): close the program using it, or pick another"
        )),
        ErrorKind::PermissionDenied => DeviceError::Stream(format!(
            "Booth may not record from {who} ({e}): allow microphone access in the system's \
             privacy settings"
        )),
        ErrorKind::HostUnavailable => DeviceError::Stream(format!(
            "the sound system went away while opening {who} ({e}): is PulseAudio/PipeWire \
             running?"
        )),
        ErrorKind::UnsupportedConfig | ErrorKind::InvalidInput => DeviceError::StreamConfig(
            format!("{who} refuses its own default format ({e}): pick another device"),
        ),
        _ => DeviceError::Stream(format!("cannot record from {who}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(c: &mut rtrb::Consumer<f32>) -> Vec<f32> {
        std::iter::from_fn(|| c.pop().ok()).collect()
    }

    #[test]
    fn integers_arrive_as_f32() {
        let (mut p, mut c) = rtrb::RingBuffer::new(16);
        let stats = CaptureStats::new();
        push_interleaved(&[0i16, 16_384, -32_768, i16::MAX], 2, &mut p, &stats);
        push_interleaved(&[128u8, 0, 192, 255], 2, &mut p, &stats);
        let got = drain(&mut c);
        let want = [0.0, 0.5, -1.0, 0.99997, 0.0, -1.0, 0.5, 0.99219];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
        assert_eq!(got.len(), 8);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 4);
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_ring_keeps_whole_frames_and_counts_the_rest() {
        let (mut p, mut c) = rtrb::RingBuffer::new(7);
        let stats = CaptureStats::new();
        let block: Vec<f32> = (0..10).map(|i| i as f32).collect();
        push_interleaved(&block, 2, &mut p, &stats);
        // 7 slots hold 3 stereo frames; 2 frames are dropped, never half a frame.
        assert_eq!(drain(&mut c), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 5);
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn only_lasting_errors_end_the_stream() {
        let stats = CaptureStats::new();
        note_stream_error(&stats, ErrorKind::Xrun);
        assert!(stats.alive.load(Ordering::Relaxed));
        note_stream_error(&stats, ErrorKind::DeviceNotAvailable);
        assert!(!stats.alive.load(Ordering::Relaxed));
        assert_eq!(stats.errors.load(Ordering::Relaxed), 2);
    }
}
