//! A file played into a ring in real time, as a device would deliver it: 10 ms periods on the
//! file's own rate, paced by the clock. Used by `booth host --game-file/--mic-file`, and by tests
//! that need a live source without a sound card. After the file ends it delivers silence, like a
//! device with nothing playing.
//!
//! It never holds up the engine: its thread only pushes into the ring, and a period that does
//! not fit is dropped, as a device's would be.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::audio::{AudioError, FileSource};
use crate::dsp::fold_channels;

use super::InputRing;

/// A running paced file; dropping it stops the feeding thread.
#[derive(Debug)]
pub struct PacedFile {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PacedFile {
    /// Opens `path` and starts feeding it; returns the feeder and the ring the engine reads.
    /// `channels` is what the ring carries (1 for a mic, 2 for game audio).
    ///
    /// # Errors
    /// The file cannot be opened or decoded.
    pub fn start(path: &Path, channels: usize) -> Result<(Self, InputRing), AudioError> {
        let mut src = FileSource::open(path)?;
        let rate = src.sample_rate();
        let in_ch = src.channels();
        let out_ch = if channels == 1 || in_ch == 1 { 1 } else { 2 };
        let (mut producer, consumer) = rtrb::RingBuffer::<f32>::new(rate as usize * out_ch);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("booth-paced-file".into())
            .spawn(move || {
                let mut pending: Vec<f32> = Vec::new();
                let lead = lead_frames(rate);
                let mut folded = vec![0.0f32; (rate as usize / 100 + 1 + lead) * 2];
                let mut ended = false;
                let start = Instant::now();
                let mut periods: u32 = 0;
                while !thread_stop.load(Ordering::Relaxed) {
                    let period_frames =
                        period_frames(rate, periods) + if periods == 0 { lead } else { 0 };
                    while !ended && pending.len() < period_frames * in_ch {
                        match src.read() {
                            Ok(Some(block)) => pending.extend_from_slice(block),
                            Ok(None) | Err(_) => ended = true,
                        }
                    }
                    let take = (period_frames * in_ch).min(pending.len());
                    let frames = take / in_ch.max(1);
                    let block = &pending[..frames * in_ch];
                    let out = &mut folded[..period_frames * out_ch];
                    out.fill(0.0);
                    fold_channels(block, in_ch, out, out_ch);
                    pending.drain(..frames * in_ch);
                    let _ = producer.push_partial_slice(out);
                    periods += 1;
                    let due = start + Duration::from_millis(10) * periods;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            })
            .map_err(|e| AudioError::Io {
                path: path.to_owned(),
                source: e,
            })?;
        Ok((
            Self {
                stop,
                thread: Some(thread),
            },
            InputRing {
                ring: consumer,
                rate,
                channels: out_ch,
                // The feeding thread keeps 10 ms periods on the clock, as the engine does (with
                // a lead that keeps its periods clear of the engine's pulls: `lead_frames`).
                burst_frames: 0,
                rests: false,
                read_now: None,
            },
        ))
    }
}

/// What a file gives ahead of the clock, with its first period: two periods and 2 ms. The
/// engine's lane starts on the first pull that finds a block in the ring, and the file and the
/// engine wake on the same clock, so a file whose periods fall just before the engine's pulls
/// has some land a moment after them instead; with less in hand each of those leaves a pull
/// 10 ms short. With this much, a period that lands a moment after a pull is still in time
/// for the next.
pub(crate) fn lead_frames(rate: u32) -> usize {
    2 * (rate as usize / 100) + rate as usize / 500
}

/// The frames of period `n` (10 ms each) of a file at `rate`: a hundredth of a second, rounded
/// so that the periods add up to the rate exactly (220 and 221 in turn at 22,050 Hz: 220 every
/// time would play the file 0.23% slow, and leave the engine short).
fn period_frames(rate: u32, n: u32) -> usize {
    let upto = |n: u32| u64::from(n) * u64::from(rate) / 100;
    usize::try_from(upto(n + 1) - upto(n)).unwrap_or(0)
}

impl Drop for PacedFile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PacedFile, lead_frames, period_frames};

    /// What the engine's lane finds when it first looks: the lead and the first period, in
    /// one delivery (the lane test `a_paced_files_lead_keeps_every_pull_whole` shows what that
    /// lead buys).
    #[test]
    fn a_paced_file_starts_with_its_lead_in_the_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voice.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for n in 0..22_050 {
            w.write_sample(i16::try_from(n % 1_000).unwrap()).unwrap();
        }
        w.finalize().unwrap();
        let (_file, mut ring) = PacedFile::start(&path, 1).unwrap();
        let since = std::time::Instant::now();
        while ring.ring.slots() == 0 {
            assert!(since.elapsed() < std::time::Duration::from_secs(5));
            std::thread::yield_now();
        }
        let first = ring.ring.slots();
        assert!(
            first >= lead_frames(22_050) + period_frames(22_050, 0),
            "{first} frames at the start"
        );
        // And it is the file, from its first sample.
        let mut got = vec![0.0f32; 3];
        let _ = ring.ring.pop_partial_slice(&mut got);
        assert_eq!(got[0], 0.0);
        assert!((got[2] - 2.0 / 32_768.0).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn a_second_of_periods_holds_a_second_of_the_file_at_any_rate() {
        for rate in [8_000, 11_025, 22_050, 44_100, 48_000, 88_200] {
            let second: usize = (0..100).map(|n| period_frames(rate, n)).sum();
            assert_eq!(second, rate as usize, "{rate} Hz");
            // And every period is a hundredth of a second, give or take a frame.
            assert!((0..100).all(|n| period_frames(rate, n).abs_diff(rate as usize / 100) <= 1));
        }
        // Hours in: still exact (no drift from rounding).
        let hour = 360_000;
        let more: usize = (hour..hour + 100).map(|n| period_frames(22_050, n)).sum();
        assert_eq!(more, 22_050);
    }
}
