//! Pure signal processing: the audio core that `booth mix` and the live engine share.
//!
//! Everything here is samples in, samples out. No IO, no threads, no clocks, no logging, and no
//! allocation after construction: every type sizes its buffers in `new` (callers size theirs once
//! from the `*_max` methods), so the whole chain can run inside a real-time loop.
//!
//! The program chain, in order (see [`ProgramMix`]):
//! game (stereo) and voice (mono), both at 48 kHz ([`StreamResampler`] gets files there,
//! [`SteeredResampler`] live devices, steered by [`FillSteering`] from a ring's fill) ->
//! [`VoiceActivity`] on the voice keys the [`Ducker`], which dips the game with lookahead ->
//! [`mix_into`] (game x duck gain x game gain + voice x voice gain) -> [`Limiter`] (a ceiling
//! that is never exceeded) -> [`LoudnessMeter`] (peak, RMS, EBU R128 loudness). An episode's
//! rendering holds its true peak (between samples) with [`TruePeakLimiter`]. Live, the voice
//! first goes through the engine's mic chain: a high-pass and the [`Denoiser`] (noise
//! suppression that rests while the host is not speaking).
//!
//! Samples are `f32`, interleaved, full scale 1.0.

mod biquad;
mod delay;
mod denoise;
mod ducker;
mod frames;
mod limiter;
mod meters;
mod mixer;
mod program;
mod resampler;
mod steered;
mod steering;
mod true_peak;
mod vad;

pub use biquad::Biquad;
pub use delay::DelayLine;
pub use denoise::Denoiser;
pub use ducker::{Ducker, DuckerParams, Key};
pub use frames::{downmix_to_mono, downmix_to_stereo, fold_channels};
pub use limiter::Limiter;
pub use meters::{LoudnessMeter, MeterReadings};
pub use mixer::mix_into;
pub use program::{ProgramMix, ProgramSettings};
pub use resampler::StreamResampler;
pub use steered::SteeredResampler;
pub use steering::FillSteering;
pub use true_peak::TruePeakLimiter;
pub use vad::VoiceActivity;

/// The rate everything inside Booth runs at.
pub const SAMPLE_RATE: u32 = 48_000;

/// Errors from building a dsp object with parameters it cannot honour.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DspError {
    /// A sample rate outside what Booth accepts.
    #[error("sample rate {0} Hz is not supported: Booth takes 8,000 to 192,000 Hz")]
    UnsupportedRate(u32),
    /// A channel count this object cannot take.
    #[error("{0} channels are not supported here: expected {1}")]
    UnsupportedChannels(usize, &'static str),
    /// A parameter out of its range.
    #[error("{name} = {value} is out of range ({range})")]
    OutOfRange {
        /// What the parameter is called.
        name: &'static str,
        /// The value given.
        value: f32,
        /// The accepted range, for the message.
        range: &'static str,
    },
    /// A caller's buffer too small for the result; size buffers with the `*_max` methods.
    #[error("output buffer holds {have} samples but {need} are needed")]
    OutputTooSmall {
        /// Samples the buffer holds.
        have: usize,
        /// Samples needed.
        need: usize,
    },
    /// A block of input of another size than the one asked for.
    #[error("input block holds {have} samples but {need} were asked for")]
    WrongInputSize {
        /// Samples given.
        have: usize,
        /// Samples asked for.
        need: usize,
    },
    /// The resampler library refused its parameters.
    #[error("resampler: {0}")]
    Resampler(String),
}

/// Decibels to a linear amplitude factor.
#[must_use]
pub fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// The lowest level a meter shows: below it (a gated mic's residue, a denormal) is silence.
pub const METER_FLOOR_DB: f32 = -90.0;

/// A peak or level for a meter readout, `width` wide with one decimal; at or below
/// [`METER_FLOOR_DB`] it reads `-inf`.
#[must_use]
pub fn meter_text(db: f32, width: usize) -> String {
    if db.is_finite() && db > METER_FLOOR_DB {
        format!("{db:>width$.1}")
    } else {
        format!("{:>width$}", "-inf")
    }
}

/// A linear amplitude to decibels (full scale 1.0 = 0 dB); silence is -inf.
#[must_use]
pub fn gain_to_db(gain: f32) -> f32 {
    20.0 * gain.abs().log10()
}

/// A level in dB on the 60 dB scale of Booth's meters and speaking lights: -60 dB and below
/// is 0, 0 dB and above is 1; a NaN reads as 0.
#[must_use]
pub fn level_fraction(db: f32) -> f32 {
    let fraction = ((db + 60.0) / 60.0).clamp(0.0, 1.0);
    if fraction.is_nan() { 0.0 } else { fraction }
}

/// Milliseconds to whole frames at 48 kHz.
#[must_use]
pub fn ms_to_frames(ms: f32) -> usize {
    // Negative or NaN durations count as zero; callers validate ranges where it matters.
    let frames = (ms.max(0.0) * SAMPLE_RATE as f32 / 1000.0).round();
    if frames.is_finite() {
        frames as usize
    } else {
        0
    }
}

/// Checks that `value` lies in `lo..=hi`; the error names the parameter and the range.
///
/// # Errors
/// A value out of range, or not a number.
pub fn check_range(
    name: &'static str,
    value: f32,
    lo: f32,
    hi: f32,
    range: &'static str,
) -> Result<f32, DspError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(DspError::OutOfRange { name, value, range })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_span_sixty_db_and_silence_or_nan_read_zero() {
        assert_eq!(level_fraction(0.0), 1.0);
        assert_eq!(level_fraction(6.0), 1.0);
        assert_eq!(level_fraction(-30.0), 0.5);
        assert_eq!(level_fraction(-60.0), 0.0);
        assert_eq!(level_fraction(f32::NEG_INFINITY), 0.0);
        assert_eq!(level_fraction(f32::NAN), 0.0);
    }

    #[test]
    fn a_meter_reads_silence_below_its_floor() {
        assert_eq!(meter_text(-12.34, 6), " -12.3");
        assert_eq!(meter_text(0.0, 6), "   0.0");
        // A gated mic's residue and true silence both read as silence, the same width.
        assert_eq!(meter_text(-467.0, 6), "  -inf");
        assert_eq!(meter_text(f32::NEG_INFINITY, 6), "  -inf");
        assert_eq!(meter_text(f32::NAN, 6), "  -inf");
    }
}
