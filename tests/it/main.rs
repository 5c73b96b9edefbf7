//! Booth's integration tests: one binary, one link.

// A test fails by panicking; unwrapping what the test itself set up is the clear way to say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alloc;
mod devices;
mod ducking;
mod host;
mod layering;
mod limiter;
mod listen_cli;
mod mix_cli;
#[cfg(feature = "gui")]
mod overlay;
mod resampler;
mod room_rules;
mod rooms;
mod support;
