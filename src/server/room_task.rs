//! One task per room: it owns the room's state machine (`room::Room`), its members' capability
//! tokens and WebSocket connections, and its media: every WHIP publisher's Opus through a jitter
//! buffer into a decoder, a mix every 20 ms, the program encoded ONCE (and only while someone
//! hears it: a listener off stage, or the recording) and the same payload written to every WHEP
//! listener, and a mix-minus (everything but their own voice) for each publisher who also
//! listens. All its WebRTC sessions share the server's one UDP socket; a host whose server runs
//! in its own process publishes and listens through local sessions (channels, no WebRTC) under
//! the same rules.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use str0m::change::SdpOffer;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use super::media::{Datagram, MediaSocket};
use super::metrics::Metrics;
use super::tokens::{self, Secret, TokenRef};
use crate::codec::ogg_opus::OggOpusWriter;
use crate::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusDecoder, OpusEncoder};
use crate::dsp::Limiter;
use crate::room::protocol::{RoomInfo, ServerMsg, You};
use crate::room::{
    Action, Event, MediaCommand, Output as RoomOutput, ParticipantId, Permissions, Role, Room,
    RoomConfig, RoomError,
};
use crate::rtc::jitter::{JitterBuffer, Playout};
use crate::rtc::peer::InFrame;
use crate::rtc::{rtc_config, sdp_ice_ufrag};

const TICK: Duration = Duration::from_millis(20);
/// Ticks taken at once, every `QUIET_BATCH` x 20 ms, while nothing in the room crosses the
/// network or is recorded (a host live in its own server with nobody there yet): the mix then
/// only makes the speaking lights, and waking every 20 ms for that cost more than the mix.
const QUIET_BATCH: u32 = 5;
const STEREO_FRAME: usize = FRAME_SAMPLES * 2;
/// A session that has not connected by then is dropped.
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// Frames buffered before a publisher is heard, and the most kept.
const JITTER_TARGET: usize = 1;
const JITTER_MAX: usize = 10;
/// The program's Opus bit rate (stereo game audio with voice).
const PROGRAM_BITRATE: u32 = 128_000;

/// What the WebSocket task forwards to its client.
#[derive(Debug, Clone)]
pub enum WsOut {
    /// A JSON message.
    Text(Arc<str>),
    /// Close the connection with this reason.
    Close(String),
}

/// The answer to `hello`: who the client is and the room now, and the connection's number.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// Who the client is.
    pub you: You,
    /// The room as it is now (with the hand queue for moderators).
    pub room: RoomInfo,
    /// The connection (for the WebSocket task to say goodbye with).
    pub conn: u64,
}

/// A new WHIP/WHEP session.
#[derive(Debug, Clone)]
pub struct SessionCreated {
    /// Its id (the last path segment of its Location).
    pub id: String,
    /// The SDP answer.
    pub answer: String,
}

/// An invitation link.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    /// The capability token.
    pub token: String,
    /// The role it grants.
    pub role: Role,
}

/// Messages to a room task.
#[derive(Debug)]
pub enum RoomMsg {
    /// A WebSocket client introduces itself.
    Hello {
        /// Its token, if it has one (none: a new listener).
        token: Option<String>,
        /// Display name.
        name: String,
        /// Where its messages go.
        out: mpsc::Sender<WsOut>,
        /// The answer.
        reply: oneshot::Sender<Result<Welcome, ApiError>>,
    },
    /// An action from a connected client.
    Act {
        /// Who.
        from: ParticipantId,
        /// What.
        action: Action,
        /// The answer.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// An action over HTTP with a bearer token.
    ActWithToken {
        /// The token.
        token: Option<String>,
        /// What.
        action: Action,
        /// The answer.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// A WebSocket connection closed.
    Closed {
        /// Whose.
        who: ParticipantId,
        /// Which.
        conn: u64,
    },
    /// A moderator asks for an invitation link.
    Invite {
        /// The moderator's token.
        token: Option<String>,
        /// The role it grants.
        role: Role,
        /// The answer.
        reply: oneshot::Sender<Result<Invitation, ApiError>>,
    },
    /// WHIP: publish.
    Publish {
        /// Bearer token.
        token: Option<String>,
        /// SDP offer.
        offer: String,
        /// The answer.
        reply: oneshot::Sender<Result<SessionCreated, ApiError>>,
    },
    /// WHEP: listen.
    Listen {
        /// Bearer token (optional: a stage member gets their mix-minus).
        token: Option<String>,
        /// SDP offer.
        offer: String,
        /// The answer.
        reply: oneshot::Sender<Result<SessionCreated, ApiError>>,
    },
    /// Trickle ICE for a session.
    Trickle {
        /// The session.
        session: String,
        /// The `application/trickle-ice-sdpfrag` body.
        fragment: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// DELETE of a session.
    Hangup {
        /// The session.
        session: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// The room's public state.
    Info {
        /// The answer.
        reply: oneshot::Sender<RoomInfo>,
    },
    /// A datagram for one of the room's sessions.
    Datagram(Datagram),
    /// The host in the server's own process publishes its program (before Opus) or hears the
    /// room: the room's rules as for WHIP and WHEP, without WebRTC or a codec in between.
    Local {
        /// Bearer token.
        token: String,
        /// What flows, and which way.
        media: LocalMedia,
        /// Dropped when the session ends (the room ended, or let it go); the session ends when
        /// its receiver is dropped.
        alive: mpsc::Sender<()>,
        /// The answer.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
    /// A publisher tells how loud their own voice is (0..1).
    VoiceLevel {
        /// Who.
        who: ParticipantId,
        /// Level.
        level: f32,
    },
}

/// A local session's media (see [`RoomMsg::Local`]).
#[derive(Debug)]
pub enum LocalMedia {
    /// Publishing: the host's program, 48 kHz interleaved stereo in whole 20 ms blocks.
    Publish(rtrb::Consumer<f32>),
    /// Listening: the host's mix-minus goes here, as Opus frames.
    Listen(mpsc::Sender<InFrame>),
}

/// A local publisher's program as the mix takes it: one 20 ms block per tick, with a block kept
/// in hand against the two clocks' scheduling (the engine's and this task's), never more than a
/// few.
struct ProgramIn {
    ring: rtrb::Consumer<f32>,
    /// A block is in hand: the mix takes one per tick.
    flowing: bool,
}

impl ProgramIn {
    /// Blocks kept before the mix starts taking them, and after a block came late.
    const HAND: usize = 2;
    /// More than this queued (a tick came very late) and the oldest are dropped.
    const MOST: usize = 4;

    /// The next block into `pcm`; false when none is due (not started, or it came late).
    fn pull(&mut self, pcm: &mut [f32]) -> bool {
        let block = pcm.len();
        let queued = self.ring.slots() / block;
        if !self.flowing {
            if queued < Self::HAND {
                return false;
            }
            self.flowing = true;
        }
        if queued == 0 {
            // Late: wait for a block in hand again rather than stutter block by block.
            self.flowing = false;
            return false;
        }
        if queued > Self::MOST {
            let drop = (queued - Self::HAND) * block;
            if let Ok(chunk) = self.ring.read_chunk(drop) {
                chunk.commit_all();
            }
        }
        match self.ring.read_chunk(block) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                pcm[..a.len()].copy_from_slice(a);
                pcm[a.len()..].copy_from_slice(b);
                chunk.commit_all();
                true
            }
            Err(_) => false,
        }
    }
}

/// What every room task shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The media socket.
    pub media: Arc<MediaSocket>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where recordings go.
    pub data_dir: PathBuf,
}

/// A room as the registry holds it.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    /// The room id.
    pub id: String,
    /// The task's inbox.
    pub tx: mpsc::Sender<RoomMsg>,
}

/// Starts a room task; returns its handle and the host's token.
///
/// # Errors
/// No randomness for the token.
pub fn spawn(
    id: String,
    config: RoomConfig,
    host_name: String,
    shared: Shared,
) -> Result<(RoomHandle, String), ApiError> {
    let (tx, rx) = mpsc::channel(4096);
    let now = Instant::now();
    let host = ParticipantId(1);
    let secret = Secret::generate().map_err(ApiError::internal)?;
    let host_token = tokens::format(TokenRef::Participant(1), &secret);
    let room = Room::new(config, host, host_name.clone(), now);
    let mut members = HashMap::new();
    members.insert(
        host,
        Member {
            secret,
            grant: Role::Host,
            name: host_name,
            conns: Vec::new(),
        },
    );
    let task = RoomTask {
        id: id.clone(),
        room,
        members,
        invites: HashMap::new(),
        next_id: 2,
        next_conn: 1,
        away: HashSet::new(),
        sessions: Vec::new(),
        socket: shared.media.socket(),
        shared,
        tx: tx.clone(),
        mixer: Mixer::new()?,
        recording: None,
        recordings: 0,
        listening_announced: usize::MAX,
        ended_at: None,
        voice_levels: HashMap::new(),
    };
    task.shared.metrics.rooms.fetch_add(1, Relaxed);
    tokio::spawn(task.run(rx));
    Ok((RoomHandle { id, tx }, host_token))
}

struct Member {
    secret: Secret,
    grant: Role,
    name: String,
    conns: Vec<(u64, mpsc::Sender<WsOut>)>,
}

struct InviteEntry {
    secret: Secret,
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Publish,
    Listen,
}

struct Session {
    id: String,
    kind: Kind,
    who: Option<ParticipantId>,
    link: Link,
    ufrag: String,
    remote_ufrag: String,
    mid: Option<Mid>,
    pt: Option<Pt>,
    created: Instant,
    connected: bool,
    deadline: Instant,
    remote: Option<SocketAddr>,
    decoder: Option<OpusDecoder>,
    jitter: JitterBuffer,
    pcm: Vec<f32>,
    heard: bool,
    level: f32,
}

impl Session {
    /// A session that has heard nothing yet, with no WebRTC details.
    fn new(id: String, kind: Kind, who: Option<ParticipantId>, link: Link, now: Instant) -> Self {
        Self {
            id,
            kind,
            who,
            link,
            ufrag: String::new(),
            remote_ufrag: String::new(),
            mid: None,
            pt: None,
            created: now,
            connected: false,
            deadline: now,
            remote: None,
            decoder: None,
            jitter: JitterBuffer::new(JITTER_TARGET, JITTER_MAX),
            pcm: vec![0.0; STEREO_FRAME],
            heard: false,
            level: 0.0,
        }
    }
}

/// How a session's media travels.
enum Link {
    /// WebRTC: every browser, player, guest, and a host on another machine.
    Rtc(Box<Rtc>),
    /// The host in the server's own process. `alive` is dropped with the session, which tells
    /// the host.
    Local {
        end: LocalEnd,
        alive: mpsc::Sender<()>,
    },
}

/// What a local session carries.
enum LocalEnd {
    /// The host's program, in place of packets, jitter buffer and decoder.
    Program(ProgramIn),
    /// Where the host's mix-minus goes.
    Hears(mpsc::Sender<InFrame>),
}

impl Link {
    fn rtc(&mut self) -> Option<&mut Rtc> {
        match self {
            Self::Rtc(rtc) => Some(rtc),
            Self::Local { .. } => None,
        }
    }
}

struct MinusChain {
    limiter: Limiter,
    encoder: OpusEncoder,
    /// Skipped while it was digital silence for a host in this process: the encoder and
    /// limiter start clean when it is heard again.
    paused: bool,
}

struct Mixer {
    program: Vec<f32>,
    scratch: Vec<f32>,
    limiter: Limiter,
    encoder: OpusEncoder,
    packet: Vec<u8>,
    rtp: u64,
    minus: HashMap<ParticipantId, MinusChain>,
    /// Nobody heard the program last tick, so it was not encoded.
    program_paused: bool,
    levels: HashMap<ParticipantId, f32>,
    ticks: u64,
}

impl Mixer {
    fn new() -> Result<Self, ApiError> {
        Ok(Self {
            program: vec![0.0; STEREO_FRAME],
            scratch: vec![0.0; STEREO_FRAME],
            limiter: Limiter::new(-1.0).map_err(ApiError::internal)?,
            encoder: OpusEncoder::new(&EncoderSettings::program_stereo(PROGRAM_BITRATE))
                .map_err(ApiError::internal)?,
            packet: vec![0; MAX_PACKET],
            rtp: 0,
            minus: HashMap::new(),
            program_paused: false,
            levels: HashMap::new(),
            ticks: 0,
        })
    }
}

struct RoomTask {
    id: String,
    room: Room,
    members: HashMap<ParticipantId, Member>,
    invites: HashMap<u64, InviteEntry>,
    next_id: u64,
    next_conn: u64,
    away: HashSet<ParticipantId>,
    sessions: Vec<Session>,
    socket: Arc<UdpSocket>,
    shared: Shared,
    tx: mpsc::Sender<RoomMsg>,
    mixer: Mixer,
    recording: Option<OggOpusWriter<BufWriter<File>>>,
    recordings: u32,
    listening_announced: usize,
    ended_at: Option<Instant>,
    /// Levels publishers report for their own voice, and when.
    voice_levels: HashMap<ParticipantId, (f32, Instant)>,
}

fn room_error(e: &RoomError) -> ApiError {
    let status = match e {
        RoomError::NotAllowed { .. } | RoomError::Removed => StatusCode::FORBIDDEN,
        RoomError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        RoomError::Ended => StatusCode::GONE,
        RoomError::UnknownParticipant(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// A WebSocket message as sent, shared by every connection it goes to.
fn message(msg: &ServerMsg) -> Arc<str> {
    Arc::from(msg.to_text())
}

/// The light a publisher's level shows: what a Booth host reports of its voice (its program
/// carries its game too) while the report is fresh, none once it is 600 ms old (the host, or
/// this task, held up: showing the program then lit a silent host with its game), and the
/// level of what it publishes for a client that never reports (a browser: its mic).
fn shown_level(reported: Option<(f32, Instant)>, published: f32) -> f32 {
    match reported {
        Some((level, at)) if at.elapsed() < Duration::from_millis(600) => level,
        Some(_) => 0.0,
        None => published,
    }
}

fn level_of(pcm: &[f32]) -> f32 {
    let energy: f32 = pcm.iter().map(|s| s * s).sum::<f32>() / pcm.len().max(1) as f32;
    crate::dsp::level_fraction(10.0 * energy.max(1e-10).log10())
}

impl RoomTask {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomMsg>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut batch = 1;
        loop {
            // Every 20 ms while anyone hears or speaks over the network (or the room records),
            // else a few ticks at once; the change takes effect from this turn.
            let wanted = if self.quiet() { QUIET_BATCH } else { 1 };
            if wanted != batch {
                batch = wanted;
                let period = TICK * batch;
                let first = if batch == 1 {
                    tokio::time::Instant::now()
                } else {
                    tokio::time::Instant::now() + period
                };
                tick = tokio::time::interval_at(first, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            }
            let deadline = self.next_deadline();
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.on_message(msg);
                }
                _ = tick.tick() => {
                    for _ in 0..batch {
                        if !self.room.is_ended() {
                            self.mix_tick();
                        }
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.on_timeouts(Instant::now());
                }
            }
            if let Some(at) = self.ended_at
                && at.elapsed() > Duration::from_secs(600)
                && self.members.values().all(|m| m.conns.is_empty())
            {
                break;
            }
        }
        for s in &self.sessions {
            self.shared.media.unroute(&s.ufrag);
        }
        self.shared.metrics.rooms.fetch_sub(1, Relaxed);
    }

    /// Nothing crosses the network or is recorded: every session is in this process (a host
    /// live in its own server, alone), so no packet waits on the mix's timing.
    fn quiet(&self) -> bool {
        self.recording.is_none()
            && self
                .sessions
                .iter()
                .all(|s| matches!(s.link, Link::Local { .. }))
    }

    fn next_deadline(&self) -> Instant {
        let mut at = Instant::now() + Duration::from_secs(1);
        for s in &self.sessions {
            at = at.min(s.deadline);
        }
        if let Some(t) = self.room.poll_timeout() {
            at = at.min(t);
        }
        at
    }

    fn on_timeouts(&mut self, now: Instant) {
        if self.room.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.room.handle(crate::room::Input::Tick, now);
            self.pump();
        }
        for i in 0..self.sessions.len() {
            if self.sessions[i].deadline <= now
                && let Some(rtc) = self.sessions[i].link.rtc()
            {
                let _ = rtc.handle_input(Input::Timeout(now));
                self.drive(i);
            }
        }
        self.reap(now);
    }

    fn on_message(&mut self, msg: RoomMsg) {
        match msg {
            RoomMsg::Datagram(d) => self.on_datagram(d),
            RoomMsg::Local {
                token,
                media,
                alive,
                reply,
            } => {
                let _ = reply.send(self.local(&token, media, alive));
            }
            RoomMsg::VoiceLevel { who, level } => {
                if self.room.may_publish(who) {
                    self.voice_levels
                        .insert(who, (level.clamp(0.0, 1.0), Instant::now()));
                }
            }
            RoomMsg::Hello {
                token,
                name,
                out,
                reply,
            } => {
                let _ = reply.send(self.hello(token.as_deref(), name, out));
            }
            RoomMsg::Act {
                from,
                action,
                reply,
            } => {
                let _ = reply.send(self.act(from, action));
            }
            RoomMsg::ActWithToken {
                token,
                action,
                reply,
            } => {
                let result = self
                    .identify(token.as_deref())
                    .and_then(|who| self.act(who, action));
                let _ = reply.send(result);
            }
            RoomMsg::Closed { who, conn } => self.closed(who, conn),
            RoomMsg::Invite { token, role, reply } => {
                let _ = reply.send(self.invite(token.as_deref(), role));
            }
            RoomMsg::Publish {
                token,
                offer,
                reply,
            } => {
                let result = self.publish(token.as_deref(), &offer);
                let _ = reply.send(result);
            }
            RoomMsg::Listen {
                token,
                offer,
                reply,
            } => {
                let result = self.listen(token.as_deref(), &offer);
                let _ = reply.send(result);
            }
            RoomMsg::Trickle {
                session,
                fragment,
                reply,
            } => {
                let _ = reply.send(self.trickle(&session, &fragment));
            }
            RoomMsg::Hangup { session, reply } => {
                let result = match self.sessions.iter().position(|s| s.id == session) {
                    Some(i) => {
                        self.close_session(i);
                        Ok(())
                    }
                    None => Err(ApiError::not_found("that session")),
                };
                let _ = reply.send(result);
            }
            RoomMsg::Info { reply } => {
                let _ = reply.send(self.info());
            }
        }
    }

    // ---------------------------------------------------------------- identity and the channel

    /// The participant a token names, checked in constant time.
    fn identify(&self, token: Option<&str>) -> Result<ParticipantId, ApiError> {
        let token = token.ok_or_else(|| ApiError::unauthorized("a token is required"))?;
        let Some((TokenRef::Participant(n), secret)) = tokens::parse(token) else {
            return Err(ApiError::unauthorized(
                "that token is not valid for this room",
            ));
        };
        let id = ParticipantId(n);
        match self.members.get(&id) {
            Some(m) if m.secret.matches(secret) => {
                if self.room.is_removed(id) {
                    Err(ApiError::forbidden(
                        "removed",
                        "you were removed from this room",
                    ))
                } else {
                    Ok(id)
                }
            }
            _ => Err(ApiError::unauthorized(
                "that token is not valid for this room",
            )),
        }
    }

    fn new_member(&mut self, grant: Role, name: &str) -> Result<(ParticipantId, String), ApiError> {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let secret = Secret::generate().map_err(ApiError::internal)?;
        let token = tokens::format(TokenRef::Participant(id.0), &secret);
        self.members.insert(
            id,
            Member {
                secret,
                grant,
                name: name.to_owned(),
                conns: Vec::new(),
            },
        );
        Ok((id, token))
    }

    fn hello(
        &mut self,
        token: Option<&str>,
        name: String,
        out: mpsc::Sender<WsOut>,
    ) -> Result<Welcome, ApiError> {
        let now = Instant::now();
        let (id, token) = match token.map(|t| (t, tokens::parse(t))) {
            None => self.new_member(Role::Listener, &name)?,
            Some((t, Some((TokenRef::Participant(_), _)))) => {
                (self.identify(Some(t))?, t.to_owned())
            }
            Some((_, Some((TokenRef::Invite(n), secret)))) => {
                let role = match self.invites.get(&n) {
                    Some(inv) if inv.secret.matches(secret) => inv.role,
                    _ => return Err(ApiError::unauthorized("that invitation is not valid")),
                };
                self.invites.remove(&n);
                self.new_member(role, &name)?
            }
            Some((_, None)) => {
                return Err(ApiError::unauthorized(
                    "that token is not valid for this room",
                ));
            }
        };
        let grant = self.members.get(&id).map_or(Role::Listener, |m| m.grant);
        let present = self.room.role(id).is_some() && !self.away.contains(&id);
        if !present {
            let role = if grant == Role::Host {
                Role::Host
            } else {
                self.room.role(id).unwrap_or(grant)
            };
            let joined = self.room.handle(
                crate::room::Input::Join {
                    id,
                    name: name.clone(),
                    role,
                },
                now,
            );
            if let Err(e) = joined {
                // A new member who could not join leaves no trace.
                if self.members.get(&id).is_some_and(|m| m.conns.is_empty()) && grant != Role::Host
                {
                    self.members.remove(&id);
                }
                return Err(room_error(&e));
            }
            self.away.remove(&id);
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        if let Some(m) = self.members.get_mut(&id) {
            m.conns.push((conn, out));
            if !name.trim().is_empty() {
                m.name = name;
            }
        }
        self.shared.metrics.websockets.fetch_add(1, Relaxed);
        self.pump();
        let role = self.room.role(id).unwrap_or(Role::Listener);
        let name = self
            .room
            .stage()
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.name.clone())
            .or_else(|| self.members.get(&id).map(|m| m.name.clone()))
            .unwrap_or_default();
        let mut room = self.info();
        if matches!(role, Role::Host | Role::CoHost) {
            room.room.hand_queue = Some(self.room.hand_entries());
        }
        let you = You {
            id,
            role,
            name,
            token,
            actions: Permissions::for_role(role),
        };
        Ok(Welcome { you, room, conn })
    }

    fn closed(&mut self, who: ParticipantId, conn: u64) {
        let Some(m) = self.members.get_mut(&who) else {
            return;
        };
        let before = m.conns.len();
        m.conns.retain(|(c, _)| *c != conn);
        if m.conns.len() < before {
            self.shared.metrics.websockets.fetch_sub(1, Relaxed);
        }
        if m.conns.is_empty() && self.room.role(who).is_some() && !self.room.is_ended() {
            self.away.insert(who);
            let _ = self
                .room
                .handle(crate::room::Input::Disconnected { id: who }, Instant::now());
            self.pump();
        }
    }

    fn act(&mut self, from: ParticipantId, action: Action) -> Result<(), ApiError> {
        let result = self
            .room
            .handle(crate::room::Input::Action { from, action }, Instant::now());
        self.pump();
        result.map_err(|e| room_error(&e))
    }

    fn invite(&mut self, token: Option<&str>, role: Role) -> Result<Invitation, ApiError> {
        let who = self.identify(token)?;
        let by = self.room.role(who);
        let allowed = match role {
            Role::CoHost => by == Some(Role::Host),
            Role::Speaker => matches!(by, Some(Role::Host | Role::CoHost)),
            _ => false,
        };
        if !allowed {
            return Err(ApiError::forbidden(
                "not_allowed",
                "only the host invites co-hosts, and only moderators invite speakers",
            ));
        }
        let n = self.next_id;
        self.next_id += 1;
        let secret = Secret::generate().map_err(ApiError::internal)?;
        let token = tokens::format(TokenRef::Invite(n), &secret);
        self.invites.insert(n, InviteEntry { secret, role });
        Ok(Invitation { token, role })
    }

    /// Delivers what the room decided.
    fn pump(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                RoomOutput::Broadcast(event) => {
                    let changed = match &event {
                        Event::RoleChanged { id, role } => Some((*id, *role)),
                        _ => None,
                    };
                    let text = message(&ServerMsg::Event(event));
                    for m in self.members.values() {
                        send_all(&m.conns, &text);
                    }
                    if let Some((id, role)) = changed
                        && let Some(m) = self.members.get(&id)
                    {
                        let actions = Permissions::for_role(role);
                        send_all(&m.conns, &message(&ServerMsg::Allowed { actions }));
                    }
                }
                RoomOutput::ToModerators(event) => {
                    let text = message(&ServerMsg::Event(event));
                    for (id, m) in &self.members {
                        if matches!(self.room.role(*id), Some(Role::Host | Role::CoHost)) {
                            send_all(&m.conns, &text);
                        }
                    }
                }
                RoomOutput::To(id, event) => {
                    if let Some(m) = self.members.get(&id) {
                        send_all(&m.conns, &message(&ServerMsg::Event(event)));
                    }
                }
                RoomOutput::Media(command) => self.media_command(command),
            }
        }
    }

    fn media_command(&mut self, command: MediaCommand) {
        match command {
            MediaCommand::StopPublishing(id) => {
                self.close_where(|s| s.who == Some(id) && s.kind == Kind::Publish)
            }
            MediaCommand::Disconnect(id) => {
                self.close_where(|s| s.who == Some(id));
                if let Some(m) = self.members.get_mut(&id) {
                    for (_, out) in m.conns.drain(..) {
                        let _ = out.try_send(WsOut::Close("removed from the room".into()));
                        self.shared.metrics.websockets.fetch_sub(1, Relaxed);
                    }
                }
            }
            MediaCommand::SetMuted(..) => {}
            MediaCommand::Recording(on) => self.set_recording(on),
            MediaCommand::EndRoom => {
                self.set_recording(false);
                self.close_where(|_| true);
                self.ended_at = Some(Instant::now());
                for m in self.members.values_mut() {
                    for (_, out) in &m.conns {
                        let _ = out.try_send(WsOut::Close("the room has ended".into()));
                    }
                }
            }
        }
    }

    fn set_recording(&mut self, on: bool) {
        if on && self.recording.is_none() {
            self.recordings += 1;
            let dir = self.shared.data_dir.join("rooms").join(&self.id);
            let path = dir.join(format!("program-{}.ogg", self.recordings));
            // The header describes the packets it will hold: the program encoder's.
            let settings = self.mixer.encoder.settings();
            let opened = std::fs::create_dir_all(&dir)
                .and_then(|()| File::create(&path))
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    OggOpusWriter::with_comments(
                        BufWriter::new(f),
                        settings,
                        48_000,
                        &[("ENCODER", "Booth room")],
                    )
                    .map_err(|e| e.to_string())
                });
            match opened {
                Ok(w) => self.recording = Some(w),
                Err(e) => {
                    tracing::error!("room {}: cannot record to {}: {e}", self.id, path.display())
                }
            }
        } else if !on
            && let Some(w) = self.recording.take()
            && let Err(e) = w.finish()
        {
            tracing::error!("room {}: recording failed at the end: {e}", self.id);
        }
    }

    fn info(&self) -> RoomInfo {
        RoomInfo {
            id: self.id.clone(),
            room: self.room.snapshot(Instant::now()),
            listening: self.listening(),
            live: self
                .sessions
                .iter()
                .any(|s| s.kind == Kind::Publish && s.connected && s.who == Some(ParticipantId(1))),
        }
    }

    fn listening(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.kind == Kind::Listen && s.connected)
            .count()
    }

    // ---------------------------------------------------------------- sessions

    fn new_session(
        &mut self,
        kind: Kind,
        who: Option<ParticipantId>,
        offer: &str,
    ) -> Result<SessionCreated, ApiError> {
        if self.room.is_ended() {
            return Err(ApiError::gone());
        }
        let lower = offer.to_ascii_lowercase();
        if !lower.contains("m=audio") {
            return Err(ApiError::bad_request(
                "no_audio",
                "the offer has no audio section",
            ));
        }
        if !lower.contains("opus/48000") {
            return Err(ApiError::bad_request(
                "no_opus",
                "the offer does not offer Opus audio",
            ));
        }
        let parsed = SdpOffer::from_sdp_string(offer).map_err(|e| {
            ApiError::bad_request("bad_sdp", format!("the offer is not valid SDP: {e}"))
        })?;
        let remote_ufrag = sdp_ice_ufrag(offer).unwrap_or_default().to_owned();
        let Some((mid, direction)) = crate::rtc::sdp_audio_section(offer) else {
            return Err(ApiError::bad_request(
                "no_audio",
                "the offer's audio section has no a=mid",
            ));
        };
        let usable = match kind {
            Kind::Publish => matches!(direction, "sendonly" | "sendrecv"),
            Kind::Listen => matches!(direction, "recvonly" | "sendrecv"),
        };
        if !usable {
            return Err(ApiError::bad_request(
                "wrong_direction",
                match kind {
                    Kind::Publish => "a WHIP offer must send audio (sendonly)",
                    Kind::Listen => "a WHEP offer must receive audio (recvonly)",
                },
            ));
        }
        let now = Instant::now();
        let mut rtc = rtc_config().set_ice_lite(true).build(now);
        let candidate =
            Candidate::host(self.shared.media.advertised(), "udp").map_err(ApiError::internal)?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| {
                ApiError::bad_request("bad_sdp", format!("the offer cannot be answered: {e}"))
            })?
            .to_sdp_string();
        let ufrag = sdp_ice_ufrag(&answer).unwrap_or_default().to_owned();
        let id = tokens::random_id(16).map_err(ApiError::internal)?;
        self.shared.media.route(&ufrag, self.tx.clone());
        self.sessions.push(Session {
            ufrag,
            remote_ufrag,
            mid: Some(Mid::from(mid.as_str())),
            decoder: if kind == Kind::Publish {
                OpusDecoder::new(2).ok()
            } else {
                None
            },
            ..Session::new(id.clone(), kind, who, Link::Rtc(Box::new(rtc)), now)
        });
        let i = self.sessions.len() - 1;
        self.drive(i);
        Ok(SessionCreated { id, answer })
    }

    fn publish(&mut self, token: Option<&str>, offer: &str) -> Result<SessionCreated, ApiError> {
        let who = self.identify(token)?;
        if !self.room.may_publish(who) {
            return Err(ApiError::forbidden(
                "not_on_stage",
                "only the host, co-hosts and speakers on stage may publish",
            ));
        }
        // One voice per participant: a new session replaces the old one.
        self.close_where(|s| s.who == Some(who) && s.kind == Kind::Publish);
        self.new_session(Kind::Publish, Some(who), offer)
    }

    fn listen(&mut self, token: Option<&str>, offer: &str) -> Result<SessionCreated, ApiError> {
        let who = match token {
            Some(t) => Some(self.identify(Some(t))?),
            None => None,
        };
        self.new_session(Kind::Listen, who, offer)
    }

    /// A session for the host in this process (see [`RoomMsg::Local`]): publishing its program,
    /// or hearing the room (a stage member's mix-minus) through it.
    fn local(
        &mut self,
        token: &str,
        media: LocalMedia,
        alive: mpsc::Sender<()>,
    ) -> Result<(), ApiError> {
        if self.room.is_ended() {
            return Err(ApiError::gone());
        }
        let who = self.identify(Some(token))?;
        let (kind, end) = match media {
            LocalMedia::Listen(out) => (Kind::Listen, LocalEnd::Hears(out)),
            LocalMedia::Publish(ring) => {
                if !self.room.may_publish(who) {
                    return Err(ApiError::forbidden(
                        "not_on_stage",
                        "only the host, co-hosts and speakers on stage may publish",
                    ));
                }
                self.close_where(|s| s.who == Some(who) && s.kind == Kind::Publish);
                let program = ProgramIn {
                    ring,
                    flowing: false,
                };
                (Kind::Publish, LocalEnd::Program(program))
            }
        };
        let id = tokens::random_id(16).map_err(ApiError::internal)?;
        let now = Instant::now();
        let link = Link::Local { end, alive };
        self.sessions.push(Session {
            // Nothing to connect: frames flow from the first tick.
            connected: true,
            // No timers of its own.
            deadline: now + Duration::from_secs(86_400),
            ..Session::new(id, kind, Some(who), link, now)
        });
        match kind {
            Kind::Publish => self.shared.metrics.publishers.fetch_add(1, Relaxed),
            Kind::Listen => self.shared.metrics.listeners.fetch_add(1, Relaxed),
        };
        if kind == Kind::Listen {
            self.announce_listening();
        }
        Ok(())
    }

    fn trickle(&mut self, session: &str, fragment: &str) -> Result<(), ApiError> {
        let i = self
            .sessions
            .iter()
            .position(|s| s.id == session)
            .ok_or_else(|| ApiError::not_found("that session"))?;
        if let Some(ufrag) = sdp_ice_ufrag(fragment)
            && self.sessions[i].remote_ufrag != ufrag
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ice_restart_unsupported",
                "ICE restarts are not supported: start a new session",
            ));
        }
        for line in fragment.lines() {
            let line = line.trim();
            if let Some(c) = line
                .strip_prefix("a=candidate:")
                .or_else(|| line.strip_prefix("candidate:"))
            {
                let c = Candidate::from_sdp_string(&format!("candidate:{c}")).map_err(|e| {
                    ApiError::bad_request("bad_candidate", format!("cannot read candidate: {e}"))
                })?;
                match self.sessions[i].link.rtc() {
                    Some(rtc) => rtc.add_remote_candidate(c),
                    None => {
                        return Err(ApiError::bad_request(
                            "not_webrtc",
                            "that session does not use WebRTC",
                        ));
                    }
                }
            }
        }
        self.drive(i);
        Ok(())
    }

    fn close_where(&mut self, pick: impl Fn(&Session) -> bool) {
        let mut i = 0;
        while i < self.sessions.len() {
            if pick(&self.sessions[i]) {
                self.close_session(i);
            } else {
                i += 1;
            }
        }
    }

    fn close_session(&mut self, i: usize) {
        let mut s = self.sessions.swap_remove(i);
        // A clean close (RTCP BYE, DTLS close_notify) tells the peer at once. A local session
        // ends as it is dropped (its host sees `alive` go).
        if let Some(rtc) = s.link.rtc() {
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
            self.shared.media.unroute(&s.ufrag);
        }
        if s.connected {
            match s.kind {
                Kind::Publish => self.shared.metrics.publishers.fetch_sub(1, Relaxed),
                Kind::Listen => self.shared.metrics.listeners.fetch_sub(1, Relaxed),
            };
        }
        if let Some(who) = s.who {
            self.mixer.minus.remove(&who);
        }
        self.announce_listening();
    }

    fn reap(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.sessions.len() {
            let s = &self.sessions[i];
            let stale = match &s.link {
                Link::Rtc(rtc) => {
                    !rtc.is_alive()
                        || (!s.connected && now.duration_since(s.created) > CONNECT_DEADLINE)
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

    fn announce_listening(&mut self) {
        let n = self.listening();
        if n != self.listening_announced {
            self.listening_announced = n;
            let text = message(&ServerMsg::Audience { listening: n });
            for m in self.members.values() {
                send_all(&m.conns, &text);
            }
        }
    }

    fn on_datagram(&mut self, d: Datagram) {
        let webrtc = |s: &Session| matches!(s.link, Link::Rtc(_));
        let found = self
            .sessions
            .iter()
            .position(|s| webrtc(s) && s.remote == Some(d.source))
            .or_else(|| {
                let ufrag = crate::rtc::stun_local_ufrag(&d.data)?;
                self.sessions
                    .iter()
                    .position(|s| webrtc(s) && s.ufrag == ufrag)
            });
        let Some(i) = found else {
            self.shared.metrics.unrouted.fetch_add(1, Relaxed);
            return;
        };
        let Ok(contents) = d.data.as_slice().try_into() else {
            return;
        };
        let input = Input::Receive(
            d.at,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: self.shared.media.local(),
                contents,
            },
        );
        let s = &mut self.sessions[i];
        let Some(rtc) = s.link.rtc() else { return };
        if rtc.accepts(&input) {
            if let Err(e) = rtc.handle_input(input) {
                tracing::debug!("room {}: session input: {e}", self.id);
            }
            if s.remote.is_none() && crate::rtc::stun_local_ufrag(&d.data).is_none() {
                s.remote = Some(d.source);
            }
            self.drive(i);
        }
    }

    /// Runs a session's outputs until its next deadline.
    fn drive(&mut self, i: usize) {
        let metrics = &self.shared.metrics;
        let s = &mut self.sessions[i];
        let Link::Rtc(rtc) = &mut s.link else {
            return;
        };
        let mut newly_connected = false;
        loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    s.deadline = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    if s.remote.is_none() {
                        s.remote = Some(t.destination);
                    }
                    match self.socket.try_send_to(&t.contents, t.destination) {
                        Ok(_) => metrics.packets_out.fetch_add(1, Relaxed),
                        Err(_) => metrics.send_drops.fetch_add(1, Relaxed),
                    };
                }
                Ok(Output::Event(e)) => match e {
                    RtcEvent::Connected => {
                        s.connected = true;
                        newly_connected = true;
                        match s.kind {
                            Kind::Publish => metrics.publishers.fetch_add(1, Relaxed),
                            Kind::Listen => metrics.listeners.fetch_add(1, Relaxed),
                        };
                    }
                    RtcEvent::MediaAdded(m) => s.mid = Some(m.mid),
                    RtcEvent::MediaData(data) if s.kind == Kind::Publish => {
                        s.jitter.push(data.time.numer(), data.data);
                    }
                    RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        rtc.disconnect();
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!("session {}: {e}", s.id);
                    rtc.disconnect();
                    s.deadline = Instant::now();
                    break;
                }
            }
        }
        if s.connected
            && s.kind == Kind::Listen
            && s.pt.is_none()
            && let Some(mid) = s.mid
            && let Some(w) = rtc.writer(mid)
        {
            s.pt = w.payload_params().next().map(|p| p.pt());
        }
        if newly_connected && s.kind == Kind::Listen {
            self.announce_listening();
        }
    }

    // ---------------------------------------------------------------- the mix

    fn mix_tick(&mut self) {
        let started = Instant::now();
        let mixer = &mut self.mixer;
        mixer.program.fill(0.0);
        for s in &mut self.sessions {
            if s.kind != Kind::Publish {
                continue;
            }
            s.heard = false;
            if let Link::Local {
                end: LocalEnd::Program(program),
                ..
            } = &mut s.link
            {
                if !program.pull(&mut s.pcm) {
                    continue;
                }
            } else {
                let Some(decoder) = s.decoder.as_mut() else {
                    continue;
                };
                let decoded = match s.jitter.pop() {
                    Playout::Packet(p) => decoder.decode(&p, &mut s.pcm),
                    Playout::Lost { next: Some(p) } => decoder.decode_fec(&p, &mut s.pcm),
                    Playout::Lost { next: None } => decoder.decode_lost(&mut s.pcm),
                    Playout::Silence => continue,
                };
                let Ok(frames) = decoded else { continue };
                if frames != FRAME_SAMPLES {
                    continue;
                }
            }
            let who = s.who.unwrap_or(ParticipantId(0));
            if !self.room.may_publish(who) || self.room.is_muted(who) {
                continue;
            }
            s.heard = true;
            s.level = level_of(&s.pcm);
            for (o, x) in mixer.program.iter_mut().zip(&s.pcm) {
                *o += *x;
            }
            let level = shown_level(self.voice_levels.get(&who).copied(), s.level);
            let l = mixer.levels.entry(who).or_insert(0.0);
            *l = l.max(level);
        }

        // Who hears what: a listener who also publishes hears a mix-minus (everything but their
        // own voice, from an encoder of their own even in a tick their voice is missing, so their
        // stream never switches encoders), everyone else the program.
        let sessions = &self.sessions;
        // Every publisher, with their voice in this tick's mix (None when it is missing or muted).
        let mut own_voice: HashMap<ParticipantId, Option<&[f32]>> = HashMap::new();
        for s in sessions.iter().filter(|s| s.kind == Kind::Publish) {
            if let Some(who) = s.who {
                let voice = own_voice.entry(who).or_insert(None);
                if s.heard {
                    *voice = Some(&s.pcm);
                }
            }
        }
        let minus_for: HashSet<ParticipantId> = sessions
            .iter()
            .filter(|s| s.kind == Kind::Listen && s.connected)
            .filter_map(|s| s.who)
            .filter(|who| own_voice.contains_key(who))
            .collect();
        let program_heard = self.recording.is_some()
            || sessions.iter().any(|s| {
                s.kind == Kind::Listen
                    && s.connected
                    && !s.who.is_some_and(|w| minus_for.contains(&w))
            });

        // The program for the audience: limited, encoded once, and only while someone hears it
        // (a host alone on stage hears only the mix-minus; the encode is the mix's largest cost).
        let program: Option<Arc<[u8]>> = if program_heard {
            if mixer.program_paused {
                // Nothing from before the pause may reach the first listener after it.
                mixer.limiter.reset();
                if let Err(e) = mixer.encoder.reset() {
                    tracing::error!("room {}: encoder: {e}", self.id);
                }
                mixer.program_paused = false;
            }
            mixer.scratch.copy_from_slice(&mixer.program);
            mixer.limiter.process(&mut mixer.scratch);
            match mixer
                .encoder
                .encode_frame(&mixer.scratch, &mut mixer.packet)
            {
                Ok(n) => {
                    self.shared.metrics.program_frames.fetch_add(1, Relaxed);
                    Some(Arc::from(&mixer.packet[..n]))
                }
                Err(e) => {
                    tracing::error!("room {}: encoder: {e}", self.id);
                    return;
                }
            }
        } else {
            mixer.program_paused = true;
            None
        };
        if let Some(program) = &program
            && let Some(w) = self.recording.as_mut()
            && let Err(e) = w.write_packet(program)
        {
            tracing::error!("room {}: recording stopped: {e}", self.id);
            self.recording = None;
        }
        let rtp = mixer.rtp;
        mixer.rtp += FRAME_SAMPLES as u64;

        // Mix-minus for every publisher who also listens.
        let mut minus: HashMap<ParticipantId, Arc<[u8]>> = HashMap::new();
        for &who in &minus_for {
            let own = own_voice.get(&who).copied().flatten();
            let chain = match mixer.minus.entry(who) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let (Ok(limiter), Ok(encoder)) = (
                        Limiter::new(-1.0),
                        OpusEncoder::new(&EncoderSettings::program_stereo(PROGRAM_BITRATE)),
                    ) else {
                        continue;
                    };
                    v.insert(MinusChain {
                        limiter,
                        encoder,
                        paused: false,
                    })
                }
            };
            match own {
                Some(own) => {
                    for ((o, p), x) in mixer.scratch.iter_mut().zip(&mixer.program).zip(own) {
                        *o = *p - *x;
                    }
                }
                None => mixer.scratch.copy_from_slice(&mixer.program),
            }
            // A host in this process alone on stage hears nothing: its local session is sent
            // nothing (it plays silence through a gap), rather than encoded silence to decode.
            // Sessions over WebRTC always get packets (a browser takes a gap for a stall).
            let local_only = sessions
                .iter()
                .filter(|s| s.kind == Kind::Listen && s.connected && s.who == Some(who))
                .all(|s| matches!(s.link, Link::Local { .. }));
            if local_only && mixer.scratch.iter().all(|&x| x == 0.0) {
                chain.paused = true;
                continue;
            }
            if chain.paused {
                chain.limiter.reset();
                if chain.encoder.reset().is_err() {
                    continue;
                }
                chain.paused = false;
            }
            chain.limiter.process(&mut mixer.scratch);
            if let Ok(n) = chain
                .encoder
                .encode_frame(&mixer.scratch, &mut mixer.packet)
            {
                self.shared.metrics.minus_frames.fetch_add(1, Relaxed);
                minus.insert(who, Arc::from(&mixer.packet[..n]));
            }
        }

        let now = Instant::now();
        let time = MediaTime::new(rtp, Frequency::FORTY_EIGHT_KHZ);
        for i in 0..self.sessions.len() {
            let s = &mut self.sessions[i];
            if s.kind != Kind::Listen || !s.connected {
                continue;
            }
            // A stage member hears their mix-minus, or nothing this tick; never the program
            // with their own voice in it.
            let packet = match s.who.filter(|w| minus_for.contains(w)) {
                Some(w) => minus.get(&w),
                None => program.as_ref(),
            };
            let Some(packet) = packet else {
                continue;
            };
            match &mut s.link {
                Link::Rtc(rtc) => {
                    let (Some(mid), Some(pt)) = (s.mid, s.pt) else {
                        continue;
                    };
                    let Some(writer) = rtc.writer(mid) else {
                        continue;
                    };
                    if writer.write(pt, now, time, Arc::clone(packet)).is_err() {
                        rtc.disconnect();
                    }
                    self.drive(i);
                }
                Link::Local { end, .. } => {
                    // A host too busy to take it misses the frame, as on a network.
                    if let LocalEnd::Hears(out) = end {
                        let _ = out.try_send(InFrame {
                            rtp_time: rtp,
                            packet: Arc::clone(packet),
                            at: now,
                        });
                    }
                }
            }
        }

        self.mixer.ticks += 1;
        if self.mixer.ticks.is_multiple_of(5) && !self.mixer.levels.is_empty() {
            let levels: Vec<(ParticipantId, f32)> = self.mixer.levels.drain().collect();
            let _ = self.room.handle(crate::room::Input::Levels(levels), now);
            self.pump();
        }
        if self.mixer.ticks.is_multiple_of(50) {
            self.reap(now);
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.metrics.record_tick(micros);
    }
}

fn send_all(conns: &[(u64, mpsc::Sender<WsOut>)], text: &Arc<str>) {
    for (_, out) in conns {
        // A client too slow to read is closed by its WebSocket task when its queue fills.
        let _ = out.try_send(WsOut::Text(Arc::clone(text)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_hosts_light_stays_dark_when_its_report_is_late() {
        let now = Instant::now();
        // A browser never reports: its light is what it publishes.
        assert!((shown_level(None, 0.8) - 0.8).abs() < 1e-6);
        // A Booth host's report, fresh: its voice, not its program (the game).
        assert!(shown_level(Some((0.1, now)), 1.0) < 0.11);
        // The same report 700 ms old: dark, still not the game.
        let old = now.checked_sub(Duration::from_millis(700)).unwrap();
        assert!(shown_level(Some((0.1, old)), 1.0) < 1e-6);
    }

    fn block(n: f32) -> Vec<f32> {
        vec![n; STEREO_FRAME]
    }

    #[test]
    fn a_local_program_starts_with_a_block_in_hand_and_recovers_from_late_and_piled_up_blocks() {
        let (mut tx, ring) = rtrb::RingBuffer::new(10 * STEREO_FRAME);
        let mut program = ProgramIn {
            ring,
            flowing: false,
        };
        let mut pcm = vec![0.0; STEREO_FRAME];
        // One block is not enough to start on.
        let _ = tx.push_partial_slice(&block(1.0));
        assert!(!program.pull(&mut pcm));
        // Two are: blocks come out whole and in order, one per tick.
        let _ = tx.push_partial_slice(&block(2.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 1.0));
        let _ = tx.push_partial_slice(&block(3.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 2.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 3.0));
        // A late block: nothing this tick, and two in hand again before the next.
        assert!(!program.pull(&mut pcm));
        let _ = tx.push_partial_slice(&block(4.0));
        assert!(!program.pull(&mut pcm));
        let _ = tx.push_partial_slice(&block(5.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 4.0));
        // Blocks piled up behind a stalled tick: the oldest go, two stay in hand.
        for n in 6..=10 {
            let _ = tx.push_partial_slice(&block(n as f32));
        }
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 9.0), "{}", pcm[0]);
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 10.0));
    }
}
