//! Decoding audio files: WAV, FLAC, MP3 and Ogg Vorbis through symphonia, Ogg Opus through
//! Booth's own reader (symphonia 0.5 has no Opus decoder).
//!
//! Decoding is strict: a damaged packet is an error that names the file and the time, never a
//! silent gap, because a remixed podcast with a hole in it is worse than a clear failure.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use symphonia::core::audio::{AudioBufferRef, SampleBuffer};
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::codec::{CodecError, OggOpusReader, is_ogg_opus};

/// A file that could not be read as audio. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("'{path}' is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Not a format Booth reads.
    #[error(
        "'{path}' is not audio Booth can read ({detail}); Booth reads WAV, FLAC, MP3, Ogg Vorbis and Ogg Opus"
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// The file starts as audio but is damaged.
    #[error("'{path}' is damaged at {at_seconds:.2} s: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where decoding failed.
        at_seconds: f64,
        /// What the decoder said.
        detail: String,
    },
    /// A file with no audio in it.
    #[error("'{path}' holds no audio")]
    NoAudio {
        /// The file.
        path: PathBuf,
    },
}

enum Inner {
    Symphonia {
        format: Box<dyn FormatReader>,
        decoder: Box<dyn Decoder>,
        track_id: u32,
        buf: Option<SampleBuffer<f32>>,
    },
    Opus(Box<OggOpusReader<BufReader<File>>>),
    /// Plain PCM WAV, read in bulk: the format podcasters remix most, and the cheapest to read.
    Wav(Box<WavPcm>),
}

/// Sample encodings of PCM WAV read directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PcmFormat {
    I16,
    I24,
    I32,
    F32,
}

impl PcmFormat {
    fn bytes(self) -> usize {
        match self {
            PcmFormat::I16 => 2,
            PcmFormat::I24 => 3,
            PcmFormat::I32 | PcmFormat::F32 => 4,
        }
    }
}

struct WavPcm {
    file: BufReader<File>,
    format: PcmFormat,
    bytes_left: u64,
    raw: Vec<u8>,
    out: Vec<f32>,
}

/// Frames per block read from a WAV file.
const WAV_BLOCK_FRAMES: usize = 4_096;

impl WavPcm {
    /// Reads and converts the next block; an empty block means the end.
    fn read(&mut self, channels: usize) -> std::io::Result<&[f32]> {
        let width = self.format.bytes();
        let want = (WAV_BLOCK_FRAMES * channels * width).min(self.bytes_left as usize);
        let want = want / (channels * width) * (channels * width);
        self.raw.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.file.read(&mut self.raw[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.bytes_left -= got as u64;
        if got < want {
            // Cut short: stop here; the length check reports it.
            self.bytes_left = 0;
        }
        let bytes = &self.raw[..got / (channels * width) * (channels * width)];
        self.out.clear();
        match self.format {
            PcmFormat::I16 => self.out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32_768.0)),
            ),
            PcmFormat::I24 => self.out.extend(bytes.chunks_exact(3).map(|b| {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * (1.0 / 8_388_608.0)
            })),
            PcmFormat::I32 => self.out.extend(bytes.chunks_exact(4).map(|b| {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * (1.0 / 2_147_483_648.0)
            })),
            PcmFormat::F32 => self.out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
        }
        Ok(&self.out)
    }
}

/// A decoded audio file, read block by block as interleaved `f32` at its own rate and channels.
pub struct FileSource {
    path: PathBuf,
    inner: Inner,
    rate: u32,
    channels: usize,
    total_frames: Option<u64>,
    frames_read: u64,
    /// The first block, decoded at open to learn the format, until `read` hands it out.
    primed: Vec<f32>,
    primed_pending: bool,
    ended: bool,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("path", &self.path)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// Opens and identifies an audio file, decoding its first block.
    ///
    /// # Errors
    /// Missing, unreadable, empty, unsupported or corrupt files, each with the path in the message.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let io = |source| AudioError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("it is a directory")));
        }
        let mut head = [0u8; 64];
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        if n == 0 {
            return Err(AudioError::Empty {
                path: path.to_owned(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let is_wav = n >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE";
        let mut source = if is_ogg_opus(&head[..n]) {
            Self::open_opus(path, file)?
        } else if let Some(wav) = is_wav.then(|| Self::open_wav(path)).flatten() {
            wav
        } else {
            Self::open_symphonia(path, file)?
        };
        source.prime()?;
        Ok(source)
    }

    fn open_opus(path: &Path, file: File) -> Result<Self, AudioError> {
        let mut reader =
            OggOpusReader::new(BufReader::new(file)).map_err(|e| codec_error(path, 0.0, e))?;
        let total_frames = reader.total_frames();
        Ok(Self {
            path: path.to_owned(),
            channels: usize::from(reader.channels()),
            rate: crate::codec::opus::SAMPLE_RATE,
            inner: Inner::Opus(Box::new(reader)),
            total_frames,
            frames_read: 0,
            primed: Vec::new(),
            primed_pending: false,
            ended: false,
        })
    }

    /// PCM WAV through hound's header parser, then bulk reads. `None` for anything hound does not
    /// take (compressed WAV, damaged headers): symphonia then has its say, with its errors.
    fn open_wav(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        let reader = hound::WavReader::new(BufReader::with_capacity(1 << 16, file)).ok()?;
        let spec = reader.spec();
        let format = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 16) => PcmFormat::I16,
            (hound::SampleFormat::Int, 24) => PcmFormat::I24,
            (hound::SampleFormat::Int, 32) => PcmFormat::I32,
            (hound::SampleFormat::Float, 32) => PcmFormat::F32,
            _ => return None,
        };
        let channels = usize::from(spec.channels);
        let frames = u64::from(reader.duration());
        if channels == 0 || spec.sample_rate == 0 {
            return None;
        }
        Some(Self {
            path: path.to_owned(),
            inner: Inner::Wav(Box::new(WavPcm {
                file: reader.into_inner(),
                format,
                bytes_left: frames * (channels * format.bytes()) as u64,
                raw: Vec::new(),
                out: Vec::new(),
            })),
            rate: spec.sample_rate,
            channels,
            total_frames: Some(frames),
            frames_read: 0,
            primed: Vec::new(),
            primed_pending: false,
            ended: false,
        })
    }

    fn open_symphonia(path: &Path, file: File) -> Result<Self, AudioError> {
        let unsupported = |detail: String| AudioError::Unsupported {
            path: path.to_owned(),
            detail,
        };
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    AudioError::Corrupt {
                        path: path.to_owned(),
                        at_seconds: 0.0,
                        detail: "the file ends inside its header".into(),
                    }
                }
                SymError::Unsupported(_) => unsupported("not a known audio format".into()),
                other => unsupported(other.to_string()),
            })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::NoAudio {
                path: path.to_owned(),
            })?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| unsupported(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            inner: Inner::Symphonia {
                format,
                decoder,
                track_id,
                buf: None,
            },
            rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.map_or(0, |c| c.count()),
            total_frames: params.n_frames,
            frames_read: 0,
            primed: Vec::new(),
            primed_pending: false,
            ended: false,
        })
    }

    /// Decodes the first block so the rate and channel count are known for certain.
    fn prime(&mut self) -> Result<(), AudioError> {
        let first = self.decode_next()?.map(<[f32]>::to_vec);
        match first {
            Some(block) => {
                self.primed = block;
                self.primed_pending = true;
            }
            None => self.ended = true,
        }
        if self.ended || self.channels == 0 || self.rate == 0 {
            return Err(AudioError::NoAudio {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sample rate of the decoded audio.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Channels of the decoded audio.
    #[must_use]
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Length in frames, when the file says.
    #[must_use]
    pub fn total_frames(&self) -> Option<u64> {
        self.total_frames
    }

    /// The next block of interleaved samples, or `None` at the end.
    ///
    /// # Errors
    /// A damaged packet, or a file that changes its rate or channel count midway.
    pub fn read(&mut self) -> Result<Option<&[f32]>, AudioError> {
        if self.primed_pending {
            self.primed_pending = false;
            return Ok(Some(&self.primed));
        }
        self.decode_next()
    }

    fn decode_next(&mut self) -> Result<Option<&[f32]>, AudioError> {
        if self.ended {
            return Ok(None);
        }
        if matches!(self.inner, Inner::Wav(_)) {
            return self.next_wav_block();
        }
        let at = self.frames_read as f64 / f64::from(self.rate.max(1));
        let path = &self.path;
        let corrupt = |detail: String| AudioError::Corrupt {
            path: path.clone(),
            at_seconds: at,
            detail,
        };
        match &mut self.inner {
            Inner::Wav(_) => Ok(None),
            Inner::Opus(reader) => match reader.read() {
                Ok(Some(block)) => {
                    self.frames_read += (block.len() / self.channels.max(1)) as u64;
                    Ok(Some(block))
                }
                Ok(None) => {
                    self.ended = true;
                    Ok(None)
                }
                Err(e) => Err(codec_error(path, at, e)),
            },
            Inner::Symphonia {
                format,
                decoder,
                track_id,
                buf,
            } => loop {
                let packet = match format.next_packet() {
                    Ok(p) => p,
                    Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        self.ended = true;
                        check_complete(path, self.total_frames, self.frames_read, self.rate)?;
                        return Ok(None);
                    }
                    Err(SymError::ResetRequired) => {
                        return Err(corrupt("the stream changes format midway".into()));
                    }
                    Err(e) => return Err(corrupt(e.to_string())),
                };
                if packet.track_id() != *track_id {
                    continue;
                }
                let decoded = decoder
                    .decode(&packet)
                    .map_err(|e| corrupt(e.to_string()))?;
                if decoded.frames() == 0 {
                    continue;
                }
                let block = interleave(decoded, (&mut self.channels, &mut self.rate), buf)
                    .map_err(corrupt)?;
                self.frames_read += (block.len() / self.channels) as u64;
                return Ok(Some(block));
            },
        }
    }

    /// The next block of a PCM WAV file (see [`WavPcm::read`]).
    fn next_wav_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        let Inner::Wav(wav) = &mut self.inner else {
            return Ok(None);
        };
        let len = wav
            .read(self.channels)
            .map_err(|e| AudioError::Io {
                path: self.path.clone(),
                source: e,
            })?
            .len();
        if len == 0 {
            self.ended = true;
            check_complete(&self.path, self.total_frames, self.frames_read, self.rate)?;
            return Ok(None);
        }
        self.frames_read += (len / self.channels) as u64;
        Ok(Some(self.wav_block()))
    }
}

/// Copies a decoded packet into `buf` as interleaved samples. The stream's channel count and
/// rate (`format`, 0 where not yet known) are learnt from its first packet; a later packet
/// that changes them is an error (its detail).
fn interleave<'b>(
    decoded: AudioBufferRef<'_>,
    format: (&mut usize, &mut u32),
    buf: &'b mut Option<SampleBuffer<f32>>,
) -> Result<&'b [f32], String> {
    let (known_channels, known_rate) = format;
    let spec = *decoded.spec();
    let channels = spec.channels.count();
    if *known_channels == 0 {
        *known_channels = channels;
    }
    if *known_rate == 0 {
        *known_rate = spec.rate;
    }
    if channels != *known_channels || spec.rate != *known_rate {
        return Err(format!(
            "the stream changes from {} ch {} Hz to {channels} ch {} Hz midway",
            known_channels, known_rate, spec.rate
        ));
    }
    let need = decoded.capacity() as u64;
    if buf
        .as_ref()
        .is_none_or(|b| (b.capacity() as u64) < need * channels as u64)
    {
        *buf = Some(SampleBuffer::new(need, spec));
    }
    let sb = buf.get_or_insert_with(|| SampleBuffer::new(need, spec));
    sb.copy_interleaved_ref(decoded);
    Ok(sb.samples())
}

/// At the end: a file whose audio stops well short of what its header promises was cut off or
/// damaged (decoders skip garbage looking for the next frame).
fn check_complete(
    path: &Path,
    total: Option<u64>,
    frames_read: u64,
    rate: u32,
) -> Result<(), AudioError> {
    if let Some(total) = total {
        let slack = (total / 500).max(4_096);
        if frames_read + slack < total {
            let rate = f64::from(rate.max(1));
            return Err(AudioError::Corrupt {
                path: path.to_owned(),
                at_seconds: frames_read as f64 / rate,
                detail: format!(
                    "the audio stops there, but its header promises {:.2} s",
                    total as f64 / rate
                ),
            });
        }
    }
    Ok(())
}

impl FileSource {
    fn wav_block(&self) -> &[f32] {
        match &self.inner {
            Inner::Wav(wav) => &wav.out,
            _ => &[],
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn codec_error(path: &Path, at_seconds: f64, e: CodecError) -> AudioError {
    match e {
        CodecError::Io(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            AudioError::Io {
                path: path.to_owned(),
                source,
            }
        }
        other => AudioError::Corrupt {
            path: path.to_owned(),
            at_seconds,
            detail: other.to_string(),
        },
    }
}
