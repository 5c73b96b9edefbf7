//! OpusHead (RFC 7845 5.1): what it says, and the decoder its channel layout calls for;
//! and the words for what a file is when it is not Ogg Opus.
//!
//! Never here: a panic on a short or inconsistent header.

use std::io;

use ::opus as lib;

use super::demux::DemuxError;
use crate::codec::CodecError;
use crate::codec::opus::{OpusDecoder, SAMPLE_RATE};

/// Vorbis channel order (RFC 7845 5.1.1.2) to WAVE order (FL FR FC LFE BL BR SL SR, with BC
/// for 6.1), the order the rest of Booth (and symphonia) downmixes from: for each WAVE slot,
/// the Vorbis channel that fills it.
const VORBIS_TO_WAVE: [&[usize]; 9] = [
    &[],
    &[0],
    &[0, 1],
    &[0, 2, 1],
    &[0, 1, 2, 3],
    &[0, 2, 1, 3, 4],
    &[0, 2, 1, 5, 3, 4],
    &[0, 2, 1, 6, 5, 3, 4],
    &[0, 2, 1, 7, 5, 6, 3, 4],
];

pub(super) enum Decoder {
    Single(OpusDecoder),
    Multi(lib::MSDecoder),
}

impl Decoder {
    pub(super) fn decode(&mut self, packet: &[u8], out: &mut [f32]) -> Result<usize, CodecError> {
        match self {
            Decoder::Single(d) => d.decode(packet, out),
            Decoder::Multi(d) => Ok(d.decode_float(packet, out, false)?),
        }
    }
}

/// What OpusHead says.
pub(super) struct Head {
    pub(super) channels: u8,
    pub(super) pre_skip: u16,
    pub(super) input_sample_rate: u32,
    pub(super) gain_q8: i16,
    pub(super) decoder: Decoder,
}

pub(super) fn parse_head(d: &[u8]) -> Result<Head, CodecError> {
    if d.len() < 19 {
        return Err(CodecError::Corrupt(
            "its OpusHead header is cut short".into(),
        ));
    }
    // Minor versions are compatible by design; a new major version may mean anything.
    if d[8] >> 4 != 0 {
        return Err(CodecError::NotOggOpus(format!(
            "it uses Ogg Opus version {}, newer than this reader understands",
            d[8]
        )));
    }
    let channels = d[9];
    if channels == 0 {
        return Err(CodecError::Corrupt("its OpusHead says 0 channels".into()));
    }
    let family = d[18];
    let decoder = match (family, channels) {
        (0, 1..=2) => Decoder::Single(OpusDecoder::new(channels)?),
        (1, 1..=8) => {
            let n = usize::from(channels);
            let table = d.get(19..21 + n).ok_or_else(|| {
                CodecError::Corrupt("its OpusHead channel mapping table is cut short".into())
            })?;
            let (streams, coupled) = (table[0], table[1]);
            let coded = usize::from(streams) + usize::from(coupled);
            let vorbis_order = &table[2..];
            if streams == 0
                || coupled > streams
                || coded > 255
                || vorbis_order
                    .iter()
                    .any(|&m| m != 255 && usize::from(m) >= coded)
            {
                return Err(CodecError::Corrupt(
                    "its OpusHead channel mapping table is inconsistent".into(),
                ));
            }
            // Reordering the mapping table makes libopus write WAVE order directly.
            let mut wave_order = [0u8; 8];
            for (slot, &from) in wave_order.iter_mut().zip(VORBIS_TO_WAVE[n]) {
                *slot = vorbis_order[from];
            }
            let dec = lib::MSDecoder::new(SAMPLE_RATE, streams, coupled, &wave_order[..n])
                .map_err(|e| {
                    CodecError::Corrupt(format!("its channel mapping is unusable: {e}"))
                })?;
            Decoder::Multi(dec)
        }
        _ => return Err(CodecError::UnsupportedLayout { channels, family }),
    };
    Ok(Head {
        channels,
        pre_skip: u16::from_le_bytes([d[10], d[11]]),
        input_sample_rate: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
        gain_q8: i16::from_le_bytes([d[16], d[17]]),
        decoder,
    })
}

/// What another Ogg codec's first packet says it is, for a helpful error.
pub(super) fn other_codec(first_packet: &[u8]) -> &'static str {
    const KNOWN: [(&[u8], &str); 5] = [
        (b"\x01vorbis", "Vorbis audio"),
        (b"\x7fFLAC", "FLAC audio"),
        (b"Speex   ", "Speex audio"),
        (b"\x80theora", "Theora video"),
        (b"fishead\0", "a Skeleton index"),
    ];
    KNOWN
        .iter()
        .find(|(magic, _)| first_packet.starts_with(magic))
        .map_or("another codec", |&(_, name)| name)
}

/// Maps an Ogg read error met while looking for the headers.
pub(super) fn header_error(e: DemuxError) -> CodecError {
    match e {
        DemuxError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            CodecError::Corrupt("it ends inside its headers (cut short?)".into())
        }
        DemuxError::Io(io) => CodecError::Io(io),
        DemuxError::Checksum => {
            CodecError::Corrupt("a header page is damaged (checksum mismatch)".into())
        }
        DemuxError::Structure(what) => {
            CodecError::Corrupt(format!("its header pages are not valid Ogg ({what})"))
        }
        DemuxError::PacketTooLarge(len) => {
            CodecError::Corrupt(format!("a header packet of {len} bytes is too large"))
        }
    }
}
