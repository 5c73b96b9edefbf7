//! `booth serve`: the room server. axum + tokio: the HTTP API, the WebSocket room channel,
//! WHIP/WHEP endpoints, `/healthz` and `/metrics`; one task per room (`room_task`) owns its
//! `room::Room` and its media; one UDP socket (`media`) carries every session.
//!
//! The protocol (HTTP routes, WebSocket messages, error codes) is written down in
//! `src/server/protocol.md`.

pub mod api;
pub mod client;
pub mod edge;
pub mod episodes;
pub mod error;
pub mod limits;
pub mod live;
pub mod media;
pub mod media_files;
pub mod metrics;
pub mod podcast_pages;
pub mod recorder;
pub mod room_task;
pub mod rooms;
pub mod tokens;
pub mod ws;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::error::ApiError;
use self::media::MediaSocket;
use self::metrics::Metrics;
use self::room_task::{LocalMedia, RoomHandle, RoomMsg, Shared};
use crate::rtc::peer::InFrame;

/// How the server starts.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTP address (API, WebSocket, WHIP/WHEP, pages).
    pub bind: SocketAddr,
    /// The address put in ICE candidates, when the machine is behind NAT.
    pub public_ip: Option<IpAddr>,
    /// The UDP media port, or the range to pick the first free one from.
    pub udp_ports: (u16, u16),
    /// Recordings and the database.
    pub data_dir: PathBuf,
    /// `stun:`/`turn:` URLs advertised to WHIP/WHEP clients in `Link` headers.
    pub ice_servers: Vec<String>,
    /// The base URL links are made from (default: `http://<bind>`).
    pub public_url: Option<String>,
    /// The podcast every recorded room is an episode of.
    pub show: crate::episodes::Show,
    /// How the live HTTP streams and HLS are made.
    pub live: live::LiveOptions,
    /// Push every room to this Icecast server (a room may name its own in `POST /api/rooms`).
    pub icecast: Option<live::icecast::IcecastTarget>,
    /// What any one client, address and room may take.
    pub limits: limits::Limits,
    /// Serve `/metrics` and `/healthz` on this address instead (the main listener then has
    /// no `/metrics`).
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            public_ip: None,
            udp_ports: (50_000, 50_100),
            data_dir: PathBuf::from("booth-data"),
            ice_servers: Vec::new(),
            public_url: None,
            show: crate::episodes::Show::default(),
            live: live::LiveOptions::default(),
            icecast: None,
            limits: limits::Limits::default(),
            metrics_bind: None,
        }
    }
}

/// Parses `PORT` or `LOW-HIGH`.
///
/// # Errors
/// Not a port or a range of ports.
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{s}' is not a UDP port or a range like 50000-50100");
    match s.split_once('-') {
        None => {
            let p = s.trim().parse().map_err(|_| bad())?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let a: u16 = a.trim().parse().map_err(|_| bad())?;
            let b: u16 = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            Ok((a, b))
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The HTTP port is taken or not ours.
    #[error(
        "cannot listen on {addr}: {source} (is another Booth running? pick another with --bind)"
    )]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No UDP port of the range could be bound.
    #[error("cannot open a UDP media port in {low}-{high}: {source} (pick others with --udp-port)")]
    Udp {
        /// Range start.
        low: u16,
        /// Range end.
        high: u16,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed while running.
    #[error("the server stopped: {0}")]
    Run(std::io::Error),
    /// The server's DTLS certificate cannot be made.
    #[error("{0}")]
    Certificate(crate::rtc::RtcError),
    /// The episodes database cannot be opened.
    #[error("{0}")]
    Episodes(#[from] crate::episodes::store::StoreError),
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Open rooms by id (a room leaves when its task finishes: [`rooms::remove_ended`]).
    pub rooms: RwLock<HashMap<String, RoomHandle>>,
    /// Room creations per client address.
    pub creations: rooms::RoomCreations,
    /// What room tasks share.
    pub shared: Shared,
    /// Base URL for links.
    pub base_url: String,
    /// ICE servers for `Link` headers.
    pub ice_servers: Vec<String>,
    /// The show and its episodes.
    pub episodes: Arc<crate::episodes::store::Store>,
    /// Where rooms are pushed unless they name their own Icecast server.
    pub icecast: Option<live::icecast::IcecastTarget>,
    /// Room-channel WebSockets open per client address.
    pub websockets: ws::PerAddress,
}

impl AppState {
    /// The room with this id.
    #[must_use]
    pub fn room(&self, id: &str) -> Option<RoomHandle> {
        self.rooms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }
}

/// A server running in this process (the embedded default of `booth host` and the overlay).
#[derive(Debug)]
pub struct RunningServer {
    /// Where it answers HTTP.
    pub http: SocketAddr,
    /// Its base URL.
    pub base_url: String,
    /// Where it answers `/metrics`, when on its own listener (`metrics_bind`).
    pub metrics_http: Option<SocketAddr>,
    /// Shared state (rooms, metrics).
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl RunningServer {
    /// Stops serving and waits for it: every room's recording is finished first (its files
    /// closed properly; rendering resumes at the next start).
    pub async fn shutdown(self) {
        self.stop(false).await;
    }

    /// Stops as the host's process ends (the rooms end with it): every room's recording is
    /// finished and its episode rendered and published before it returns.
    pub async fn close(self) {
        self.stop(true).await;
    }

    async fn stop(mut self, render: bool) {
        self.finish_recordings(render).await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn finish_recordings(&self, render: bool) {
        let rooms: Vec<RoomHandle> = self
            .state
            .rooms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for room in rooms {
            let (reply, done) = oneshot::channel();
            if room
                .tx
                .send(RoomMsg::Shutdown { render, reply })
                .await
                .is_ok()
            {
                let _ = done.await;
            }
        }
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    ///
    /// # Errors
    /// The server failed.
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        match self.task.as_mut() {
            Some(task) => {
                let r = task
                    .await
                    .map_err(|e| ServeError::Run(std::io::Error::other(e.to_string())))?;
                self.task = None;
                r
            }
            None => Ok(()),
        }
    }
}

/// A session of the host in the server's own process (see [`RunningServer::publish_here`]):
/// frames travel over channels, not WebRTC. Drop it to hang up.
#[derive(Debug)]
pub struct LocalSession {
    /// Where a publishing host writes its program: 48 kHz interleaved stereo, in whole 20 ms
    /// blocks, one per 20 ms (the engine's [`crate::engine::FrameSink::Program`]).
    pub program: Option<rtrb::Producer<f32>>,
    /// What a listening host hears.
    pub incoming: Option<mpsc::Receiver<InFrame>>,
    /// Closed once the room has let the session go.
    alive: mpsc::Receiver<()>,
}

impl LocalSession {
    /// Whether the room has let the session go (the room ended, or the host was removed).
    #[must_use]
    pub fn ended(&self) -> bool {
        self.alive.is_closed()
    }
}

impl RunningServer {
    /// Publishes into `room` with `token` from this process: the room's rules as for WHIP, and
    /// the program written to [`LocalSession::program`] is mixed as it is, with no codec,
    /// WebRTC, network or encryption between the host and its own server.
    ///
    /// # Errors
    /// No such room, or the room refuses the token (as WHIP would).
    pub async fn publish_here(&self, room: &str, token: &str) -> Result<LocalSession, ApiError> {
        // Ten blocks: the room takes one per tick and keeps at most a few.
        let (program, ring) = rtrb::RingBuffer::new(10 * 2 * crate::codec::opus::FRAME_SAMPLES);
        let alive = self.local(room, token, LocalMedia::Publish(ring)).await?;
        Ok(LocalSession {
            program: Some(program),
            incoming: None,
            alive,
        })
    }

    /// Hears `room` with `token` from this process (a stage member's mix-minus), as WHEP would,
    /// without WebRTC.
    ///
    /// # Errors
    /// No such room, or the room refuses the token.
    pub async fn listen_here(&self, room: &str, token: &str) -> Result<LocalSession, ApiError> {
        let (tx, incoming) = mpsc::channel(256);
        let alive = self.local(room, token, LocalMedia::Listen(tx)).await?;
        Ok(LocalSession {
            program: None,
            incoming: Some(incoming),
            alive,
        })
    }

    async fn local(
        &self,
        room: &str,
        token: &str,
        media: LocalMedia,
    ) -> Result<mpsc::Receiver<()>, ApiError> {
        let handle = self
            .state
            .room(room)
            .ok_or_else(|| ApiError::not_found("that room"))?;
        let (alive_tx, alive) = mpsc::channel(1);
        let (reply, answer) = oneshot::channel();
        let ask = RoomMsg::Local {
            token: token.to_owned(),
            media,
            alive: alive_tx,
            reply,
        };
        handle.tx.send(ask).await.map_err(|_| ApiError::gone())?;
        answer.await.map_err(|_| ApiError::gone())??;
        Ok(alive)
    }
}

/// Resolves on Ctrl-C or SIGTERM: the server should then [`RunningServer::shutdown`], which
/// finishes every recording's files.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Opens the episodes database and keeps the show as configured (a new title draws a new
/// default cover).
fn open_episodes(opts: &ServeOptions) -> Result<crate::episodes::store::Store, ServeError> {
    let store = crate::episodes::store::Store::open(&opts.data_dir)?;
    let mut show = opts.show.clone();
    if show.public_url.is_none() {
        show.public_url.clone_from(&opts.public_url);
    }
    if store.show()?.title != show.title {
        crate::episodes::publish::forget_default_cover(&store);
    }
    store.set_show(&show)?;
    Ok(store)
}

/// The base URL links are made from: the configured one, else this machine's address.
fn base_url(opts: &ServeOptions, http: SocketAddr) -> String {
    opts.public_url.clone().unwrap_or_else(|| {
        let host = if http.ip().is_unspecified() {
            SocketAddr::new(
                crate::rtc::local_ip_towards(IpAddr::from([192, 0, 2, 1])),
                http.port(),
            )
        } else {
            http
        };
        format!("http://{host}")
    })
}

/// The DTLS certificate every session of this server answers with: made once, before any room,
/// off the runtime's workers.
async fn server_certificate() -> Result<crate::rtc::ServerCertificate, ServeError> {
    tokio::task::spawn_blocking(crate::rtc::ServerCertificate::generate)
        .await
        .map_err(|e| ServeError::Run(std::io::Error::other(e)))?
        .map_err(ServeError::Certificate)
}

/// Binds the ports and starts serving in the background.
///
/// # Errors
/// A port cannot be bound.
pub async fn start(opts: ServeOptions) -> Result<RunningServer, ServeError> {
    let listener = TcpListener::bind(opts.bind)
        .await
        .map_err(|source| ServeError::Http {
            addr: opts.bind,
            source,
        })?;
    let http = listener.local_addr().map_err(ServeError::Run)?;
    let media_ip = if opts.bind.ip().is_loopback() {
        opts.bind.ip()
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let media = MediaSocket::bind(media_ip, opts.udp_ports, opts.public_ip)
        .await
        .map(Arc::new)
        .map_err(|source| ServeError::Udp {
            low: opts.udp_ports.0,
            high: opts.udp_ports.1,
            source,
        })?;
    let metrics = Arc::new(Metrics::default());
    tokio::spawn(Arc::clone(&media).run(Arc::clone(&metrics)));
    let base_url = base_url(&opts, http);
    tracing::info!(
        "Booth room server on {base_url} (media UDP {} advertised as {})",
        media.local(),
        media.advertised()
    );
    let store = Arc::new(open_episodes(&opts)?);
    let certificate = server_certificate().await?;
    let urls = episodes::Urls::new(opts.show.public_url.as_deref().unwrap_or(&base_url));
    let (ended_rooms, ended_rx) = mpsc::unbounded_channel();
    let state = Arc::new(AppState {
        rooms: RwLock::new(HashMap::new()),
        creations: rooms::RoomCreations::default(),
        shared: Shared {
            media,
            metrics,
            episodes: Arc::clone(&store),
            urls,
            live: opts.live.clone(),
            limits: Arc::new(opts.limits.clone()),
            ended_rooms,
            certificate,
            address_sessions: Arc::default(),
        },
        base_url: base_url.clone(),
        ice_servers: opts.ice_servers.clone(),
        episodes: Arc::clone(&store),
        icecast: opts.icecast.clone(),
        websockets: ws::PerAddress::default(),
    });
    tokio::spawn(rooms::remove_ended(Arc::downgrade(&state), ended_rx));
    episodes::recover(&store);
    let (task, stop_tx, metrics_http) = serve_http(listener, &state, &opts, &base_url).await?;
    Ok(RunningServer {
        http,
        base_url,
        metrics_http,
        state,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

/// The HTTP side of a started server running in the background: the main listener behind the
/// edge, and `/metrics` on its own listener when asked. Returns the serving task, what stops
/// it, and where `/metrics` is when apart.
async fn serve_http(
    listener: TcpListener,
    state: &Arc<AppState>,
    opts: &ServeOptions,
    base_url: &str,
) -> Result<ServingHttp, ServeError> {
    let mut policy = edge::EdgePolicy::new(
        base_url,
        opts.show.public_url.as_deref(),
        Arc::clone(&state.shared.limits),
    );
    policy.metrics_apart = opts.metrics_bind.is_some();
    let app = api::router(Arc::clone(state), Arc::new(policy));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (metrics_http, metrics_stop) = match opts.metrics_bind {
        Some(bind) => {
            let (metrics_stop, metrics_stopped) = oneshot::channel::<()>();
            let addr = edge::bind_metrics(bind, Arc::clone(state), async move {
                let _ = metrics_stopped.await;
            })
            .await
            .map_err(|source| ServeError::Http { addr: bind, source })?;
            (Some(addr), Some(metrics_stop))
        }
        None => (None, None),
    };
    let listener =
        live::conn::GuardedListener::new(listener, Arc::clone(&state.shared.metrics), &opts.limits);
    let header_timeout = opts.limits.header_timeout();
    let task = tokio::spawn(async move {
        live::conn::serve(listener, app, header_timeout, async move {
            let _ = stop_rx.await;
        })
        .await;
        if let Some(stop) = metrics_stop {
            let _ = stop.send(());
        }
        Ok(())
    });
    Ok((task, stop_tx, metrics_http))
}

/// See [`serve_http`].
type ServingHttp = (
    JoinHandle<Result<(), ServeError>>,
    oneshot::Sender<()>,
    Option<SocketAddr>,
);
