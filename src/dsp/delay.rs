//! A fixed delay line on interleaved frames: the lookahead that puts the program behind its key.

/// Delays interleaved audio by a fixed number of frames. Sized once; never allocates after.
#[derive(Clone, Debug)]
pub struct DelayLine {
    buf: Vec<f32>,
    pos: usize,
}

impl DelayLine {
    /// A delay of `frames` frames of `channels` channels, initially silent.
    #[must_use]
    pub fn new(frames: usize, channels: usize) -> Self {
        Self {
            buf: vec![0.0; frames * channels],
            pos: 0,
        }
    }

    /// The delay in samples (frames x channels).
    #[must_use]
    pub fn len_samples(&self) -> usize {
        self.buf.len()
    }

    /// Pushes one sample in and returns the sample that went in `len_samples()` samples ago.
    #[inline]
    pub fn tick(&mut self, x: f32) -> f32 {
        if self.buf.is_empty() {
            return x;
        }
        let y = std::mem::replace(&mut self.buf[self.pos], x);
        self.pos += 1;
        if self.pos == self.buf.len() {
            self.pos = 0;
        }
        y
    }

    /// Delays a block in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        let len = self.buf.len();
        if len == 0 {
            return;
        }
        // Swapping runs of the block with the ring is exactly "out = what went in `len` ago".
        let mut done = 0;
        while done < samples.len() {
            let run = (len - self.pos).min(samples.len() - done);
            self.buf[self.pos..self.pos + run].swap_with_slice(&mut samples[done..done + run]);
            done += run;
            self.pos += run;
            if self.pos == len {
                self.pos = 0;
            }
        }
    }

    /// Silences the line.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_sample_paths_agree_for_any_block_size() {
        let input: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        for delay in [0, 1, 7, 64] {
            let mut a = DelayLine::new(delay, 2);
            let mut b = DelayLine::new(delay, 2);
            let by_sample: Vec<f32> = input.iter().map(|&x| a.tick(x)).collect();
            let mut by_block = input.clone();
            for chunk in by_block.chunks_mut(13 + delay) {
                b.process(chunk);
            }
            assert_eq!(by_sample, by_block, "delay {delay}");
            assert_eq!(by_block[delay * 2 + 5], 5.0);
        }
    }
}
