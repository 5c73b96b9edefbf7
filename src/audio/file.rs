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

use super::wav::{self, MAX_WAV_CHANNELS, NotDirect, WavPcm};
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
    /// A header that declares more channels than Booth mixes (a damaged or hostile file).
    #[error(
        "'{path}' declares {channels} channels; Booth reads at most {max}: export it with fewer channels"
    )]
    TooManyChannels {
        /// The file.
        path: PathBuf,
        /// What its header says.
        channels: u32,
        /// The most Booth reads.
        max: u32,
    },
}

enum Inner {
    Symphonia {
        format: Box<dyn FormatReader>,
        decoder: Box<dyn Decoder>,
        track_id: u32,
        buf: Option<SampleBuffer<f32>>,
    },
    Opus(Box<OggOpusReader<BufReader<Box<dyn Media>>>>),
    /// Plain PCM WAV, read in bulk: the format podcasters remix most, and the cheapest to read.
    Wav(Box<WavPcm<BufReader<Box<dyn Media>>>>),
}

/// What a source reads from: a file, or bytes already in memory.
trait Media: Read + Seek + Send + Sync {}

impl<T: Read + Seek + Send + Sync> Media for T {}

/// Media as symphonia reads it: seekable, with a known length.
struct SeekableMedia {
    inner: Box<dyn Media>,
    len: u64,
}

impl Read for SeekableMedia {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for SeekableMedia {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl symphonia::core::io::MediaSource for SeekableMedia {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
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
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("it is a directory")));
        }
        Self::open_media(path, Box::new(file))
    }

    /// Opens audio already in memory, as [`open`](Self::open) opens a file: `name` stands for
    /// the file in messages, and its extension helps tell the format.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_bytes(name: &Path, bytes: Vec<u8>) -> Result<Self, AudioError> {
        Self::open_media(name, Box::new(std::io::Cursor::new(bytes)))
    }

    fn open_media(path: &Path, mut media: Box<dyn Media>) -> Result<Self, AudioError> {
        let io = |source| AudioError::Io {
            path: path.to_owned(),
            source,
        };
        let mut head = [0u8; 64];
        let n = read_up_to(&mut media, &mut head).map_err(io)?;
        if n == 0 {
            return Err(AudioError::Empty {
                path: path.to_owned(),
            });
        }
        media.seek(SeekFrom::Start(0)).map_err(io)?;
        let is_wav = n >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE";
        let mut source = if is_ogg_opus(&head[..n]) {
            Self::open_opus(path, media)?
        } else if is_wav {
            match Self::open_wav(path, media)? {
                Ok(wav) => wav,
                Err(media) => Self::open_symphonia(path, media)?,
            }
        } else {
            Self::open_symphonia(path, media)?
        };
        source.prime()?;
        Ok(source)
    }

    fn open_opus(path: &Path, media: Box<dyn Media>) -> Result<Self, AudioError> {
        let mut reader =
            OggOpusReader::new(BufReader::new(media)).map_err(|e| codec_error(path, 0.0, e))?;
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

    /// PCM WAV through Booth's own header parser, then bulk reads. Anything else (compressed
    /// WAV, damaged headers) goes back to the caller for symphonia to have its say, with its
    /// errors; a header with absurdly many channels is refused here.
    fn open_wav(
        path: &Path,
        media: Box<dyn Media>,
    ) -> Result<Result<Self, Box<dyn Media>>, AudioError> {
        let io = |source| AudioError::Io {
            path: path.to_owned(),
            source,
        };
        let mut reader = BufReader::with_capacity(1 << 16, media);
        let header = match wav::read_header(&mut reader) {
            Ok(header) => header,
            Err(NotDirect::TooManyChannels(channels)) => {
                return Err(AudioError::TooManyChannels {
                    path: path.to_owned(),
                    channels: u32::from(channels),
                    max: u32::from(MAX_WAV_CHANNELS),
                });
            }
            Err(NotDirect::ZeroRate) => {
                return Err(AudioError::Corrupt {
                    path: path.to_owned(),
                    at_seconds: 0.0,
                    detail: "its header says the sample rate is 0 Hz".into(),
                });
            }
            Err(NotDirect::Other) => {
                let mut media = reader.into_inner();
                media.seek(SeekFrom::Start(0)).map_err(io)?;
                return Ok(Err(media));
            }
        };
        Ok(Ok(Self {
            path: path.to_owned(),
            inner: Inner::Wav(Box::new(WavPcm::new(reader, &header))),
            rate: header.rate,
            channels: usize::from(header.channels),
            total_frames: Some(header.frames),
            frames_read: 0,
            primed: Vec::new(),
            primed_pending: false,
            ended: false,
        }))
    }

    fn open_symphonia(path: &Path, mut media: Box<dyn Media>) -> Result<Self, AudioError> {
        let unsupported = |detail: String| AudioError::Unsupported {
            path: path.to_owned(),
            detail,
        };
        let len = media
            .seek(SeekFrom::End(0))
            .and_then(|len| media.seek(SeekFrom::Start(0)).map(|_| len))
            .map_err(|source| AudioError::Io {
                path: path.to_owned(),
                source,
            })?;
        let source = SeekableMedia { inner: media, len };
        let mss = MediaSourceStream::new(Box::new(source), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        // symphonia 0.5 panics on some damaged headers (a zero time base, a channel mask
        // shifted past 32 bits): that is a damaged file, not a reason to bring down the caller.
        let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            symphonia::default::get_probe().format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
        }))
        .map_err(|_| AudioError::Corrupt {
            path: path.to_owned(),
            at_seconds: 0.0,
            detail: "its header is damaged (the decoder gave up on it)".into(),
        })?;
        let probed = probe.map_err(|e| match e {
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
            .read()
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
            Inner::Wav(wav) => wav.block(),
            _ => &[],
        }
    }
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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
