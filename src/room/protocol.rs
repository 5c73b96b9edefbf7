//! The room channel's wire protocol, typed: every message a client sends ([`ClientMsg`]) and
//! every message the server sends ([`ServerMsg`]), with the types they carry. The server, the
//! overlay, `booth host` and the tests speak through these types; `src/server/protocol.md` is
//! the human description, and a test checks the two name the same messages.
//!
//! On the wire a message is a JSON object with `"type"` and the protocol version `"v"`
//! ([`VERSION`]); a client's message may carry a `"ref"` that the answer echoes. Pure: no IO.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ActionKind, RoomError};

/// The protocol version carried as `"v"` in every message.
pub const VERSION: u32 = 1;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Host, Role::CoHost, Role::Speaker, Role::Listener];

    pub(super) fn rank(self) -> u8 {
        match self {
            Role::Host => 3,
            Role::CoHost => 2,
            Role::Speaker => 1,
            Role::Listener => 0,
        }
    }

    pub(super) fn on_stage(self) -> bool {
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

/// What a participant asks the room to do (a client message other than `hello`, `ping` and
/// `voice_level`).
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

/// A member of the stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandEntry {
    /// Who.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
    /// When, ms from the room's start.
    pub raised_at_ms: u64,
}

/// A marked moment (a chapter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// ms from the room's start.
    pub at_ms: u64,
    /// Label.
    pub label: String,
    /// Who marked it.
    pub by: ParticipantId,
}

/// Why a room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The host ended it.
    HostEnded,
    /// The host left and nobody could take over.
    HostGone,
    /// Nobody used it: its host never came, or it sat empty (the server's limits).
    Unused,
}

/// What clients hear (the room channel's server messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The whole hand queue (to someone who just became a moderator; moderators then
    /// follow it through `hand_raised` and `hand_lowered`).
    HandQueue {
        /// FIFO.
        queue: Vec<HandEntry>,
    },
    /// A hand went up, at the end of the queue (moderators).
    HandRaised {
        /// Whose, and when.
        entry: HandEntry,
    },
    /// A hand left the queue: lowered, denied, brought on stage, or its owner left
    /// (moderators).
    HandLowered {
        /// Whose.
        id: ParticipantId,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// Title.
    pub title: String,
    /// Game.
    pub game: String,
    /// ms since the start.
    pub elapsed_ms: u64,
    /// Stage.
    pub stage: Vec<StageMember>,
    /// The raised hands, first first: for moderators only (absent for everyone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_queue: Option<Vec<HandEntry>>,
    /// Listeners.
    pub listener_count: usize,
    /// Recording.
    pub recording: bool,
    /// Ended.
    pub ended: bool,
    /// The host is away (dropped, within the grace period).
    pub host_away: bool,
    /// Listeners present, by name (moderators invite from it): one page, lowest ids first
    /// (`listener_count` says how many there are in all).
    pub audience: Vec<AudienceMember>,
    /// When the audience has more than this page: the id to ask the next page after
    /// (`GET /api/rooms/{id}?audience_after=ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_next: Option<ParticipantId>,
}

/// A listener in the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudienceMember {
    /// Who.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
}
/// Who a client is, told in `welcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct You {
    /// The participant.
    pub id: ParticipantId,
    /// Their role now.
    pub role: Role,
    /// Their name in the room.
    pub name: String,
    /// Their own token: reconnect with it, publish with it once on stage.
    pub token: String,
    /// The actions their role may take now (the permissions table's row; the room still
    /// checks rank and state rules).
    #[serde(default)]
    pub actions: Vec<ActionKind>,
}

/// The room as the server describes it: in `welcome`, and from `GET /api/rooms/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's id (the last segment of its links).
    pub id: String,
    /// The state machine's view of it.
    #[serde(flatten)]
    pub room: RoomSnapshot,
    /// Players listening (WHEP sessions).
    pub listening: usize,
    /// The host is publishing.
    pub live: bool,
    /// The episode the room records into, if it records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeRef>,
    /// The Icecast mounts the room is pushed to, when it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icecast: Vec<IcecastMount>,
}

/// One Icecast mount a room's program is pushed to, as `GET /api/rooms/{id}` shows it (never
/// with the source password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcecastMount {
    /// `mp3` or `ogg` (Ogg Opus).
    pub format: String,
    /// The mount's path on the Icecast server.
    pub mount: String,
    /// Where listeners hear it.
    pub url: String,
    /// Whether the push is on the air.
    pub state: IcecastState,
    /// Why the last attempt failed, while it retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where an Icecast push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IcecastState {
    /// Connecting to Icecast.
    Connecting,
    /// On the air.
    Live,
    /// The last attempt failed; it tries again shortly.
    Retrying,
    /// The room ended.
    Stopped,
}

/// `POST /api/rooms`: a new room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoom {
    /// Its title (1-100 characters).
    pub title: String,
    /// The game played.
    #[serde(default)]
    pub game: String,
    /// The host's name on stage (`Host` when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// Record it as a podcast episode from the start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record: bool,
    /// Push the room to this Icecast server (`http://source:PASSWORD@host:8000/prefix`),
    /// instead of the server's default (`booth serve --icecast`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icecast: Option<String>,
}

/// The episode a room records into: where it will be heard, and how to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpisodeRef {
    /// Its number (`/api/episodes/{id}`).
    pub id: i64,
    /// Its page, once published.
    pub page: String,
    /// The show's feed.
    pub feed: String,
}

/// The answer to `POST /api/rooms`: the room and its host's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRoom {
    /// The room's id.
    pub id: String,
    /// Its title, as kept.
    pub title: String,
    /// Its game, as kept.
    pub game: String,
    /// What listeners open.
    pub listener_link: String,
    /// The host's own page (with the host token).
    pub host_link: String,
    /// The host's token.
    pub host_token: String,
    /// Where the host publishes.
    pub whip_url: String,
    /// Where players listen.
    pub whep_url: String,
    /// The room channel.
    pub ws_url: String,
    /// The episode it records into, when it records from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<EpisodeRef>,
    /// The Icecast mounts it is pushed to, when it is (their listen URLs; never the password).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icecast: Vec<IcecastMount>,
}

/// `POST /api/rooms/{id}/invites`: an invitation for a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvite {
    /// Co-host or speaker.
    pub role: Role,
}

/// The answer to `POST /api/rooms/{id}/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Its id: `DELETE /api/rooms/{id}/invites/{invite}` revokes it.
    #[serde(default)]
    pub id: u64,
    /// The capability token (used once).
    pub token: String,
    /// The role it grants.
    pub role: Role,
    /// The page that joins with it.
    pub link: String,
    /// It works for this many seconds (then it is refused like a wrong one).
    #[serde(default)]
    pub expires_in_secs: u64,
}

/// An HTTP error's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code.
    pub error: String,
    /// What happened and what to do.
    pub message: String,
}

/// What a client says on the room channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first message: who is there.
    Hello {
        /// A personal token, an invitation, or none (a new listener).
        #[serde(default)]
        token: Option<String>,
        /// The name to show.
        #[serde(default)]
        name: String,
    },
    /// Answered with `pong`.
    Ping,
    /// A publisher's own voice activity (0..1): a host's program carries its game too, so its
    /// level alone would say "speaking" all the time.
    VoiceLevel {
        /// 0..1.
        level: f32,
    },
    /// An action for the room.
    #[serde(untagged)]
    Act(Action),
}

/// The `"ref"` a client may put on a message, echoed in the answer: any JSON value.
pub type Ref = Option<Value>;

/// What the server says on the room channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to `hello`.
    Welcome {
        /// Who the client is.
        you: You,
        /// The room now.
        room: Box<RoomInfo>,
    },
    /// The actions the client's role may take, sent when their role changes.
    Allowed {
        /// The permissions table's row for their role.
        actions: Vec<ActionKind>,
    },
    /// An action was done.
    Ok {
        /// The action's `ref`.
        #[serde(rename = "ref", default)]
        reference: Ref,
    },
    /// The answer to `ping`.
    Pong {
        /// The ping's `ref`.
        #[serde(rename = "ref", default)]
        reference: Ref,
    },
    /// Something was refused or went wrong.
    Error {
        /// A stable code (`src/server/protocol.md` lists them).
        code: String,
        /// What happened and what to do, for a person.
        message: String,
        /// The `ref` of the message refused, if it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Ref,
    },
    /// Players listening (WHEP sessions).
    Audience {
        /// How many.
        listening: usize,
    },
    /// The episode the room records into (to moderators, when recording makes it and in their
    /// welcome).
    Episode(EpisodeRef),
    /// What happened in the room.
    #[serde(untagged)]
    Event(Event),
}

impl ServerMsg {
    /// An `error` answer.
    #[must_use]
    pub fn error(code: &str, message: impl Into<String>, reference: Ref) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
            reference,
        }
    }

    /// The room's refusal as an `error` answer.
    #[must_use]
    pub fn refused(e: &RoomError, reference: Ref) -> Self {
        Self::error(e.code(), e.to_string(), reference)
    }

    /// Whether this is the last message the channel carries for its client: the room ended,
    /// or it refuses them (removed, a token it does not know).
    #[must_use]
    pub fn ends_the_channel(&self) -> bool {
        match self {
            Self::Event(Event::Ended { .. }) => true,
            Self::Error { code, .. } => {
                matches!(code.as_str(), "removed" | "unauthorized" | "room_ended")
            }
            _ => false,
        }
    }

    /// The message as sent: JSON with the protocol version.
    #[must_use]
    pub fn to_text(&self) -> String {
        versioned(self)
    }

    /// Reads a server message.
    ///
    /// # Errors
    /// The text is not JSON, or not a message this protocol knows.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_str(text).map_err(|_| ProtocolError::InvalidJson)?;
        check_version(&value)?;
        serde_json::from_value(value).map_err(|e| ProtocolError::Invalid {
            kind: String::new(),
            detail: e.to_string(),
        })
    }
}

impl ClientMsg {
    /// The message as sent: JSON with the protocol version.
    #[must_use]
    pub fn to_text(&self) -> String {
        versioned(self)
    }

    /// Reads a client's message and its `ref`.
    ///
    /// # Errors
    /// Not JSON, no `type`, a type this protocol does not know, a newer protocol version, or
    /// a known type with missing or wrong fields; each with its protocol code
    /// ([`ProtocolError::code`]) and the `ref` when it could be read.
    pub fn parse(text: &str) -> Result<(Self, Ref), (ProtocolError, Ref)> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| (ProtocolError::InvalidJson, None))?;
        let reference = value.get("ref").cloned();
        let fail = |e| (e, reference.clone());
        check_version(&value).map_err(fail)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or(ProtocolError::NoType)
            .map_err(fail)?
            .to_owned();
        let invalid = |e: serde_json::Error| {
            fail(ProtocolError::Invalid {
                kind: kind.clone(),
                detail: e.to_string(),
            })
        };
        let msg = if CLIENT_TYPES.contains(&kind.as_str()) {
            serde_json::from_value(value.clone()).map_err(invalid)?
        } else if ActionKind::ALL.iter().any(|a| a.name() == kind) {
            ClientMsg::Act(serde_json::from_value(value.clone()).map_err(invalid)?)
        } else {
            return Err(fail(ProtocolError::UnknownType(kind)));
        };
        Ok((msg, reference))
    }

    /// Every message type a client may send.
    pub fn types() -> impl Iterator<Item = &'static str> {
        CLIENT_TYPES
            .iter()
            .copied()
            .chain(ActionKind::ALL.iter().map(|a| a.name()))
    }
}

/// The client messages that are not room actions.
const CLIENT_TYPES: [&str; 3] = ["hello", "ping", "voice_level"];

fn check_version(value: &Value) -> Result<(), ProtocolError> {
    match value.get("v").map(Value::as_u64) {
        None => Ok(()),
        Some(Some(v)) if v <= u64::from(VERSION) => Ok(()),
        Some(v) => Err(ProtocolError::Version(v)),
    }
}

fn versioned<T: Serialize>(msg: &T) -> String {
    let mut value = serde_json::to_value(msg).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("v".into(), Value::from(VERSION));
    }
    value.to_string()
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Not JSON.
    #[error("the message is not JSON")]
    InvalidJson,
    /// No `type`.
    #[error("a message needs a \"type\"")]
    NoType,
    /// A type this protocol does not know.
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
    /// A protocol version newer than this one.
    #[error("this server speaks version {VERSION} of the room protocol, not {0:?}")]
    Version(Option<u64>),
    /// A known type with missing or wrong fields.
    #[error("\"{kind}\" is missing something: {detail}")]
    Invalid {
        /// The message's type.
        kind: String,
        /// What serde said.
        detail: String,
    },
}

impl ProtocolError {
    /// The protocol's error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NoType | Self::Invalid { .. } => "invalid_message",
            Self::UnknownType(_) => "unknown_type",
            Self::Version(_) => "unsupported_version",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn id(n: u64) -> ParticipantId {
        ParticipantId(n)
    }

    /// One action of each kind, with every field set.
    fn action(kind: ActionKind) -> Action {
        let target = id(7);
        match kind {
            ActionKind::RaiseHand => Action::RaiseHand,
            ActionKind::LowerHand => Action::LowerHand,
            ActionKind::Invite => Action::Invite { target },
            ActionKind::AcceptInvite => Action::AcceptInvite,
            ActionKind::DeclineInvite => Action::DeclineInvite,
            ActionKind::Approve => Action::Approve { target },
            ActionKind::Deny => Action::Deny { target },
            ActionKind::MoveToAudience => Action::MoveToAudience { target },
            ActionKind::LeaveStage => Action::LeaveStage,
            ActionKind::Mute => Action::Mute { target },
            ActionKind::Unmute => Action::Unmute,
            ActionKind::MuteSelf => Action::MuteSelf,
            ActionKind::Remove => Action::Remove { target },
            ActionKind::MakeCoHost => Action::MakeCoHost { target },
            ActionKind::UnmakeCoHost => Action::UnmakeCoHost { target },
            ActionKind::React => Action::React {
                emoji: "🎉".into()
            },
            ActionKind::MarkMoment => Action::MarkMoment {
                label: Some("boss fight".into()),
            },
            ActionKind::StartRecording => Action::StartRecording,
            ActionKind::StopRecording => Action::StopRecording,
            ActionKind::End => Action::End,
            ActionKind::SetName => Action::SetName { name: "Ada".into() },
        }
    }

    fn client_samples() -> Vec<ClientMsg> {
        let mut all = vec![
            ClientMsg::Hello {
                token: Some("p2.00112233445566778899aabbccddeeff".into()),
                name: "Ada".into(),
            },
            ClientMsg::Ping,
            ClientMsg::VoiceLevel { level: 0.5 },
        ];
        all.extend(ActionKind::ALL.map(|k| ClientMsg::Act(action(k))));
        all
    }

    fn member(n: u64, role: Role) -> StageMember {
        StageMember {
            id: id(n),
            name: format!("M{n}"),
            role,
            muted: n.is_multiple_of(2),
        }
    }

    fn hand(n: u64) -> HandEntry {
        HandEntry {
            id: id(n),
            name: format!("H{n}"),
            raised_at_ms: 1234,
        }
    }

    /// One event of each kind. The match in `covered` fails to compile when a kind is added
    /// without a sample here.
    fn events() -> Vec<Event> {
        vec![
            Event::Joined {
                id: id(3),
                name: "Ada".into(),
                role: Role::Listener,
            },
            Event::Left { id: id(3) },
            Event::RoleChanged {
                id: id(3),
                role: Role::CoHost,
            },
            Event::StageChanged {
                stage: vec![member(1, Role::Host), member(2, Role::Speaker)],
            },
            Event::HandQueue {
                queue: vec![hand(4), hand(5)],
            },
            Event::HandRaised { entry: hand(6) },
            Event::HandLowered { id: id(6) },
            Event::Invited { by: id(1) },
            Event::InviteDeclined { id: id(4) },
            Event::HandDenied { id: id(4) },
            Event::Muted {
                id: id(2),
                by: id(1),
            },
            Event::Unmuted { id: id(2) },
            Event::Removed { id: id(6) },
            Event::Reaction {
                id: id(3),
                emoji: "👏".into(),
            },
            Event::Moment(Marker {
                at_ms: 61_000,
                label: "the reveal".into(),
                by: id(1),
            }),
            Event::Recording { on: true },
            Event::ListenerCount { count: 12 },
            Event::Levels {
                levels: vec![(id(1), 0.25), (id(2), 1.0)],
            },
            Event::HostAway { until_ms: 60_000 },
            Event::HostBack,
            Event::HostChanged { id: id(2) },
            Event::Ended {
                reason: EndReason::HostGone,
            },
            Event::Renamed {
                id: id(3),
                name: "Grace".into(),
            },
        ]
    }

    fn covered(e: &Event) -> usize {
        match e {
            Event::Joined { .. } => 0,
            Event::Left { .. } => 1,
            Event::RoleChanged { .. } => 2,
            Event::StageChanged { .. } => 3,
            Event::HandQueue { .. } => 4,
            Event::Invited { .. } => 5,
            Event::InviteDeclined { .. } => 6,
            Event::HandDenied { .. } => 7,
            Event::Muted { .. } => 8,
            Event::Unmuted { .. } => 9,
            Event::Removed { .. } => 10,
            Event::Reaction { .. } => 11,
            Event::Moment(_) => 12,
            Event::Recording { .. } => 13,
            Event::ListenerCount { .. } => 14,
            Event::Levels { .. } => 15,
            Event::HostAway { .. } => 16,
            Event::HostBack => 17,
            Event::HostChanged { .. } => 18,
            Event::Ended { .. } => 19,
            Event::Renamed { .. } => 20,
            Event::HandRaised { .. } => 21,
            Event::HandLowered { .. } => 22,
        }
    }

    fn server_samples() -> Vec<ServerMsg> {
        let room = RoomSnapshot {
            title: "Launch night".into(),
            game: "Hollow Stars".into(),
            elapsed_ms: 5_000,
            stage: vec![member(1, Role::Host)],
            hand_queue: Some(vec![hand(4)]),
            listener_count: 3,
            recording: false,
            ended: false,
            host_away: false,
            audience: vec![AudienceMember {
                id: id(4),
                name: "H4".into(),
            }],
            audience_next: Some(id(4)),
        };
        let mut all = vec![
            ServerMsg::Welcome {
                you: You {
                    id: id(1),
                    role: Role::Host,
                    name: "Host".into(),
                    token: "p1.00112233445566778899aabbccddeeff".into(),
                    actions: super::super::Permissions::for_role(Role::Host),
                },
                room: Box::new(RoomInfo {
                    id: "abc".into(),
                    room,
                    listening: 2,
                    live: true,
                    episode: None,
                    icecast: vec![IcecastMount {
                        format: "mp3".into(),
                        mount: "/abc.mp3".into(),
                        url: "http://icecast.example:8000/abc.mp3".into(),
                        state: IcecastState::Retrying,
                        error: Some("Icecast closed the connection".into()),
                    }],
                }),
            },
            ServerMsg::Allowed {
                actions: vec![ActionKind::RaiseHand, ActionKind::React],
            },
            ServerMsg::Ok {
                reference: Some(Value::from(9)),
            },
            ServerMsg::Pong { reference: None },
            ServerMsg::error("stage_full", "the stage is full", Some(Value::from("a"))),
            ServerMsg::Audience { listening: 40 },
            ServerMsg::Episode(EpisodeRef {
                id: 7,
                page: "http://h/episodes/7".into(),
                feed: "http://h/podcast.xml".into(),
            }),
        ];
        all.extend(events().into_iter().map(ServerMsg::Event));
        all
    }

    fn type_of(text: &str) -> String {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["v"], VERSION, "{text}");
        v["type"].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_client_message_survives_the_wire() {
        for msg in client_samples() {
            let text = msg.to_text();
            let (back, _) = ClientMsg::parse(&text).unwrap();
            assert_eq!(back, msg, "{text}");
            let derived: ClientMsg = serde_json::from_str(&text).unwrap();
            assert_eq!(derived, msg, "{text}");
        }
    }

    #[test]
    fn every_server_message_survives_the_wire() {
        let mut seen = BTreeSet::new();
        for msg in server_samples() {
            if let ServerMsg::Event(e) = &msg {
                seen.insert(covered(e));
            }
            let text = msg.to_text();
            assert_eq!(ServerMsg::parse(&text).unwrap(), msg, "{text}");
        }
        assert_eq!(seen.len(), 23, "an event kind has no sample");
    }

    #[test]
    fn a_clients_bad_message_gets_its_code_and_keeps_its_ref() {
        let code = |text: &str| ClientMsg::parse(text).unwrap_err().0.code();
        assert_eq!(code("{nope"), "invalid_json");
        assert_eq!(code(r#"{"ref": 1}"#), "invalid_message");
        assert_eq!(code(r#"{"type": "teleport"}"#), "unknown_type");
        assert_eq!(code(r#"{"type": "invite"}"#), "invalid_message");
        assert_eq!(code(r#"{"type": "ping", "v": 2}"#), "unsupported_version");
        let (e, reference) = ClientMsg::parse(r#"{"type": "mute", "ref": "x7"}"#).unwrap_err();
        assert_eq!(reference, Some(Value::from("x7")));
        assert!(e.to_string().contains("target"), "{e}");
        let (msg, reference) = ClientMsg::parse(r#"{"type": "ping", "ref": 3}"#).unwrap();
        assert_eq!((msg, reference), (ClientMsg::Ping, Some(Value::from(3))));
    }

    #[test]
    fn the_channel_ends_on_the_end_and_on_a_refusal() {
        let ended = ServerMsg::Event(Event::Ended {
            reason: EndReason::HostEnded,
        });
        assert!(ended.ends_the_channel());
        assert!(ServerMsg::error("removed", "out", None).ends_the_channel());
        assert!(!ServerMsg::error("stage_full", "full", None).ends_the_channel());
        assert!(!ServerMsg::Event(Event::HostBack).ends_the_channel());
    }

    #[test]
    fn the_http_bodies_survive_the_wire() {
        fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
            value: &T,
        ) {
            let text = serde_json::to_string(value).unwrap();
            assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), value, "{text}");
        }
        round_trip(&NewRoom {
            title: "Launch night".into(),
            game: "Hollow Stars".into(),
            host_name: Some("Ada".into()),
            record: true,
            icecast: Some("http://source:pw@icecast.example:8000/".into()),
        });
        round_trip(&CreatedRoom {
            id: "abc".into(),
            title: "T".into(),
            game: "G".into(),
            listener_link: "http://h/r/abc".into(),
            host_link: "http://h/r/abc#token=p1.x".into(),
            host_token: "p1.x".into(),
            whip_url: "http://h/whip/abc".into(),
            whep_url: "http://h/whep/abc".into(),
            ws_url: "ws://h/api/rooms/abc/ws".into(),
            episode: Some(EpisodeRef {
                id: 3,
                page: "http://h/episodes/3".into(),
                feed: "http://h/podcast.xml".into(),
            }),
            icecast: vec![IcecastMount {
                format: "ogg".into(),
                mount: "/abc.ogg".into(),
                url: "http://icecast.example:8000/abc.ogg".into(),
                state: IcecastState::Connecting,
                error: None,
            }],
        });
        round_trip(&NewInvite { role: Role::CoHost });
        round_trip(&Invitation {
            id: 3,
            token: "i3.x".into(),
            role: Role::Speaker,
            link: "http://h/r/abc#invite=i3.x".into(),
            expires_in_secs: 86_400,
        });
        // What a client that sends only a title gets.
        let minimal: NewRoom = serde_json::from_str(r#"{"title": "T"}"#).unwrap();
        assert_eq!((minimal.game.as_str(), minimal.host_name), ("", None));
    }

    /// The backticked message types in the first column of a table under `heading` in
    /// protocol.md.
    fn documented(heading: &str) -> BTreeSet<String> {
        let doc = include_str!("../server/protocol.md");
        let section = doc
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("protocol.md has no {heading}"));
        let section = section.split("\n#").next().unwrap_or("");
        let mut names = BTreeSet::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cell = line.split('|').nth(1).unwrap_or("");
            for (i, part) in cell.split('`').enumerate() {
                if i % 2 == 1 {
                    names.insert(part.to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn protocol_md_names_every_message_and_no_other() {
        let client: BTreeSet<String> = ClientMsg::types().map(str::to_owned).collect();
        let sent: BTreeSet<String> = client_samples()
            .iter()
            .map(|m| type_of(&m.to_text()))
            .collect();
        assert_eq!(sent, client, "ClientMsg::types() and the enums disagree");
        assert_eq!(documented("### Client to server"), client);
        let server: BTreeSet<String> = server_samples()
            .iter()
            .map(|m| type_of(&m.to_text()))
            .collect();
        assert_eq!(documented("### Server to client"), server);
    }
}
