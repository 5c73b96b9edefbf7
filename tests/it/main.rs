//! Booth's integration tests: one binary, one link.

// All of this crate is test code, helpers included: with `cfg(test)` on the crate, clippy's
// `allow-unwrap-in-tests` and `allow-expect-in-tests` (clippy.toml) cover the helpers that set a
// test up as they cover the `#[test]` functions, where a failure is a panic by design.
#![cfg(test)]

mod alloc;
mod devices;
mod ducking;
mod episodes_render;
mod feed;
mod host;
mod layering;
mod limiter;
mod listen_cli;
mod media_files;
mod mix_cli;
#[cfg(feature = "gui")]
mod overlay;
mod recording;
mod resampler;
mod room_people;
mod room_rules;
mod rooms;
mod support;
mod wav_containers;
