//! Audio IO: where samples come from and go to. For now, files: decoding any common format into
//! interleaved `f32` at its own rate ([`FileSource`]). Live devices join later.
//!
//! Nothing here does signal processing; that is `dsp`.

mod file;

pub use file::{AudioError, FileSource};
