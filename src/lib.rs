//! Booth: host a live audio room from inside a game.
//!
//! Module map, in layers: the outer modules use the inner ones, never back (`tests/it/layering.rs`
//! checks it).
//!
//! Pure core (no IO, threads or clocks):
//! - [`dsp`]: signal processing (resampler, voice activity, ducker, mixer, limiter, meters, the
//!   drift controller). Samples in, samples out; allocates only at construction.
//! - [`codec`]: Opus encoder/decoder wrappers, the encoded frame, and the Ogg Opus (RFC 7845)
//!   writer and reader.
//! - [`room`]: the room as a state machine (roles, stage, hands, moderation, permissions) and
//!   [`room::protocol`], the typed wire protocol every client and the server speak.
//!
//! IO and real time:
//! - [`audio`]: decoding files of any common format; listing devices and capturing and playing
//!   them through cpal and lock-free rings.
//! - [`rtc`]: WebRTC (str0m): peer configuration, WHIP/WHEP signalling, client peers, jitter
//!   buffer.
//! - [`engine`]: the live host pipeline on its own thread: rings -> drift-steered lanes -> mic
//!   chain -> program chain -> Opus frames for a room or a recorder.
//!
//! Service:
//! - [`episodes`]: the show and its episodes in SQLite; rendering a recorded room to a podcast
//!   episode (MP3 normalised in one pass, ID3 and JSON chapters); the feed; `booth episodes`.
//! - [`server`]: `booth serve`: rooms over HTTP, WebSocket and WHIP/WHEP; one task per room with
//!   its sessions, its server mix and its recorder; the feed, episode pages and media.
//!
//! Front-ends (one per command; nothing below uses them):
//! - [`host`]: `booth host --headless`: the engine on devices or files, watched and recorded.
//! - [`live`]: going live from `booth host` and the overlay: the in-process server or a remote
//!   one, the room channel.
//! - [`listen`]: `booth listen`: a WHEP client that plays or records a room.
//! - [`mix`]: `booth mix`, the offline twin of the live pipeline.
//! - [`whip_out`]: `booth host --whip`: the program into any WHIP endpoint instead of a room.
//! - `app` (the `gui` feature): the egui overlay.

// `deny`, not `forbid`: `audio::pulse` allows `unsafe` on the two blocks that need it, each with
// its safety argument.
#![deny(unsafe_code)]

#[cfg(feature = "gui")]
pub mod app;
pub mod audio;
pub mod codec;
pub mod dsp;
pub mod engine;
pub mod episodes;
pub mod host;
pub mod listen;
pub mod live;
pub mod mix;
pub mod room;
pub mod rtc;
pub mod server;
pub mod whip_out;
