//! WebRTC for Booth: how every peer is configured (Opus only, stereo, in-band FEC), WHIP/WHEP
//! signalling for the clients, a client peer driven on its own UDP socket, and the jitter buffer
//! the server and `booth listen` put in front of their decoders.
//!
//! Booth uses one WebRTC stack, str0m, everywhere: it is sans-IO, so the server drives every
//! session of a room on one shared UDP socket (a listener costs one SRTP encryption and one send
//! per packet) and the clients drive theirs the same way on a socket of their own. The server's
//! side lives in `server`; nothing here knows about rooms.

pub mod jitter;
pub mod peer;
pub mod signal;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, OnceLock};

use str0m::RtcConfig;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::{Codec, FormatParams};
use str0m::media::Frequency;
use str0m::rtp::Extension;

/// The RTP payload type Booth offers for Opus (the one browsers use).
pub const OPUS_PT: u8 = 111;

/// Errors of the WebRTC layer, for callers to match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
    /// The session description could not be read.
    #[error("the session description is not valid SDP: {0}")]
    BadSdp(String),
    /// The description has no audio section Booth can use.
    #[error("the session description has no Opus audio: {0}")]
    NoAudio(String),
    /// The WebRTC stack refused something.
    #[error("WebRTC: {0}")]
    Stack(#[from] str0m::RtcError),
    /// A socket failed.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// The signalling server answered with an error.
    #[error("{url} answered {status}: {message}")]
    Refused {
        /// Where we asked.
        url: String,
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The signalling server could not be reached.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// Where we asked.
        url: String,
        /// Why.
        message: String,
    },
    /// The media connection went away.
    #[error("the media connection was lost: {0}")]
    Lost(String),
    /// No DTLS certificate could be made.
    #[error("cannot make a DTLS certificate: {0}")]
    Certificate(String),
    /// The peer never connected.
    #[error("the media connection did not come up within {0} s")]
    ConnectTimeout(u64),
}

fn crypto() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(str0m::crypto::from_feature_flags())))
}

/// The configuration of every Booth peer: Opus at 48 kHz, stereo both ways (the program keeps
/// the game's stereo), in-band FEC, 10 ms minimum packet time; no video codecs.
///
/// RTP header extensions: the media id (BUNDLE needs it) and the audio level, nothing else.
/// Transport-wide congestion control is left out on purpose: Booth's bit rates are fixed (one
/// program at 128 kbit/s, voices), so nobody estimates bandwidth from it, yet with it
/// negotiated every receiver reports on it about 20 times a second: a listener would send 20
/// packets to the server (each to decrypt and parse) for every 50 it receives, and wake a host
/// running its own room 20 more times a second.
#[must_use]
pub fn rtc_config() -> RtcConfig {
    let mut config = RtcConfig::new()
        .set_crypto_provider(crypto())
        .clear_codecs()
        .clear_extension_map()
        .set_extension(1, Extension::AudioLevel)
        .set_extension(4, Extension::RtpMid);
    let fmtp = FormatParams {
        min_p_time: Some(10),
        use_inband_fec: Some(true),
        stereo: Some(true),
        sprop_stereo: Some(true),
        ..FormatParams::default()
    };
    config.codec_config().add_config(
        OPUS_PT.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        fmtp,
    );
    config
}

/// A server's DTLS identity: one self-signed certificate made once at start and given to every
/// session (each session's SDP answer carries its fingerprint). Making one per offer costs a
/// key generation on the room's task for every anonymous WHEP request.
///
/// Its `Debug` never shows the private key.
#[derive(Clone)]
pub struct ServerCertificate(DtlsCert);

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCertificate(..)")
    }
}

impl ServerCertificate {
    /// A fresh certificate from the crypto provider every Booth peer uses.
    ///
    /// # Errors
    /// The provider could not make one (no randomness, or no certificate support built in).
    pub fn generate() -> Result<Self, RtcError> {
        crypto()
            .dtls_provider
            .generate_certificate()
            .map(Self)
            .ok_or_else(|| RtcError::Certificate("the crypto provider made no certificate".into()))
    }

    /// [`rtc_config`] for a server session: ICE-lite, with this certificate.
    #[must_use]
    pub fn server_config(&self) -> RtcConfig {
        rtc_config()
            .set_ice_lite(true)
            .set_dtls_cert(self.0.clone())
    }
}

/// The local ICE username fragment of a STUN request (the part of USERNAME before the colon),
/// which names the session it is for. `None` for anything that is not a STUN message with a
/// USERNAME.
#[must_use]
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let size = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + size)?;
        if kind == USERNAME {
            let name = std::str::from_utf8(value).ok()?;
            return name.split(':').next();
        }
        at += 4 + size.div_ceil(4) * 4;
    }
    None
}

/// The local address packets to `remote` leave from (no packet is sent: a connected UDP socket
/// only asks the routing table). Loopback when the remote is on this machine.
#[must_use]
pub fn local_ip_towards(remote: IpAddr) -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let bind: SocketAddr = if remote.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect((remote, 9))?;
        Ok(socket.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The first `a=ice-ufrag:` of an SDP (the session's ICE username fragment).
#[must_use]
pub fn sdp_ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::trim)
}

/// The first audio section of an SDP: its `a=mid` and direction (`sendrecv` when unsaid).
#[must_use]
pub fn sdp_audio_section(sdp: &str) -> Option<(String, &'static str)> {
    let mut in_audio = false;
    let mut mid = None;
    let mut direction = "sendrecv";
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_audio {
                break;
            }
            in_audio = m.starts_with("audio ");
            continue;
        }
        if !in_audio {
            continue;
        }
        if let Some(v) = line.strip_prefix("a=mid:") {
            mid = Some(v.trim().to_owned());
        }
        for d in ["sendrecv", "sendonly", "recvonly", "inactive"] {
            if line.strip_prefix("a=") == Some(d) {
                direction = d;
            }
        }
    }
    mid.map(|m| (m, direction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_local_ufrag_of_a_binding_request() {
        let user = b"abcd:wxyz";
        let mut msg = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&[0x00, 0x06, 0, user.len() as u8]);
        msg.extend_from_slice(user);
        msg.extend_from_slice(&[0; 3]);
        let len = (msg.len() - 20) as u16;
        msg[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(stun_local_ufrag(&msg), Some("abcd"));
        assert_eq!(stun_local_ufrag(&msg[..25]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
    }
}
