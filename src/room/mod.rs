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
mod people;
mod permissions;
pub mod protocol;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

pub use self::error::RoomError;
pub use self::people::clean_text;
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
    /// Name changes per participant per window.
    pub rename_limit: u32,
    /// The window for name changes.
    pub rename_window: Duration,
    /// A name is cut to this many characters.
    pub name_chars: usize,
    /// Raised hands kept at most.
    pub hand_queue: usize,
    /// Above this many people present, audience joins and leaves go out as counts.
    pub big_audience: usize,
    /// The shortest time between two counts in a big room.
    pub count_interval: Duration,
    /// How long a listener who left stays in the role store.
    pub forget_after: Duration,
    /// Listeners in the snapshot's first page of the audience.
    pub audience_page: usize,
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
            rename_limit: 3,
            rename_window: Duration::from_secs(60),
            name_chars: 40,
            hand_queue: 100,
            big_audience: 200,
            count_interval: Duration::from_secs(1),
            forget_after: Duration::from_secs(60),
            audience_page: 100,
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
    renames: VecDeque<Instant>,
}

impl Member {
    fn new(name: String, role: Role, now: Instant) -> Self {
        Self {
            name,
            role,
            muted: false,
            since: now,
            raises: VecDeque::new(),
            reactions: VecDeque::new(),
            renames: VecDeque::new(),
        }
    }
}

/// See the module doc.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    started: Instant,
    host: ParticipantId,
    /// The people present.
    members: HashMap<ParticipantId, Member>,
    /// The role store: the role each person last held, present or away (a former host keeps
    /// `Host` here, and comes back as what the room has room for).
    roles: HashMap<ParticipantId, Role>,
    /// Listeners who left, and when the store forgets them.
    gone: VecDeque<(ParticipantId, Instant)>,
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
    count_sent_at: Option<Instant>,
    count_due: Option<Instant>,
}

impl Room {
    /// A room whose host is present and on stage.
    #[must_use]
    pub fn new(config: RoomConfig, host: ParticipantId, host_name: String, now: Instant) -> Self {
        let mut name = clean_text(&host_name, config.name_chars);
        if name.is_empty() {
            "Host".clone_into(&mut name);
        }
        let members = HashMap::from([(host, Member::new(name, Role::Host, now))]);
        Self {
            config,
            started: now,
            host,
            members,
            roles: HashMap::from([(host, Role::Host)]),
            gone: VecDeque::new(),
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
            count_sent_at: None,
            count_due: None,
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
        [self.host_away_until, self.count_due, self.next_forget()]
            .into_iter()
            .flatten()
            .min()
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
        self.snapshot_page(now, None, self.config.audience_page)
    }

    /// [`Self::snapshot`] with the audience's page after `after`, at most `limit` listeners.
    #[must_use]
    pub fn snapshot_page(
        &self,
        now: Instant,
        after: Option<ParticipantId>,
        limit: usize,
    ) -> RoomSnapshot {
        let (audience, audience_next) = self.audience_page(after, limit);
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
            audience,
            audience_next,
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

    /// Tells the moderators `id`'s hand left the queue (if it was in it).
    fn take_hand_down(&mut self, id: ParticipantId) -> bool {
        let before = self.hands.len();
        self.hands.retain(|(x, _)| *x != id);
        let taken = self.hands.len() != before;
        if taken {
            self.outputs
                .push_back(Output::ToModerators(Event::HandLowered { id }));
        }
        taken
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
        self.roles.insert(id, role);
        if role.on_stage() && !was_on_stage {
            m.since = now;
            self.order.retain(|x| *x != id);
            self.order.push(id);
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
        self.emit_count(now);
        if role.on_stage() && !was_on_stage {
            self.take_hand_down(id);
        }
        if matches!(role, Role::Host | Role::CoHost) {
            // A new moderator gets the queue whole once, then follows its changes.
            let queue = self.hand_entries();
            self.outputs
                .push_back(Output::To(id, Event::HandQueue { queue }));
        }
    }

    /// Ends a room nobody used (its host never came, or it sat empty): everyone still there
    /// is told, as when the host ends it.
    pub fn end_unused(&mut self) {
        if !self.ended {
            self.end(EndReason::Unused);
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

    /// The role `id` joins with: the role store's for someone known (a demotion or a
    /// promotion outlives a reconnect), else what their token grants. A former host comes
    /// back as a co-host if there is room, else as a listener; a known speaker or co-host whose
    /// place was taken meanwhile comes back as a listener.
    fn joining_role(&self, id: ParticipantId, granted: Role) -> Result<Role, RoomError> {
        let stored = self.roles.get(&id).copied();
        let role = stored.unwrap_or(granted);
        let known = stored.is_some();
        let co_host_room = self.cohosts() < self.config.max_cohosts;
        Ok(match role {
            Role::Host if id == self.host => Role::Host,
            Role::Host if !known => return Err(RoomError::HostPresent),
            Role::Host if co_host_room => Role::CoHost,
            Role::CoHost if !co_host_room && !known => return Err(RoomError::CoHostsFull),
            Role::Speaker if self.speakers() >= self.config.max_speakers && !known => {
                return Err(RoomError::StageFull);
            }
            Role::Host | Role::CoHost if !co_host_room => Role::Listener,
            Role::Speaker if self.speakers() >= self.config.max_speakers => Role::Listener,
            role => role,
        })
    }

    fn join(
        &mut self,
        id: ParticipantId,
        name: &str,
        granted: Role,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.removed.contains(&id) {
            return Err(RoomError::Removed);
        }
        let role = self.joining_role(id, granted)?;
        if role == Role::Host && self.host_away_until.take().is_some() {
            self.outputs.push_back(Output::Broadcast(Event::HostBack));
        }
        if self.members.contains_key(&id) {
            return Ok(());
        }
        self.unnamed += 1;
        let n = self.unnamed;
        let name = self.clean_name(name, || format!("Listener {n}"));
        self.members
            .insert(id, Member::new(name.clone(), role, now));
        self.roles.insert(id, role);
        if role.on_stage() {
            self.order.push(id);
        }
        if role.on_stage() || !self.is_big() {
            self.outputs
                .push_back(Output::Broadcast(Event::Joined { id, name, role }));
        }
        if role.on_stage() {
            self.emit_stage();
        }
        if matches!(role, Role::Host | Role::CoHost) {
            let queue = self.hand_entries();
            self.outputs
                .push_back(Output::To(id, Event::HandQueue { queue }));
        }
        self.emit_count(now);
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
        let big = self.is_big();
        let Some(m) = self.members.remove(&id) else {
            return;
        };
        self.take_hand_down(id);
        self.invited.remove(&id);
        self.order.retain(|x| *x != id);
        self.note_gone(id, now);
        if m.role.on_stage() {
            self.outputs
                .push_back(Output::Media(MediaCommand::StopPublishing(id)));
        }
        if m.role.on_stage() || !big {
            self.outputs
                .push_back(Output::Broadcast(Event::Left { id }));
        }
        if m.role.on_stage() {
            self.emit_stage();
        }
        self.emit_count(now);
    }

    fn tick(&mut self, now: Instant) {
        self.flush_count_if_due(now);
        self.forget_gone(now);
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
                // The old host stays `Host` in the store: coming back, they are a former host.
                self.roles.insert(new, Role::Host);
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
