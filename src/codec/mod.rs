//! Opus and Ogg Opus: the encoder and decoder Booth speaks on the wire and writes to disk.
//!
//! [`opus`] wraps libopus (48 kHz, 20 ms frames); [`ogg_opus`] writes and reads Ogg Opus files
//! per RFC 7845, the format every player, `opusinfo` and ffmpeg accept. Nothing here touches
//! devices or sockets; the writer takes any `Write`, the reader any `Read + Seek`.

pub mod ogg_opus;
pub mod opus;

pub use ogg_opus::{OggOpusReader, OggOpusWriter, is_ogg_opus};
pub use opus::{Application, EncoderSettings, OpusDecoder, OpusEncoder};

/// Why encoding, decoding or reading a file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the underlying stream failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// libopus refused (bad settings or a damaged packet).
    #[error("opus: {0}")]
    Opus(String),
    /// The stream is not Ogg Opus.
    #[error("not an Ogg Opus stream: {0}")]
    NotOggOpus(String),
    /// The stream is Ogg Opus but damaged.
    #[error("damaged Ogg Opus stream: {0}")]
    Corrupt(String),
    /// A channel layout Booth does not handle.
    #[error("{0} channels: Booth reads and writes mono and stereo Opus")]
    UnsupportedChannels(u8),
}

impl From<::opus::Error> for CodecError {
    fn from(e: ::opus::Error) -> Self {
        CodecError::Opus(e.to_string())
    }
}
