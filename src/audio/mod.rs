//! Audio IO: where samples come from and go to. Files: decoding any common format into
//! interleaved `f32` at its own rate ([`FileSource`]). Devices: listing them and picking one
//! ([`list_devices`], [`open_input`]), and real-time capture into a lock-free ring
//! ([`start_capture`]) for the engine thread.
//!
//! Nothing here does signal processing; that is `dsp`. Nothing on an audio callback thread
//! allocates, locks, logs or blocks.

mod capture;
mod devices;
mod file;
mod playback;
#[cfg(target_os = "linux")]
mod pulse;
#[cfg(target_os = "linux")]
mod quiet_probe;
mod wav;

pub use capture::{Capture, CaptureStats, push_interleaved, start_capture};
pub use devices::{
    DeviceError, DeviceInfo, DeviceSelector, Direction, NativeFormat, Span, list_devices,
    open_input, open_input_on, open_output, open_output_on, spans_text,
};
pub use file::{AudioError, FileSource};
pub use playback::{Playback, PlaybackRing, PlaybackStats, pull_interleaved, start_playback};
pub use wav::MAX_WAV_CHANNELS;

/// A count that moves when the sound server says its defaults (or another of its settings)
/// changed: compare it now and then to follow the default devices without asking the server.
/// It moves only while Booth records from PulseAudio (or PipeWire's PulseAudio server) on its
/// own streams; elsewhere it stays put, and a default device is followed only when it is lost.
#[must_use]
pub fn default_changes() -> u64 {
    #[cfg(target_os = "linux")]
    return pulse::server_changes();
    #[cfg(not(target_os = "linux"))]
    0
}
