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

mod permissions;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use self::permissions::{ActionKind, Permissions};

/// A participant, numbered by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Roles, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the room; publishes the program.
    Host,
    /// Moderates beside the host.
    CoHost,
    /// On stage, may speak.
    Speaker,
    /// In the audience.
    Listener,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Host, Role::CoHost, Role::Speaker, Role::Listener];

    fn rank(self) -> u8 {
        match self {
            Role::Host => 3,
            Role::CoHost => 2,
            Role::Speaker => 1,
            Role::Listener => 0,
        }
    }

    fn on_stage(self) -> bool {
        self != Role::Listener
    }

    /// The name people read.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::CoHost => "co-host",
            Role::Speaker => "speaker",
            Role::Listener => "listener",
        }
    }
}

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
}

/// What a participant asks for; parsed straight from the room channel's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A listener asks to speak.
    RaiseHand,
    /// ... and changes their mind.
    LowerHand,
    /// A moderator invites a listener to speak.
    Invite {
        /// Whom.
        target: ParticipantId,
    },
    /// The invited listener accepts.
    AcceptInvite,
    /// ... or declines.
    DeclineInvite,
    /// A moderator lets a raised hand on stage.
    Approve {
        /// Whom.
        target: ParticipantId,
    },
    /// ... or not.
    Deny {
        /// Whom.
        target: ParticipantId,
    },
    /// A moderator sends a stage member back to the audience.
    MoveToAudience {
        /// Whom.
        target: ParticipantId,
    },
    /// A speaker or co-host steps down.
    LeaveStage,
    /// A moderator mutes a stage member.
    Mute {
        /// Whom.
        target: ParticipantId,
    },
    /// The muted member unmutes themself.
    Unmute,
    /// A stage member mutes themself.
    MuteSelf,
    /// A moderator removes someone for the room's life.
    Remove {
        /// Whom.
        target: ParticipantId,
    },
    /// The host makes someone co-host.
    MakeCoHost {
        /// Whom.
        target: ParticipantId,
    },
    /// The host takes it back.
    UnmakeCoHost {
        /// Whom.
        target: ParticipantId,
    },
    /// An emoji reaction.
    React {
        /// The emoji.
        emoji: String,
    },
    /// A moment worth a chapter.
    MarkMoment {
        /// Its label.
        #[serde(default)]
        label: Option<String>,
    },
    /// Start recording.
    StartRecording,
    /// Stop recording.
    StopRecording,
    /// End the room.
    End,
    /// Change one's display name.
    SetName {
        /// The new name.
        name: String,
    },
}

impl Action {
    /// Its kind, for the permissions table.
    #[must_use]
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::RaiseHand => ActionKind::RaiseHand,
            Action::LowerHand => ActionKind::LowerHand,
            Action::Invite { .. } => ActionKind::Invite,
            Action::AcceptInvite => ActionKind::AcceptInvite,
            Action::DeclineInvite => ActionKind::DeclineInvite,
            Action::Approve { .. } => ActionKind::Approve,
            Action::Deny { .. } => ActionKind::Deny,
            Action::MoveToAudience { .. } => ActionKind::MoveToAudience,
            Action::LeaveStage => ActionKind::LeaveStage,
            Action::Mute { .. } => ActionKind::Mute,
            Action::Unmute => ActionKind::Unmute,
            Action::MuteSelf => ActionKind::MuteSelf,
            Action::Remove { .. } => ActionKind::Remove,
            Action::MakeCoHost { .. } => ActionKind::MakeCoHost,
            Action::UnmakeCoHost { .. } => ActionKind::UnmakeCoHost,
            Action::React { .. } => ActionKind::React,
            Action::MarkMoment { .. } => ActionKind::MarkMoment,
            Action::StartRecording => ActionKind::StartRecording,
            Action::StopRecording => ActionKind::StopRecording,
            Action::End => ActionKind::End,
            Action::SetName { .. } => ActionKind::SetName,
        }
    }
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

/// A member of the stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageMember {
    /// Who.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Muted.
    pub muted: bool,
}

/// A raised hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandEntry {
    /// Who.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
    /// When, ms from the room's start.
    pub raised_at_ms: u64,
}

/// A marked moment (a chapter).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    /// ms from the room's start.
    pub at_ms: u64,
    /// Label.
    pub label: String,
    /// Who marked it.
    pub by: ParticipantId,
}

/// Why a room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The host ended it.
    HostEnded,
    /// The host left and nobody could take over.
    HostGone,
}

/// What clients hear (the room channel's server messages).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Someone joined.
    Joined {
        /// Who.
        id: ParticipantId,
        /// Name.
        name: String,
        /// Role.
        role: Role,
    },
    /// Someone left.
    Left {
        /// Who.
        id: ParticipantId,
    },
    /// A role changed.
    RoleChanged {
        /// Who.
        id: ParticipantId,
        /// The new role.
        role: Role,
    },
    /// The stage now.
    StageChanged {
        /// Members.
        stage: Vec<StageMember>,
    },
    /// The hand queue now (moderators).
    HandQueue {
        /// FIFO.
        queue: Vec<HandEntry>,
    },
    /// You are invited to speak.
    Invited {
        /// By whom.
        by: ParticipantId,
    },
    /// An invitation was declined.
    InviteDeclined {
        /// Who declined.
        id: ParticipantId,
    },
    /// Your raised hand was denied.
    HandDenied {
        /// Whose.
        id: ParticipantId,
    },
    /// Muted by a moderator (or themself).
    Muted {
        /// Who.
        id: ParticipantId,
        /// By whom.
        by: ParticipantId,
    },
    /// Unmuted.
    Unmuted {
        /// Who.
        id: ParticipantId,
    },
    /// Removed.
    Removed {
        /// Who.
        id: ParticipantId,
    },
    /// A reaction.
    Reaction {
        /// Who.
        id: ParticipantId,
        /// The emoji.
        emoji: String,
    },
    /// A moment marked.
    Moment(Marker),
    /// Recording state.
    Recording {
        /// On.
        on: bool,
    },
    /// Listeners in the room.
    ListenerCount {
        /// How many.
        count: usize,
    },
    /// Who is speaking, how loud (0..1).
    Levels {
        /// Levels.
        levels: Vec<(ParticipantId, f32)>,
    },
    /// The host dropped; grace left in ms.
    HostAway {
        /// ms.
        until_ms: u64,
    },
    /// The host is back.
    HostBack,
    /// A new host.
    HostChanged {
        /// Who.
        id: ParticipantId,
    },
    /// The room ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
    /// Someone changed their name.
    Renamed {
        /// Who.
        id: ParticipantId,
        /// The new name.
        name: String,
    },
}

/// The room as a newly joined client needs it.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSnapshot {
    /// Title.
    pub title: String,
    /// Game.
    pub game: String,
    /// ms since the start.
    pub elapsed_ms: u64,
    /// Stage.
    pub stage: Vec<StageMember>,
    /// Hands.
    pub hand_queue: Vec<HandEntry>,
    /// Listeners.
    pub listener_count: usize,
    /// Recording.
    pub recording: bool,
    /// Ended.
    pub ended: bool,
    /// The host is away (dropped, within the grace period).
    pub host_away: bool,
    /// Listeners present, by name (moderators invite from it).
    pub audience: Vec<AudienceMember>,
}

/// A listener in the room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudienceMember {
    /// Who.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
}

/// Why an input was refused. Messages a person can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The role may not do this.
    #[error("a {} may not {action}", role.label())]
    NotAllowed {
        /// What.
        action: &'static str,
        /// The actor's role.
        role: Role,
    },
    /// No such participant in the room.
    #[error("participant {0} is not in the room")]
    UnknownParticipant(ParticipantId),
    /// The actor is not in the room.
    #[error("join the room first")]
    NotInRoom,
    /// Removed for the room's life.
    #[error("you were removed from this room")]
    Removed,
    /// Ten speakers already.
    #[error("the stage is full")]
    StageFull,
    /// Two co-hosts already.
    #[error("the room has its co-hosts already")]
    CoHostsFull,
    /// Too many raises or reactions.
    #[error("too many requests: wait a little")]
    RateLimited,
    /// Accept/decline without an invitation.
    #[error("there is no invitation to answer")]
    NotInvited,
    /// Approve/deny a hand not raised.
    #[error("that hand is not raised")]
    HandNotRaised,
    /// Bad input.
    #[error("{0}")]
    InvalidInput(String),
    /// The room ended.
    #[error("the room has ended")]
    Ended,
    /// Another host is present.
    #[error("the room already has its host")]
    HostPresent,
    /// The target's role does not fit the action.
    #[error("{0}")]
    WrongTarget(&'static str),
}

impl RoomError {
    /// A stable code for the protocol.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::NotAllowed { .. } => "not_allowed",
            RoomError::UnknownParticipant(_) => "unknown_participant",
            RoomError::NotInRoom => "not_in_room",
            RoomError::Removed => "removed",
            RoomError::StageFull => "stage_full",
            RoomError::CoHostsFull => "co_hosts_full",
            RoomError::RateLimited => "rate_limited",
            RoomError::NotInvited => "not_invited",
            RoomError::HandNotRaised => "hand_not_raised",
            RoomError::InvalidInput(_) => "invalid_input",
            RoomError::Ended => "room_ended",
            RoomError::HostPresent => "host_present",
            RoomError::WrongTarget(_) => "wrong_target",
        }
    }
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

fn clean_name(name: &str, fallback: impl FnOnce() -> String) -> String {
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

fn valid_emoji(e: &str) -> bool {
    !e.is_empty()
        && e.len() <= 16
        && !e
            .chars()
            .any(|c| c.is_ascii_alphanumeric() || c.is_control() || c.is_whitespace())
}

fn within(q: &mut VecDeque<Instant>, now: Instant, window: Duration, limit: u32) -> bool {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        q.pop_front();
    }
    if q.len() >= limit as usize {
        return false;
    }
    q.push_back(now);
    true
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

    /// Recording.
    #[must_use]
    pub fn is_recording(&self) -> bool {
        self.recording
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
            hand_queue: self.hand_entries(),
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

    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    fn hand_entries(&self) -> Vec<HandEntry> {
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

    fn set_role(&mut self, id: ParticipantId, role: Role, now: Instant) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        let was_on_stage = m.role.on_stage();
        m.role = role;
        if !role.on_stage() {
            m.muted = false;
        }
        if role.on_stage() && !was_on_stage {
            m.since = now;
            self.order.retain(|x| *x != id);
            self.order.push(id);
            self.hands.retain(|(x, _)| *x != id);
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

    fn act(&mut self, from: ParticipantId, action: Action, now: Instant) -> Result<(), RoomError> {
        if self.removed.contains(&from) {
            return Err(RoomError::Removed);
        }
        let role = self.role(from).ok_or(RoomError::NotInRoom)?;
        let kind = action.kind();
        if !Permissions::allowed(kind, role) {
            return Err(RoomError::NotAllowed {
                action: kind.describe(),
                role,
            });
        }
        match action {
            Action::RaiseHand => {
                if self.hands.iter().any(|(x, _)| *x == from) {
                    return Ok(());
                }
                let (window, limit) = (self.config.hand_raise_window, self.config.hand_raise_limit);
                let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
                if !within(&mut m.raises, now, window, limit) {
                    return Err(RoomError::RateLimited);
                }
                self.hands.push_back((from, now));
                self.emit_queue();
            }
            Action::LowerHand => {
                let before = self.hands.len();
                self.hands.retain(|(x, _)| *x != from);
                if self.hands.len() != before {
                    self.emit_queue();
                }
            }
            Action::Invite { target } => {
                let t = self.target(role, target, from)?;
                if t != Role::Listener {
                    return Err(RoomError::WrongTarget(
                        "only listeners can be invited to speak",
                    ));
                }
                self.invited.insert(target);
                self.outputs
                    .push_back(Output::To(target, Event::Invited { by: from }));
            }
            Action::AcceptInvite => {
                if !self.invited.contains(&from) {
                    return Err(RoomError::NotInvited);
                }
                if self.speakers() >= self.config.max_speakers {
                    return Err(RoomError::StageFull);
                }
                let had_hand = self.hands.iter().any(|(x, _)| *x == from);
                self.set_role(from, Role::Speaker, now);
                if had_hand {
                    self.emit_queue();
                }
            }
            Action::DeclineInvite => {
                if !self.invited.remove(&from) {
                    return Err(RoomError::NotInvited);
                }
                self.outputs
                    .push_back(Output::ToModerators(Event::InviteDeclined { id: from }));
            }
            Action::Approve { target } => {
                if !self.hands.iter().any(|(x, _)| *x == target) {
                    return Err(RoomError::HandNotRaised);
                }
                if self.speakers() >= self.config.max_speakers {
                    return Err(RoomError::StageFull);
                }
                self.set_role(target, Role::Speaker, now);
                self.emit_queue();
            }
            Action::Deny { target } => {
                if !self.hands.iter().any(|(x, _)| *x == target) {
                    return Err(RoomError::HandNotRaised);
                }
                self.hands.retain(|(x, _)| *x != target);
                self.outputs
                    .push_back(Output::To(target, Event::HandDenied { id: target }));
                self.emit_queue();
            }
            Action::MoveToAudience { target } => {
                let t = self.target(role, target, from)?;
                if !t.on_stage() {
                    return Err(RoomError::WrongTarget("they are not on stage"));
                }
                self.set_role(target, Role::Listener, now);
            }
            Action::LeaveStage => self.set_role(from, Role::Listener, now),
            Action::Mute { target } => {
                let t = self.target(role, target, from)?;
                if !t.on_stage() {
                    return Err(RoomError::WrongTarget("only people on stage can be muted"));
                }
                self.set_muted(target, true, from);
            }
            Action::Unmute => {
                if !self.is_muted(from) {
                    return Err(RoomError::WrongTarget(
                        "you are not muted (a speaker unmutes only themself)",
                    ));
                }
                self.set_muted(from, false, from);
            }
            Action::MuteSelf => self.set_muted(from, true, from),
            Action::Remove { target } => {
                self.target(role, target, from)?;
                self.removed.insert(target);
                self.outputs
                    .push_back(Output::Broadcast(Event::Removed { id: target }));
                self.outputs
                    .push_back(Output::Media(MediaCommand::StopPublishing(target)));
                self.outputs
                    .push_back(Output::Media(MediaCommand::Disconnect(target)));
                let was = self.members.remove(&target);
                let had_hand = self.hands.iter().any(|(x, _)| *x == target);
                self.hands.retain(|(x, _)| *x != target);
                self.invited.remove(&target);
                self.order.retain(|x| *x != target);
                if was.is_some_and(|m| m.role.on_stage()) {
                    self.emit_stage();
                }
                if had_hand {
                    self.emit_queue();
                }
                self.emit_count();
            }
            Action::MakeCoHost { target } => {
                let t = self.target(role, target, from)?;
                if t == Role::CoHost {
                    return Ok(());
                }
                if self.cohosts() >= self.config.max_cohosts {
                    return Err(RoomError::CoHostsFull);
                }
                let had_hand = self.hands.iter().any(|(x, _)| *x == target);
                self.set_role(target, Role::CoHost, now);
                if had_hand {
                    self.emit_queue();
                }
            }
            Action::UnmakeCoHost { target } => {
                let t = self.target(role, target, from)?;
                if t != Role::CoHost {
                    return Err(RoomError::WrongTarget("they are not a co-host"));
                }
                self.set_role(target, Role::Speaker, now);
            }
            Action::React { emoji } => {
                if !valid_emoji(&emoji) {
                    return Err(RoomError::InvalidInput("a reaction is one emoji".into()));
                }
                let (window, limit) = (self.config.reaction_window, self.config.reaction_limit);
                let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
                if !within(&mut m.reactions, now, window, limit) {
                    return Err(RoomError::RateLimited);
                }
                self.outputs
                    .push_back(Output::Broadcast(Event::Reaction { id: from, emoji }));
            }
            Action::MarkMoment { label } => {
                let n = self.markers.len() + 1;
                let label = clean_name(label.as_deref().unwrap_or(""), || format!("Moment {n}"));
                let marker = Marker {
                    at_ms: self.ms(now),
                    label: label.chars().take(80).collect(),
                    by: from,
                };
                self.markers.push(marker.clone());
                self.outputs
                    .push_back(Output::Broadcast(Event::Moment(marker)));
            }
            Action::StartRecording | Action::StopRecording => {
                let on = matches!(action, Action::StartRecording);
                if self.recording != on {
                    self.recording = on;
                    self.outputs
                        .push_back(Output::Media(MediaCommand::Recording(on)));
                    self.outputs
                        .push_back(Output::Broadcast(Event::Recording { on }));
                }
            }
            Action::End => self.end(EndReason::HostEnded),
            Action::SetName { name } => {
                let name = clean_name(&name, String::new);
                if name.is_empty() {
                    return Err(RoomError::InvalidInput(
                        "a name needs a letter or two".into(),
                    ));
                }
                let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
                if m.name == name {
                    return Ok(());
                }
                m.name.clone_from(&name);
                let on_stage = m.role.on_stage();
                self.outputs
                    .push_back(Output::Broadcast(Event::Renamed { id: from, name }));
                if on_stage {
                    self.emit_stage();
                }
                if self.hands.iter().any(|(x, _)| *x == from) {
                    self.emit_queue();
                }
            }
        }
        Ok(())
    }

    fn set_muted(&mut self, id: ParticipantId, muted: bool, by: ParticipantId) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.muted == muted {
            return;
        }
        m.muted = muted;
        self.outputs
            .push_back(Output::Media(MediaCommand::SetMuted(id, muted)));
        let event = if muted {
            Event::Muted { id, by }
        } else {
            Event::Unmuted { id }
        };
        self.outputs.push_back(Output::Broadcast(event));
        self.emit_stage();
    }
}
