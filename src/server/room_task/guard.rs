//! A wall between one session and its room: the WebRTC stack parses what anyone on the internet
//! sends, on the room's task, so a panic in one session's handling must end that session only.
//! The room catches it here, closes the session without touching its peer again, counts it and
//! logs it with the session's id.
//!
//! Never used to hide the room's own bugs: only code that drives one session's peer runs inside.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `f`; a panic inside becomes `Err` with its message.
pub(super) fn isolated<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    // The session's state may be half-changed after a panic: the caller drops the session and
    // never reads it again, so asserting unwind safety holds.
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// Sessions whose next drive panics, to prove the wall holds.
#[cfg(test)]
pub(super) static PANIC_ON_DRIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Panics when a test asked for it for this session.
#[cfg(test)]
pub(super) fn test_panic(session: &str) {
    let asked =
        PANIC_ON_DRIVE
            .lock()
            .is_ok_and(|mut ids| match ids.iter().position(|i| i == session) {
                Some(p) => {
                    ids.swap_remove(p);
                    true
                }
                None => false,
            });
    if asked {
        panic!("test panic in session {session}");
    }
}
