//! A file played into a ring in real time, as a device would deliver it: 10 ms periods on the
//! file's own rate, paced by the clock. Used by `booth host --game-file/--mic-file`, and by tests
//! that need a live source without a sound card. After the file ends it delivers silence, like a
//! device with nothing playing.

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
                let period_frames = (rate / 100) as usize;
                let mut pending: Vec<f32> = Vec::new();
                let mut folded = vec![0.0f32; period_frames * 2];
                let mut ended = false;
                let start = Instant::now();
                let mut periods: u32 = 0;
                while !thread_stop.load(Ordering::Relaxed) {
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
                // The feeding thread keeps 10 ms periods on the clock, as the engine does.
                burst_frames: 0,
                read_now: None,
            },
        ))
    }
}

impl Drop for PacedFile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
