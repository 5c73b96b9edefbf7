//! PCM WAV read directly: Booth parses the RIFF header itself (so every size it allocates from
//! is bounded here), then reads the samples in bulk, by the size of their containers.
//!
//! Samples are read by container (`block_align / channels` bytes, left-justified as
//! WAVE_FORMAT_EXTENSIBLE says) and scaled by the container's full range: a 20-bit sample in a
//! 24-bit container is read as 24 bits whose lowest 4 are zero. Valid bits are only a hint.
//!
//! Never here: an allocation sized by an unchecked header field, or a panic on a damaged header.

use std::io::{self, Read};

/// The most channels Booth reads from a WAV file (WAVE_FORMAT_EXTENSIBLE's channel mask names
/// 18 speakers; 32 leaves room for ambisonics and multitrack stems).
pub const MAX_WAV_CHANNELS: u16 = 32;

/// Frames per block read from a WAV file.
const WAV_BLOCK_FRAMES: usize = 4_096;

/// Chunks skipped looking for `fmt ` and `data` before the file is not a WAV Booth reads.
const MAX_CHUNKS: usize = 4_096;

const WAVE_FORMAT_PCM: u16 = 0x0001;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// The fixed tail of a KSDATAFORMAT_SUBTYPE GUID, after its two-byte format tag.
const SUBTYPE_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// Sample containers of PCM WAV read directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PcmFormat {
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

/// What a WAV header says, when it is PCM Booth reads directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WavHeader {
    pub(super) format: PcmFormat,
    pub(super) channels: u16,
    pub(super) rate: u32,
    /// Frames the data chunk says it holds.
    pub(super) frames: u64,
}

/// Why a header is not read directly.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NotDirect {
    /// More channels than [`MAX_WAV_CHANNELS`]: refused outright.
    TooManyChannels(u16),
    /// A PCM header that says 0 Hz (which would stop the general decoder too).
    ZeroRate,
    /// Another encoding, or a header this parser does not take: the general decoder decides.
    Other,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a RIFF WAVE header up to its `data` chunk and leaves `r` at the first sample.
pub(super) fn read_header(r: &mut impl Read) -> Result<WavHeader, NotDirect> {
    let mut riff = [0u8; 12];
    r.read_exact(&mut riff).map_err(|_| NotDirect::Other)?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Err(NotDirect::Other);
    }
    let mut fmt: Option<(PcmFormat, u16, u32, u16)> = None;
    for _ in 0..MAX_CHUNKS {
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|_| NotDirect::Other)?;
        let len = u64::from(le32(&head, 4));
        match &head[..4] {
            b"fmt " => {
                // 40 bytes hold WAVE_FORMAT_EXTENSIBLE; anything past them is skipped.
                let mut body = [0u8; 40];
                let take = usize::try_from(len.min(40)).unwrap_or(40);
                r.read_exact(&mut body[..take])
                    .map_err(|_| NotDirect::Other)?;
                skip(r, len - take as u64 + (len & 1))?;
                fmt = Some(parse_fmt(&body[..take])?);
            }
            b"data" => {
                let (format, channels, rate, block_align) = fmt.ok_or(NotDirect::Other)?;
                return Ok(WavHeader {
                    format,
                    channels,
                    rate,
                    frames: len / u64::from(block_align),
                });
            }
            _ => skip(r, len + (len & 1))?,
        }
    }
    Err(NotDirect::Other)
}

fn skip(r: &mut impl Read, n: u64) -> Result<(), NotDirect> {
    let skipped = io::copy(&mut r.take(n), &mut io::sink()).map_err(|_| NotDirect::Other)?;
    if skipped == n {
        Ok(())
    } else {
        Err(NotDirect::Other)
    }
}

/// The `fmt ` chunk: (container format, channels, rate, block align).
fn parse_fmt(b: &[u8]) -> Result<(PcmFormat, u16, u32, u16), NotDirect> {
    if b.len() < 16 {
        return Err(NotDirect::Other);
    }
    let (mut tag, channels, rate) = (le16(b, 0), le16(b, 2), le32(b, 4));
    let (block_align, bits) = (le16(b, 12), le16(b, 14));
    if channels > MAX_WAV_CHANNELS {
        return Err(NotDirect::TooManyChannels(channels));
    }
    if tag == WAVE_FORMAT_EXTENSIBLE {
        if b.len() < 40 || b[26..40] != SUBTYPE_TAIL {
            return Err(NotDirect::Other);
        }
        tag = le16(b, 24);
    }
    if rate == 0 {
        return Err(NotDirect::ZeroRate);
    }
    if channels == 0 || block_align == 0 || block_align % channels != 0 {
        return Err(NotDirect::Other);
    }
    let container = block_align / channels;
    if bits == 0 || u32::from(bits) > u32::from(container) * 8 {
        return Err(NotDirect::Other);
    }
    let format = match (tag, container) {
        (WAVE_FORMAT_PCM, 2) => PcmFormat::I16,
        (WAVE_FORMAT_PCM, 3) => PcmFormat::I24,
        (WAVE_FORMAT_PCM, 4) => PcmFormat::I32,
        (WAVE_FORMAT_IEEE_FLOAT, 4) => PcmFormat::F32,
        _ => return Err(NotDirect::Other),
    };
    Ok((format, channels, rate, block_align))
}

/// The samples of a PCM WAV file, read a block at a time.
pub(super) struct WavPcm<R> {
    reader: R,
    format: PcmFormat,
    channels: usize,
    bytes_left: u64,
    raw: Vec<u8>,
    out: Vec<f32>,
}

impl<R: Read> WavPcm<R> {
    /// Samples from `reader`, which sits at the first sample of the data chunk `header` read.
    pub(super) fn new(reader: R, header: &WavHeader) -> Self {
        let channels = usize::from(header.channels);
        Self {
            reader,
            format: header.format,
            channels,
            bytes_left: header.frames * (channels * header.format.bytes()) as u64,
            raw: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The block the last [`read`](Self::read) returned.
    pub(super) fn block(&self) -> &[f32] {
        &self.out
    }

    /// Reads and converts the next block; an empty block means the end (or a file cut short,
    /// which the caller tells from the frame count).
    pub(super) fn read(&mut self) -> io::Result<&[f32]> {
        let frame = self.channels * self.format.bytes();
        let want = (WAV_BLOCK_FRAMES * frame).min(usize::try_from(self.bytes_left).unwrap_or(0));
        let want = want / frame * frame;
        self.raw.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.reader.read(&mut self.raw[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.bytes_left -= got as u64;
        if got < want {
            self.bytes_left = 0;
        }
        let bytes = &self.raw[..got / frame * frame];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAVE_FORMAT_EXTENSIBLE header per Microsoft's WAVEFORMATEXTENSIBLE, then `data`.
    pub(crate) fn extensible(channels: u16, container: u16, valid: u16, data: &[u8]) -> Vec<u8> {
        // Truncated to the field's 16 bits, as a hostile header would have it.
        let block_align = (u32::from(channels) * u32::from(container) / 8) as u16;
        let mut f = Vec::new();
        f.extend_from_slice(b"RIFF");
        f.extend_from_slice(&(4 + 8 + 40 + 8 + data.len() as u32).to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(b"fmt ");
        f.extend_from_slice(&40u32.to_le_bytes());
        f.extend_from_slice(&WAVE_FORMAT_EXTENSIBLE.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&48_000u32.to_le_bytes());
        f.extend_from_slice(&(48_000 * u32::from(block_align)).to_le_bytes());
        f.extend_from_slice(&block_align.to_le_bytes());
        f.extend_from_slice(&container.to_le_bytes());
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&valid.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&WAVE_FORMAT_PCM.to_le_bytes());
        f.extend_from_slice(&SUBTYPE_TAIL);
        f.extend_from_slice(b"data");
        f.extend_from_slice(&(data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_header_with_thousands_of_channels_is_refused_before_any_allocation() {
        let file = extensible(65_535, 32, 32, &[]);
        assert_eq!(
            read_header(&mut io::Cursor::new(file)),
            Err(NotDirect::TooManyChannels(65_535))
        );
    }

    #[test]
    fn twenty_valid_bits_in_a_32_bit_container_read_as_32_bit_samples() {
        // Left-justified 20-bit samples: +0.5 and -0.25 of full scale, then the lowest step.
        let samples: [i32; 3] = [1 << 30, -(1 << 29), 1 << 12];
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut cursor = io::Cursor::new(extensible(1, 32, 20, &data));
        let header = read_header(&mut cursor).unwrap();
        assert_eq!((header.format, header.frames), (PcmFormat::I32, 3));
        let mut wav = WavPcm::new(cursor, &header);
        assert_eq!(wav.read().unwrap(), &[0.5, -0.25, 1.0 / 524_288.0]);
    }

    /// Found by the audio_file fuzz target: a one-channel header with a 65,535-byte block
    /// overflowed the container's bit count.
    #[test]
    fn a_huge_container_is_not_a_panic() {
        let mut file = Vec::new();
        file.extend_from_slice(b"RIFF\x66\x03\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0");
        file.extend_from_slice(&[0x40, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf]);
        file.extend_from_slice(&[0xff, 0xff, 0x10, 0x00]);
        assert_eq!(
            read_header(&mut io::Cursor::new(file)),
            Err(NotDirect::Other)
        );
    }

    /// Found by the audio_file fuzz target: a WAVE_FORMAT_EXTENSIBLE header saying 0 Hz went on
    /// to symphonia, which panics on a zero time base.
    #[test]
    fn a_zero_sample_rate_is_a_clear_error() {
        let file = include_bytes!("../../tests/data/fuzz/wav-zero-rate.wav");
        let e = crate::audio::FileSource::open_bytes(std::path::Path::new("z.wav"), file.to_vec())
            .unwrap_err();
        assert!(e.to_string().contains("0 Hz"), "{e}");
    }

    /// Found by the audio_file fuzz target (first byte: the target's extension pick): a RIFF
    /// header one byte in, which symphonia's probe finds and then panics on (257 channels).
    #[test]
    fn a_header_symphonia_panics_on_is_a_clear_error() {
        let input = include_bytes!("../../tests/data/fuzz/riff-at-offset-1-257-channels.bin");
        let e =
            crate::audio::FileSource::open_bytes(std::path::Path::new("in"), input[1..].to_vec())
                .unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }
}
