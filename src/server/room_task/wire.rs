//! How a room drives its WebRTC sessions on the wire: datagrams in (found through the session
//! index, never by walking the sessions), timeouts, each peer's outputs out, and sessions added,
//! closed and reaped with the index, the media socket's routes and the per-address counts kept
//! in step.
//!
//! A peer's remote address is learnt only from a STUN request its session accepted (str0m
//! checked its MESSAGE-INTEGRITY), and every call into one session's peer runs behind the
//! [`guard`](super::guard): a panic there ends that session, never the room.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Event as RtcEvent, Input, Output};

use super::RoomTask;
use super::guard::isolated;
use super::index::Keys;
use super::sessions::{Kind, Link, LocalEnd, Session};
use crate::server::media::Datagram;

/// A session that has not connected by then is dropped.
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// A session whose peer never sent a valid STUN request by then is dropped: a real client's
/// checks arrive within a second of the answer, so anything slower holds a place for nothing.
const ICE_DEADLINE: Duration = Duration::from_secs(8);
/// Sessions' timers are served together, at most this often (a walk over the sessions is then
/// a per-tick cost, not a per-timer one).
pub(super) const TIMER_GRAIN: Duration = Duration::from_millis(10);

fn keys(s: &Session) -> Keys<'_> {
    Keys {
        id: &s.id,
        ufrag: s.link.ufrag(),
        remote: match &s.link {
            Link::Rtc(link) => link.remote,
            Link::Local { .. } => None,
        },
    }
}

impl RoomTask {
    /// Adds a session to the room; its slot.
    pub(super) fn add_session(&mut self, s: Session) -> usize {
        let slot = self.sessions.len();
        self.index.insert(slot, &keys(&s));
        if !s.connected {
            self.pending += 1;
        }
        self.sessions.push(s);
        slot
    }

    pub(super) fn close_where(&mut self, pick: impl Fn(&Session) -> bool) {
        let mut i = 0;
        while i < self.sessions.len() {
            if pick(&self.sessions[i]) {
                self.close_session(i);
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn close_session(&mut self, i: usize) {
        let mut s = self.sessions.swap_remove(i);
        let moved = self.sessions.get(i).map(|m| (keys(m), self.sessions.len()));
        self.index
            .remove(i, &keys(&s), moved.as_ref().map(|(k, from)| (k, *from)));
        if !s.connected {
            self.pending = self.pending.saturating_sub(1);
        }
        if let Some(client) = s.client {
            self.shared.address_sessions.release(client, !s.connected);
        }
        let poisoned = s.poisoned;
        if let Some(link) = s.link.rtc() {
            // A clean close (RTCP BYE, DTLS close_notify) tells the peer at once; a peer that
            // panicked is not touched again.
            if !poisoned {
                let _ = isolated(|| self.say_goodbye(&mut link.rtc));
            }
            self.shared.media.unroute(&link.ufrag);
        }
        if s.connected {
            match s.kind {
                Kind::Publish => self.shared.metrics.publishers.fetch_sub(1, Relaxed),
                Kind::Listen => self.shared.metrics.listeners.fetch_sub(1, Relaxed),
            };
        }
        if let Some(who) = s.who
            && !self.sessions.iter().any(|o| o.who == Some(who))
        {
            self.mix.forget(who);
        }
        self.announce_listening();
    }

    fn say_goodbye(&self, rtc: &mut str0m::Rtc) {
        if rtc.close().is_ok() {
            for _ in 0..64 {
                match rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
                if !rtc.is_alive() {
                    break;
                }
            }
        }
        rtc.disconnect();
    }

    pub(super) fn reap(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.sessions.len() {
            let s = &self.sessions[i];
            let age = now.duration_since(s.created);
            let stale = match &s.link {
                Link::Rtc(link) => {
                    !link.rtc.is_alive()
                        || (!s.connected && age > CONNECT_DEADLINE)
                        || (link.remote.is_none() && age > ICE_DEADLINE)
                }
                // The host hung up.
                Link::Local { end, alive } => {
                    alive.is_closed()
                        || match end {
                            LocalEnd::Program(p) => p.ring.is_abandoned(),
                            LocalEnd::Hears(out) => out.is_closed(),
                        }
                }
            };
            if stale {
                self.close_session(i);
            } else {
                i += 1;
            }
        }
    }

    /// Runs `f` on the session at `i` behind the guard. False when it panicked: the session is
    /// closed then (what was at `i` is now another session, or nothing).
    pub(super) fn guarded(&mut self, i: usize, f: impl FnOnce(&mut Self)) -> bool {
        let Err(why) = isolated(|| f(self)) else {
            return true;
        };
        self.shared.metrics.session_panics.fetch_add(1, Relaxed);
        if let Some(s) = self.sessions.get_mut(i) {
            tracing::error!(
                "room {}: session {} failed and is closed: {why}",
                self.id,
                s.id
            );
            s.poisoned = true;
            self.close_session(i);
        }
        false
    }

    /// Serves the timers of every session due by `now` (and those due within the grain).
    pub(super) fn session_timeouts(&mut self, now: Instant) {
        let due = now + TIMER_GRAIN;
        let mut next = now + Duration::from_secs(1);
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions[i].deadline <= due && self.sessions[i].link.rtc().is_some() {
                let alive = self.guarded(i, |task| {
                    if let Some(link) = task.sessions[i].link.rtc() {
                        let _ = link.rtc.handle_input(Input::Timeout(now));
                    }
                    task.drive(i);
                });
                if !alive {
                    continue;
                }
            }
            next = next.min(self.sessions[i].deadline);
            i += 1;
        }
        self.next_wake = next;
        self.last_timers = now;
    }

    /// The session a datagram is for: a STUN request by the ICE username it names, anything
    /// else by the address a session's peer proved.
    fn session_for(&self, d: &Datagram) -> Option<(usize, bool)> {
        match crate::rtc::stun_local_ufrag(&d.data) {
            Some(ufrag) => self.index.by_ufrag(ufrag).map(|i| (i, true)),
            None => self.index.by_addr(d.source).map(|i| (i, false)),
        }
    }

    pub(super) fn on_datagram(&mut self, d: Datagram) {
        let Some((i, stun)) = self.session_for(&d) else {
            self.shared.metrics.unrouted.fetch_add(1, Relaxed);
            return;
        };
        let local = self.shared.media.local();
        self.guarded(i, |task| task.take_datagram(i, d, stun, local));
    }

    /// One datagram into the session at `i` (inside the guard).
    fn take_datagram(&mut self, i: usize, d: Datagram, stun: bool, local: SocketAddr) {
        let Ok(contents) = d.data.as_slice().try_into() else {
            return;
        };
        let input = Input::Receive(
            d.at,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: local,
                contents,
            },
        );
        let Some(link) = self.sessions[i].link.rtc() else {
            return;
        };
        // For STUN, `accepts` is the MESSAGE-INTEGRITY check against the session's password.
        if !link.rtc.accepts(&input) {
            self.shared.metrics.unrouted.fetch_add(1, Relaxed);
            return;
        }
        if stun && link.remote != Some(d.source) && !self.prove_address(i, d.source) {
            return;
        }
        if let Some(link) = self.sessions[i].link.rtc()
            && let Err(e) = link.rtc.handle_input(input)
        {
            tracing::debug!("room {}: session input: {e}", self.id);
        }
        self.drive(i);
    }

    /// The session at `i`'s peer sent a valid STUN request from `addr`: its media comes from
    /// there now. False when another session already holds `addr`.
    fn prove_address(&mut self, i: usize, addr: SocketAddr) -> bool {
        if self.index.by_addr(addr).is_some_and(|j| j != i) {
            return false;
        }
        let Some(link) = self.sessions[i].link.rtc() else {
            return false;
        };
        if !self.shared.media.learn(&link.ufrag, addr) {
            tracing::debug!("room {}: {addr} is another session's", self.id);
            return false;
        }
        let old = link.remote.replace(addr);
        self.index.readdress(i, old, addr);
        true
    }

    /// Runs a session's outputs until its next deadline.
    pub(super) fn drive(&mut self, i: usize) {
        let metrics = &self.shared.metrics;
        let socket = &self.socket;
        let s = &mut self.sessions[i];
        let (kind, id) = (s.kind, &s.id);
        let Link::Rtc(link) = &mut s.link else {
            return;
        };
        #[cfg(test)]
        super::guard::test_panic(id);
        let mut newly_connected = false;
        loop {
            match link.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    s.deadline = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    match socket.try_send_to(&t.contents, t.destination) {
                        Ok(_) => metrics.packets_out.fetch_add(1, Relaxed),
                        Err(_) => metrics.send_drops.fetch_add(1, Relaxed),
                    };
                }
                Ok(Output::Event(RtcEvent::Connected)) => {
                    s.connected = true;
                    newly_connected = true;
                    match kind {
                        Kind::Publish => metrics.publishers.fetch_add(1, Relaxed),
                        Kind::Listen => metrics.listeners.fetch_add(1, Relaxed),
                    };
                }
                Ok(Output::Event(e)) => link.on_event(e, kind),
                Err(e) => {
                    tracing::debug!("session {id}: {e}");
                    link.rtc.disconnect();
                    s.deadline = Instant::now();
                    break;
                }
            }
        }
        if s.connected && kind == Kind::Listen {
            link.learn_payload_type();
        }
        let (deadline, client) = (s.deadline, s.client);
        self.next_wake = self.next_wake.min(deadline);
        if newly_connected {
            self.pending = self.pending.saturating_sub(1);
            if let Some(client) = client {
                self.shared.address_sessions.connected(client);
            }
            if kind == Kind::Listen {
                self.announce_listening();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};

    use crate::rtc::peer::{ClientPeer, Mode};
    use crate::server::room_task::guard::PANIC_ON_DRIVE;
    use crate::server::{ServeOptions, start};

    /// Frames `peer` receives within `span`.
    async fn frames_within(peer: &mut ClientPeer, span: Duration) -> usize {
        let end = tokio::time::Instant::now() + span;
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout_at(end, peer.incoming.recv()).await {
            n += 1;
        }
        n
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_that_panics_is_closed_and_counted_and_the_room_plays_on() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(ServeOptions {
            bind: "127.0.0.1:0".parse().unwrap(),
            udp_ports: (0, 0),
            data_dir: dir.path().to_owned(),
            ..ServeOptions::default()
        })
        .await
        .unwrap();
        let url = server.base_url.clone();
        let created: serde_json::Value = reqwest::Client::new()
            .post(format!("{url}/api/rooms"))
            .json(&serde_json::json!({"title": "Wall", "game": "Test"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let whep = created["whep_url"].as_str().unwrap().to_owned();
        let connect = Duration::from_secs(30);
        let mut doomed = ClientPeer::connect(&whep, None, Mode::Listen, connect)
            .await
            .unwrap();
        let mut survivor = ClientPeer::connect(&whep, None, Mode::Listen, connect)
            .await
            .unwrap();
        assert!(frames_within(&mut survivor, Duration::from_secs(1)).await > 20);
        assert!(frames_within(&mut doomed, Duration::from_secs(1)).await > 20);
        let id = doomed.location.rsplit('/').next().unwrap().to_owned();
        PANIC_ON_DRIVE.lock().unwrap().push(id);
        let metrics = std::sync::Arc::clone(&server.state.shared.metrics);
        let deadline = Instant::now() + Duration::from_secs(20);
        while metrics.session_panics.load(Relaxed) == 0 {
            assert!(Instant::now() < deadline, "the hook never fired");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The room goes on for the other listener; the one that panicked is closed.
        assert!(frames_within(&mut survivor, Duration::from_secs(2)).await > 60);
        assert_eq!(metrics.listeners.load(Relaxed), 1);
        let _ = frames_within(&mut doomed, Duration::from_millis(200)).await;
        assert_eq!(
            frames_within(&mut doomed, Duration::from_millis(500)).await,
            0
        );
        assert_eq!(metrics.session_panics.load(Relaxed), 1);
        server.close().await;
    }
}
