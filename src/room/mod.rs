//! The room: roles, stage, hand queue, moderation, permissions and events, as a pure state
//! machine. `handle(input, now)`, then drain `poll_output()`; `poll_timeout()` says when to feed
//! `Input::Tick`. No IO, no clocks (time is an input), no randomness (ids come from the caller):
//! it is tested on a fake clock.
//!
//! Host drop: when the host's last connection goes (or they leave), the room keeps running
//! (the program simply stops) and everyone hears `HostAway` with a grace period
//! (`RoomConfig::host_grace`, 60 s). If the host comes back within it, `HostBack`. Otherwise the
//! longest-serving co-host becomes the host (`HostChanged`); with no co-host the room ends
//! (`Ended { reason: HostGone }`). After the end every input but `Leave`/`Disconnected` is
//! refused with `RoomError::Ended`.

mod actions;
mod error;
mod permissions;
pub mod protocol;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

pub use self::error::RoomError;
pub use self::permissions::{ActionKind, Permissions};
pub use self::protocol::{
    Action, AudienceMember, EndReason, Event, HandEntry, Marker, ParticipantId, Role, RoomSnapshot,
    StageMember,
};

/// Limits and timings of a room.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Title.
    pub title: String,
    /// The game played.
    pub game: String,
    /// Co-hosts at most.
    pub max_cohosts: usize,
    /// Speakers at most (besides host and co-hosts).
    pub max_speakers: usize,
    /// How long a dropped host has to come back.
    pub host_grace: Duration,
    /// Hand raises per participant per window.
    pub hand_raise_limit: u32,
    /// The window for hand raises.
    pub hand_raise_window: Duration,
    /// Reactions per participant per window.
    pub reaction_limit: u32,
    /// The window for reactions.
    pub reaction_window: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            title: String::new(),
            game: String::new(),
            max_cohosts: 2,
            max_speakers: 10,
            host_grace: Duration::from_secs(60),
            hand_raise_limit: 5,
            hand_raise_window: Duration::from_secs(60),
            reaction_limit: 10,
            reaction_window: Duration::from_secs(10),
        }
    }
}

impl RoomConfig {
    /// Defaults with a title and game.
    #[must_use]
    pub fn new(title: impl Into<String>, game: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            game: game.into(),
            ..Self::default()
        }
    }
}

/// What comes into the room.
#[derive(Debug, Clone)]
pub enum Input {
    /// Someone joins with the role their token grants.
    Join {
        /// Who.
        id: ParticipantId,
        /// Display name.
        name: String,
        /// Granted role.
        role: Role,
    },
    /// A clean leave.
    Leave {
        /// Who.
        id: ParticipantId,
    },
    /// A lost connection.
    Disconnected {
        /// Who.
        id: ParticipantId,
    },
    /// An action.
    Action {
        /// Who acts.
        from: ParticipantId,
        /// What.
        action: Action,
    },
    /// Active-speaker levels (0..1) from the mixer.
    Levels(Vec<(ParticipantId, f32)>),
    /// Time passed (see `poll_timeout`).
    Tick,
    /// The recording stopped by itself (its disk failed): the room says so, and records no
    /// more until a moderator starts it again.
    RecordingStopped,
}

/// Where an event goes, and media commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// To every connected client.
    Broadcast(Event),
    /// To the host and co-hosts.
    ToModerators(Event),
    /// To one client.
    To(ParticipantId, Event),
    /// For the media path.
    Media(MediaCommand),
}

/// What the media path must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// End their WHIP session.
    StopPublishing(ParticipantId),
    /// Close all their sessions and their channel.
    Disconnect(ParticipantId),
    /// Mute state changed.
    SetMuted(ParticipantId, bool),
    /// Recording on or off.
    Recording(bool),
    /// The room is over.
    EndRoom,
}

#[derive(Debug, Clone)]
struct Member {
    name: String,
    role: Role,
    muted: bool,
    since: Instant,
    raises: VecDeque<Instant>,
    reactions: VecDeque<Instant>,
}

/// See the module doc.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    started: Instant,
    host: ParticipantId,
    members: HashMap<ParticipantId, Member>,
    /// Stage order: the order people came on stage.
    order: Vec<ParticipantId>,
    hands: VecDeque<(ParticipantId, Instant)>,
    invited: HashSet<ParticipantId>,
    removed: HashSet<ParticipantId>,
    markers: Vec<Marker>,
    recording: bool,
    ended: bool,
    host_away_until: Option<Instant>,
    outputs: VecDeque<Output>,
    unnamed: u64,
    listeners_announced: usize,
}

pub(super) fn clean_name(name: &str, fallback: impl FnOnce() -> String) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(40)
        .collect();
    if cleaned.is_empty() {
        fallback()
    } else {
        cleaned
    }
}

impl Room {
    /// A room whose host is present and on stage.
    #[must_use]
    pub fn new(config: RoomConfig, host: ParticipantId, host_name: String, now: Instant) -> Self {
        let mut members = HashMap::new();
        members.insert(
            host,
            Member {
                name: clean_name(&host_name, || "Host".into()),
                role: Role::Host,
                muted: false,
                since: now,
                raises: VecDeque::new(),
                reactions: VecDeque::new(),
            },
        );
        Self {
            config,
            started: now,
            host,
            members,
            order: vec![host],
            hands: VecDeque::new(),
            invited: HashSet::new(),
            removed: HashSet::new(),
            markers: Vec::new(),
            recording: false,
            ended: false,
            host_away_until: None,
            outputs: VecDeque::new(),
            unnamed: 0,
            listeners_announced: 0,
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to feed `Input::Tick` next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        self.host_away_until
    }

    /// A participant's role; `None` if not in the room.
    #[must_use]
    pub fn role(&self, id: ParticipantId) -> Option<Role> {
        self.members.get(&id).map(|m| m.role)
    }

    /// On stage and the room not ended.
    #[must_use]
    pub fn may_publish(&self, id: ParticipantId) -> bool {
        !self.ended && self.role(id).is_some_and(Role::on_stage)
    }

    /// Muted on stage.
    #[must_use]
    pub fn is_muted(&self, id: ParticipantId) -> bool {
        self.members.get(&id).is_some_and(|m| m.muted)
    }

    /// Removed for the room's life.
    #[must_use]
    pub fn is_removed(&self, id: ParticipantId) -> bool {
        self.removed.contains(&id)
    }

    /// Ended.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The stage in order: host, co-hosts, speakers (each by time on stage).
    #[must_use]
    pub fn stage(&self) -> Vec<StageMember> {
        let mut stage: Vec<StageMember> = self
            .order
            .iter()
            .filter_map(|id| {
                let m = self.members.get(id)?;
                m.role.on_stage().then(|| StageMember {
                    id: *id,
                    name: m.name.clone(),
                    role: m.role,
                    muted: m.muted,
                })
            })
            .collect();
        stage.sort_by_key(|m| std::cmp::Reverse(m.role.rank()));
        stage
    }

    /// The raised hands, first first.
    #[must_use]
    pub fn hand_queue(&self) -> Vec<ParticipantId> {
        self.hands.iter().map(|(id, _)| *id).collect()
    }

    /// Listeners in the room.
    #[must_use]
    pub fn listener_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Listener)
            .count()
    }

    /// Moments marked.
    #[must_use]
    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    /// The room as a newly joined client needs it.
    #[must_use]
    pub fn snapshot(&self, now: Instant) -> RoomSnapshot {
        RoomSnapshot {
            title: self.config.title.clone(),
            game: self.config.game.clone(),
            elapsed_ms: self.ms(now),
            stage: self.stage(),
            hand_queue: None,
            listener_count: self.listener_count(),
            recording: self.recording,
            ended: self.ended,
            host_away: self.host_away_until.is_some(),
            audience: {
                let mut a: Vec<AudienceMember> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.role == Role::Listener)
                    .map(|(id, m)| AudienceMember {
                        id: *id,
                        name: m.name.clone(),
                    })
                    .collect();
                a.sort_by_key(|m| m.id);
                a
            },
        }
    }

    pub(super) fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// The raised hands, first first, with names and times (what moderators see).
    #[must_use]
    pub fn hand_entries(&self) -> Vec<HandEntry> {
        self.hands
            .iter()
            .map(|(id, at)| HandEntry {
                id: *id,
                name: self
                    .members
                    .get(id)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                raised_at_ms: self.ms(*at),
            })
            .collect()
    }

    fn speakers(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::Speaker)
            .count()
    }

    fn cohosts(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.role == Role::CoHost)
            .count()
    }

    fn emit_stage(&mut self) {
        let stage = self.stage();
        self.outputs
            .push_back(Output::Broadcast(Event::StageChanged { stage }));
    }

    fn emit_queue(&mut self) {
        let queue = self.hand_entries();
        self.outputs
            .push_back(Output::ToModerators(Event::HandQueue { queue }));
    }

    fn emit_count(&mut self) {
        let count = self.listener_count();
        if count != self.listeners_announced {
            self.listeners_announced = count;
            self.outputs
                .push_back(Output::Broadcast(Event::ListenerCount { count }));
        }
    }

    /// Gives `id` a new role and tells everyone; coming on stage takes down their hand (and
    /// the moderators hear the queue without it).
    fn set_role(&mut self, id: ParticipantId, role: Role, now: Instant) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        let was_on_stage = m.role.on_stage();
        m.role = role;
        if !role.on_stage() {
            m.muted = false;
        }
        let mut hand_taken_down = false;
        if role.on_stage() && !was_on_stage {
            m.since = now;
            self.order.retain(|x| *x != id);
            self.order.push(id);
            let before = self.hands.len();
            self.hands.retain(|(x, _)| *x != id);
            hand_taken_down = self.hands.len() != before;
            self.invited.remove(&id);
        }
        if !role.on_stage() && was_on_stage {
            self.order.retain(|x| *x != id);
            self.outputs
                .push_back(Output::Media(MediaCommand::StopPublishing(id)));
        }
        self.outputs
            .push_back(Output::Broadcast(Event::RoleChanged { id, role }));
        self.emit_stage();
        self.emit_count();
        if hand_taken_down {
            self.emit_queue();
        }
    }

    fn end(&mut self, reason: EndReason) {
        self.ended = true;
        self.host_away_until = None;
        if self.recording {
            self.recording = false;
            self.outputs
                .push_back(Output::Media(MediaCommand::Recording(false)));
        }
        self.outputs
            .push_back(Output::Broadcast(Event::Ended { reason }));
        self.outputs.push_back(Output::Media(MediaCommand::EndRoom));
    }

    /// Takes one input.
    ///
    /// # Errors
    /// The input is not allowed or does not fit the room's state; nothing changed then.
    pub fn handle(&mut self, input: Input, now: Instant) -> Result<(), RoomError> {
        if self.ended && !matches!(input, Input::Leave { .. } | Input::Disconnected { .. }) {
            return Err(RoomError::Ended);
        }
        match input {
            Input::Join { id, name, role } => self.join(id, &name, role, now),
            Input::Leave { id } | Input::Disconnected { id } => {
                self.leave(id, now);
                Ok(())
            }
            Input::Action { from, action } => self.act(from, action, now),
            Input::Levels(levels) => {
                let levels: Vec<(ParticipantId, f32)> = levels
                    .into_iter()
                    .filter(|(id, _)| self.role(*id).is_some_and(Role::on_stage))
                    .map(|(id, l)| (id, (l.clamp(0.0, 1.0) * 100.0).round() / 100.0))
                    .collect();
                if !levels.is_empty() {
                    self.outputs
                        .push_back(Output::Broadcast(Event::Levels { levels }));
                }
                Ok(())
            }
            Input::Tick => {
                self.tick(now);
                Ok(())
            }
            Input::RecordingStopped => {
                if self.recording {
                    self.recording = false;
                    self.outputs
                        .push_back(Output::Broadcast(Event::Recording { on: false }));
                }
                Ok(())
            }
        }
    }

    fn join(
        &mut self,
        id: ParticipantId,
        name: &str,
        role: Role,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.removed.contains(&id) {
            return Err(RoomError::Removed);
        }
        if role == Role::Host {
            if id != self.host {
                return Err(RoomError::HostPresent);
            }
            if self.host_away_until.take().is_some() {
                self.outputs.push_back(Output::Broadcast(Event::HostBack));
            }
            if !self.members.contains_key(&id) {
                // The host came back after a hand-over: they return as a co-host if there is
                // room, or as a listener.
                let role = if self.cohosts() < self.config.max_cohosts {
                    Role::CoHost
                } else {
                    Role::Listener
                };
                return self.join(id, name, role, now);
            }
            return Ok(());
        }
        if self.members.contains_key(&id) {
            return Ok(());
        }
        match role {
            Role::CoHost if self.cohosts() >= self.config.max_cohosts => {
                return Err(RoomError::CoHostsFull);
            }
            Role::Speaker if self.speakers() >= self.config.max_speakers => {
                return Err(RoomError::StageFull);
            }
            _ => {}
        }
        self.unnamed += 1;
        let n = self.unnamed;
        let name = clean_name(name, || format!("Listener {n}"));
        self.members.insert(
            id,
            Member {
                name: name.clone(),
                role,
                muted: false,
                since: now,
                raises: VecDeque::new(),
                reactions: VecDeque::new(),
            },
        );
        if role.on_stage() {
            self.order.push(id);
        }
        self.outputs
            .push_back(Output::Broadcast(Event::Joined { id, name, role }));
        if role.on_stage() {
            self.emit_stage();
        }
        self.emit_count();
        Ok(())
    }

    fn leave(&mut self, id: ParticipantId, now: Instant) {
        if self.ended {
            return;
        }
        if id == self.host && self.members.get(&id).is_some_and(|m| m.role == Role::Host) {
            if self.host_away_until.is_none() {
                let until = now + self.config.host_grace;
                self.host_away_until = Some(until);
                let until_ms =
                    u64::try_from(self.config.host_grace.as_millis()).unwrap_or(u64::MAX);
                self.outputs
                    .push_back(Output::Broadcast(Event::HostAway { until_ms }));
            }
            return;
        }
        let Some(m) = self.members.remove(&id) else {
            return;
        };
        let had_hand = self.hands.iter().any(|(x, _)| *x == id);
        self.hands.retain(|(x, _)| *x != id);
        self.invited.remove(&id);
        self.order.retain(|x| *x != id);
        if m.role.on_stage() {
            self.outputs
                .push_back(Output::Media(MediaCommand::StopPublishing(id)));
        }
        self.outputs
            .push_back(Output::Broadcast(Event::Left { id }));
        if m.role.on_stage() {
            self.emit_stage();
        }
        if had_hand {
            self.emit_queue();
        }
        self.emit_count();
    }

    fn tick(&mut self, now: Instant) {
        let Some(until) = self.host_away_until else {
            return;
        };
        if now < until {
            return;
        }
        self.host_away_until = None;
        let heir = self
            .members
            .iter()
            .filter(|(_, m)| m.role == Role::CoHost)
            .min_by_key(|(id, m)| (m.since, **id))
            .map(|(id, _)| *id);
        let old = self.host;
        match heir {
            Some(new) => {
                self.members.remove(&old);
                self.order.retain(|x| *x != old);
                self.outputs
                    .push_back(Output::Media(MediaCommand::StopPublishing(old)));
                self.outputs
                    .push_back(Output::Broadcast(Event::Left { id: old }));
                self.host = new;
                if let Some(m) = self.members.get_mut(&new) {
                    m.role = Role::Host;
                    m.muted = false;
                }
                self.outputs
                    .push_back(Output::Broadcast(Event::HostChanged { id: new }));
                self.outputs
                    .push_back(Output::Broadcast(Event::RoleChanged {
                        id: new,
                        role: Role::Host,
                    }));
                self.emit_stage();
            }
            None => self.end(EndReason::HostGone),
        }
    }

    fn target(
        &self,
        actor_role: Role,
        target: ParticipantId,
        from: ParticipantId,
    ) -> Result<Role, RoomError> {
        if target == from {
            return Err(RoomError::WrongTarget("that cannot be done to yourself"));
        }
        let role = self
            .role(target)
            .ok_or(RoomError::UnknownParticipant(target))?;
        if role.rank() >= actor_role.rank() {
            return Err(RoomError::NotAllowed {
                action: "act on someone of the same or a higher rank",
                role: actor_role,
            });
        }
        Ok(role)
    }
}
