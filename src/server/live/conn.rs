//! The HTTP server's connections, as the live streams need them: a reader of an endless
//! stream that stops reading is dropped within seconds, instead of holding its connection (and
//! a cursor in the ring) for ever.
//!
//! hyper only learns that a client stopped reading when a write cannot go out; it then waits
//! for the socket to drain, however long that takes. So the listener hands out connections
//! that a handler can mark as a live stream: such a connection gets a small send buffer (the
//! kernel then holds seconds of audio, not minutes), and a write that waits longer than
//! [`STALL`] fails, which makes hyper close the connection. Other connections are untouched (a
//! browser may rightly pause reading an episode's download for minutes).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

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

/// A TCP listener whose connections can be marked live.
#[derive(Debug)]
pub struct GuardedListener {
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

impl GuardedListener {
    /// Guards the connections `listener` accepts; readers dropped count in `metrics`.
    #[must_use]
    pub fn new(listener: TcpListener, metrics: Arc<Metrics>) -> Self {
        Self { listener, metrics }
    }
}

impl Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let guard = Arc::new(AtomicBool::new(false));
                    let io = GuardedStream {
                        inner: stream,
                        live: Arc::clone(&guard),
                        sized: false,
                        stall: None,
                        metrics: Arc::clone(&self.metrics),
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

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.listener.local_addr()?,
            guard: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<IncomingStream<'_, GuardedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        stream.remote_addr().clone()
    }
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
