//! A lane the other way round: 48 kHz audio made on the engine's clock, into a playback ring
//! that an output device drains on its own clock (the host's headset, `booth listen`'s
//! speakers).
//!
//! A "48 kHz" output plays 48,005 or 47,990 frames a second of the system's. Unsteered, its ring
//! would drain or fill by that much: with the playout's margin (see
//! [`PlaybackRing`](crate::audio::PlaybackRing)) that is a gap or a drop every few minutes, for as long
//! as the host is live. So the lane resamples what it is given by a ratio steered from the
//! ring's fill ([`FillSteering`], as the capture lanes are), and the ring stays where the
//! device settled it, for hours. Corrections are hundreds of ppm at most and ramped, so
//! inaudible.
//!
//! Runs on the engine's thread (or `booth listen`'s clock): no allocation after construction,
//! no locks, no blocking; a ring that takes no more loses the rest of a block.

use rtrb::Producer;

use crate::codec::opus::FRAME_SAMPLES;
use crate::dsp::{DspError, FillSteering, SAMPLE_RATE, SteeredResampler, fold_channels};

/// Frames the resampler makes at a time (5 ms): what it holds back between blocks.
const CHUNK: usize = 240;
/// How much more than the device settled on the lane keeps in the ring: 10 ms. The lane sees
/// the ring only between its own blocks, and a device that asks for 20 ms at a time takes it
/// 20 ms at a time: a clock slightly fast shows no drift at all until it has gained a whole
/// request, and then takes one more than the lane saw coming. Without this margin a fast
/// device finds the ring dry each time it has gained a request; with it the ring never runs
/// dry (the tests below hold an hour to that), and the controller learns the drift from those
/// requests.
const ABOVE: usize = FRAME_SAMPLES / 2;
/// Blocks after the device is first seen draining the ring before the fill is measured: its
/// first requests may come in a burst, and the playout may still be trimming a pile-up.
const WARM_UP: u32 = 10;

/// The engine's audio into a stereo playback ring, steered to the device's clock.
pub struct OutputLane {
    ring: Producer<f32>,
    /// The ring's size, frames.
    capacity: usize,
    /// 1 (a voice, played on both sides) or 2.
    channels: usize,
    /// Input not resampled yet (interleaved), and how many frames of it.
    pending: Vec<f32>,
    held: usize,
    resampler: SteeredResampler,
    made: Vec<f32>,
    stereo: Vec<f32>,
    steering: FillSteering,
    /// The fill after the last block; whether the device has been seen taking any, and the
    /// blocks since.
    last_fill: usize,
    draining: bool,
    warm: u32,
}

impl std::fmt::Debug for OutputLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputLane")
            .field("channels", &self.channels)
            .field("correction", &self.steering.correction())
            .finish_non_exhaustive()
    }
}

impl OutputLane {
    /// A lane of `channels` (1 or 2) at 48 kHz into `ring` (stereo, interleaved).
    ///
    /// # Errors
    /// A channel count other than 1 or 2.
    pub fn new(ring: Producer<f32>, channels: usize) -> Result<Self, DspError> {
        if !(1..=2).contains(&channels) {
            return Err(DspError::UnsupportedChannels(channels, "1 or 2"));
        }
        let resampler = SteeredResampler::new(SAMPLE_RATE, channels, CHUNK, 1.01)?;
        let pending = (resampler.input_frames_max() + FRAME_SAMPLES) * channels;
        Ok(Self {
            capacity: ring.buffer().capacity() / 2,
            ring,
            channels,
            pending: vec![0.0; pending],
            held: 0,
            resampler,
            made: vec![0.0; CHUNK * channels],
            stereo: vec![0.0; CHUNK * 2],
            steering: FillSteering::new(SAMPLE_RATE, FRAME_SAMPLES, 0.0, ABOVE as f64),
            last_fill: 0,
            draining: false,
            warm: 0,
        })
    }

    /// The ratio it plays at, relative to the nominal one (above 1: the device runs fast).
    #[must_use]
    pub fn correction(&self) -> f64 {
        self.steering.correction()
    }

    /// Frames in the ring now.
    #[must_use]
    pub fn fill(&self) -> usize {
        self.capacity - self.ring.slots() / 2
    }

    /// Plays one block (interleaved, the lane's channels; the engine's 20 ms, though any
    /// length works), then steers by how full the ring is.
    pub fn push(&mut self, block: &[f32]) {
        let ch = self.channels;
        let mut rest = block;
        while !rest.is_empty() {
            let room = self.pending.len() / ch - self.held;
            let n = (rest.len() / ch).min(room);
            if n == 0 {
                break;
            }
            self.pending[self.held * ch..(self.held + n) * ch].copy_from_slice(&rest[..n * ch]);
            self.held += n;
            rest = &rest[n * ch..];
            self.drain();
        }
        let fill = self.fill();
        let pushed = block.len() / ch;
        // Steer only once the device takes from the ring: before that it only fills.
        if !self.draining && fill < self.last_fill + pushed {
            self.draining = true;
        }
        self.last_fill = fill;
        if self.draining {
            if self.warm < WARM_UP {
                self.warm += 1;
            } else if let Some(relative) = self.steering.update(fill) {
                self.resampler.set_relative(relative);
            }
        }
    }

    /// Resamples what is pending, a chunk at a time, into the ring.
    fn drain(&mut self) {
        let ch = self.channels;
        loop {
            let need = self.resampler.input_frames_next();
            if self.held < need {
                return;
            }
            if self
                .resampler
                .process(&self.pending[..need * ch], &mut self.made)
                .is_err()
            {
                // The buffers are sized from the resampler, so this cannot happen: silence.
                self.made.fill(0.0);
            }
            self.pending.copy_within(need * ch..self.held * ch, 0);
            self.held -= need;
            fold_channels(&self.made, ch, &mut self.stereo, 2);
            let _ = self.ring.push_partial_slice(&self.stereo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{PlaybackRing, PlaybackStats, pull_interleaved};
    use std::sync::atomic::Ordering;

    /// What the device played.
    struct Played {
        /// Frames of silence after it started.
        silence: u64,
        /// Frames the playout dropped.
        dropped: u64,
        /// The ring's lowest and highest fill over the second half.
        low: usize,
        high: usize,
        /// The largest step between output samples from a second in.
        jump: f32,
        /// The lane's mean ratio (how much faster it played than it was given).
        correction: f64,
    }

    /// The engine makes a 1 kHz tone in 20 ms blocks by its clock for `minutes`; a device
    /// whose clock runs at `device_hz` asks for `request` frames each time it has played that
    /// much. Through an output lane when `steered`, else straight into the ring.
    fn play(device_hz: f64, request: usize, minutes: f64, steered: bool) -> Played {
        let (tx, rx) = rtrb::RingBuffer::<f32>::new(24_000 * 2);
        let mut playout = PlaybackRing::new(rx);
        let stats = PlaybackStats::default();
        let mut lane = OutputLane::new(tx, 1).unwrap_or_else(|e| panic!("{e}"));
        let mut block = vec![0.0f32; 960];
        let mut out = vec![0.0f32; request * 2];
        let mut n = 0u64;
        let mut next_request = 0.0f64;
        let (mut low, mut high) = (usize::MAX, 0);
        let mut worst = 0.0f32;
        let mut prev = None::<f32>;
        let end = minutes * 60.0;
        let mut t = 0.0f64;
        let (mut sum_correction, mut blocks) = (0.0f64, 0.0f64);
        while t < end {
            for s in &mut block {
                *s = (0.5 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48_000.0).sin())
                    as f32;
                n += 1;
            }
            if steered {
                lane.push(&block);
            } else {
                let stereo: Vec<f32> = block.iter().flat_map(|&s| [s, s]).collect();
                let _ = lane.ring.push_partial_slice(&stereo);
            }
            t += 0.02;
            sum_correction += lane.correction();
            blocks += 1.0;
            while next_request <= t {
                pull_interleaved(&mut out, &mut playout, &stats);
                next_request += request as f64 / device_hz;
                if t > end / 2.0 {
                    let fill = lane.fill();
                    low = low.min(fill);
                    high = high.max(fill);
                }
                // From a second in: the playout started by then (from silence to the tone).
                for frame in out.chunks_exact(2) {
                    if let Some(p) = prev.filter(|_| t > 1.0) {
                        worst = worst.max((frame[0] - p).abs());
                    }
                    prev = Some(frame[0]);
                }
            }
        }
        Played {
            correction: sum_correction / blocks,
            silence: stats.underruns.load(Ordering::Relaxed),
            dropped: stats.dropped.load(Ordering::Relaxed),
            low,
            high,
            jump: worst,
        }
    }

    #[test]
    fn an_hour_against_a_device_clock_off_by_200_ppm_either_way_plays_without_a_gap() {
        // 20 ms requests for an hour (Booth's PulseAudio output), 10 ms for half an hour.
        for (device_hz, request, minutes) in [
            (48_010.0, 960, 60.0),
            (47_990.0, 960, 60.0),
            (48_010.0, 480, 30.0),
            (47_990.0, 480, 30.0),
        ] {
            let p = play(device_hz, request, minutes, true);
            assert_eq!(p.silence, 0, "{device_hz} Hz, {request}: frames of silence");
            assert_eq!(p.dropped, 0, "{device_hz} Hz, {request}: frames dropped");
            // It learned the device's clock: 208 ppm either way.
            let wanted = device_hz / 48_000.0;
            assert!(
                (p.correction - wanted).abs() < 20e-6,
                "{device_hz} Hz, {request}: played {:.6} times as fast",
                p.correction
            );
            // A 1 kHz tone at 0.5 moves at most 0.066 between samples.
            assert!(p.jump < 0.075, "{device_hz} Hz: a jump of {}", p.jump);
            // Where the device settled it: a request, the margin and a block at most.
            assert!(
                p.high - p.low <= request + 480 + 960,
                "{device_hz} Hz: the fill wandered from {} to {}",
                p.low,
                p.high
            );
        }
    }

    #[test]
    fn unsteered_the_same_clocks_glitch_within_minutes() {
        // What the steering is for: straight into the ring, a fast device runs it dry and a
        // slow one piles it up until the playout drops some.
        let fast = play(48_010.0, 960, 5.0, false);
        assert!(fast.silence > 0, "a fast device never ran dry");
        let slow = play(47_990.0, 960, 5.0, false);
        assert!(slow.dropped > 0, "a slow device never had a drop");
    }
}
