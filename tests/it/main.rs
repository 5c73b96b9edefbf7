//! Booth's integration tests: one binary, one link.

mod alloc;
mod ducking;
mod limiter;
mod mix_cli;
mod resampler;
mod support;
