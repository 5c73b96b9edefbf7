//! The HTTP server's connections: who may open one, how long a request's headers may take,
//! and what the live streams need of them.
//!
//! Admission: the listener counts open connections, server-wide and per TCP peer address; one
//! over either cap is closed as soon as it is accepted (so the kernel's backlog never fills
//! with them) and counted in `/metrics`. A connection whose request headers have not arrived
//! within the header timeout is closed by hyper.
//!
//! Live streams: a reader of an endless stream that stops reading is dropped within seconds,
//! instead of holding its connection (and a cursor in the ring) for ever.
//! hyper only learns that a client stopped reading when a write cannot go out; it then waits
//! for the socket to drain, however long that takes. So the listener hands out connections
//! that a handler can mark as a live stream: such a connection gets a small send buffer (the
//! kernel then holds seconds of audio, not minutes), and a write that waits longer than
//! [`STALL`] fails, which makes hyper close the connection. Other connections are untouched (a
//! browser may rightly pause reading an episode's download for minutes).
//!
//! Never reads a request's bytes itself: parsing is hyper's.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::server::limits::Limits;
use crate::server::metrics::Metrics;

/// How long a live stream's write may wait for its reader.
pub const STALL: Duration = Duration::from_secs(6);
/// A live stream's send buffer: about 2 s of a 128 kbit/s stream.
const LIVE_SEND_BUFFER: usize = 32 * 1024;

/// What a handler learns of its connection (through `ConnectInfo<Peer>`).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    guard: Arc<AtomicBool>,
}

impl Peer {
    /// Marks the connection as carrying an endless stream: see the module doc.
    pub fn mark_live(&self) {
        self.guard.store(true, Relaxed);
    }
}

/// The open connections, counted for the caps: server-wide and per TCP peer address (the
/// address a reverse proxy forwards for is not known before a request is read; behind a
/// proxy, the per-address cap is the proxy's).
#[derive(Debug)]
struct ConnectionGate {
    max_total: usize,
    per_address: usize,
    total: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    metrics: Arc<Metrics>,
}

impl ConnectionGate {
    /// A place for a connection from `ip`, or none when a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let mut by_address = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let from_ip = by_address.entry(ip).or_insert(0);
        if *from_ip >= self.per_address || self.total.load(Relaxed) >= self.max_total {
            if *from_ip == 0 {
                by_address.remove(&ip);
            }
            return None;
        }
        *from_ip += 1;
        self.total.fetch_add(1, Relaxed);
        self.metrics.http_connections.fetch_add(1, Relaxed);
        Some(Admission {
            gate: Arc::clone(self),
            ip,
        })
    }
}

/// One counted connection; counted out when dropped.
#[derive(Debug)]
struct Admission {
    gate: Arc<ConnectionGate>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut by_address = self
            .gate
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_address.remove(&self.ip);
            }
        }
        self.gate.total.fetch_sub(1, Relaxed);
        self.gate.metrics.http_connections.fetch_sub(1, Relaxed);
    }
}

/// A TCP listener that admits connections within the caps and hands them out guarded (they
/// can be marked live).
#[derive(Debug)]
pub struct GuardedListener {
    listener: TcpListener,
    gate: Arc<ConnectionGate>,
}

impl GuardedListener {
    /// Guards the connections `listener` accepts within `limits`' connection caps; refusals
    /// and readers dropped count in `metrics`.
    #[must_use]
    pub fn new(listener: TcpListener, metrics: Arc<Metrics>, limits: &Limits) -> Self {
        let gate = ConnectionGate {
            max_total: limits.max_connections,
            per_address: limits.connections_per_address,
            total: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            metrics,
        };
        Self {
            listener,
            gate: Arc::new(gate),
        }
    }

    /// The next connection within the caps; those over a cap are closed at once.
    pub async fn accept(&mut self) -> (GuardedStream, Peer) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let Some(admission) = self.gate.admit(addr.ip()) else {
                        self.gate.metrics.http_refused.fetch_add(1, Relaxed);
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let guard = Arc::new(AtomicBool::new(false));
                    let io = GuardedStream {
                        inner: stream,
                        live: Arc::clone(&guard),
                        sized: false,
                        stall: None,
                        metrics: Arc::clone(&self.gate.metrics),
                        _admission: admission,
                    };
                    return (io, Peer { addr, guard });
                }
                // Out of file descriptors and the like: wait a little rather than spin (as
                // axum's own TCP listener does).
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` resolves, then lets every open connection finish
/// its requests (hyper's graceful shutdown) and returns once they have closed. Handlers find
/// the connection's [`Peer`] as `ConnectInfo<Peer>`.
pub async fn serve(
    mut listener: GuardedListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    // Its sender is dropped when serving stops: every connection then shuts down gracefully...
    let (stopping_tx, stopping_rx) = watch::channel(());
    // ...and every connection task holds a clone of this until it ends.
    let (open_tx, open_rx) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer.clone()));
            app.clone().oneshot(req)
        });
        let mut stopping = stopping_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!("connection ended: {e}");
                    }
                }
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stopping_tx);
    drop(open_rx);
    open_tx.closed().await;
}

/// See [`GuardedListener`].
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    live: Arc<AtomicBool>,
    /// The send buffer was made small (once the connection is live).
    sized: bool,
    /// Running while a live write waits.
    stall: Option<Pin<Box<Sleep>>>,
    metrics: Arc<Metrics>,
    /// Holds the connection's place under the caps.
    _admission: Admission,
}

impl GuardedStream {
    fn size_when_live(&mut self) {
        if !self.sized && self.live.load(Relaxed) {
            self.sized = true;
            let _ = socket2::SockRef::from(&self.inner).set_send_buffer_size(LIVE_SEND_BUFFER);
        }
    }

    fn on_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.live.load(Relaxed) {
            return Poll::Pending;
        }
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.metrics.stream_drops.fetch_add(1, Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the listener stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.size_when_live();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.on_pending(cx),
            done => {
                this.stall = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.size_when_live();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.on_pending(cx),
            done => {
                this.stall = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
