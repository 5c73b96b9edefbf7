//! Opus and Ogg Opus: the encoder and decoder Booth speaks on the wire and writes to disk; MP3
//! for podcast apps.
//!
//! [`opus`] wraps libopus (48 kHz, 20 ms frames); [`ogg_opus`] writes and reads Ogg Opus files
//! per RFC 7845, the format every player, `opusinfo` and ffmpeg accept; [`mp3`] encodes MP3
//! with the system's LAME, linked dynamically.
//!
//! Never here: devices, sockets, threads or clocks. The writer takes any `Write`, the reader any
//! `Read + Seek`; bad input from outside is an error, never a panic.

pub mod frame;
pub mod mp3;
pub mod ogg_opus;
pub mod opus;

pub use mp3::{Mp3Encoder, Mp3Settings};
pub use ogg_opus::{OggOpusReader, OggOpusWriter, is_ogg_opus};
pub use opus::{Application, EncoderSettings, OpusDecoder, OpusEncoder};

/// Why encoding, decoding or reading a file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the underlying stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// libopus refused: a damaged packet, or a buffer too small for it.
    #[error("the Opus codec failed: {0}")]
    Opus(String),
    /// The input is not Ogg Opus at all (empty, another format, another Ogg codec).
    #[error("not an Ogg Opus file: {0}")]
    NotOggOpus(String),
    /// The input is Ogg Opus but damaged or cut short inside its headers.
    #[error("damaged Ogg Opus file: {0}")]
    Corrupt(String),
    /// An encoder or decoder was asked for a channel count Opus streams in Booth do not carry.
    #[error("Opus in Booth is mono or stereo, not {0} channels")]
    UnsupportedChannels(u8),
    /// An Ogg Opus file whose channel layout the reader does not decode.
    #[error(
        "the file has {channels} channels in Opus mapping family {family}; Booth reads mono, \
         stereo and surround files (families 0 and 1, up to 8 channels)"
    )]
    UnsupportedLayout {
        /// Channel count from OpusHead.
        channels: u8,
        /// Channel mapping family from OpusHead.
        family: u8,
    },
    /// Encoder settings outside what Opus allows.
    #[error("invalid Opus settings: {0}")]
    InvalidSettings(String),
    /// LAME (the MP3 encoder) failed while encoding or could not start.
    #[error("the MP3 encoder (LAME) failed: {0}")]
    Mp3(String),
    /// A caller handed in samples that do not form whole frames (a bug in the caller).
    #[error("{0}")]
    InvalidInput(String),
}

impl From<::opus::Error> for CodecError {
    fn from(e: ::opus::Error) -> Self {
        CodecError::Opus(e.to_string())
    }
}
