//! Rooms nobody uses end by themselves: one whose host never comes (no room-channel hello, no
//! session) after `host_absent_secs`, one with nobody connected (no room-channel connection,
//! no media session, no stream listener, HLS player or relay) after `idle_secs`. They end the
//! way a host ends a room, so the recording is finished and everyone still there is told.
//!
//! Looks at the room at most once a second: it must never cost the room's task per packet.

use std::time::{Duration, Instant};

use super::RoomTask;
use crate::room::{ParticipantId, Role};
use crate::server::live::Format;

/// How often the room is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Why a room ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// Its host never connected.
    HostAbsent,
    /// Nobody was connected for `idle_secs`.
    Idle,
}

/// A room's clock for ending unused.
#[derive(Debug)]
pub(super) struct Expiry {
    born: Instant,
    host_seen: bool,
    idle_since: Option<Instant>,
    next_check: Instant,
    /// Set once the room ended by itself: its task then finishes as soon as nobody is left.
    pub expired: Option<Expired>,
}

impl Expiry {
    pub fn new(now: Instant) -> Self {
        Self {
            born: now,
            host_seen: false,
            idle_since: None,
            next_check: now + CHECK_EVERY,
            expired: None,
        }
    }

    /// What the room's presence says now, given how long a room may wait.
    fn verdict(
        &mut self,
        now: Instant,
        host_present: bool,
        anyone_present: bool,
        (host_absent, idle): (Duration, Duration),
    ) -> Option<Expired> {
        self.host_seen |= host_present;
        if !self.host_seen && now.saturating_duration_since(self.born) >= host_absent {
            return Some(Expired::HostAbsent);
        }
        if anyone_present {
            self.idle_since = None;
            return None;
        }
        let since = *self.idle_since.get_or_insert(now);
        (now.saturating_duration_since(since) >= idle).then_some(Expired::Idle)
    }
}

impl RoomTask {
    /// Ends the room if it has gone unused too long (at most once a second).
    pub(super) fn check_expiry(&mut self, now: Instant) {
        if self.ended_at.is_some() || now < self.expiry.next_check {
            return;
        }
        self.expiry.next_check = now + CHECK_EVERY;
        let host = self.host();
        let host_present = self.members.get(&host).is_some_and(|m| !m.conns.is_empty())
            || self.sessions.iter().any(|s| s.who == Some(host));
        let anyone_present = host_present
            || self.members.values().any(|m| !m.conns.is_empty())
            || !self.sessions.is_empty()
            || self.live.audience() > 0
            || self.live.wants(Format::Ogg)
            || self.live.wants(Format::Opus);
        let limits = (self.shared.limits.host_absent(), self.shared.limits.idle());
        let Some(why) = self
            .expiry
            .verdict(now, host_present, anyone_present, limits)
        else {
            return;
        };
        tracing::info!(
            room = %self.id,
            "the room ends by itself: {}",
            match why {
                Expired::HostAbsent => "its host never connected",
                Expired::Idle => "nobody has been in it for a while",
            }
        );
        self.expiry.expired = Some(why);
        self.room.end_unused();
        self.pump();
    }

    /// Whether the task may finish now: the room has ended, nobody is left on its channel,
    /// and it either ended by itself or long enough ago that late visitors have seen it end.
    pub(super) fn finished(&self) -> bool {
        let Some(at) = self.ended_at else {
            return false;
        };
        (self.expiry.expired.is_some() || at.elapsed() > Duration::from_secs(600))
            && self.members.values().all(|m| m.conns.is_empty())
    }

    /// The room's host now (a hand-over may have made another member host).
    fn host(&self) -> ParticipantId {
        self.members
            .keys()
            .copied()
            .find(|id| self.room.role(*id) == Some(Role::Host))
            .unwrap_or(ParticipantId(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(30));

    #[test]
    fn a_room_whose_host_never_comes_expires_after_host_absent() {
        let t0 = Instant::now();
        let mut e = Expiry::new(t0);
        // A listener keeps the room busy, but not the host's absence from ending it.
        assert_eq!(
            e.verdict(t0 + Duration::from_secs(9), false, true, LIMITS),
            None
        );
        assert_eq!(
            e.verdict(t0 + Duration::from_secs(10), false, true, LIMITS),
            Some(Expired::HostAbsent)
        );
    }

    #[test]
    fn a_room_expires_only_after_being_empty_for_idle() {
        let t0 = Instant::now();
        let mut e = Expiry::new(t0);
        assert_eq!(e.verdict(t0, true, true, LIMITS), None);
        let s = |n| t0 + Duration::from_secs(n);
        assert_eq!(e.verdict(s(20), false, false, LIMITS), None);
        assert_eq!(e.verdict(s(45), false, true, LIMITS), None);
        assert_eq!(e.verdict(s(50), false, false, LIMITS), None);
        assert_eq!(e.verdict(s(79), false, false, LIMITS), None);
        assert_eq!(e.verdict(s(80), false, false, LIMITS), Some(Expired::Idle));
    }
}
