//! A streaming resampler from any rate (8-192 kHz), mono or stereo, to 48 kHz.
//!
//! rubato's synchronous FFT resampler does the work: as clean as its best sinc resampler at a
//! fraction of the cost, which matters because `booth mix` runs hours of audio. Blocks of any size
//! go in; the resampler keeps a partial chunk between calls, trims the filter's start-up delay, and
//! on [`StreamResampler::finish_into`] flushes its tail so the stream's length comes out exact:
//! `round(input frames x 48000 / rate)`, however the input was cut into blocks.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::{DspError, SAMPLE_RATE};

/// Input frames per FFT chunk: small enough for low delay, large enough to be cheap.
const CHUNK: usize = 1024;

/// Streams audio at one rate into 48 kHz with 1 or 2 output channels.
pub struct StreamResampler {
    fft: Option<Fft<f32>>,
    in_channels: usize,
    out_channels: usize,
    rate: u32,
    /// Input frames waiting for a full chunk (interleaved, `in_channels`).
    pending: Vec<f32>,
    pending_frames: usize,
    /// One chunk's worth of output, before channel mapping.
    scratch: Vec<f32>,
    /// Output frames of start-up delay still to drop.
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("rate", &self.rate)
            .field("in_channels", &self.in_channels)
            .field("out_channels", &self.out_channels)
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    /// A resampler from `rate` Hz with `in_channels` (1 or 2) to 48 kHz with `out_channels` (1 or
    /// 2). Mono input is copied to both sides; stereo to mono takes the mean.
    ///
    /// # Errors
    /// A rate outside 8-192 kHz or a channel count other than 1 or 2.
    pub fn new(rate: u32, in_channels: usize, out_channels: usize) -> Result<Self, DspError> {
        if !(8_000..=192_000).contains(&rate) {
            return Err(DspError::UnsupportedRate(rate));
        }
        for ch in [in_channels, out_channels] {
            if !(1..=2).contains(&ch) {
                return Err(DspError::UnsupportedChannels(ch, "1 or 2"));
            }
        }
        let fft = if rate == SAMPLE_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    rate as usize,
                    SAMPLE_RATE as usize,
                    CHUNK,
                    in_channels,
                    FixedSync::Input,
                )
                .map_err(|e| DspError::Resampler(e.to_string()))?,
            )
        };
        let (scratch_frames, delay) = fft
            .as_ref()
            .map_or((0, 0), |f| (f.output_frames_max(), f.output_delay()));
        Ok(Self {
            fft,
            in_channels,
            out_channels,
            rate,
            pending: vec![0.0; CHUNK * in_channels],
            pending_frames: 0,
            scratch: vec![0.0; scratch_frames * in_channels],
            delay_left: delay,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The input rate.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Output channels.
    #[must_use]
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// The most output frames one [`process_into`](Self::process_into) call with `input_frames`
    /// frames can write: size the output buffer with it once.
    #[must_use]
    pub fn output_frames_max(&self, input_frames: usize) -> usize {
        match &self.fft {
            None => input_frames,
            Some(fft) => (input_frames / CHUNK + 1) * fft.output_frames_max(),
        }
    }

    /// The most output frames [`finish_into`](Self::finish_into) can write.
    #[must_use]
    pub fn flush_frames_max(&self) -> usize {
        match &self.fft {
            None => 0,
            Some(fft) => {
                let chunks_for_delay = fft.output_delay() / fft.output_frames_max().max(1) + 2;
                chunks_for_delay * fft.output_frames_max()
            }
        }
    }

    /// Frames this stream should have produced in all: the exact length of the input at 48 kHz.
    #[must_use]
    pub fn expected_output_frames(&self) -> u64 {
        let num = u128::from(self.frames_in) * u128::from(SAMPLE_RATE);
        let den = u128::from(self.rate);
        ((num + den / 2) / den) as u64
    }

    /// Resamples `input` (interleaved, `in_channels`) into `out` (interleaved, `out_channels`);
    /// returns the frames written. Never allocates.
    ///
    /// # Errors
    /// `out` shorter than [`output_frames_max`](Self::output_frames_max) for this input.
    pub fn process_into(&mut self, input: &[f32], out: &mut [f32]) -> Result<usize, DspError> {
        let frames = input.len() / self.in_channels;
        let need = self.output_frames_max(frames) * self.out_channels;
        if out.len() < need {
            return Err(DspError::OutputTooSmall {
                have: out.len(),
                need,
            });
        }
        self.frames_in += frames as u64;
        if self.fft.is_none() {
            let written = super::fold_channels(input, self.in_channels, out, self.out_channels);
            self.frames_out += written as u64;
            return Ok(written);
        }
        let mut written = 0;
        let mut rest = &input[..frames * self.in_channels];
        while !rest.is_empty() {
            let space = (CHUNK - self.pending_frames) * self.in_channels;
            let take = space.min(rest.len());
            let start = self.pending_frames * self.in_channels;
            self.pending[start..start + take].copy_from_slice(&rest[..take]);
            self.pending_frames += take / self.in_channels;
            rest = &rest[take..];
            if self.pending_frames == CHUNK {
                written += self.run_chunk(&mut out[written * self.out_channels..])?;
            }
        }
        Ok(written)
    }

    /// Ends the stream: pushes the partial chunk and the filter's tail through and writes the last
    /// frames, so the total output is exactly [`expected_output_frames`](Self::expected_output_frames).
    ///
    /// # Errors
    /// `out` shorter than [`flush_frames_max`](Self::flush_frames_max) frames.
    pub fn finish_into(&mut self, out: &mut [f32]) -> Result<usize, DspError> {
        let need = self.flush_frames_max() * self.out_channels;
        if out.len() < need {
            return Err(DspError::OutputTooSmall {
                have: out.len(),
                need,
            });
        }
        let expected = self.expected_output_frames();
        let mut written = 0;
        let chunk_out = self
            .fft
            .as_ref()
            .map_or(1, |f| f.output_frames_max().max(1));
        // Bounded by what `flush_frames_max` promised, so `out` can never overflow.
        let mut chunks_left = self.flush_frames_max() / chunk_out;
        while self.fft.is_some() && self.frames_out < expected && chunks_left > 0 {
            self.pending[self.pending_frames * self.in_channels..].fill(0.0);
            self.pending_frames = CHUNK;
            written += self.run_chunk(&mut out[written * self.out_channels..])?;
            chunks_left -= 1;
        }
        if self.frames_out < expected {
            // The filter's tail was shorter than promised: pad the last frames with silence.
            let short = ((expected - self.frames_out) as usize)
                .min(out.len() / self.out_channels - written);
            out[written * self.out_channels..(written + short) * self.out_channels].fill(0.0);
            written += short;
            self.frames_out += short as u64;
        }
        // The last chunk overshoots by up to a chunk of zeros: cut back to the exact length.
        let over = self.frames_out.saturating_sub(expected) as usize;
        let written = written.saturating_sub(over);
        self.frames_out = self.frames_out.min(expected);
        Ok(written)
    }

    /// Runs one full pending chunk; writes mapped output after the start-up delay.
    fn run_chunk(&mut self, out: &mut [f32]) -> Result<usize, DspError> {
        let Some(fft) = self.fft.as_mut() else {
            return Ok(0);
        };
        let ch = self.in_channels;
        let cap = self.scratch.len() / ch;
        let input = InterleavedSlice::new(&self.pending[..], ch, CHUNK)
            .map_err(|e| DspError::Resampler(e.to_string()))?;
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], ch, cap)
            .map_err(|e| DspError::Resampler(e.to_string()))?;
        let (_, produced) = fft
            .process_into_buffer(&input, &mut output, None::<&Indexing>)
            .map_err(|e| DspError::Resampler(e.to_string()))?;
        self.pending_frames = 0;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        let fresh = &self.scratch[skip * ch..produced * ch];
        let written = super::fold_channels(fresh, ch, out, self.out_channels);
        self.frames_out += written as u64;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: u32, frames: usize, block: usize) -> usize {
        let mut r = StreamResampler::new(rate, 1, 2).unwrap();
        let input = vec![0.1f32; block];
        let mut out = vec![0.0; r.output_frames_max(block).max(r.flush_frames_max()) * 2];
        let mut total = 0;
        let mut left = frames;
        while left > 0 {
            let n = left.min(block);
            total += r.process_into(&input[..n], &mut out).unwrap();
            left -= n;
        }
        total + r.finish_into(&mut out).unwrap()
    }

    #[test]
    fn exact_length_for_common_rates() {
        for rate in [
            8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 88_200, 96_000, 192_000,
        ] {
            for frames in [0, 1, 999, 44_100, 100_003] {
                let want = (frames as f64 * 48_000.0 / f64::from(rate)).round() as usize;
                assert_eq!(run(rate, frames, 333), want, "rate {rate} frames {frames}");
            }
        }
    }

    #[test]
    fn rejects_bad_rates_and_layouts() {
        assert!(StreamResampler::new(7_999, 1, 2).is_err());
        assert!(StreamResampler::new(200_000, 1, 2).is_err());
        assert!(StreamResampler::new(44_100, 3, 2).is_err());
    }

    #[test]
    fn small_output_buffer_is_an_error_not_a_panic() {
        let mut r = StreamResampler::new(44_100, 2, 2).unwrap();
        let mut out = [0.0; 4];
        assert!(r.process_into(&[0.0; 4096], &mut out).is_err());
    }
}
