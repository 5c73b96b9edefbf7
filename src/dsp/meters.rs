//! Meters: sample peak, RMS, and EBU R128 loudness (momentary, short-term, integrated).
//!
//! Loudness comes from the `ebur128` crate (a port of libebur128, the reference the broadcast
//! world uses) in histogram mode, so integrated loudness over hours needs no growing memory.

use ebur128::{EbuR128, Mode};

use super::{DspError, SAMPLE_RATE, gain_to_db};

/// What the meters read, in dBFS and LUFS. Silence reads -inf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeterReadings {
    /// Highest sample magnitude since the last reading, dBFS.
    pub peak_dbfs: f32,
    /// RMS since the last reading, dBFS (a full-scale sine reads 0 dBFS).
    pub rms_dbfs: f32,
    /// EBU R128 momentary loudness (400 ms), LUFS.
    pub momentary_lufs: f32,
    /// EBU R128 short-term loudness (3 s), LUFS.
    pub short_term_lufs: f32,
    /// EBU R128 integrated (gated) loudness since the start, LUFS.
    pub integrated_lufs: f32,
}

/// Stereo program meters at 48 kHz.
pub struct Meters {
    ebu: EbuR128,
    peak: f32,
    sum_sq: f64,
    count: u64,
    overall_peak: f32,
}

impl std::fmt::Debug for Meters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meters")
            .field("overall_peak", &self.overall_peak)
            .finish_non_exhaustive()
    }
}

impl Meters {
    /// Meters for 48 kHz stereo.
    ///
    /// # Errors
    /// Only if the loudness meter cannot be built (it can for 48 kHz stereo).
    pub fn new() -> Result<Self, DspError> {
        let ebu = EbuR128::new(
            2,
            SAMPLE_RATE,
            Mode::M | Mode::S | Mode::I | Mode::HISTOGRAM,
        )
        .map_err(|e| DspError::Meter(format!("{e:?}")))?;
        Ok(Self {
            ebu,
            peak: 0.0,
            sum_sq: 0.0,
            count: 0,
            overall_peak: 0.0,
        })
    }

    /// Measures a block of stereo interleaved samples.
    pub fn process(&mut self, samples: &[f32]) {
        let mut peak = self.peak;
        let mut sum = 0.0f32;
        for &s in samples {
            peak = peak.max(s.abs());
            sum += s * s;
        }
        self.peak = peak;
        self.overall_peak = self.overall_peak.max(peak);
        self.sum_sq += f64::from(sum);
        self.count += samples.len() as u64;
        // Only a wrong channel count can fail here, and the slice is ours to get right.
        let _ = self.ebu.add_frames_f32(&samples[..samples.len() / 2 * 2]);
    }

    /// Reads peak and RMS only (they restart for the next reading); the loudness fields are
    /// left -inf. Cheap enough for every block: the EBU R128 momentary and short-term values
    /// sum 0.4 s and 3 s of audio each time they are read, so a live meter reads them about ten
    /// times a second through [`read`](Self::read).
    pub fn read_levels(&mut self) -> MeterReadings {
        let rms = if self.count > 0 {
            (self.sum_sq / self.count as f64).sqrt() as f32
        } else {
            0.0
        };
        let r = MeterReadings {
            peak_dbfs: gain_to_db(self.peak),
            // +3 dB so a full-scale sine reads 0 dBFS, as on a console's meter.
            rms_dbfs: gain_to_db(rms) + 3.010_3,
            momentary_lufs: f32::NEG_INFINITY,
            short_term_lufs: f32::NEG_INFINITY,
            integrated_lufs: f32::NEG_INFINITY,
        };
        self.peak = 0.0;
        self.sum_sq = 0.0;
        self.count = 0;
        r
    }

    /// Reads every meter; peak and RMS restart for the next reading.
    pub fn read(&mut self) -> MeterReadings {
        MeterReadings {
            momentary_lufs: self.momentary_lufs(),
            short_term_lufs: self.short_term_lufs(),
            integrated_lufs: self.integrated_lufs(),
            ..self.read_levels()
        }
    }

    /// Momentary loudness (the last 0.4 s), LUFS. Sums 0.4 s of audio: read it ten times a
    /// second, not every block.
    #[must_use]
    pub fn momentary_lufs(&self) -> f32 {
        lufs(self.ebu.loudness_momentary())
    }

    /// Short-term loudness (the last 3 s), LUFS. Sums 3 s of audio: a few readings a second are
    /// plenty.
    #[must_use]
    pub fn short_term_lufs(&self) -> f32 {
        lufs(self.ebu.loudness_shortterm())
    }

    /// Integrated loudness since the start, LUFS (-inf for silence).
    #[must_use]
    pub fn integrated_lufs(&self) -> f32 {
        lufs(self.ebu.loudness_global())
    }

    /// Highest sample magnitude since the start, dBFS.
    #[must_use]
    pub fn overall_peak_dbfs(&self) -> f32 {
        gain_to_db(self.overall_peak)
    }

    /// Starts over.
    pub fn reset(&mut self) {
        self.ebu.reset();
        self.peak = 0.0;
        self.sum_sq = 0.0;
        self.count = 0;
        self.overall_peak = 0.0;
    }
}

fn lufs(v: Result<f64, ebur128::Error>) -> f32 {
    v.map_or(f32::NEG_INFINITY, |x| x as f32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_sine_reads_zero_dbfs_and_ebu_reference_level() {
        let mut m = Meters::new().unwrap();
        // EBU Tech 3341, test 1: a 1 kHz sine at -23 dBFS on both channels reads -23 LUFS.
        let a = 10f32.powf(-23.0 / 20.0);
        let block: Vec<f32> = (0..48_000 * 5)
            .flat_map(|i| {
                let x = a * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin();
                [x, x]
            })
            .collect();
        m.process(&block);
        let r = m.read();
        assert!((r.rms_dbfs + 23.0).abs() < 0.05, "{r:?}");
        assert!((r.peak_dbfs + 23.0).abs() < 0.05, "{r:?}");
        assert!((r.integrated_lufs + 23.0).abs() < 0.1, "{r:?}");
    }
}
