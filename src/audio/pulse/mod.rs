//! PulseAudio capture and playback on lean connections of Booth's own, handed to the rest of
//! Booth as cpal devices (cpal's `custom` host), so audio code is the same for every sound
//! system.
//!
//! Why: cpal 0.18's PulseAudio host runs every stream through the `pulseaudio` crate's client,
//! whose reactor zeroes a 1 MiB buffer on every socket read (and a request's worth on every
//! write), and polls the stream's latency after every packet (another two reads). With two
//! streams on a sink that renders every 5 ms that is about 700 reads and 1.4 GB of `memset` a
//! second: most of Booth's CPU. Here each stream has its own connection, and one pump serves
//! them all: once a period it reads whatever each server connection holds into buffers that
//! are reused, hands each record stream's samples to its callback in one call, and fills what
//! each playback stream's server asked for in one call. Messages are encoded and decoded with
//! that crate's `protocol` module, so the wire format is not Booth's to get wrong.
//!
//! Devices are still listed (and picked) through cpal's PulseAudio host; only the stream is
//! ours. Streams are created with PulseAudio's "don't move" flag: when their device goes away
//! the server ends the stream (instead of quietly moving it to the default device), and the
//! error callback says so at once, without polling the device list.
//!
//! The pump is the "device callback": per period it reads, converts and calls the callbacks,
//! and writes what the servers asked for, nothing else (no allocation once its buffers have
//! grown to a period's worth, no waiting: a socket that takes no more keeps the rest for the
//! next round, no log). It runs on the engine's thread, right before the engine pulls its
//! inputs ([`pump_now`]), so the engine finds the freshest samples and no thread wakes between
//! its blocks; the pump thread serves the streams only while nobody else does (a capture or a
//! playback with no engine, or an engine that stopped).
//!
//! A playback stream's commands (start, pause) go through the pump too, between whole
//! messages: only the pump writes on that socket.
//!
//! `unsafe` is denied here as everywhere in Booth except in two blocks that allow it for
//! themselves: cpal's `Data::from_parts`, the only way a custom device can hand samples to
//! cpal's callback (in `pump`, recording) or take them from it (in `connection`, playing).
//! The samples are a plain `Vec<i16>` or `Vec<f32>` this module owns; each block's `SAFETY`
//! comment says why the pointer and length are sound.
//!
//! The parts: `device` (what cpal sees: the device and its formats), `stream` (a stream's
//! setup and its owner's handle), `client` (connecting and the setup requests),
//! `connection` (a stream's socket as the pump reads and writes it), `pump` (who serves
//! the streams, and when), `format` (samples on the wire and in waiting) and
//! `server_changes` (the server's "my defaults changed" notices).

mod client;
mod connection;
mod device;
mod format;
mod pump;
mod server_changes;
mod stream;

use std::time::Duration;

use cpal::StreamInstant;

pub use device::{PulseDevice, is_lean};
pub use pump::pump_now;
pub use server_changes::server_changes;

/// A time since a stream started, as cpal stamps its callbacks.
fn instant(d: Duration) -> StreamInstant {
    StreamInstant::new(d.as_secs(), d.subsec_nanos())
}
