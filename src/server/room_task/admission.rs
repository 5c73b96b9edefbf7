//! Who may open one more WebRTC session: the caps on a room's sessions (all of them, and those
//! still connecting) and on what one client address holds across the server. Counting only:
//! this module never touches a session, a socket or a peer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use super::Refusal;
use crate::server::limits::Limits;

/// Which cap refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCap {
    /// The room holds `sessions_per_room` sessions.
    RoomFull,
    /// The room has `pending_sessions_per_room` sessions still connecting.
    RoomPending,
    /// The address holds `sessions_per_address` sessions across the server.
    AddressFull,
    /// The address has `pending_sessions_per_address` sessions still connecting.
    AddressPending,
}

impl SessionCap {
    /// The protocol's error code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::RoomFull | Self::AddressFull => "too_many_sessions",
            Self::RoomPending | Self::AddressPending => "too_many_pending",
        }
    }

    /// The room is at its cap (503), rather than the one client (429).
    #[must_use]
    pub fn is_room(self) -> bool {
        matches!(self, Self::RoomFull | Self::RoomPending)
    }

    /// Seconds after which asking again may work: a connecting session is settled (connected
    /// or dropped) within seconds; a full room frees a place only when someone leaves.
    #[must_use]
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Self::RoomPending | Self::AddressPending => 5,
            Self::RoomFull | Self::AddressFull => 30,
        }
    }

    /// What happened and what to do.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::RoomFull => {
                "the room has as many listeners and speakers as it can take: try again later"
            }
            Self::RoomPending => {
                "too many sessions are connecting to this room right now: try again in a few seconds"
            }
            Self::AddressFull => {
                "your address holds as many sessions as one client may: hang up one first"
            }
            Self::AddressPending => {
                "your address has too many sessions still connecting: let them connect or hang them up first"
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    total: usize,
    pending: usize,
}

/// The WebRTC sessions each client address holds across the server, and how many of them are
/// still connecting.
#[derive(Debug, Default)]
pub struct AddressSessions {
    held: Mutex<HashMap<IpAddr, Held>>,
}

impl AddressSessions {
    /// Counts one more connecting session for `client`.
    ///
    /// # Errors
    /// The address is at one of its caps; nothing is counted then.
    pub fn admit(&self, client: IpAddr, limits: &Limits) -> Result<(), SessionCap> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let h = held.entry(client).or_default();
        let refused = if h.total >= limits.sessions_per_address {
            Some(SessionCap::AddressFull)
        } else if h.pending >= limits.pending_sessions_per_address {
            Some(SessionCap::AddressPending)
        } else {
            None
        };
        if let Some(cap) = refused {
            if h.total == 0 {
                held.remove(&client);
            }
            return Err(cap);
        }
        h.total += 1;
        h.pending += 1;
        Ok(())
    }

    /// One of `client`'s sessions connected.
    pub fn connected(&self, client: IpAddr) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = held.get_mut(&client) {
            h.pending = h.pending.saturating_sub(1);
        }
    }

    /// One of `client`'s sessions ended (`pending`: before it connected).
    pub fn release(&self, client: IpAddr, pending: bool) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = held.get_mut(&client) {
            h.total = h.total.saturating_sub(1);
            if pending {
                h.pending = h.pending.saturating_sub(1);
            }
            if h.total == 0 {
                held.remove(&client);
            }
        }
    }

    /// Addresses holding sessions now (what the map costs).
    #[must_use]
    pub fn addresses(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The room's own caps: `sessions` held and `pending` of them still connecting.
///
/// # Errors
/// The room is at one of them.
pub fn room_admits(sessions: usize, pending: usize, limits: &Limits) -> Result<(), Refusal> {
    if sessions >= limits.sessions_per_room {
        return Err(Refusal::SessionCap(SessionCap::RoomFull));
    }
    if pending >= limits.pending_sessions_per_room {
        return Err(Refusal::SessionCap(SessionCap::RoomPending));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_capped_on_connecting_and_on_all_sessions_and_forgotten_when_it_holds_none() {
        let limits = Limits {
            sessions_per_address: 3,
            pending_sessions_per_address: 2,
            ..Limits::default()
        };
        let a = IpAddr::from([203, 0, 113, 1]);
        let b = IpAddr::from([203, 0, 113, 2]);
        let sessions = AddressSessions::default();
        sessions.admit(a, &limits).unwrap();
        sessions.admit(a, &limits).unwrap();
        assert_eq!(sessions.admit(a, &limits), Err(SessionCap::AddressPending));
        sessions.admit(b, &limits).unwrap();
        sessions.connected(a);
        sessions.admit(a, &limits).unwrap();
        sessions.connected(a);
        assert_eq!(sessions.admit(a, &limits), Err(SessionCap::AddressFull));
        sessions.release(a, false);
        sessions.release(a, false);
        sessions.release(a, true);
        sessions.release(b, true);
        assert_eq!(sessions.addresses(), 0);
    }
}
