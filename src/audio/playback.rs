//! Playing the room to the host: an output stream that drains a lock-free ring.
//!
//! The engine pushes 48 kHz stereo into the ring every 20 ms; the device callback only copies
//! from the ring into the device's buffer (converting to its sample format) and counts the
//! frames it had to fill with silence. Nothing else happens in the callback: no allocation,
//! lock, log or system call.
//!
//! Play the room on a device other than the one whose monitor is captured as game audio (a
//! headset, say): a monitor hears everything played to its output, and the guests would come
//! back into the program.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{BufferSize, FromSample, SampleFormat, SizedSample, StreamConfig};

use super::{DeviceError, DeviceInfo};

/// The rate and layout the ring carries (and the stream is opened at).
pub const PLAYBACK_RATE: u32 = 48_000;
/// Stereo.
pub const PLAYBACK_CHANNELS: u16 = 2;

/// Counters the playback callback keeps.
#[derive(Debug)]
pub struct PlaybackStats {
    /// Frames the device asked for.
    pub frames: AtomicU64,
    /// Frames filled with silence because the ring was empty.
    pub underruns: AtomicU64,
    /// False once the stream failed for good (device gone, server stopped).
    pub alive: AtomicBool,
}

impl Default for PlaybackStats {
    fn default() -> Self {
        Self {
            frames: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            alive: AtomicBool::new(true),
        }
    }
}

/// A running output stream. Dropping it stops playback.
pub struct Playback {
    #[expect(dead_code, reason = "held for its Drop: playback runs while it lives")]
    stream: Box<cpal::Stream>,
    /// The device playing.
    pub info: DeviceInfo,
    /// Counters from the callback.
    pub stats: Arc<PlaybackStats>,
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playback")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Playback {
    /// Whether the stream still plays.
    #[must_use]
    pub fn is_alive(&self) -> bool {
        self.stats.alive.load(Ordering::Relaxed)
    }
}

/// Opens `device` at 48 kHz stereo with ~20 ms periods and plays what arrives in the returned
/// ring's producer (interleaved stereo `f32`). Holds `ring_seconds` at most. What it plays comes
/// 20 ms at a time (the room's Opus frames); a shorter period only costs more wake-ups (with
/// PulseAudio, half as many took the stream from 2.7% of a core to 1.3-1.5%).
///
/// # Errors
/// [`DeviceError::StreamConfig`] when the device takes no 48 kHz stereo stream in a sample format
/// Booth writes, [`DeviceError::Stream`] when it cannot be opened or started.
pub fn start_playback(
    device: &cpal::Device,
    info: DeviceInfo,
    ring_seconds: f32,
) -> Result<(Playback, rtrb::Producer<f32>), DeviceError> {
    let format = device
        .default_output_config()
        .map(|c| c.sample_format())
        .unwrap_or(SampleFormat::F32);
    let capacity = ((ring_seconds.max(0.05) * PLAYBACK_RATE as f32) as usize).max(960)
        * usize::from(PLAYBACK_CHANNELS);
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let stats = Arc::new(PlaybackStats::default());
    let config = StreamConfig {
        channels: PLAYBACK_CHANNELS,
        sample_rate: PLAYBACK_RATE,
        buffer_size: BufferSize::Fixed(960),
    };
    let who = format!("output device '{}' ({})", info.name, info.id);
    let built = match format {
        SampleFormat::I16 => build::<i16>(device, config, consumer, &stats),
        SampleFormat::I32 => build::<i32>(device, config, consumer, &stats),
        SampleFormat::U8 => build::<u8>(device, config, consumer, &stats),
        SampleFormat::U16 => build::<u16>(device, config, consumer, &stats),
        _ => build::<f32>(device, config, consumer, &stats),
    };
    let stream = built.map_err(|e| {
        DeviceError::Stream(format!(
            "{who} cannot play 48 kHz stereo ({e}): pick another (see `booth devices`)"
        ))
    })?;
    stream
        .play()
        .map_err(|e| DeviceError::Stream(format!("{who} would not start ({e})")))?;
    Ok((
        Playback {
            stream: Box::new(stream),
            info,
            stats,
        },
        producer,
    ))
}

fn build<T>(
    device: &cpal::Device,
    config: StreamConfig,
    mut consumer: rtrb::Consumer<f32>,
    stats: &Arc<PlaybackStats>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let data_stats = Arc::clone(stats);
    let error_stats = Arc::clone(stats);
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            pull_interleaved(data, &mut consumer, &data_stats);
        },
        move |error: cpal::Error| {
            if !matches!(
                error.kind(),
                cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged
            ) {
                error_stats.alive.store(false, Ordering::Relaxed);
            }
        },
        Some(Duration::from_secs(5)),
    )
}

/// The whole playback callback: fills `data` from the ring, silence where the ring runs dry
/// (counted in `stats.underruns`, in frames). Real-time safe. Public so tests can run it
/// without a device.
pub fn pull_interleaved<T>(data: &mut [T], ring: &mut rtrb::Consumer<f32>, stats: &PlaybackStats)
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(PLAYBACK_CHANNELS);
    let available = ring.slots() / channels * channels;
    let take = available.min(data.len());
    let mut filled = 0;
    if let Ok(chunk) = ring.read_chunk(take) {
        let (a, b) = chunk.as_slices();
        for (d, &s) in data.iter_mut().zip(a.iter().chain(b.iter())) {
            *d = T::from_sample(s);
        }
        filled = take;
        chunk.commit_all();
    }
    for d in &mut data[filled..] {
        *d = T::EQUILIBRIUM;
    }
    let frames = (data.len() / channels) as u64;
    stats.frames.fetch_add(frames, Ordering::Relaxed);
    stats
        .underruns
        .fetch_add(((data.len() - filled) / channels) as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::Sample;

    #[test]
    fn plays_what_is_queued_then_silence() {
        let (mut tx, mut rx) = rtrb::RingBuffer::<f32>::new(64);
        let _ = tx.push_partial_slice(&[0.5, -0.5, 0.25, -0.25]);
        let stats = PlaybackStats::default();
        let mut out = [1i16; 8];
        pull_interleaved(&mut out, &mut rx, &stats);
        assert_eq!(out[0], i16::from_sample(0.5f32));
        assert_eq!(out[3], i16::from_sample(-0.25f32));
        assert_eq!(&out[4..], &[0, 0, 0, 0]);
        assert_eq!(stats.underruns.load(Ordering::Relaxed), 2);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 4);
    }
}
