//! The sample formats a stream is carried in, and the buffer its samples wait in between the
//! socket and the callback.
//!
//! Never here: IO. Buffers grow to a period's worth and stay.

use cpal::SampleFormat;
use pulseaudio::protocol;

/// The sample formats a stream is captured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Format {
    I16,
    F32,
}

impl Format {
    pub(super) fn of(format: SampleFormat) -> Option<Self> {
        match format {
            SampleFormat::I16 => Some(Self::I16),
            SampleFormat::F32 => Some(Self::F32),
            _ => None,
        }
    }

    pub(super) fn sample_format(self) -> SampleFormat {
        match self {
            Self::I16 => SampleFormat::I16,
            Self::F32 => SampleFormat::F32,
        }
    }

    pub(super) fn bytes(self) -> u32 {
        match self {
            Self::I16 => 2,
            Self::F32 => 4,
        }
    }

    /// In this machine's byte order, as samples are handed on.
    pub(super) fn on_the_wire(self) -> protocol::SampleFormat {
        let little = cfg!(target_endian = "little");
        match (self, little) {
            (Self::I16, true) => protocol::SampleFormat::S16Le,
            (Self::I16, false) => protocol::SampleFormat::S16Be,
            (Self::F32, true) => protocol::SampleFormat::Float32Le,
            (Self::F32, false) => protocol::SampleFormat::Float32Be,
        }
    }
}

/// Samples waiting for a stream's callback, in the stream's format.
pub(super) enum Samples {
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl Samples {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::I16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    /// Appends the whole samples of `bytes` (in this machine's byte order).
    pub(super) fn extend_from_bytes(&mut self, bytes: &[u8]) {
        match self {
            Self::I16(v) => v.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_ne_bytes([b[0], b[1]])),
            ),
            Self::F32(v) => v.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
            ),
        }
    }

    /// At least `n` long (a playback buffer), zeros where it grew.
    pub(super) fn ensure(&mut self, n: usize) {
        match self {
            Self::I16(v) if v.len() < n => v.resize(n, 0),
            Self::F32(v) if v.len() < n => v.resize(n, 0.0),
            _ => {}
        }
    }

    /// Appends the first `n` samples to `out` as bytes, in this machine's byte order.
    pub(super) fn append_bytes(&self, n: usize, out: &mut Vec<u8>) {
        match self {
            Self::I16(v) => v[..n]
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_ne_bytes())),
            Self::F32(v) => v[..n]
                .iter()
                .for_each(|s| out.extend_from_slice(&s.to_ne_bytes())),
        }
    }

    /// Drops the first `n`, handed over.
    pub(super) fn consume(&mut self, n: usize) {
        match self {
            Self::I16(v) => drop(v.drain(..n)),
            Self::F32(v) => drop(v.drain(..n)),
        }
    }
}
