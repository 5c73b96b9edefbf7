//! The server's one UDP media socket, shared by every session of every room. A reader task
//! routes each datagram to the room that owns its session: STUN requests by the ICE username
//! fragment the session was given, everything else by the source address learnt from them.
//! Room tasks send on the same socket directly.

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

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, mpsc::Sender<Datagram>>,
    by_addr: HashMap<SocketAddr, (String, mpsc::Sender<Datagram>)>,
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

    /// Sends STUN for `ufrag` (and what follows from the same address) to `room`.
    pub fn route(&self, ufrag: &str, room: mpsc::Sender<Datagram>) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.by_ufrag.insert(ufrag.to_owned(), room);
    }

    /// Forgets a session's routes.
    pub fn unroute(&self, ufrag: &str) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        routes.by_ufrag.remove(ufrag);
        routes.by_addr.retain(|_, (u, _)| u != ufrag);
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
            let target = {
                let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
                match stun_local_ufrag(data) {
                    Some(ufrag) => {
                        let room = routes.by_ufrag.get(ufrag).cloned();
                        if let Some(room) = &room {
                            routes
                                .by_addr
                                .insert(source, (ufrag.to_owned(), room.clone()));
                        }
                        room
                    }
                    None => routes.by_addr.get(&source).map(|(_, r)| r.clone()),
                }
            };
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
