//! The server's "my settings changed" notices (a new default output or input, above all):
//! each record stream subscribes to them on its own connection, and the pump counts them.
//!
//! Never here: a request that waits for its reply (the subscription's reply is passed over
//! with the other messages the pump does not need).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use cpal::Error;
use pulseaudio::protocol;

use super::client::protocol_error;

/// How many times a sound server Booth records from said that its settings changed (its
/// default output or input, above all): each record stream asks to be told.
static SERVER_CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many times a sound server Booth records from has said that its defaults (or another of
/// its settings) changed. The host compares it once a second, to follow a default device; it
/// moves only while a record stream of Booth's own is open.
pub fn server_changes() -> u64 {
    SERVER_CHANGES.load(Ordering::Relaxed)
}

/// Asks the server (on a record stream's connection, as command `seq`) to tell it of changes
/// to its settings. Its reply is not waited for.
pub(super) fn subscribe(writer: &mut impl Write, seq: u32, version: u16) -> Result<(), Error> {
    protocol::write_command_message(
        writer,
        seq,
        &protocol::Command::Subscribe(protocol::SubscriptionMask::SERVER),
        version,
    )
    .map_err(|e| protocol_error("asking to hear of the server's changes", &e))
}

/// Counts one notice from the server.
pub(super) fn heard() {
    SERVER_CHANGES.fetch_add(1, Ordering::Relaxed);
}
