//! Going live from `booth host` (and the overlay): start the room server in this process or use
//! a remote one, create the room (or join one with a token), and publish the engine's Opus
//! frames by WHIP to a remote server. When the server runs in this process the engine hands the
//! program to the room's task before Opus instead: the room mixes and encodes it once for
//! everyone (one generation of Opus, not two), and no encryption, packets or wake-ups come
//! between a host and its own server; guests and listeners still come over WebRTC. The host
//! hears the room from it directly too. The engine thread knows nothing of this: it hands its
//! frames to a consumer like any other (a ring, or a channel that wakes the publishing task).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::engine::{FrameSink, MeterReadout};
use crate::room::protocol::{
    ClientMsg, CreatedRoom, ErrorBody, Invitation, NewInvite, NewRoom, ServerMsg,
};
use crate::room::{Action, Event, Role};
use crate::rtc::jitter::PlayoutDecoder;
use crate::rtc::peer::{ClientPeer, Mode};
use crate::server::{RunningServer, ServeOptions};

/// The room the program is live in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRoom {
    /// The server's base URL.
    pub server: String,
    /// The room id.
    pub room: String,
    /// What listeners open.
    pub listener_link: String,
    /// The host's own link (with the host token), when this process created the room.
    pub host_link: Option<String>,
    /// The token the program is published with.
    pub token: String,
    /// Whether the server runs in this process.
    pub embedded: bool,
    /// The episode the room records into, when it records from the start.
    pub episode: Option<crate::room::protocol::EpisodeRef>,
    /// Where radio players and Icecast relays hear the room, when it is pushed to Icecast.
    pub icecast: Vec<String>,
}

/// Where the program goes live.
#[derive(Clone, Debug)]
pub struct RoomTarget {
    /// A room server's base URL; `None` starts one in this process.
    pub server: Option<String>,
    /// Where the in-process server listens.
    pub bind: std::net::SocketAddr,
    /// Its UDP media ports.
    pub udp_ports: (u16, u16),
    /// Its data directory.
    pub data_dir: std::path::PathBuf,
    /// Title and game of a new room.
    pub title: String,
    /// The game being played.
    pub game: String,
    /// Join this room (with `token`) instead of creating one.
    pub room: Option<String>,
    /// The host's (or a speaker's) token for `room`.
    pub token: Option<String>,
    /// The server's room key, when it creates rooms only for its owner (`booth serve
    /// --room-key`).
    pub room_key: Option<String>,
    /// Record a new room as a podcast episode from its start.
    pub record: bool,
    /// Push a new room to this Icecast server (`http://source:PASSWORD@host:8000/`).
    pub icecast: Option<String>,
}

/// Why going live failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The network runtime could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The room server in this process could not start.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// The room server could not be reached.
    #[error("cannot reach the room server at {server}: {reason}")]
    Unreachable {
        /// Its base URL.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The room server refused to create the room.
    #[error("the room server refused the room ({status}): {why}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        why: String,
    },
    /// The answer was not a Booth room server's.
    #[error("{0} did not answer like a Booth room server")]
    NotBooth(String),
    /// Joining a room needs its token.
    #[error("joining a room needs its token: --room ID --token TOKEN")]
    NoToken,
    /// The program could not be published.
    #[error("cannot publish to {to}: {reason}")]
    Publish {
        /// The room or WHIP URL.
        to: String,
        /// What went wrong.
        reason: String,
    },
}

/// What the room says to a host or speaker live in it: its channel's messages, and the
/// answers to this process's own requests.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomNews {
    /// A message on the room channel (starting with `welcome`).
    Said(ServerMsg),
    /// An invitation link the server made ([`GoLive::invite`]).
    InviteLink {
        /// The role it grants.
        role: Role,
        /// The link.
        link: String,
    },
    /// The server refused an invitation, and why.
    InviteRefused(String),
}

impl RoomNews {
    /// Whether this is the last news the channel brings: the room ended, or it refuses this
    /// participant.
    #[must_use]
    pub fn ends_the_channel(&self) -> bool {
        matches!(self, Self::Said(m) if m.ends_the_channel())
    }
}

/// A live program. Stop it to hang up (and stop the in-process server).
#[derive(Debug)]
pub struct GoLive {
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    peer: Option<ClientPeer>,
    /// Publishing into the server in this process.
    here: Option<crate::server::LocalSession>,
    voices: Option<tokio::task::JoinHandle<()>>,
    channel: Option<tokio::task::JoinHandle<()>>,
    room: LiveRoom,
    reported: AtomicBool,
    actions: tokio::sync::mpsc::UnboundedSender<Action>,
    messages_tx: mpsc::Sender<RoomNews>,
    messages: Option<mpsc::Receiver<RoomNews>>,
}

impl GoLive {
    /// Goes live; adds the WHIP publisher to the engine's `consumers`. The room hears how loud
    /// the voice is from the engine's `meters` (its speaking indicator follows the voice, not
    /// the game under it).
    ///
    /// # Errors
    /// The server cannot start or be reached, refuses the room or the token, or the media does
    /// not connect.
    pub fn start(
        target: &RoomTarget,
        consumers: &mut Vec<FrameSink>,
        room_voices: Option<rtrb::Producer<f32>>,
        meters: Arc<MeterReadout>,
    ) -> Result<Self, LiveError> {
        // One worker: the publisher, the room channel, hearing the room and an in-process
        // server for a handful of guests are a few packets every 20 ms. A second worker only
        // added wake-ups: each task woken on one worker woke the other to steal it.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("booth-live")
            .enable_all()
            .build()
            .map_err(LiveError::Runtime)?;
        let (server, room) = rt.block_on(open_room(target))?;
        let (peer, here) = publish(&rt, server.as_ref(), &room, consumers)?;
        let (messages_tx, messages) = mpsc::channel();
        let (actions, actions_rx) = tokio::sync::mpsc::unbounded_channel();
        let (joined_tx, joined) = tokio::sync::oneshot::channel();
        let channel = rt.spawn(stay_in_the_room(
            room.clone(),
            meters,
            messages_tx.clone(),
            actions_rx,
            joined_tx,
        ));
        // Live means the room knows the host is there: until its channel is welcomed, a host
        // that went away would leave the room waiting for a host it never saw. A room slow to
        // answer does not stop the program; the channel keeps trying.
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), joined).await });
        let voices = room_voices.map(|producer| hear(&rt, server.as_ref(), &room, producer));
        Ok(Self {
            rt,
            server,
            peer,
            here,
            voices,
            channel: Some(channel),
            room,
            reported: AtomicBool::new(false),
            actions,
            messages_tx,
            messages: Some(messages),
        })
    }

    /// What the room says (its channel's messages as they arrive, starting with `welcome`),
    /// plus the answers to [`GoLive::invite`]. Taken once.
    pub fn take_messages(&mut self) -> Option<mpsc::Receiver<RoomNews>> {
        self.messages.take()
    }

    /// Sends a room action on the room channel; the room answers with `ok` or `error`.
    pub fn act(&self, action: Action) {
        let _ = self.actions.send(action);
    }

    /// Asks the server for an invitation link (co-host or speaker); the answer arrives among
    /// the messages as [`RoomNews::InviteLink`] or [`RoomNews::InviteRefused`].
    pub fn invite(&self, role: Role) {
        let url = format!("{}/api/rooms/{}/invites", self.room.server, self.room.room);
        let token = self.room.token.clone();
        let tx = self.messages_tx.clone();
        self.rt.spawn(async move {
            let _ = tx.send(match ask_for_invitation(&url, &token, role).await {
                Ok(link) => RoomNews::InviteLink { role, link },
                Err(why) => RoomNews::InviteRefused(why),
            });
        });
    }

    /// The room.
    #[must_use]
    pub fn room(&self) -> &LiveRoom {
        &self.room
    }

    /// Why the publication ended, the first time it is asked after it did.
    #[must_use]
    pub fn lost(&self) -> Option<String> {
        let why = match (&self.peer, &self.here) {
            (Some(peer), _) => peer.ended()?,
            (None, Some(here)) if here.ended() => "the room let the host's program go".to_owned(),
            _ => return None,
        };
        (!self.reported.swap(true, Ordering::Relaxed)).then_some(why)
    }

    /// Hangs up and stops the in-process server.
    pub fn stop(mut self) {
        self.hang_up();
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }

    /// Hangs up but keeps the in-process server running (when there is one): the episode the
    /// room recorded is rendered there, and its host can still rename, unlist or delete it.
    #[must_use]
    pub fn stop_keeping_server(mut self) -> Option<KeptServer> {
        self.hang_up();
        let server = self.server.take()?;
        Some(KeptServer {
            base_url: server.base_url.clone(),
            rt: self.rt,
            server: Some(server),
        })
    }

    fn hang_up(&mut self) {
        if let Some(voices) = self.voices.take() {
            voices.abort();
        }
        if let Some(channel) = self.channel.take() {
            channel.abort();
        }
        if let Some(mut peer) = self.peer.take() {
            self.rt.block_on(peer.close());
        }
        drop(self.here.take());
    }
}

/// An in-process room server kept after its room ended, with the runtime it runs on. Dropping
/// it stops the server (recordings are finished first, as always).
#[derive(Debug)]
pub struct KeptServer {
    /// The server's base URL.
    pub base_url: String,
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
}

impl Drop for KeptServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // The room ends with this process: its episode is published before it goes.
            self.rt.block_on(server.close());
        }
    }
}

/// Publishes the program: the engine hands the room's own task its program when the server
/// runs in this process (no codec or WebRTC between a host and its own server), else its
/// packets straight to a WHIP peer's task.
fn publish(
    rt: &tokio::runtime::Runtime,
    server: Option<&RunningServer>,
    room: &LiveRoom,
    consumers: &mut Vec<FrameSink>,
) -> Result<(Option<ClientPeer>, Option<crate::server::LocalSession>), LiveError> {
    if let Some(running) = server {
        let mut here = rt
            .block_on(running.publish_here(&room.room, &room.token))
            .map_err(|e| LiveError::Publish {
                to: format!("room {}", room.room),
                reason: e.to_string(),
            })?;
        if let Some(program) = here.program.take() {
            consumers.push(FrameSink::Program(program));
        }
        return Ok((None, Some(here)));
    }
    let whip = format!("{}/whip/{}", room.server, room.room);
    let peer = rt
        .block_on(ClientPeer::connect(
            &whip,
            Some(&room.token),
            Mode::Publish,
            Duration::from_secs(10),
        ))
        .map_err(|e| LiveError::Publish {
            to: whip.clone(),
            reason: e.to_string(),
        })?;
    consumers.push(FrameSink::Publisher(peer.frames.clone()));
    Ok((Some(peer), None))
}

/// Hears the room's other voices into `producer`: from the server in this process directly,
/// or over WHEP.
fn hear(
    rt: &tokio::runtime::Runtime,
    server: Option<&RunningServer>,
    room: &LiveRoom,
    producer: rtrb::Producer<f32>,
) -> tokio::task::JoinHandle<()> {
    let Some(running) = server else {
        let whep = format!("{}/whep/{}", room.server, room.room);
        return rt.spawn(hear_the_room(whep, room.token.clone(), producer));
    };
    let heard = rt.block_on(running.listen_here(&room.room, &room.token));
    rt.spawn(async move {
        match heard {
            Ok(mut here) => {
                if let Some(incoming) = here.incoming.as_mut() {
                    play_the_room(incoming, producer).await;
                }
            }
            Err(e) => tracing::warn!(
                "cannot hear the room's other voices ({e}); the program goes out anyway"
            ),
        }
    })
}

/// Asks the server for an invitation link for `role`.
async fn ask_for_invitation(url: &str, token: &str, role: Role) -> Result<String, String> {
    let response = crate::rtc::signal::http_client()
        .post(url)
        .bearer_auth(token)
        .json(&NewInvite { role })
        .send()
        .await
        .map_err(|e| format!("cannot reach the room server: {e}"))?;
    if response.status().is_success() {
        return match response.json::<Invitation>().await {
            Ok(invitation) => Ok(invitation.link),
            Err(_) => Err("the server's answer was not an invitation".to_owned()),
        };
    }
    Err(match response.json::<ErrorBody>().await {
        Ok(refused) => refused.message,
        Err(_) => "the server refused the invitation".to_owned(),
    })
}

type RoomSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a spell on the room channel ended.
enum Hangup {
    /// The room ended, refused this participant, or this process stopped asking: stay away.
    Final,
    /// The connection dropped: try again after the backoff.
    Dropped,
}

/// Holds the room channel open while live, so the room knows the host (or speaker) is there: if
/// this process goes away, the room's host-drop rules apply (a grace period, then a co-host takes
/// over or the room ends). Everything the room says goes to `messages`; `actions` go to the
/// room. The channel is re-opened, with a backoff that doubles up to 10 s after every attempt
/// that did not get a welcome, until the room ends or refuses the token.
async fn stay_in_the_room(
    room: LiveRoom,
    meters: Arc<MeterReadout>,
    messages: mpsc::Sender<RoomNews>,
    mut actions: tokio::sync::mpsc::UnboundedReceiver<Action>,
    joined: tokio::sync::oneshot::Sender<()>,
) {
    let mut joined = Some(joined);
    let url = format!(
        "{}/api/rooms/{}/ws",
        room.server.replacen("http", "ws", 1),
        room.room
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::server::ws::READ_BUFFER);
    let mut backoff = Duration::from_millis(500);
    loop {
        // No Nagle: the levels are small writes that should leave at once.
        let connected =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await;
        if let Ok((mut ws, _)) = connected {
            let mut welcomed = false;
            let spell = Spell {
                meters: &meters,
                messages: &messages,
                joined: &mut joined,
                welcomed: &mut welcomed,
            };
            let hangup = spell.run(&mut ws, &room.token, &mut actions).await;
            if matches!(hangup, Hangup::Final) {
                return;
            }
            if welcomed {
                backoff = Duration::from_millis(500);
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// One connection of the room channel, from `hello` until it drops.
struct Spell<'a> {
    meters: &'a MeterReadout,
    messages: &'a mpsc::Sender<RoomNews>,
    joined: &'a mut Option<tokio::sync::oneshot::Sender<()>>,
    welcomed: &'a mut bool,
}

impl Spell<'_> {
    async fn run(
        self,
        ws: &mut RoomSocket,
        token: &str,
        actions: &mut tokio::sync::mpsc::UnboundedReceiver<Action>,
    ) -> Hangup {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let send = |msg: ClientMsg| Message::Text(msg.to_text().into());
        let hello = ClientMsg::Hello {
            token: Some(token.to_owned()),
            name: String::new(),
        };
        if ws.send(send(hello)).await.is_err() {
            return Hangup::Dropped;
        }
        let mut report = tokio::time::interval(Duration::from_millis(200));
        loop {
            let msg = tokio::select! {
                msg = ws.next() => msg,
                action = actions.recv() => {
                    let Some(action) = action else { return Hangup::Final };
                    if ws.send(send(ClientMsg::Act(action))).await.is_err() {
                        return Hangup::Dropped;
                    }
                    continue;
                }
                _ = report.tick() => {
                    // Sent five times a second even when unchanged: the room shows a report
                    // older than 600 ms as silence. The mic's peak after its chain: the light
                    // follows the voice, not the game under it.
                    let level = crate::dsp::level_fraction(self.meters.read().mic_peak_dbfs);
                    if ws.send(send(ClientMsg::VoiceLevel { level })).await.is_err() {
                        return Hangup::Dropped;
                    }
                    continue;
                }
            };
            let Some(Ok(msg)) = msg else {
                return Hangup::Dropped;
            };
            let Message::Text(text) = msg else { continue };
            let Ok(said) = ServerMsg::parse(&text) else {
                continue;
            };
            // The first answer (a welcome, or why not) says the room has heard the hello.
            if let Some(joined) = self.joined.take() {
                let _ = joined.send(());
            }
            *self.welcomed |= matches!(said, ServerMsg::Welcome { .. });
            let news = RoomNews::Said(said);
            let last = news.ends_the_channel();
            let _ = self.messages.send(news);
            if last {
                return Hangup::Final;
            }
        }
    }
}

/// A line for the terminal about room news a host acts on (raised hands, who is on stage,
/// reactions, errors, the end, invitations), or `None` for the rest.
#[must_use]
pub fn describe(news: &RoomNews) -> Option<String> {
    let said = match news {
        RoomNews::Said(said) => said,
        RoomNews::InviteLink { role, link } => {
            return Some(format!("invitation ({}): {link}", role.label()));
        }
        RoomNews::InviteRefused(why) => return Some(format!("the room says: {why}")),
    };
    match said {
        ServerMsg::Event(Event::HandQueue { queue }) => {
            let names: Vec<&str> = queue.iter().map(|h| h.name.as_str()).collect();
            (!names.is_empty()).then(|| format!("hands raised: {}", names.join(", ")))
        }
        ServerMsg::Event(Event::HandRaised { entry }) => {
            Some(format!("hand raised: {}", entry.name))
        }
        ServerMsg::Event(Event::StageChanged { stage }) => {
            let who: Vec<String> = stage
                .iter()
                .map(|m| format!("{} ({})", m.name, m.role.label()))
                .collect();
            Some(format!("on stage: {}", who.join(", ")))
        }
        ServerMsg::Event(Event::Reaction { emoji, .. }) => Some(format!("reaction {emoji}")),
        ServerMsg::Error { message, .. } => Some(format!("the room says: {message}")),
        ServerMsg::Event(Event::Ended { .. }) => Some("the room has ended".into()),
        _ => None,
    }
}

/// Receives the host's mix-minus (everyone in the room but the host) and writes it, 48 kHz
/// stereo, into the engine's ring for the room's voices, paced by a 20 ms clock behind a jitter
/// buffer. Without it the program still goes out; the host just does not hear the guests.
async fn hear_the_room(whep: String, token: String, voices: rtrb::Producer<f32>) {
    let mut peer =
        match ClientPeer::connect(&whep, Some(&token), Mode::Listen, Duration::from_secs(10)).await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    "cannot hear the room's other voices ({e}); the program goes out anyway"
                );
                return;
            }
        };
    play_the_room(&mut peer.incoming, voices).await;
    peer.close().await;
}

/// Plays what `incoming` brings into `voices` until it closes, behind a jitter buffer.
async fn play_the_room(
    incoming: &mut tokio::sync::mpsc::Receiver<crate::rtc::peer::InFrame>,
    mut voices: rtrb::Producer<f32>,
) {
    let Ok(mut playout) = PlayoutDecoder::new(2, 10) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        if playout.is_idle() {
            // Nothing to play until a packet comes (the host alone on stage is sent nothing):
            // wait for one without waking every 20 ms, then play out from a tick after it.
            match incoming.recv().await {
                Some(f) => playout.push(f.rtp_time, f.packet),
                None => break,
            }
            tick.reset();
            continue;
        }
        tokio::select! {
            frame = incoming.recv() => match frame {
                Some(f) => playout.push(f.rtp_time, f.packet),
                None => break,
            },
            _ = tick.tick() => {
                let played = playout.next_frame();
                if played.silent {
                    continue;
                }
                let room = voices.slots().min(played.pcm.len());
                if let Ok(chunk) = voices.write_chunk_uninit(room) {
                    chunk.fill_from_iter(played.pcm.iter().copied());
                }
            }
        }
    }
}

async fn open_room(target: &RoomTarget) -> Result<(Option<RunningServer>, LiveRoom), LiveError> {
    let (server, base) = match &target.server {
        Some(url) => (None, url.trim_end_matches('/').to_owned()),
        None => {
            let opts = ServeOptions {
                bind: target.bind,
                udp_ports: target.udp_ports,
                data_dir: target.data_dir.clone(),
                ..ServeOptions::default()
            };
            let running = match crate::server::start(opts.clone()).await {
                Ok(r) => r,
                // The usual port is taken (another Booth, another program): any free one will do
                // for a room this process hosts; the link printed says which.
                Err(crate::server::ServeError::Http { .. }) if target.bind.port() != 0 => {
                    let mut any = opts;
                    any.bind.set_port(0);
                    crate::server::start(any).await?
                }
                Err(e) => return Err(e.into()),
            };
            let base = running.base_url.clone();
            (Some(running), base)
        }
    };
    let room = match (&target.room, &target.token) {
        (Some(room), Some(token)) => LiveRoom {
            server: base.clone(),
            room: room.clone(),
            listener_link: format!("{base}/r/{room}"),
            host_link: None,
            token: token.clone(),
            embedded: server.is_some(),
            episode: None,
            icecast: Vec::new(),
        },
        (Some(_), None) => return Err(LiveError::NoToken),
        (None, _) => {
            let created = create_room(&base, target).await?;
            LiveRoom {
                server: base.clone(),
                room: created.id,
                listener_link: created.listener_link,
                host_link: Some(created.host_link),
                token: created.host_token,
                embedded: server.is_some(),
                episode: created.episode,
                icecast: created.icecast.into_iter().map(|m| m.url).collect(),
            }
        }
    };
    Ok((server, room))
}

/// Creates the room on the server at `base`.
async fn create_room(base: &str, target: &RoomTarget) -> Result<CreatedRoom, LiveError> {
    let url = format!("{base}/api/rooms");
    let new = NewRoom {
        title: target.title.clone(),
        game: target.game.clone(),
        host_name: None,
        record: target.record,
        icecast: target.icecast.clone(),
    };
    let mut request = crate::rtc::signal::http_client().post(&url).json(&new);
    if let Some(key) = &target.room_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| LiveError::Unreachable {
        server: base.to_owned(),
        reason: e.to_string(),
    })?;
    let status = response.status();
    if !status.is_success() {
        let why = response
            .json::<ErrorBody>()
            .await
            .map_or_else(|_| "no reason given".to_owned(), |e| e.message);
        return Err(LiveError::Refused {
            status: status.as_u16(),
            why,
        });
    }
    response
        .json::<CreatedRoom>()
        .await
        .map_err(|_| LiveError::NotBooth(url))
}
