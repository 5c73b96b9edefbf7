//! Booth: host a live audio room from inside a game.
//!
//! Module map (arrows point one way: the outer modules use the inner ones, never back):
//!
//! - [`dsp`]: pure signal processing (resampler, voice activity, ducker, mixer, limiter,
//!   meters). Samples in, samples out; no IO, threads or clocks; allocates only at construction.
//! - [`codec`]: Opus encoder/decoder wrappers and the Ogg Opus (RFC 7845) writer and reader.
//! - [`audio`]: audio IO: decoding files of any common format; listing devices and capturing
//!   them through cpal into lock-free rings.
//! - [`engine`]: the live host pipeline on its own thread: rings -> drift-steered resampling ->
//!   mic chain -> program chain -> Opus frames for a room or a recorder.
//! - [`host`]: `booth host --headless`: the engine on devices or files, watched and recorded.
//! - [`mix`]: `booth mix`, the offline twin of the live pipeline.
//! - [`rtc`]: WebRTC (str0m): peer configuration, WHIP/WHEP signalling, client peers, jitter
//!   buffer.
//! - [`server`]: `booth serve`: rooms over HTTP, WebSocket and WHIP/WHEP, the server-side mix.
//! - [`live`]: going live from `booth host`: the in-process server or a remote one, WHIP out.
//! - [`listen`]: `booth listen`: a WHEP client that plays or records a room.

// `deny`, not `forbid`: `audio::pulse` allows `unsafe` on the two blocks that need it, each with
// its safety argument.
#![deny(unsafe_code)]

#[cfg(feature = "gui")]
pub mod app;
pub mod audio;
pub mod codec;
pub mod dsp;
pub mod engine;
pub mod host;
pub mod listen;
pub mod live;
pub mod mix;
pub mod room;
pub mod rtc;
pub mod server;
