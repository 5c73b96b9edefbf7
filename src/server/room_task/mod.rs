//! One task per room: it owns the room's state machine (`room::Room`), its members' capability
//! tokens and WebSocket connections, and its media: every WHIP publisher's Opus through a jitter
//! buffer into a decoder, a mix every 20 ms, the program encoded ONCE (and only while someone
//! hears it: a listener off stage, or the recording) and the same payload written to every WHEP
//! listener, and a mix-minus (everything but their own voice) for each publisher who also
//! listens. All its WebRTC sessions share the server's one UDP socket; a host whose server runs
//! in its own process publishes and listens through local sessions (channels, no WebRTC) under
//! the same rules.

mod admission;
mod expiry;
mod guard;
mod index;
mod members;
mod messages;
pub mod mix;
mod recording;
mod refusal;
mod sessions;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub use self::admission::{AddressSessions, SessionCap};
use self::members::{InviteEntry, Member};
pub use self::messages::{Invitation, LocalMedia, RoomMsg, SessionCreated, Welcome, WsOut};
pub use self::mix::ServerMix;
use self::mix::level_of;
use self::recording::EpisodeRecording;
pub use self::refusal::Refusal;
use self::sessions::{Kind, Link, Session};
use super::episodes::Urls;
use super::live::encoder::{LiveFeed, Tick};
use super::live::forward::Forwards;
use super::live::{LiveHub, LiveOptions};
use super::media::{Datagram, MediaSocket};
use super::metrics::Metrics;
use super::tokens::{self, Secret, TokenRef};
use crate::episodes::store::{Store, host_key};
use crate::room::protocol::{RoomInfo, ServerMsg};
use crate::room::{
    Action, Event, MediaCommand, Output as RoomOutput, ParticipantId, Permissions, Role, Room,
    RoomConfig,
};

const TICK: Duration = Duration::from_millis(20);
/// Ticks taken at once, every `QUIET_BATCH` x 20 ms, while nothing in the room crosses the
/// network or is recorded (a host live in its own server with nobody there yet): the mix then
/// only makes the speaking lights, and waking every 20 ms for that cost more than the mix.
const QUIET_BATCH: u32 = 5;
/// Datagrams queued for a room before the socket's reader drops them (a room that far behind
/// is better served by losing packets than by queueing seconds of them).
const DATAGRAM_QUEUE: usize = 4096;

/// What every room task shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The media socket.
    pub media: Arc<MediaSocket>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The episodes database (and the data directory their files go under).
    pub episodes: Arc<Store>,
    /// The links episodes are given.
    pub urls: Urls,
    /// How the live streams are made.
    pub live: LiveOptions,
    /// What any one client, address and room may take.
    pub limits: Arc<crate::server::limits::Limits>,
    /// Where a room's task sends its id as it finishes, so the registry lets it go.
    pub ended_rooms: mpsc::UnboundedSender<String>,
    /// The DTLS identity every WebRTC session answers with.
    pub certificate: crate::rtc::ServerCertificate,
    /// WebRTC sessions held by each client address, across every room.
    pub address_sessions: Arc<AddressSessions>,
}

/// A room as the registry holds it.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    /// The room id.
    pub id: String,
    /// The task's inbox.
    pub tx: mpsc::Sender<RoomMsg>,
    /// Its program for HTTP streams, HLS and relays.
    pub live: Arc<LiveHub>,
    /// Its program's WHIP forwards (they stop when the room ends).
    pub forwards: Arc<Forwards>,
    /// The room's pushes to Icecast, when it has them.
    pub icecast: Option<Arc<crate::server::live::icecast::IcecastPush>>,
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
) -> Result<(RoomHandle, String), Refusal> {
    let (tx, rx) = mpsc::channel(4096);
    let (datagrams, datagrams_rx) = mpsc::channel(DATAGRAM_QUEUE);
    let now = Instant::now();
    let host = ParticipantId(1);
    let secret = Secret::generate().map_err(Refusal::internal)?;
    let host_token = tokens::format(TokenRef::Participant(1), &secret);
    let host_key = host_key(&host_token);
    let live = LiveHub::new(
        &id,
        &config.title,
        shared.live.clone(),
        Arc::clone(&shared.metrics),
    );
    let forwards = Forwards::new(Arc::clone(&live), Arc::clone(&shared.metrics));
    let config = with_limits(config, &shared.limits);
    let room = Room::new(config, host, host_name, now);
    let host_name = room.name(host).unwrap_or("Host").to_owned();
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
        index: index::SessionIndex::default(),
        pending: 0,
        next_wake: now,
        last_timers: now,
        socket: shared.media.socket(),
        shared,
        datagrams,
        mix: ServerMix::new().map_err(Refusal::internal)?,
        levels: Vec::new(),
        episode: None,
        host_key,
        inbox: tx.clone(),
        listening_announced: usize::MAX,
        ended_at: None,
        voice_levels: HashMap::new(),
        live: Arc::clone(&live),
        live_feed: None,
        expiry: expiry::Expiry::new(now),
    };
    task.shared.metrics.rooms.fetch_add(1, Relaxed);
    tokio::spawn(task.run(rx, datagrams_rx));
    Ok((
        RoomHandle {
            id,
            tx,
            live,
            forwards,
            icecast: None,
        },
        host_token,
    ))
}

pub(super) struct RoomTask {
    id: String,
    room: Room,
    members: HashMap<ParticipantId, Member>,
    invites: HashMap<u64, InviteEntry>,
    next_id: u64,
    next_conn: u64,
    away: HashSet<ParticipantId>,
    sessions: Vec<Session>,
    /// Where each session is in `sessions`.
    index: index::SessionIndex,
    /// WebRTC sessions not connected yet.
    pending: usize,
    /// The earliest timer of any session (a lower bound: a session may have moved it on).
    next_wake: Instant,
    /// When the sessions' timers were last served.
    last_timers: Instant,
    socket: Arc<UdpSocket>,
    shared: Shared,
    /// Where the media socket routes this room's datagrams.
    datagrams: mpsc::Sender<Datagram>,
    mix: ServerMix,
    /// The speaking lights' levels, handed to the room every 100 ms.
    levels: Vec<(ParticipantId, f32)>,
    /// The episode the room records into.
    episode: Option<EpisodeRecording>,
    /// What proves the host's token to the episodes database.
    host_key: String,
    /// This task's own inbox (the recorder reports its failure there).
    inbox: mpsc::Sender<RoomMsg>,
    listening_announced: usize,
    ended_at: Option<Instant>,
    /// Levels publishers report for their own voice, and when.
    voice_levels: HashMap<ParticipantId, (f32, Instant)>,
    /// The program for HTTP streams, HLS and relays.
    live: Arc<LiveHub>,
    /// Its encoder thread, once anyone wanted it.
    live_feed: Option<LiveFeed>,
    /// When the room ends unused.
    expiry: expiry::Expiry,
}

/// The room's rules for people and the channel, from the server's limits.
fn with_limits(config: RoomConfig, limits: &crate::server::limits::Limits) -> RoomConfig {
    RoomConfig {
        name_chars: limits.name_chars,
        hand_queue: limits.hand_queue,
        big_audience: limits.big_audience,
        audience_page: limits.audience_page,
        ..config
    }
}

/// A WebSocket message as sent, shared by every connection it goes to.
pub(super) fn message(msg: &ServerMsg) -> Arc<str> {
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

impl RoomTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<RoomMsg>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
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
                Some(d) = datagrams.recv() => self.on_datagram(d),
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
            self.check_expiry(Instant::now());
            if self.finished() {
                break;
            }
        }
        for s in &self.sessions {
            if let Some(ufrag) = s.link.ufrag() {
                self.shared.media.unroute(ufrag);
            }
        }
        self.live.end();
        self.shared.metrics.rooms.fetch_sub(1, Relaxed);
        let _ = self.shared.ended_rooms.send(self.id.clone());
    }

    /// Nothing crosses the network or is recorded: every session is in this process (a host
    /// live in its own server, alone), so no packet waits on the mix's timing.
    fn quiet(&self) -> bool {
        !self.live.wanted()
            && !self
                .episode
                .as_ref()
                .is_some_and(EpisodeRecording::recording)
            && self
                .sessions
                .iter()
                .all(|s| matches!(s.link, Link::Local { .. }))
    }

    fn next_deadline(&self) -> Instant {
        let mut at = Instant::now() + Duration::from_secs(1);
        at = at.min(self.next_wake.max(self.last_timers + wire::TIMER_GRAIN));
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
        if self.next_wake <= now + wire::TIMER_GRAIN {
            self.session_timeouts(now);
            self.reap(now);
        }
    }

    fn on_message(&mut self, msg: RoomMsg) {
        match msg {
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
            RoomMsg::RoleOf { token, reply } => {
                let result = self
                    .identify(token.as_deref())
                    .and_then(|who| self.room.role(who).ok_or(Refusal::BadToken));
                let _ = reply.send(result);
            }
            RoomMsg::Invite { token, role, reply } => {
                let _ = reply.send(self.invite(token.as_deref(), role));
            }
            RoomMsg::Info { reply } => {
                let _ = reply.send(self.info());
            }
            RoomMsg::InfoPage {
                after,
                limit,
                reply,
            } => {
                let mut info = self.info();
                info.room = self.room.snapshot_page(Instant::now(), after, limit);
                let _ = reply.send(info);
            }
            RoomMsg::RevokeInvite {
                token,
                invite,
                reply,
            } => {
                let _ = reply.send(self.revoke_invite(token.as_deref(), &invite));
            }
            RoomMsg::RecordingFailed { episode, why } => self.recording_failed(episode, &why),
            RoomMsg::Shutdown { render, reply } => self.shutdown(render, reply),
            media => self.on_media_message(media),
        }
    }

    /// The messages about sessions: WHIP, WHEP, trickle, hang-up, and local sessions.
    fn on_media_message(&mut self, msg: RoomMsg) {
        match msg {
            RoomMsg::Local {
                token,
                media,
                alive,
                reply,
            } => {
                let _ = reply.send(self.local(&token, media, alive));
            }
            RoomMsg::Publish {
                token,
                offer,
                client,
                reply,
            } => {
                let _ = reply.send(self.publish(token.as_deref(), &offer, client));
            }
            RoomMsg::Listen {
                token,
                offer,
                client,
                reply,
            } => {
                let _ = reply.send(self.listen(token.as_deref(), &offer, client));
            }
            RoomMsg::Trickle {
                session,
                fragment,
                reply,
            } => {
                let _ = reply.send(self.trickle(&session, &fragment));
            }
            RoomMsg::Hangup { session, reply } => {
                let result = match self.index.by_id(&session) {
                    Some(i) => {
                        self.close_session(i);
                        Ok(())
                    }
                    None => Err(Refusal::NoSuchSession),
                };
                let _ = reply.send(result);
            }
            _ => {}
        }
    }

    fn act(&mut self, from: ParticipantId, action: Action) -> Result<(), Refusal> {
        let result = self
            .room
            .handle(crate::room::Input::Action { from, action }, Instant::now());
        self.pump();
        result.map_err(Refusal::from)
    }

    /// Delivers what the room decided. A connection whose queue is full (a client that stopped
    /// reading) is dropped, never waited for.
    fn pump(&mut self) {
        let mut stale = Vec::new();
        while let Some(output) = self.room.poll_output() {
            match output {
                RoomOutput::Broadcast(event) => self.broadcast(event, &mut stale),
                RoomOutput::ToModerators(event) => {
                    let text = message(&ServerMsg::Event(event));
                    for (id, m) in &self.members {
                        if matches!(self.room.role(*id), Some(Role::Host | Role::CoHost)) {
                            send_all(*id, &m.conns, &text, &mut stale);
                        }
                    }
                }
                RoomOutput::To(id, event) => {
                    if let Some(m) = self.members.get(&id) {
                        let text = message(&ServerMsg::Event(event));
                        send_all(id, &m.conns, &text, &mut stale);
                    }
                }
                RoomOutput::Media(command) => self.media_command(command),
            }
        }
        self.drop_stale(stale);
    }

    fn broadcast(&mut self, event: Event, stale: &mut Vec<(ParticipantId, u64)>) {
        let changed = match &event {
            Event::RoleChanged { id, role } => Some((*id, *role)),
            Event::Moment(marker) => {
                if let Some(e) = self.episode.as_mut() {
                    e.moment(&marker.label);
                }
                None
            }
            _ => None,
        };
        let text = message(&ServerMsg::Event(event));
        for (id, m) in &self.members {
            send_all(*id, &m.conns, &text, stale);
        }
        if let Some((id, role)) = changed
            && let Some(m) = self.members.get_mut(&id)
        {
            // The token's grant follows the room's decision, so that a reconnect after the
            // room forgot them cannot undo it either.
            m.grant = role;
            let actions = Permissions::for_role(role);
            let text = message(&ServerMsg::Allowed { actions });
            send_all(id, &m.conns, &text, stale);
        }
    }

    /// Closes the connections that could not take one more message.
    pub(super) fn drop_stale(&mut self, stale: Vec<(ParticipantId, u64)>) {
        for (who, conn) in stale {
            tracing::info!(
                "room {}: closing a room channel that stopped reading",
                self.id
            );
            self.closed(who, conn);
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
                self.finish_episode();
                self.live.end();
                self.live_feed = None;
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

    fn info(&self) -> RoomInfo {
        RoomInfo {
            id: self.id.clone(),
            room: self.room.snapshot(Instant::now()),
            listening: self.listening(),
            live: self
                .sessions
                .iter()
                .any(|s| s.kind == Kind::Publish && s.connected && s.who == Some(ParticipantId(1))),
            episode: self
                .episode
                .as_ref()
                .map(|e| e.reference(&self.shared.urls)),
            // The pushes belong to the room's handle; `GET /api/rooms/{id}` adds them.
            icecast: Vec::new(),
        }
    }

    /// The audience: WebRTC listeners, and those of the HTTP streams and HLS.
    fn listening(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.kind == Kind::Listen && s.connected)
            .count()
            + self.live.audience()
    }

    // ---------------------------------------------------------------- the mix

    fn mix_tick(&mut self) {
        let started = Instant::now();
        self.mix.begin();
        self.mix_voices();
        for s in self
            .sessions
            .iter()
            .filter(|s| s.kind == Kind::Listen && s.connected)
        {
            self.mix.listener(s.who, matches!(s.link, Link::Rtc(_)));
        }
        let recording = self
            .episode
            .as_ref()
            .is_some_and(EpisodeRecording::recording);
        let live = self.live.wanted();
        if let Err(e) = self.mix.encode(recording || live) {
            tracing::error!("room {}: {e}", self.id);
        }
        if live {
            self.feed_live();
        }
        if self.mix.program().is_some() {
            self.shared.metrics.program_frames.fetch_add(1, Relaxed);
        }
        let minus = self.mix.minus_count() as u64;
        self.shared.metrics.minus_frames.fetch_add(minus, Relaxed);
        self.record_tick();
        self.send_mixed();
        let now = Instant::now();
        if self.mix.ticks().is_multiple_of(5) {
            self.mix.take_levels(&mut self.levels);
            if !self.levels.is_empty() {
                let levels = std::mem::take(&mut self.levels);
                let _ = self.room.handle(crate::room::Input::Levels(levels), now);
                self.pump();
            }
        }
        if self.mix.ticks().is_multiple_of(50) {
            self.reap(now);
            // The HTTP streams' and HLS's listeners come and go without telling the room.
            self.announce_listening();
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.shared.metrics.record_tick(micros);
    }

    /// Hands this tick's program to the live encoder (started the first time it is wanted).
    fn feed_live(&mut self) {
        let Some(packet) = self.mix.program() else {
            return;
        };
        if self.live_feed.is_none() {
            match LiveFeed::start(Arc::clone(&self.live), self.mix.settings().clone()) {
                Ok(feed) => self.live_feed = Some(feed),
                Err(e) => {
                    tracing::error!("room {}: no live streams: {e}", self.id);
                    return;
                }
            }
        }
        let tick = Tick {
            opus: bytes::Bytes::copy_from_slice(packet),
            pcm: self.mix.program_pcm().to_vec(),
            pts: self.mix.rtp(),
        };
        if let Some(feed) = &self.live_feed
            && !feed.send(tick)
        {
            self.shared.metrics.stream_ticks_lost.fetch_add(1, Relaxed);
        }
    }

    /// Decodes every publisher's next 20 ms and hands the mix those the room lets be heard.
    fn mix_voices(&mut self) {
        for s in self.sessions.iter_mut().filter(|s| s.kind == Kind::Publish) {
            let who = s.who.unwrap_or(ParticipantId(0));
            self.mix.publisher(who);
            s.heard = false;
            if !s.next_voice() || !self.room.may_publish(who) || self.room.is_muted(who) {
                continue;
            }
            s.heard = true;
            let level = shown_level(self.voice_levels.get(&who).copied(), level_of(&s.pcm));
            self.mix.voice(who, &s.pcm, level);
        }
    }

    /// Sends this tick's packets: the program, encoded once, to every listener off stage; each
    /// stage member their mix-minus.
    fn send_mixed(&mut self) {
        let now = Instant::now();
        let rtp = self.mix.rtp();
        let program: Option<Arc<[u8]>> = self.mix.program().map(Arc::from);
        let mut i = 0;
        while i < self.sessions.len() {
            let s = &self.sessions[i];
            i += 1;
            if s.kind != Kind::Listen || !s.connected {
                continue;
            }
            let minus = s.who.filter(|w| self.mix.hears_minus(*w));
            let packet = match minus {
                Some(w) => self.mix.minus(w).map(Arc::from),
                None => program.clone(),
            };
            let Some(packet) = packet else { continue };
            let at = i - 1;
            if matches!(s.link, Link::Rtc(_)) {
                if !self.guarded(at, |task| {
                    task.sessions[at].send(&packet, rtp, now);
                    task.drive(at);
                }) {
                    // Closed: another session (or none) is at `at` now.
                    i = at;
                }
            } else {
                self.sessions[at].send(&packet, rtp, now);
            }
        }
    }
}

/// Queues `text` on every connection of `who`; those whose queue is full go to `stale`.
pub(super) fn send_all(
    who: ParticipantId,
    conns: &[(u64, mpsc::Sender<WsOut>)],
    text: &Arc<str>,
    stale: &mut Vec<(ParticipantId, u64)>,
) {
    for (conn, out) in conns {
        if let Err(mpsc::error::TrySendError::Full(_)) = out.try_send(WsOut::Text(Arc::clone(text)))
        {
            stale.push((who, *conn));
        }
    }
}
