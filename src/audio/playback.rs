//! Playing the room to the host: an output stream that drains a lock-free ring.
//!
//! The engine pushes 48 kHz stereo into the ring every 20 ms; the device callback only copies
//! from the ring into the device's buffer (converting to its sample format) and counts the
//! frames it had to fill with silence. Nothing else happens in the callback: no allocation,
//! lock, log or system call.
//!
//! The two sides run on two timers (the engine's clock, the device's requests), so where the
//! device asks falls anywhere within the engine's 20 ms, and moves when either is late. A
//! callback that took whatever had arrived would play a few milliseconds of silence every time
//! the engine's block landed just after the device asked: on a busy machine (a game running)
//! that is a click now and then. So the callback keeps a margin in hand ([`PlaybackRing`]): it starts
//! once the ring holds what the device asks for plus the margin (10 ms), and a late block then
//! finds the device still playing what was queued. A block later than the margin leaves a gap
//! once; the callback waits for the margin again, now 10 ms larger (up to 40 ms), so a machine
//! that stalls that long stops glitching at the cost of that much delay. What piles up beyond
//! the margin (the engine catching up after a stall, or a device that plays slower than the
//! engine's clock) is dropped once it passes three blocks more (the engine's side keeps a
//! request more than the device settled on: see `engine::OutputLane`), so the host's delay
//! stays bounded. The engine's steered output lane keeps the ring where the
//! device settled it, so the gaps and drops are for stalls, not for the two clocks' drift.
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
use crate::codec::opus::FRAME_SAMPLES;

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
    /// Frames dropped unheard because too much had piled up in the ring.
    pub dropped: AtomicU64,
    /// False once the stream failed for good (device gone, server stopped).
    pub alive: AtomicBool,
}

impl Default for PlaybackStats {
    fn default() -> Self {
        Self {
            frames: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
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
/// 20 ms at a time (the room's Opus frames), so a shorter period would only wake the stream more
/// often for nothing new, each wake-up a cost in CPU.
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
    consumer: rtrb::Consumer<f32>,
    stats: &Arc<PlaybackStats>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    let data_stats = Arc::clone(stats);
    let error_stats = Arc::clone(stats);
    let mut ring = PlaybackRing::new(consumer);
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
            pull_interleaved(data, &mut ring, &data_stats);
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

/// The margin a playback starts with (10 ms), what each gap adds to it, and its most (40 ms).
const MARGIN_FRAMES: usize = PLAYBACK_RATE as usize / 100;
const MAX_MARGIN_FRAMES: usize = 4 * MARGIN_FRAMES;

/// The ring a playback callback drains, and the margin it keeps in hand (see the module's
/// doc). Built once, outside the callback.
#[derive(Debug)]
pub struct PlaybackRing {
    consumer: rtrb::Consumer<f32>,
    margin: usize,
    playing: bool,
}

impl PlaybackRing {
    /// The ring `consumer` drains (48 kHz stereo, interleaved), waiting for its margin first.
    #[must_use]
    pub fn new(consumer: rtrb::Consumer<f32>) -> Self {
        Self {
            consumer,
            margin: MARGIN_FRAMES,
            playing: false,
        }
    }

    /// Frames it waits for beyond a device's request before it plays (grows after a gap).
    #[must_use]
    pub fn margin_frames(&self) -> usize {
        self.margin
    }
}

/// The whole playback callback: fills `data` from the ring once it holds the
/// request plus the margin, silence before that and where the ring runs dry (counted in
/// `stats.underruns`, in frames, once playing). Real-time safe. Public so tests can run it
/// without a device.
pub fn pull_interleaved<T>(data: &mut [T], ring: &mut PlaybackRing, stats: &PlaybackStats)
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(PLAYBACK_CHANNELS);
    let wanted = data.len() / channels;
    let mut held = ring.consumer.slots() / channels;
    // A device asking for more than the ring can hold starts once it is full.
    let capacity = ring.consumer.buffer().capacity() / channels;
    if !ring.playing && held >= (wanted + ring.margin).min(capacity) {
        ring.playing = true;
    }
    let mut filled = 0;
    if ring.playing {
        // More queued than the margin and three of the engine's 20 ms blocks of arrival jitter:
        // the engine caught up after a stall, or the device plays slower than the engine's
        // clock. Drop the oldest down to the margin rather than let the host hear the room
        // later and later.
        let most = wanted + ring.margin + 3 * FRAME_SAMPLES;
        if held > most {
            let drop = (held - wanted - ring.margin) * channels;
            if let Ok(chunk) = ring.consumer.read_chunk(drop) {
                chunk.commit_all();
                stats
                    .dropped
                    .fetch_add((drop / channels) as u64, Ordering::Relaxed);
            }
            held = ring.consumer.slots() / channels;
        }
        let take = held.min(wanted) * channels;
        if let Ok(chunk) = ring.consumer.read_chunk(take) {
            let (a, b) = chunk.as_slices();
            for (d, &s) in data.iter_mut().zip(a.iter().chain(b.iter())) {
                *d = T::from_sample(s);
            }
            filled = take;
            chunk.commit_all();
        }
        if filled < wanted * channels {
            // Later than the margin allowed: wait for a larger one before playing again.
            ring.playing = false;
            ring.margin = (ring.margin + MARGIN_FRAMES).min(MAX_MARGIN_FRAMES);
            stats
                .underruns
                .fetch_add((wanted - filled / channels) as u64, Ordering::Relaxed);
        }
    }
    for d in &mut data[filled..] {
        *d = T::EQUILIBRIUM;
    }
    stats.frames.fetch_add(wanted as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::Sample;

    /// `frames` stereo frames whose left sample counts up from `first`.
    fn frames(first: usize, frames: usize) -> Vec<f32> {
        (first..first + frames)
            .flat_map(|n| [n as f32 / 100_000.0, 0.0])
            .collect()
    }

    /// A ring of `capacity` frames: its producer, its playback side, its counters and a
    /// device's 20 ms request.
    fn playback_ring(
        capacity: usize,
    ) -> (rtrb::Producer<f32>, PlaybackRing, PlaybackStats, Vec<f32>) {
        let (tx, rx) = rtrb::RingBuffer::<f32>::new(capacity * 2);
        (
            tx,
            PlaybackRing::new(rx),
            PlaybackStats::default(),
            vec![1.0; 960 * 2],
        )
    }

    #[test]
    fn waits_for_the_margin_then_plays_then_counts_a_gap_and_widens_the_margin() {
        let (mut tx, mut ring, stats, mut out) = playback_ring(9_600);
        // One block queued: less than a request and the margin, so silence, nothing taken.
        let _ = tx.push_partial_slice(&frames(0, 960));
        pull_interleaved(&mut out, &mut ring, &stats);
        assert!(out.iter().all(|&s| s == 0.0));
        assert_eq!(tx.slots(), (9_600 - 960) * 2, "nothing was taken");
        assert_eq!(stats.underruns.load(Ordering::Relaxed), 0);
        // The margin arrives: the first 960 frames play, in order.
        let _ = tx.push_partial_slice(&frames(960, 480));
        pull_interleaved(&mut out, &mut ring, &stats);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[2 * 959], 959.0 / 100_000.0);
        // Nothing more comes: the 480 in hand play, then silence, counted, and the margin grows.
        pull_interleaved(&mut out, &mut ring, &stats);
        assert_eq!(out[0], 960.0 / 100_000.0);
        assert!(out[480 * 2..].iter().all(|&s| s == 0.0));
        assert_eq!(stats.underruns.load(Ordering::Relaxed), 480);
        assert_eq!(ring.margin_frames(), 960);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 3 * 960);
        // Converts to the device's format.
        let _ = tx.push_partial_slice(&[0.5, -0.5].repeat(2_000));
        let mut ints = [1i16; 8];
        pull_interleaved(&mut ints, &mut ring, &stats);
        assert_eq!(ints[0], i16::from_sample(0.5f32));
        assert_eq!(ints[1], i16::from_sample(-0.5f32));
    }

    /// Plays 4 s of the engine's 20 ms blocks, due every 20 ms from 0, to a device that asks
    /// for 20 ms at 2 ms past each block's turn. During each of `stalls` (start, length, in
    /// ms) the engine is stalled: the blocks due then come together at its end. Returns the
    /// frames of silence after playback started, and the margin at the end.
    fn stalled(stalls: &[(usize, usize)]) -> (u64, usize) {
        let (mut tx, mut ring, stats, mut out) = playback_ring(24_000);
        let block = frames(0, 960);
        let arrival = |due: usize| {
            stalls
                .iter()
                .find(|&&(at, len)| (at..at + len).contains(&due))
                .map_or(due, |&(at, len)| at + len)
        };
        let mut due = 0;
        for ms in 0..4_000 {
            while arrival(due) <= ms {
                let _ = tx.push_partial_slice(&block);
                due += 20;
            }
            if ms % 20 == 2 {
                pull_interleaved(&mut out, &mut ring, &stats);
            }
        }
        (
            stats.underruns.load(Ordering::Relaxed),
            ring.margin_frames(),
        )
    }

    #[test]
    fn an_engine_stall_shorter_than_what_is_in_hand_leaves_no_gap() {
        // Taking whatever had come, the device would have played 20 ms of silence for any
        // stall longer than the 2 ms between a block's turn and its request.
        assert_eq!(stalled(&[(999, 8)]), (0, 480));
        assert_eq!(stalled(&[(999, 20)]), (0, 480));
        // 40 ms is more than was in hand: one gap, then a wider margin, which holds through
        // the next stall as long.
        let (silence, margin) = stalled(&[(999, 40)]);
        assert!(silence > 0 && silence <= 960, "{silence} frames of silence");
        assert_eq!(margin, 960);
        assert_eq!(stalled(&[(999, 40), (2_999, 40)]), (silence, 960));
    }

    #[test]
    fn a_pile_up_is_dropped_down_to_the_margin() {
        let (mut tx, mut ring, stats, mut out) = playback_ring(24_000);
        let _ = tx.push_partial_slice(&frames(0, 1_440));
        pull_interleaved(&mut out, &mut ring, &stats);
        // The engine catches up after a stall: 200 ms at once.
        let _ = tx.push_partial_slice(&frames(1_440, 9_600));
        pull_interleaved(&mut out, &mut ring, &stats);
        // The oldest went: what plays is the newest request and margin's worth.
        let newest = 1_440 + 9_600;
        assert_eq!(out[0], (newest - 960 - 480) as f32 / 100_000.0);
        assert_eq!(tx.slots(), (24_000 - 480) * 2, "the margin stays in hand");
        // All but a request and the margin of the 480 left and the 9,600 that came.
        assert_eq!(
            stats.dropped.load(Ordering::Relaxed),
            480 + 9_600 - 960 - 480
        );
        assert_eq!(stats.underruns.load(Ordering::Relaxed), 0);
    }
}
