//! One encoded frame of a stream: the unit the live engine hands to its consumers (a recorder,
//! the WebRTC publisher) and the unit a publisher sends. It lives here, below both, so that the
//! engine and `rtc` speak the same type without one importing the other.
//!
//! A plain value: no codec state, no clock, no IO.

/// One 20 ms Opus packet and where it sits in its stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The frame's first sample, counted in 48 kHz samples from the start of the stream (for
    /// the live program: since the engine started). A publisher sends it as the RTP time.
    pub pts: u64,
    /// The Opus packet.
    pub packet: Vec<u8>,
}
