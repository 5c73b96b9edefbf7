//! `booth mix`: a game recording and a voice recording in, the ducked program out.
//!
//! The offline twin of the live host pipeline: the same [`ProgramMix`] runs here on decoded files
//! instead of devices. Inputs of any format, rate and channel count are brought to 48 kHz; the
//! shorter one is padded with silence; the chain's latency (lookahead and limiter) is taken back
//! out, so the program lines up with its inputs sample for sample.
//!
//! The output is written to a hidden temporary file beside the target and renamed into place only
//! when complete, so a failure never leaves a partial file behind.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::audio::{AudioError, FileSource};
use crate::codec::{CodecError, EncoderSettings, OggOpusWriter};
use crate::dsp::{
    DspError, ProgramMix, ProgramSettings, SAMPLE_RATE, StreamResampler, fold_channels,
};

/// Frames per processing block (100 ms).
const BLOCK: usize = 4_800;

/// What `booth mix` was asked to do.
#[derive(Clone, Debug)]
pub struct MixOptions {
    /// The game (program) recording.
    pub game: PathBuf,
    /// The voice recording.
    pub mic: PathBuf,
    /// Where the program goes: `.ogg`/`.opus` for Ogg Opus, `.wav` for 16-bit WAV.
    pub out: PathBuf,
    /// Gains, ducking, ceiling.
    pub settings: ProgramSettings,
    /// Opus bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Opus encoder complexity, 0-10.
    pub complexity: u8,
    /// Bring the program to this integrated loudness (LUFS), e.g. -16 for podcasts.
    pub normalize_lufs: Option<f32>,
}

/// What a finished mix measured.
#[derive(Clone, Debug, PartialEq)]
pub struct MixSummary {
    /// The file written.
    pub out: PathBuf,
    /// Program length, seconds.
    pub duration_s: f64,
    /// Integrated loudness (EBU R128), LUFS.
    pub integrated_lufs: f32,
    /// Sample peak, dBFS.
    pub peak_dbfs: f32,
    /// Share of the program during which the game was dipped (0-1).
    pub ducked_share: f64,
    /// The gain loudness normalisation applied, dB (0 without it).
    pub normalize_gain_db: f32,
}

/// Why a mix failed. Each message names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// An input could not be read.
    #[error("{role} audio: {source}")]
    Input {
        /// "game" or "mic".
        role: &'static str,
        /// What went wrong.
        source: AudioError,
    },
    /// The output could not be written.
    #[error("cannot write '{path}': {detail}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The output's extension names no format Booth writes.
    #[error("'{0}': choose an output ending in .ogg or .opus (Ogg Opus) or .wav (WAV)")]
    OutputFormat(PathBuf),
    /// A setting out of range.
    #[error("{0}")]
    Settings(#[from] DspError),
    /// A bitrate libopus cannot do.
    #[error("bitrate {0} kbit/s is out of range: use 6 to 510")]
    Bitrate(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutFormat {
    Opus,
    Wav,
}

fn out_format(path: &Path) -> Result<OutFormat, MixError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("ogg" | "opus") => Ok(OutFormat::Opus),
        Some("wav") => Ok(OutFormat::Wav),
        _ => Err(MixError::OutputFormat(path.to_owned())),
    }
}

/// Runs the mix. `progress(done, total)` is called after every block with output frames done and
/// the expected total (0 when unknown); with normalisation, both passes report.
///
/// # Errors
/// Unreadable, corrupt or unsupported inputs, an unwritable output, settings out of range.
pub fn run(opts: &MixOptions, progress: &mut dyn FnMut(u64, u64)) -> Result<MixSummary, MixError> {
    let format = out_format(&opts.out)?;
    opts.settings.validate()?;
    if !(6..=510).contains(&opts.bitrate_kbps) {
        return Err(MixError::Bitrate(opts.bitrate_kbps));
    }

    let mut settings = opts.settings;
    let mut normalize_gain_db = 0.0;
    if let Some(target) = opts.normalize_lufs {
        crate::dsp::check_range("normalize target (LUFS)", target, -40.0, -5.0, "-40 to -5")?;
        // Two passes: each fills half the progress bar.
        let mut first_half = |done: u64, total: u64| progress(done / 2, total);
        let measured = run_pass(opts, settings, &mut Sink::Measure, &mut first_half)?;
        if measured.integrated_lufs.is_finite() {
            normalize_gain_db = (target - measured.integrated_lufs).clamp(-60.0, 40.0);
            settings.output_gain_db += normalize_gain_db;
            settings.output_gain_db = settings.output_gain_db.clamp(-60.0, 40.0);
        }
    }

    // Inputs are checked (opened) inside the pass before the output file is created.
    let tmp = temp_path(&opts.out);
    let result = (|| {
        let mut sink = Sink::create(format, &tmp, opts)?;
        let two_passes = opts.normalize_lufs.is_some();
        let mut rest = |done: u64, total: u64| {
            if two_passes {
                progress(total / 2 + done / 2, total);
            } else {
                progress(done, total);
            }
        };
        let summary = run_pass(opts, settings, &mut sink, &mut rest)?;
        sink.finish(&tmp)?;
        std::fs::rename(&tmp, &opts.out).map_err(|e| MixError::Output {
            path: opts.out.clone(),
            detail: e.to_string(),
        })?;
        Ok(summary)
    })();
    match result {
        Ok(summary) => Ok(MixSummary {
            out: opts.out.clone(),
            normalize_gain_db,
            ..summary
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `dir/.name.booth-partial`: beside the target so the rename stays on one filesystem.
fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mix".into());
    out.with_file_name(format!(".{name}.booth-partial"))
}

enum Sink {
    Measure,
    Wav(Box<hound::WavWriter<BufWriter<File>>>, PathBuf),
    Opus(Box<OggOpusWriter<BufWriter<File>>>, PathBuf),
    /// The writer has been finished and taken.
    Done,
}

impl Sink {
    fn create(format: OutFormat, tmp: &Path, opts: &MixOptions) -> Result<Self, MixError> {
        let out_err = |detail: String| MixError::Output {
            path: opts.out.clone(),
            detail,
        };
        let file = File::create(tmp).map_err(|e| out_err(e.to_string()))?;
        let w = BufWriter::with_capacity(1 << 16, file);
        Ok(match format {
            OutFormat::Wav => {
                let spec = hound::WavSpec {
                    channels: 2,
                    sample_rate: SAMPLE_RATE,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                let writer = hound::WavWriter::new(w, spec).map_err(|e| out_err(e.to_string()))?;
                Sink::Wav(Box::new(writer), opts.out.clone())
            }
            OutFormat::Opus => {
                let mut enc = EncoderSettings::music_stereo(opts.bitrate_kbps * 1000);
                enc.complexity = opts.complexity.min(10);
                let writer =
                    OggOpusWriter::new(w, &enc, SAMPLE_RATE).map_err(|e| out_err(e.to_string()))?;
                Sink::Opus(Box::new(writer), opts.out.clone())
            }
        })
    }

    fn write(&mut self, stereo: &[f32]) -> Result<(), MixError> {
        match self {
            Sink::Measure | Sink::Done => Ok(()),
            Sink::Wav(w, path) => {
                // The spec is ours (16-bit integer), so hound's fast writer cannot refuse it.
                let mut block = w.get_i16_writer(stereo.len() as u32);
                for &s in stereo {
                    block.write_sample(to_i16(s));
                }
                block.flush().map_err(|e| MixError::Output {
                    path: path.clone(),
                    detail: e.to_string(),
                })
            }
            Sink::Opus(w, path) => w.write(stereo).map_err(|e| output_codec(path, e)),
        }
    }

    fn finish(&mut self, tmp: &Path) -> Result<(), MixError> {
        let sync = |f: File, path: &Path| {
            f.sync_all().map_err(|e| MixError::Output {
                path: path.to_owned(),
                detail: e.to_string(),
            })
        };
        match std::mem::replace(self, Sink::Done) {
            Sink::Measure | Sink::Done => Ok(()),
            Sink::Wav(w, path) => {
                w.finalize().map_err(|e| MixError::Output {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                sync(open_for_sync(tmp, &path)?, &path)
            }
            Sink::Opus(w, path) => {
                let buf = w.finish().map_err(|e| output_codec(&path, e))?;
                let file = buf.into_inner().map_err(|e| MixError::Output {
                    path: path.clone(),
                    detail: e.error().to_string(),
                })?;
                sync(file, &path)
            }
        }
    }
}

/// Full scale to 16 bits, rounded to nearest. Adding and removing 1.5 x 2^23 rounds in one add
/// (no libm call on baseline x86-64); the limiter keeps samples in range, the clamp makes sure.
#[inline]
fn to_i16(s: f32) -> i16 {
    const MAGIC: f32 = 12_582_912.0;
    let scaled = (s * 32_767.0).clamp(-32_768.0, 32_767.0);
    ((scaled + MAGIC) - MAGIC) as i16
}

fn open_for_sync(tmp: &Path, path: &Path) -> Result<File, MixError> {
    File::options()
        .write(true)
        .open(tmp)
        .map_err(|e| MixError::Output {
            path: path.to_owned(),
            detail: e.to_string(),
        })
}

fn output_codec(path: &Path, e: CodecError) -> MixError {
    MixError::Output {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

/// One input on its way to 48 kHz: decode, fold channels, resample, queue.
struct Lane {
    role: &'static str,
    src: FileSource,
    resampler: StreamResampler,
    /// Channel-folded input block.
    folded: Vec<f32>,
    /// Resampled output waiting to be mixed (interleaved, `out_ch`): `queue[head..tail]`.
    queue: Vec<f32>,
    head: usize,
    tail: usize,
    out_ch: usize,
    finished: bool,
}

impl Lane {
    fn open(role: &'static str, path: &Path, out_ch: usize) -> Result<Self, MixError> {
        let input = |source| MixError::Input { role, source };
        let src = FileSource::open(path).map_err(input)?;
        let in_ch = if out_ch == 1 || src.channels() == 1 {
            1
        } else {
            2
        };
        let resampler = StreamResampler::new(src.sample_rate(), in_ch, out_ch).map_err(|e| {
            input(AudioError::Unsupported {
                path: path.to_owned(),
                detail: e.to_string(),
            })
        })?;
        Ok(Self {
            role,
            src,
            resampler,
            folded: Vec::new(),
            queue: Vec::new(),
            head: 0,
            tail: 0,
            out_ch,
            finished: false,
        })
    }

    fn queued_frames(&self) -> usize {
        (self.tail - self.head) / self.out_ch
    }

    /// Expected length at 48 kHz, if the file says.
    fn expected_frames(&self) -> Option<u64> {
        self.src
            .total_frames()
            .map(|n| n * u64::from(SAMPLE_RATE) / u64::from(self.src.sample_rate().max(1)))
    }

    /// Room for `samples` more at the tail of `queue[head..tail]`: moves the unread part to the
    /// front, and grows the queue only when that is not enough (it settles at its high-water
    /// mark). Free of `self` so it can run while the decoded block still borrows the source.
    fn make_room(queue: &mut Vec<f32>, head: &mut usize, tail: &mut usize, samples: usize) {
        if *head > 0 {
            queue.copy_within(*head..*tail, 0);
            *tail -= *head;
            *head = 0;
        }
        if queue.len() < *tail + samples {
            queue.resize(*tail + samples, 0.0);
        }
    }

    /// Decodes until at least `frames` are queued or the input ends.
    fn fill(&mut self, frames: usize) -> Result<(), MixError> {
        while !self.finished && self.queued_frames() < frames {
            let in_ch = self.src.channels();
            let fold_ch = self.resampler_in_channels();
            let role = self.role;
            let block = self
                .src
                .read()
                .map_err(|source| MixError::Input { role, source })?;
            match block {
                Some(block) => {
                    let n = block.len() / in_ch.max(1);
                    let input: &[f32] = if fold_ch == in_ch {
                        &block[..n * in_ch]
                    } else {
                        self.folded.resize(n * fold_ch, 0.0);
                        fold_channels(block, in_ch, &mut self.folded, fold_ch);
                        &self.folded
                    };
                    let max = self.resampler.output_frames_max(n) * self.out_ch;
                    Self::make_room(&mut self.queue, &mut self.head, &mut self.tail, max);
                    let wrote = self
                        .resampler
                        .process_into(input, &mut self.queue[self.tail..])?;
                    self.tail += wrote * self.out_ch;
                }
                None => {
                    let max = self.resampler.flush_frames_max() * self.out_ch;
                    Self::make_room(&mut self.queue, &mut self.head, &mut self.tail, max);
                    let wrote = self.resampler.finish_into(&mut self.queue[self.tail..])?;
                    self.tail += wrote * self.out_ch;
                    self.finished = true;
                }
            }
        }
        Ok(())
    }

    fn resampler_in_channels(&self) -> usize {
        if self.out_ch == 1 || self.src.channels() == 1 {
            1
        } else {
            2
        }
    }

    /// Copies up to `frames` queued frames into `out` (zero-filling the rest); returns how many
    /// real frames there were.
    fn take(&mut self, frames: usize, out: &mut [f32]) -> usize {
        let n = self.queued_frames().min(frames);
        let len = n * self.out_ch;
        out[..len].copy_from_slice(&self.queue[self.head..self.head + len]);
        out[len..frames * self.out_ch].fill(0.0);
        self.head += len;
        n
    }
}

fn run_pass(
    opts: &MixOptions,
    settings: ProgramSettings,
    sink: &mut Sink,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<MixSummary, MixError> {
    let mut game = Lane::open("game", &opts.game, 2)?;
    let mut mic = Lane::open("mic", &opts.mic, 1)?;
    let total_hint = game
        .expected_frames()
        .zip(mic.expected_frames())
        .map_or(0, |(a, b)| a.max(b));

    let mut program = ProgramMix::new(settings, BLOCK)?;
    let latency = program.latency_frames();
    let mut g = vec![0.0f32; BLOCK * 2];
    let mut v = vec![0.0f32; BLOCK];
    let mut out = vec![0.0f32; BLOCK * 2];
    let mut real_frames: u64 = 0; // frames of input program fed (the output's final length)
    let mut fed: u64 = 0; // frames fed including the flush
    let mut written: u64 = 0;

    loop {
        game.fill(BLOCK)?;
        mic.fill(BLOCK)?;
        let inputs_done =
            game.finished && mic.finished && game.queued_frames() == 0 && mic.queued_frames() == 0;
        let n = if inputs_done {
            // Flush the chain's latency with silence until the output is as long as the input.
            let owed = (real_frames + latency as u64).saturating_sub(fed);
            if owed == 0 {
                break;
            }
            g.fill(0.0);
            v.fill(0.0);
            owed.min(BLOCK as u64) as usize
        } else {
            let n = game.queued_frames().max(mic.queued_frames()).min(BLOCK);
            game.take(n, &mut g);
            mic.take(n, &mut v);
            real_frames += n as u64;
            n
        };
        program.process(&g[..n * 2], &v[..n], &mut out[..n * 2]);
        fed += n as u64;
        // Drop the first `latency` frames: they are the chain's delay, not the program.
        let skip = (latency as u64)
            .saturating_sub(fed - n as u64)
            .min(n as u64) as usize;
        let keep = (n - skip).min(real_frames.saturating_sub(written) as usize);
        sink.write(&out[skip * 2..(skip + keep) * 2])?;
        written += keep as u64;
        progress(written, total_hint.max(written));
    }

    let duration_s = written as f64 / f64::from(SAMPLE_RATE);
    let ducked = program.ducker().ducked_frames();
    let meters = program.meters();
    Ok(MixSummary {
        out: opts.out.clone(),
        duration_s,
        integrated_lufs: meters.integrated_lufs(),
        peak_dbfs: meters.overall_peak_dbfs(),
        ducked_share: if written > 0 {
            (ducked as f64 / written as f64).min(1.0)
        } else {
            0.0
        },
        normalize_gain_db: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_conversion_rounds_and_clamps() {
        assert_eq!(to_i16(0.0), 0);
        assert_eq!(to_i16(1.0), 32_767);
        assert_eq!(to_i16(-1.0), -32_767);
        assert_eq!(to_i16(2.0), 32_767);
        assert_eq!(to_i16(-2.0), -32_768);
        assert_eq!(to_i16(0.6 / 32_767.0), 1);
        assert_eq!(to_i16(-0.6 / 32_767.0), -1);
        assert_eq!(to_i16(0.4 / 32_767.0), 0);
    }
}
