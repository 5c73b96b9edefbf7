//! Decoding audio files: WAV, FLAC, MP3 and Ogg Vorbis through symphonia, Ogg Opus through
//! Booth's own reader (symphonia 0.5 has no Opus decoder).
//!
//! Decoding is strict: a damaged packet is an error that names the file and the time, never a
//! silent gap, because a remixed podcast with a hole in it is worse than a clear failure.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
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
        let mut source = if is_ogg_opus(&head[..n]) {
            Self::open_opus(path, file)?
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
        let at = self.frames_read as f64 / f64::from(self.rate.max(1));
        let path = &self.path;
        let corrupt = |detail: String| AudioError::Corrupt {
            path: path.clone(),
            at_seconds: at,
            detail,
        };
        match &mut self.inner {
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
                        // A file whose audio stops well short of what its header promises was
                        // cut off or damaged (decoders skip garbage looking for the next frame).
                        if let Some(total) = self.total_frames {
                            let slack = (total / 500).max(4_096);
                            if self.frames_read + slack < total {
                                let rate = f64::from(self.rate.max(1));
                                return Err(corrupt(format!(
                                    "the audio stops there, but its header promises {:.2} s",
                                    total as f64 / rate
                                )));
                            }
                        }
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
                let spec = *decoded.spec();
                if decoded.frames() == 0 {
                    continue;
                }
                let channels = spec.channels.count();
                if self.channels == 0 {
                    self.channels = channels;
                }
                if self.rate == 0 {
                    self.rate = spec.rate;
                }
                if channels != self.channels || spec.rate != self.rate {
                    return Err(corrupt(format!(
                        "the stream changes from {} ch {} Hz to {channels} ch {} Hz midway",
                        self.channels, self.rate, spec.rate
                    )));
                }
                let need = decoded.capacity() as u64;
                if buf
                    .as_ref()
                    .is_none_or(|b| (b.capacity() as u64) < need * channels as u64)
                {
                    *buf = Some(SampleBuffer::new(need, spec));
                }
                let Some(sb) = buf.as_mut() else {
                    return Ok(None);
                };
                sb.copy_interleaved_ref(decoded);
                self.frames_read += (sb.len() / channels) as u64;
                return Ok(Some(sb.samples()));
            },
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
