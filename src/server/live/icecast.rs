//! Icecast source push: each room's program goes to an Icecast server as two mounts,
//! `{prefix}/{room}.mp3` and `{prefix}/{room}.ogg`, with the source protocol (an HTTP `PUT` with
//! Basic auth and `Expect: 100-continue`, then the stream's bytes, never chunked). Icecast and
//! its relays then carry any audience size; Booth encodes each format once for all of them.
//!
//! A push reconnects with backoff (0.5 s doubling to 5 s) whenever Icecast refuses, restarts or
//! falls behind, and stops when the room ends. It reads the hub as a relay (it keeps the stream
//! encoded, it is not counted as a listener) and never buffers: its socket holds a few seconds
//! of the stream, so an Icecast that stops reading blocks the push, which then falls behind the
//! hub or times out its write, drops the connection and reconnects. Memory stays flat.
//!
//! The source password goes to Icecast and nowhere else: [`IcecastTarget`]'s `Display` and
//! `Debug` hide it, and so does every error, log line and status made here.

mod target;
mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub use self::target::{IcecastTarget, MountKind, redact};
use self::wire::{Answer, read_answer};
pub use self::wire::{metadata_request, source_request};
use super::{LiveHub, Next, Reader, Subscription};
use crate::room::protocol::{IcecastMount, IcecastState};
use crate::server::metrics::Metrics;

/// The first wait before reconnecting; it doubles after each failure.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between attempts: an Icecast that restarts is back on the air within
/// this plus one connection.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A push that lasted this long was healthy: the next failure starts from [`MIN_BACKOFF`].
const STABLE_PUSH: Duration = Duration::from_secs(10);
/// Connecting, and Icecast's answer to the request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The push's socket send buffer: about 4 s of a 128 kbit/s stream.
const SEND_BUFFER: u32 = 64 * 1024;
/// One chunk written: a socket stuck this long is a dead connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an Icecast URL was refused, or a push failed. No message holds the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IcecastError {
    /// The URL is not one a push can use.
    #[error(
        "'{url}' is not an Icecast source URL: {why} (write it like http://source:PASSWORD@host:8000/)"
    )]
    BadUrl {
        /// The URL given, its password hidden.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The server could not be reached.
    #[error("cannot reach Icecast at {target}: {reason}")]
    Unreachable {
        /// The server, its password hidden.
        target: String,
        /// What the network said.
        reason: String,
    },
    /// Icecast refused the source password.
    #[error(
        "Icecast at {target} refused the source password for {mount} (401): check the password in the URL"
    )]
    WrongPassword {
        /// The server, its password hidden.
        target: String,
        /// The mount.
        mount: String,
    },
    /// Icecast refused the mount for another reason (in use, too many sources, a bad type).
    #[error("Icecast at {target} refused {mount} ({status}): {message}")]
    Refused {
        /// The server, its password hidden.
        target: String,
        /// The mount.
        mount: String,
        /// The HTTP status.
        status: u16,
        /// What Icecast said.
        message: String,
    },
    /// What answered was not Icecast.
    #[error("{target} did not answer like Icecast: {what}")]
    NotIcecast {
        /// The server, its password hidden.
        target: String,
        /// What came back.
        what: String,
    },
    /// The connection broke or Icecast closed it while the program streamed.
    #[error("lost Icecast at {target} while pushing {mount}: {reason}")]
    Lost {
        /// The server, its password hidden.
        target: String,
        /// The mount.
        mount: String,
        /// Why.
        reason: String,
    },
    /// Icecast took the stream slower than it is made, and the push fell behind the live edge.
    #[error("Icecast at {target} took {mount} too slowly; the push fell behind and reconnects")]
    Behind {
        /// The server, its password hidden.
        target: String,
        /// The mount.
        mount: String,
    },
}

/// One mount's push as the API shows it.
#[derive(Debug)]
struct MountStatus {
    kind: MountKind,
    mount: String,
    listen_url: String,
    now: Mutex<(IcecastState, Option<String>)>,
}

impl MountStatus {
    fn set(&self, state: IcecastState, error: Option<String>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        now.0 = state;
        if error.is_some() || state == IcecastState::Live {
            now.1 = error;
        }
    }

    fn shown(&self) -> IcecastMount {
        let now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        IcecastMount {
            format: self.kind.extension().to_owned(),
            mount: self.mount.clone(),
            url: self.listen_url.clone(),
            state: now.0,
            error: now.1.clone(),
        }
    }
}

/// A room's pushes to one Icecast server: both mounts, each its own task. Dropping it stops
/// them (they also stop by themselves when the room ends).
#[derive(Debug)]
pub struct IcecastPush {
    target: String,
    mounts: Vec<Arc<MountStatus>>,
    tasks: Vec<JoinHandle<()>>,
}

impl IcecastPush {
    /// Starts pushing the room of `hub` to `target`, both mounts at once, counting the mounts
    /// live in `metrics` (`icecast_pushes`). Call it inside the tokio runtime.
    #[must_use]
    pub fn start(hub: &Arc<LiveHub>, target: &IcecastTarget, metrics: &Arc<Metrics>) -> Self {
        let room = hub.room().to_owned();
        let mut mounts = Vec::new();
        let mut tasks = Vec::new();
        for kind in MountKind::ALL {
            let status = Arc::new(MountStatus {
                kind,
                mount: target.mount(&room, kind),
                listen_url: target.listen_url(&room, kind),
                now: Mutex::new((IcecastState::Connecting, None)),
            });
            let push = MountPush {
                hub: Arc::clone(hub),
                target: target.clone(),
                kind,
                status: Arc::clone(&status),
                metrics: Arc::clone(metrics),
            };
            tasks.push(tokio::spawn(push.run()));
            mounts.push(status);
        }
        Self {
            target: target.to_string(),
            mounts,
            tasks,
        }
    }

    /// Each mount's listen URL and state.
    #[must_use]
    pub fn status(&self) -> Vec<IcecastMount> {
        self.mounts.iter().map(|m| m.shown()).collect()
    }

    /// The server, its password hidden.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Drop for IcecastPush {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Counts a mount in `icecast_pushes` while it lives, however its task ends.
struct LiveCount(Arc<Metrics>);

impl LiveCount {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.icecast_pushes.fetch_add(1, Relaxed);
        Self(Arc::clone(metrics))
    }
}

impl Drop for LiveCount {
    fn drop(&mut self) {
        self.0.icecast_pushes.fetch_sub(1, Relaxed);
    }
}

/// How one connection ended.
enum Ended {
    /// The room ended: the push is over.
    Room,
    /// Icecast could not be reached or refused the mount: try again.
    Refused(IcecastError),
    /// The mount was live and the connection broke: try again.
    Lost(IcecastError),
}

/// One mount's push task.
struct MountPush {
    hub: Arc<LiveHub>,
    target: IcecastTarget,
    kind: MountKind,
    status: Arc<MountStatus>,
    metrics: Arc<Metrics>,
}

impl MountPush {
    async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        // The last refusal logged: a server that keeps refusing is logged once, not every 5 s.
        let mut refusal = String::new();
        while !self.hub.is_ended() {
            self.status.set(IcecastState::Connecting, None);
            let started = Instant::now();
            let why = match self.push_once().await {
                Ended::Room => break,
                Ended::Lost(e) => {
                    refusal.clear();
                    e.to_string()
                }
                Ended::Refused(e) => e.to_string(),
            };
            if why != refusal {
                tracing::warn!("{why}");
                refusal.clone_from(&why);
            }
            self.status.set(IcecastState::Retrying, Some(why));
            if started.elapsed() > STABLE_PUSH {
                backoff = MIN_BACKOFF;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        self.status.set(IcecastState::Stopped, None);
        tracing::info!(
            "Icecast push of {} to {} stopped: the room ended",
            self.status.mount,
            self.target
        );
    }

    /// Connects, opens the mount and streams until the room ends or something fails.
    async fn push_once(&self) -> Ended {
        let mount = &self.status.mount;
        let mut stream = match self.open().await {
            Ok(stream) => stream,
            Err(e) => return Ended::Refused(e),
        };
        // Subscribed only once Icecast takes the mount: a refused push encodes nothing.
        let mut sub = self.hub.subscribe(self.kind.format(), Reader::Relay);
        let _counted = LiveCount::new(&self.metrics);
        self.status.set(IcecastState::Live, None);
        tracing::info!("Icecast: {mount} is live on {}", self.target);
        if self.kind == MountKind::Mp3 {
            tokio::spawn(set_title(
                self.target.clone(),
                mount.clone(),
                self.hub.title(),
            ));
        }
        let ended = self.stream(&mut stream, &mut sub).await;
        if matches!(ended, Ended::Room) {
            let _ = stream.shutdown().await;
        }
        ended
    }

    /// Connects and sends the source request; Icecast's `100 Continue` (or `200`) opens the
    /// mount.
    async fn open(&self) -> Result<TcpStream, IcecastError> {
        let target = self.target.to_string();
        let mount = self.status.mount.clone();
        let unreachable = |reason: String| IcecastError::Unreachable {
            target: target.clone(),
            reason,
        };
        let mut stream = timeout(ANSWER_TIMEOUT, connect(&self.target))
            .await
            .map_err(|_| unreachable("no answer in 5 s".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let request = source_request(
            &self.target,
            &mount,
            self.kind,
            &self.hub.title(),
            self.hub.options().mp3_kbps,
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let answer = timeout(ANSWER_TIMEOUT, read_answer(&mut stream))
            .await
            .map_err(|_| unreachable("no answer to the source request in 5 s".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        match answer {
            Some(Answer {
                status: 100 | 200, ..
            }) => Ok(stream),
            Some(Answer { status: 401, .. }) => Err(IcecastError::WrongPassword { target, mount }),
            Some(Answer { status, message }) => Err(IcecastError::Refused {
                target,
                mount,
                status,
                message,
            }),
            None => Err(IcecastError::NotIcecast {
                target,
                what: "no HTTP answer to the source request".to_owned(),
            }),
        }
    }

    /// Writes the stream's header (Ogg: OpusHead and OpusTags), then every chunk as the hub
    /// makes it. Icecast sends nothing on a source connection, so anything read is its end.
    async fn stream(&self, stream: &mut TcpStream, sub: &mut Subscription) -> Ended {
        let lost = |reason: String| {
            Ended::Lost(IcecastError::Lost {
                target: self.target.to_string(),
                mount: self.status.mount.clone(),
                reason,
            })
        };
        let (mut from_icecast, mut to_icecast) = stream.split();
        let mut first = true;
        let mut scratch = [0u8; 256];
        loop {
            tokio::select! {
                next = sub.next() => match next {
                    Next::Chunk(chunk) => {
                        // The header is known by the first chunk (the encoder may start after
                        // the subscription).
                        let header = if first { sub.header() } else { Default::default() };
                        first = false;
                        if !header.is_empty()
                            && let Err(why) = write_within(&mut to_icecast, &header).await
                        {
                            return lost(why);
                        }
                        if let Err(why) = write_within(&mut to_icecast, &chunk.data).await {
                            return lost(why);
                        }
                    }
                    Next::Lagged => {
                        return Ended::Lost(IcecastError::Behind {
                            target: self.target.to_string(),
                            mount: self.status.mount.clone(),
                        });
                    }
                    Next::Ended => return Ended::Room,
                },
                read = from_icecast.read(&mut scratch) => match read {
                    Ok(0) => return lost("Icecast closed the connection".to_owned()),
                    Ok(_) => {}
                    Err(e) => return lost(e.to_string()),
                },
            }
        }
    }
}

/// A connection to `target` whose send buffer holds a few seconds of the stream: a stalled
/// Icecast then blocks the push within seconds (and the push falls behind and reconnects)
/// instead of the kernel queueing megabytes of stale audio for it.
async fn connect(target: &IcecastTarget) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other(format!("{} has no address", target.host()));
    for addr in tokio::net::lookup_host((target.host(), target.port())).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        let _ = socket.set_send_buffer_size(SEND_BUFFER);
        match socket.connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn write_within(
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
) -> Result<(), String> {
    match timeout(WRITE_TIMEOUT, to.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("a write stalled for 10 s".to_owned()),
    }
}

/// Sets an MP3 mount's title through Icecast's admin interface, with the source credentials.
/// The mount may take a moment to be listed after Icecast accepts it: a few tries.
async fn set_title(target: IcecastTarget, mount: String, title: String) {
    let request = metadata_request(&target, &mount, &title);
    let mut last = String::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match admin_call(&target, &request).await {
            Ok(()) => return,
            Err(why) => last = why,
        }
    }
    tracing::warn!("Icecast at {target} did not take the title of {mount}: {last}");
}

async fn admin_call(target: &IcecastTarget, request: &str) -> Result<(), String> {
    let call = async {
        let mut stream = TcpStream::connect((target.host(), target.port()))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        match read_answer(&mut stream).await.map_err(|e| e.to_string())? {
            Some(Answer { status: 200, .. }) => Ok(()),
            Some(Answer { status, message }) => Err(format!("{status}: {message}")),
            None => Err("no HTTP answer".to_owned()),
        }
    };
    timeout(ANSWER_TIMEOUT, call)
        .await
        .map_err(|_| "no answer in 5 s".to_owned())?
}
