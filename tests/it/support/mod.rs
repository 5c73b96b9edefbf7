//! What the integration tests share: test signals and their measurement, audio files and the
//! programs that judge them, the child processes a test starts, and the test sound server.
//! Each lives here once; a test module that needs one imports it from here rather than keep
//! a copy. Nothing here asserts a behaviour of Booth: the tests do.

mod files;
mod process;
mod signal;
mod sound;

pub use files::*;
pub use process::*;
pub use signal::*;
pub use sound::*;
