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
        for s in samples {
            *s = self.tick(*s);
        }
    }

    /// Silences the line.
    pub fn reset(&mut self) {
        self.buf.fill(0.0);
        self.pos = 0;
    }
}
