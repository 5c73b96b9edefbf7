//! Keeps what the sound libraries print while Booth probes ALSA's devices out of the user's
//! terminal.
//!
//! Listing ALSA's devices opens every PCM it names, and each plugin with nothing behind it
//! complains on stderr as it fails: alsa-lib itself ("ALSA lib ... Cannot get card index"),
//! and the client libraries its plugins load (JACK's, when no JACK server runs). None of that
//! is Booth's error: a device that does not open is left out of the list, and a user left with
//! none reads Booth's own message. alsa-lib's error handler would quiet
//! alsa-lib alone (JACK writes to stderr itself), and skipping plugins would lose a device on a
//! machine that has one behind them. So while ALSA is probed, stderr goes to a memory file, and
//! what was said there is logged at debug level afterwards (`BOOTH_LOG=booth=debug` shows it).
//!
//! stderr is the whole process's: a line another thread writes during those milliseconds is
//! logged at debug level with the rest. Probing happens when devices are listed or opened (a
//! command starting, the overlay's device list, a lost device looked for again), never on an
//! audio thread or in the engine's loop.
//!
//! Never here: a failure that stops the probe. Where stderr cannot be moved, the probe runs
//! with the terminal's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};

use rustix::fs::{MemfdFlags, memfd_create};
use rustix::io::fcntl_dupfd_cloexec;
use rustix::stdio::dup2_stderr;

/// One probe at a time moves stderr, so each puts back the terminal it found.
static MOVING_STDERR: Mutex<()> = Mutex::new(());

/// Runs `probe` with stderr in a memory file; logs what was written there at debug level.
pub(super) fn quietly<T>(probe: impl FnOnce() -> T) -> T {
    let _alone = MOVING_STDERR.lock().unwrap_or_else(PoisonError::into_inner);
    let moved = StderrMoved::to_memory();
    let result = probe();
    drop(moved);
    result
}

/// stderr going to a memory file until this is dropped (also when the probe panics, so the
/// panic's message reaches the terminal).
struct StderrMoved {
    terminal: OwnedFd,
    said: File,
}

impl StderrMoved {
    fn to_memory() -> Option<Self> {
        let said = memfd_create("booth-probe-stderr", MemfdFlags::CLOEXEC).ok()?;
        let terminal = fcntl_dupfd_cloexec(std::io::stderr(), 0).ok()?;
        dup2_stderr(&said).ok()?;
        Some(Self {
            terminal,
            said: File::from(said),
        })
    }
}

impl Drop for StderrMoved {
    fn drop(&mut self) {
        if dup2_stderr(&self.terminal).is_err() {
            return;
        }
        let mut said = String::new();
        if self.said.seek(SeekFrom::Start(0)).is_ok() {
            let mut bytes = Vec::new();
            let _ = self.said.read_to_end(&mut bytes);
            said = String::from_utf8_lossy(&bytes).into_owned();
        }
        for line in said.lines().filter(|l| !l.trim().is_empty()) {
            tracing::debug!("while probing ALSA devices: {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn what_a_probe_prints_stays_off_stderr_and_stderr_comes_back() {
        let terminal_before = fcntl_dupfd_cloexec(std::io::stderr(), 0).unwrap();
        let before = rustix::fs::fstat(&terminal_before).unwrap();
        let value = quietly(|| {
            let _ = writeln!(std::io::stderr(), "ALSA lib probe.c: nothing here");
            // Written where stderr is now: the memory file, not the terminal.
            let now = rustix::fs::fstat(std::io::stderr()).unwrap();
            assert_ne!((now.st_dev, now.st_ino), (before.st_dev, before.st_ino));
            42
        });
        assert_eq!(value, 42);
        let after = rustix::fs::fstat(std::io::stderr()).unwrap();
        assert_eq!((after.st_dev, after.st_ino), (before.st_dev, before.st_ino));
    }
}
