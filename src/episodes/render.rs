//! Rendering an episode once its room ends: the recorded program (Ogg Opus) becomes the MP3
//! podcast apps play, normalised to -16 LUFS integrated with its true peak under -1 dBTP, tagged
//! (ID3v2.4 with chapters), and the Podcasting 2.0 JSON chapters file beside it. The Ogg Opus
//! program stays as the feed's alternate enclosure, untouched.
//!
//! ONE pass over the audio: decode -> gain -> [`TruePeakLimiter`] -> LAME -> file, LAME on a
//! thread of its own so the two halves share the machine's cores. The gain is
//! known before the pass because the program's integrated loudness is measured while it is
//! recorded (`dsp::LoudnessMeter` on the writer thread), and handed in as
//! [`RenderJob::loudness_lufs`]. When it is not known (a recording repaired after a crash), a
//! first pass measures it with the same meter: two decodes instead of one, the documented
//! fallback.
//!
//! Files are written under a temporary name in the episode's directory and renamed when
//! complete, so a crash never leaves a half MP3 under the real name. Never here: HTTP, the
//! database, the room.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Chapter;
pub use super::id3::Artwork;
use super::id3::{Id3Error, MAX_CHAPTERS, TagChapter, TagFields, id3v2_4};
use crate::codec::{CodecError, Mp3Encoder, Mp3Settings, OggOpusReader};
use crate::dsp::{LoudnessMeter, TruePeakLimiter};

/// The loudness podcasts are normalised to (Apple's and Spotify's recommendation), LUFS.
pub const TARGET_LUFS: f64 = -16.0;
/// The true-peak ceiling the limiter holds: half a dB under the -1 dBTP promised, so what an
/// MP3 decoder reconstructs (the codec moves peaks a little) still stays under -1 dBTP.
pub const CEILING_DBTP: f32 = -1.5;
/// The most a quiet program is raised, dB: a near-silent room stays quiet rather than have its
/// noise floor pumped up to speech level.
pub const MAX_GAIN_DB: f64 = 20.0;
/// The MP3's name in the episode's directory.
pub const MP3_FILE: &str = "episode.mp3";
/// The chapters file's name in the episode's directory.
pub const CHAPTERS_FILE: &str = "chapters.json";
/// How the MP3 is encoded: 128 kbit/s CBR stereo at 48 kHz. LAME quality 5 (LAME's default is
/// 3): LAME is most of a render's time, and an hour-long room must be published within a minute
/// of its end on two cores (docs/PERFORMANCE.md, "Rendering an episode").
pub const MP3_SETTINGS: Mp3Settings = Mp3Settings {
    sample_rate: 48_000,
    channels: 2,
    bitrate_kbps: 128,
    quality: 5,
};

/// What an episode is rendered from, besides its program.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderJob {
    /// The episode's title.
    pub title: String,
    /// The show's title.
    pub show_title: String,
    /// Who makes the show.
    pub author: String,
    /// When recording started, ms since the Unix epoch (the tag's date).
    pub started_ms: i64,
    /// The cover to embed, if any.
    pub artwork: Option<Artwork>,
    /// Marked moments; any order (they are sorted), at most [`MAX_CHAPTERS`] in the MP3.
    pub chapters: Vec<Chapter>,
    /// The program's integrated loudness measured while recording, LUFS; `None` measures it
    /// in a first pass.
    pub loudness_lufs: Option<f64>,
}

/// What rendering made.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The MP3's file name in the output directory.
    pub mp3: String,
    /// Its exact size in bytes.
    pub mp3_bytes: u64,
    /// Length of the audio, ms.
    pub duration_ms: u64,
    /// The JSON chapters file's name in the output directory.
    pub chapters: String,
    /// The integrated loudness the gain was worked out from, LUFS (as handed in or as
    /// measured); `None` for a silent program, which gets no gain.
    pub loudness_lufs: Option<f64>,
    /// The gain applied before the limiter, dB.
    pub gain_db: f64,
}

/// Why an episode could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The program file cannot be opened or read.
    #[error("cannot read the program {path}: {source}")]
    Read {
        /// The program's path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The program is not Ogg Opus, or is damaged.
    #[error("the program {path} does not decode: {source}")]
    Decode {
        /// The program's path.
        path: PathBuf,
        /// What the decoder said.
        source: CodecError,
    },
    /// The program has a channel layout rendering does not take.
    #[error("the program has {0} channels; episodes are rendered from mono or stereo programs")]
    Channels(u8),
    /// LAME failed.
    #[error("MP3 encoding failed: {0}")]
    Encode(CodecError),
    /// The ID3 tag cannot be made (artwork too large, too many chapters).
    #[error("the MP3's tag: {0}")]
    Tag(#[from] Id3Error),
    /// An output file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

fn open_program(program: &Path) -> Result<OggOpusReader<BufReader<File>>, RenderError> {
    let file = File::open(program).map_err(|source| RenderError::Read {
        path: program.to_path_buf(),
        source,
    })?;
    let reader = OggOpusReader::new(BufReader::with_capacity(1 << 16, file)).map_err(|source| {
        RenderError::Decode {
            path: program.to_path_buf(),
            source,
        }
    })?;
    match reader.channels() {
        1 | 2 => Ok(reader),
        n => Err(RenderError::Channels(n)),
    }
}

/// Interleaved stereo from a block of `channels` (1 or 2) into `out`, scaled by `gain`.
fn stereo_with_gain(block: &[f32], channels: u8, gain: f32, out: &mut Vec<f32>) {
    out.clear();
    if channels == 1 {
        out.extend(block.iter().flat_map(|&x| [x * gain, x * gain]));
    } else {
        out.extend(block.iter().map(|&x| x * gain));
    }
}

/// The program's integrated loudness, LUFS (-inf for silence): the fallback pass, for a
/// program whose loudness was not measured while it was recorded.
///
/// # Errors
/// [`RenderError::Read`], [`RenderError::Decode`] or [`RenderError::Channels`].
pub fn measure_loudness(program: &Path) -> Result<f64, RenderError> {
    let mut reader = open_program(program)?;
    let channels = reader.channels();
    let mut meter = LoudnessMeter::new();
    let mut stereo = Vec::new();
    while let Some(block) = reader.read().map_err(|source| RenderError::Decode {
        path: program.to_path_buf(),
        source,
    })? {
        stereo_with_gain(block, channels, 1.0, &mut stereo);
        meter.process(&stereo);
    }
    Ok(f64::from(meter.integrated_lufs()))
}

/// The gain that brings `loudness` to [`TARGET_LUFS`], at most [`MAX_GAIN_DB`]; none for
/// silence or a reading that is not a number.
#[must_use]
pub fn normalising_gain_db(loudness_lufs: f64) -> f64 {
    if loudness_lufs.is_finite() {
        (TARGET_LUFS - loudness_lufs).min(MAX_GAIN_DB)
    } else {
        0.0
    }
}

/// How often the makeup gain is steered: every 100 ms, as often as loudness readings change.
const STEER_EVERY_FRAMES: usize = 4_800;
/// dB of makeup per LU of error per step: about 2 s to give back what a heavily limited
/// stretch of speech loses, slow enough not to pump.
const STEER_RATE: f64 = 0.05;
/// The most makeup (or cut) the steering applies, dB.
const MAX_MAKEUP_DB: f64 = 6.0;

/// The program's audio through gain, limiter and LAME into a writer.
struct Chain {
    gain: f32,
    /// The output loudness the gain aims at (the target, unless the gain was capped).
    aim_lufs: f64,
    /// The limiter's output, metered: what it took off is given back (see `steer`).
    meter: LoudnessMeter,
    makeup_db: f64,
    /// The makeup gain reached at the end of the last block (ramped to the next value).
    makeup_applied: f32,
    since_steer: usize,
    limiter: TruePeakLimiter,
    /// LAME, on the other core.
    lame: LameThread,
    /// Limiter output frames still to drop: its latency, so the MP3 starts with the program.
    lead_in: usize,
    frames_in: u64,
    stereo: Vec<f32>,
}

impl Chain {
    fn new(gain_db: f64, aim_lufs: f64, file: Mp3File) -> Result<Self, RenderError> {
        let limiter = TruePeakLimiter::new(CEILING_DBTP).map_err(|e| {
            RenderError::Encode(CodecError::InvalidSettings(format!("limiter: {e}")))
        })?;
        Ok(Self {
            gain: 10f64.powf(gain_db / 20.0) as f32,
            aim_lufs,
            meter: LoudnessMeter::new(),
            makeup_db: 0.0,
            makeup_applied: 1.0,
            since_steer: 0,
            lead_in: limiter.latency_frames(),
            limiter,
            lame: LameThread::start(file)?,
            frames_in: 0,
            stereo: Vec::with_capacity(2 * 5_760),
        })
    }

    /// Limits and encodes `self.stereo` (gain already applied).
    fn encode_stereo(&mut self) -> Result<(), RenderError> {
        self.limiter.process(&mut self.stereo);
        let drop = self.lead_in.min(self.stereo.len() / 2);
        self.lead_in -= drop;
        let out = &self.stereo[drop * 2..];
        self.meter.process(out);
        self.since_steer += out.len() / 2;
        self.lame.encode(out.to_vec())?;
        if self.since_steer >= STEER_EVERY_FRAMES {
            self.since_steer = 0;
            self.steer();
        }
        Ok(())
    }

    /// Loudness the limiter takes off (speech peaks far over the ceiling after a big gain) is
    /// given back as makeup gain before it, steered by the output's integrated loudness so
    /// far: an integral controller, so the whole episode lands on its aim, still in one pass.
    fn steer(&mut self) {
        let out = f64::from(self.meter.integrated_lufs());
        if out.is_finite() && self.aim_lufs.is_finite() {
            let error = self.aim_lufs - out;
            self.makeup_db =
                (self.makeup_db + STEER_RATE * error).clamp(-MAX_MAKEUP_DB, MAX_MAKEUP_DB);
        }
    }

    fn push(&mut self, block: &[f32], channels: u8) -> Result<(), RenderError> {
        stereo_with_gain(block, channels, self.gain, &mut self.stereo);
        // Ramp the makeup across the block: a step would click.
        let to = 10f64.powf(self.makeup_db / 20.0) as f32;
        let from = self.makeup_applied;
        let frames = self.stereo.len() / 2;
        if to != from || from != 1.0 {
            let step = (to - from) / frames.max(1) as f32;
            for (i, f) in self.stereo.chunks_exact_mut(2).enumerate() {
                let g = from + step * (i + 1) as f32;
                f[0] *= g;
                f[1] *= g;
            }
        }
        self.makeup_applied = to;
        self.frames_in += frames as u64;
        self.encode_stereo()
    }

    /// Pushes the limiter's last frames out with silence and flushes LAME: the MP3 file with
    /// every frame in it, and LAME's Info frame.
    fn finish(mut self) -> Encoded {
        // The limiter holds back exactly its latency; whatever of it is still to be dropped
        // (a program shorter than that) comes off the front of this silence.
        let tail = self.limiter.latency_frames();
        self.stereo.clear();
        self.stereo.resize(tail * 2, 0.0);
        self.encode_stereo()?;
        self.lame.finish()
    }
}

/// Limited blocks queued for LAME at most (about 2.5 s of audio): the decoder and limiter run
/// ahead on one core while LAME, most of a render's cost, runs on the other.
const LAME_QUEUE: usize = 128;

/// What LAME's thread ends with: the MP3 file with every frame in it, and LAME's Info frame.
type Encoded = Result<(Mp3File, Vec<u8>), RenderError>;

/// LAME and the MP3 file on a thread of their own, fed limited blocks in order.
struct LameThread {
    blocks: Option<std::sync::mpsc::SyncSender<Vec<f32>>>,
    thread: Option<std::thread::JoinHandle<Encoded>>,
}

impl LameThread {
    fn start(mut file: Mp3File) -> Result<Self, RenderError> {
        let mut encoder = Mp3Encoder::new(MP3_SETTINGS).map_err(RenderError::Encode)?;
        let (blocks, queue) = std::sync::mpsc::sync_channel::<Vec<f32>>(LAME_QUEUE);
        let thread = std::thread::Builder::new()
            .name("booth-mp3".into())
            .spawn(move || {
                let mut mp3 = Vec::with_capacity(1 << 16);
                for block in queue {
                    encoder
                        .encode(&block, &mut mp3)
                        .map_err(RenderError::Encode)?;
                    file.append(&mp3)?;
                    mp3.clear();
                }
                encoder.flush(&mut mp3);
                file.append(&mp3)?;
                Ok((file, encoder.info_tag()))
            })
            .map_err(|e| {
                RenderError::Encode(CodecError::Mp3(format!("no thread for LAME: {e}")))
            })?;
        Ok(Self {
            blocks: Some(blocks),
            thread: Some(thread),
        })
    }

    /// Queues a block; the encoder's own error when it stopped.
    fn encode(&mut self, block: Vec<f32>) -> Result<(), RenderError> {
        let sent = self.blocks.as_ref().is_some_and(|b| b.send(block).is_ok());
        if sent {
            Ok(())
        } else {
            self.join().map(|_| ())
        }
    }

    fn finish(mut self) -> Encoded {
        self.join()
    }

    fn join(&mut self) -> Encoded {
        self.blocks = None;
        let gone = || RenderError::Encode(CodecError::Mp3("the LAME thread stopped".into()));
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(gone()),
        }
    }
}

/// Chapters sorted, each ending where the next starts (the last at the end); a chapter marked
/// after the audio ended (the room's last seconds lost in a crash) is moved to the end. The
/// count and the labels never depend on the duration, so neither does the tag's size.
fn tag_chapters(chapters: &[Chapter], duration_ms: u64) -> Vec<TagChapter> {
    let mut sorted: Vec<&Chapter> = chapters.iter().collect();
    sorted.sort_by_key(|c| c.start_ms);
    sorted.truncate(MAX_CHAPTERS);
    let ms = |x: u64| u32::try_from(x.min(duration_ms)).unwrap_or(u32::MAX);
    sorted
        .iter()
        .enumerate()
        .map(|(i, c)| TagChapter {
            start_ms: ms(c.start_ms),
            end_ms: ms(sorted.get(i + 1).map_or(duration_ms, |n| n.start_ms)),
            title: c.title.clone(),
        })
        .collect()
}

#[derive(Serialize)]
struct JsonChapters<'a> {
    version: &'static str,
    chapters: Vec<JsonChapter<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonChapter<'a> {
    start_time: f64,
    end_time: f64,
    title: &'a str,
}

/// The Podcasting 2.0 JSON chapters file (version 1.2.0), times in seconds.
fn json_chapters(chapters: &[TagChapter]) -> Vec<u8> {
    let doc = JsonChapters {
        version: "1.2.0",
        chapters: chapters
            .iter()
            .map(|c| JsonChapter {
                start_time: f64::from(c.start_ms) / 1000.0,
                end_time: f64::from(c.end_ms) / 1000.0,
                title: &c.title,
            })
            .collect(),
    };
    // Serialising plain strings and numbers into memory cannot fail; an empty document would
    // still be valid JSON for the feed to point at.
    serde_json::to_vec_pretty(&doc)
        .unwrap_or_else(|_| b"{\"version\":\"1.2.0\",\"chapters\":[]}".to_vec())
}

/// Writes `bytes` to `dir/name` through a temporary file renamed into place.
fn write_whole(dir: &Path, name: &str, bytes: &[u8]) -> Result<u64, RenderError> {
    let partial = dir.join(format!(".{name}.partial"));
    let io = |source| RenderError::Write {
        path: partial.clone(),
        source,
    };
    let mut f = File::create(&partial).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&partial, dir.join(name)).map_err(io)?;
    Ok(bytes.len() as u64)
}

/// The MP3 file being written: the tag's room first, then the frames.
struct Mp3File {
    partial: PathBuf,
    out: BufWriter<File>,
    tag_len: u64,
    bytes: u64,
}

impl Mp3File {
    fn create(partial: PathBuf, tag_len: usize) -> Result<Self, RenderError> {
        let file = File::create(&partial).map_err(|source| RenderError::Write {
            path: partial.clone(),
            source,
        })?;
        let mut f = Self {
            partial,
            out: BufWriter::with_capacity(1 << 16, file),
            tag_len: tag_len as u64,
            bytes: 0,
        };
        // The tag is written last (its chapters end at the end of the audio); its size is
        // known now, as none of its fields change length with the duration.
        f.append(&vec![0; tag_len])?;
        Ok(f)
    }

    fn io(&self, source: std::io::Error) -> RenderError {
        RenderError::Write {
            path: self.partial.clone(),
            source,
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), RenderError> {
        self.out.write_all(bytes).map_err(|e| self.io(e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Writes the tag at the start and LAME's Info frame over the first audio frame, syncs,
    /// and renames the file into place.
    fn finish(mut self, tag: &[u8], info: &[u8], name: &Path) -> Result<u64, RenderError> {
        if tag.len() as u64 != self.tag_len {
            return Err(self.io(std::io::Error::other("the ID3 tag changed size")));
        }
        let result = (|| {
            self.out.seek(SeekFrom::Start(0))?;
            self.out.write_all(tag)?;
            self.out.write_all(info)?;
            self.out.flush()?;
            self.out.get_ref().sync_all()?;
            std::fs::rename(&self.partial, name)
        })();
        result.map_err(|e| self.io(e))?;
        Ok(self.bytes)
    }
}

/// Renders `program` (Ogg Opus) into `out_dir`: [`MP3_FILE`] and [`CHAPTERS_FILE`]. See the
/// module doc for the chain; `job.loudness_lufs` of `None` costs a first pass to measure it.
///
/// # Errors
/// [`RenderError`]: the program cannot be read or decoded, LAME fails, the tag cannot be made,
/// or a file cannot be written. Nothing is left under the real names then.
pub fn render(program: &Path, out_dir: &Path, job: &RenderJob) -> Result<Rendered, RenderError> {
    let loudness = match job.loudness_lufs {
        Some(l) => l,
        None => measure_loudness(program)?,
    };
    let gain_db = normalising_gain_db(loudness);
    let mut reader = open_program(program)?;
    let channels = reader.channels();
    let decode = |source| RenderError::Decode {
        path: program.to_path_buf(),
        source,
    };

    let fields = |chapters| TagFields {
        title: &job.title,
        show: &job.show_title,
        author: &job.author,
        recorded_ms: job.started_ms,
        artwork: job.artwork.as_ref(),
        chapters,
    };
    let placeholder = tag_chapters(&job.chapters, u64::MAX);
    let tag_len = id3v2_4(&fields(&placeholder))?.len();
    let file = Mp3File::create(out_dir.join(format!(".{MP3_FILE}.partial")), tag_len)?;

    let mut chain = Chain::new(gain_db, loudness + gain_db, file)?;
    while let Some(block) = reader.read().map_err(decode)? {
        chain.push(block, channels)?;
    }
    let duration_ms = chain.frames_in * 1000 / 48_000;
    let (file, info) = chain.finish()?;
    let chapters = tag_chapters(&job.chapters, duration_ms);
    let tag = id3v2_4(&fields(&chapters))?;
    let mp3_bytes = file.finish(&tag, &info, &out_dir.join(MP3_FILE))?;
    write_whole(out_dir, CHAPTERS_FILE, &json_chapters(&chapters))?;
    Ok(Rendered {
        mp3: MP3_FILE.into(),
        mp3_bytes,
        duration_ms,
        chapters: CHAPTERS_FILE.into(),
        loudness_lufs: loudness.is_finite().then_some(loudness),
        gain_db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chapter(start_ms: u64, title: &str) -> Chapter {
        Chapter {
            start_ms,
            title: title.into(),
        }
    }

    #[test]
    fn chapters_end_where_the_next_starts_and_the_last_at_the_end() {
        let c = tag_chapters(
            &[
                chapter(5_000, "b"),
                chapter(0, "a"),
                chapter(90_000, "late"),
            ],
            60_000,
        );
        let spans: Vec<(u32, u32, &str)> = c
            .iter()
            .map(|c| (c.start_ms, c.end_ms, c.title.as_str()))
            .collect();
        assert_eq!(
            spans,
            [
                (0, 5_000, "a"),
                (5_000, 60_000, "b"),
                (60_000, 60_000, "late")
            ]
        );
    }

    #[test]
    fn silence_gets_no_gain_and_quiet_rooms_at_most_twenty_db() {
        assert_eq!(normalising_gain_db(f64::NEG_INFINITY), 0.0);
        assert_eq!(normalising_gain_db(f64::NAN), 0.0);
        assert_eq!(normalising_gain_db(-60.0), MAX_GAIN_DB);
        assert_eq!(normalising_gain_db(-23.0), 7.0);
        assert_eq!(normalising_gain_db(-10.0), -6.0);
    }

    #[test]
    fn the_json_chapters_are_podcasting_2_0() {
        let doc = json_chapters(&tag_chapters(&[chapter(1_500, "Q & A")], 3_000));
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(v["version"], "1.2.0");
        assert_eq!(v["chapters"][0]["startTime"], 1.5);
        assert_eq!(v["chapters"][0]["endTime"], 3.0);
        assert_eq!(v["chapters"][0]["title"], "Q & A");
    }
}
