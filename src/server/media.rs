//! The server's one UDP media socket, shared by every session of every room. A reader task
//! routes each datagram to the room that owns its session: STUN requests by the ICE username
//! fragment the session was given, everything else by the source address the session's peer
//! proved. Room tasks send on the same socket directly.
//!
//! It never learns an address from a packet by itself: only a room whose session checked a STUN
//! request's MESSAGE-INTEGRITY tells it ([`MediaSocket::learn`]), so a forged request cannot
//! add or move a route.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use crate::rtc::stun_local_ufrag;

/// A datagram for a room.
#[derive(Debug)]
pub struct Datagram {
    /// Who sent it.
    pub source: SocketAddr,
    /// When it arrived.
    pub at: Instant,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Where one session's datagrams go, and the address its peer proved (at most one).
struct Route {
    room: mpsc::Sender<Datagram>,
    addr: Option<SocketAddr>,
}

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, Route>,
    /// Proved addresses, each naming its session's ufrag.
    by_addr: HashMap<SocketAddr, String>,
}

impl Routes {
    fn target(&self, data: &[u8], source: SocketAddr) -> Option<&mpsc::Sender<Datagram>> {
        let ufrag = match stun_local_ufrag(data) {
            Some(ufrag) => ufrag,
            None => self.by_addr.get(&source)?,
        };
        self.by_ufrag.get(ufrag).map(|r| &r.room)
    }
}

/// See the module doc.
pub struct MediaSocket {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    advertised: SocketAddr,
    routes: Mutex<Routes>,
}

impl std::fmt::Debug for MediaSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSocket")
            .field("local", &self.local)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl MediaSocket {
    /// Binds the first free port of `ports` on `ip`; sessions advertise `public_ip` (or the
    /// address this machine reaches the network from, or loopback).
    ///
    /// # Errors
    /// No port of the range is free.
    pub async fn bind(
        ip: IpAddr,
        ports: (u16, u16),
        public_ip: Option<IpAddr>,
    ) -> std::io::Result<Self> {
        let mut last = None;
        for port in ports.0..=ports.1 {
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(socket) => {
                    let local = socket.local_addr()?;
                    let advertised_ip = public_ip.unwrap_or_else(|| {
                        if ip.is_unspecified() {
                            crate::rtc::local_ip_towards(IpAddr::from([192, 0, 2, 1]))
                        } else {
                            ip
                        }
                    });
                    return Ok(Self {
                        socket: Arc::new(socket),
                        local,
                        advertised: SocketAddr::new(advertised_ip, local.port()),
                        routes: Mutex::new(Routes::default()),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("empty UDP port range")))
    }

    /// The address sessions put in their ICE candidate.
    #[must_use]
    pub fn advertised(&self) -> SocketAddr {
        self.advertised
    }

    /// The bound address.
    #[must_use]
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The socket, for sending.
    #[must_use]
    pub fn socket(&self) -> Arc<UdpSocket> {
        Arc::clone(&self.socket)
    }

    /// Sends STUN for `ufrag` to `room` (and, once [`Self::learn`]t, what its peer sends).
    pub fn route(&self, ufrag: &str, room: mpsc::Sender<Datagram>) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes
            .by_ufrag
            .insert(ufrag.to_owned(), Route { room, addr: None });
    }

    /// The session `ufrag`'s peer proved `addr` (a STUN request to it passed the integrity
    /// check): what comes from `addr` now goes to that session's room, and its old address is
    /// forgotten. False, and nothing changes, when another session holds `addr` (a valid
    /// request from an address someone else proved is a spoof or a stale port) or `ufrag` is
    /// not routed.
    pub fn learn(&self, ufrag: &str, addr: SocketAddr) -> bool {
        let mut guard = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let routes = &mut *guard;
        if let Some(holder) = routes.by_addr.get(&addr)
            && holder != ufrag
            && routes.by_ufrag.contains_key(holder)
        {
            return false;
        }
        let Some(route) = routes.by_ufrag.get_mut(ufrag) else {
            return false;
        };
        if let Some(old) = route.addr.replace(addr)
            && old != addr
        {
            routes.by_addr.remove(&old);
        }
        routes.by_addr.insert(addr, ufrag.to_owned());
        true
    }

    /// Forgets a session's routes.
    pub fn unroute(&self, ufrag: &str) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Route {
            addr: Some(addr), ..
        }) = routes.by_ufrag.remove(ufrag)
            && routes.by_addr.get(&addr).is_some_and(|u| u == ufrag)
        {
            routes.by_addr.remove(&addr);
        }
    }

    /// Sessions and proved addresses routed now (what the table costs).
    #[must_use]
    pub fn routes(&self) -> (usize, usize) {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        (routes.by_ufrag.len(), routes.by_addr.len())
    }

    /// Reads datagrams and hands them to their rooms, until the socket fails.
    pub async fn run(self: Arc<Self>, metrics: Arc<Metrics>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, source) = match self.socket.recv_from(&mut buf).await {
                Ok(v) => v,
                // ICMP port-unreachable from a peer that left surfaces here on some systems.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                Err(e) => {
                    tracing::error!("media socket failed: {e}");
                    return;
                }
            };
            metrics.packets_in.fetch_add(1, Relaxed);
            let data = &buf[..n];
            let target = self
                .routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .target(data, source)
                .cloned();
            let Some(room) = target else {
                metrics.unrouted.fetch_add(1, Relaxed);
                continue;
            };
            let datagram = Datagram {
                source,
                at: Instant::now(),
                data: data.to_vec(),
            };
            // A room that cannot keep up loses packets, as a congested network would.
            if room.try_send(datagram).is_err() {
                metrics.unrouted.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(user: &str) -> Vec<u8> {
        let mut msg = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        msg.extend_from_slice(&[7; 12]);
        let len = u16::try_from(user.len()).unwrap_or(0);
        msg.extend_from_slice(&[0x00, 0x06]);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(user.as_bytes());
        msg.resize(20 + 4 + user.len().div_ceil(4) * 4, 0);
        let body = u16::try_from(msg.len() - 20).unwrap_or(0);
        msg[2..4].copy_from_slice(&body.to_be_bytes());
        msg
    }

    #[tokio::test]
    async fn a_stun_request_routes_by_ufrag_but_only_a_proved_address_routes_media() {
        let media = MediaSocket::bind(IpAddr::from([127, 0, 0, 1]), (0, 0), None)
            .await
            .unwrap();
        let (room, _rx) = mpsc::channel(4);
        let (other_room, _other_rx) = mpsc::channel(4);
        media.route("victim", room);
        media.route("other", other_room);
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let forger = SocketAddr::from(([127, 0, 0, 1], 40001));
        let rtp = [0x80u8; 40];
        let routes = |data: &[u8], from| {
            let r = media.routes.lock().unwrap_or_else(PoisonError::into_inner);
            r.target(data, from).is_some()
        };
        // A request naming the session reaches its room, and teaches the table nothing.
        assert!(routes(&binding_request("victim:x"), forger));
        assert!(!routes(&rtp, forger));
        assert_eq!(media.routes(), (2, 0));
        // Once the room has checked the peer's request, its media follows.
        assert!(media.learn("victim", peer));
        assert!(routes(&rtp, peer));
        // Another session cannot take a proved address; the holder can move.
        assert!(!media.learn("other", peer));
        assert!(media.learn("victim", forger));
        assert!(!routes(&rtp, peer));
        media.unroute("victim");
        media.unroute("other");
        assert_eq!(media.routes(), (0, 0));
    }
}
