//! What a room task is told (its inbox, [`RoomMsg`]) and what it answers with. Everything that
//! reaches a room goes through here, except the media socket's datagrams, which have an inbox
//! of their own.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use tokio::sync::{mpsc, oneshot};

use super::Refusal;
use crate::room::protocol::{RoomInfo, You};
use crate::room::{Action, ParticipantId, Role};
use crate::rtc::peer::InFrame;

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
    /// Its id (what `DELETE /api/rooms/{id}/invites/{invite}` takes).
    pub id: u64,
    /// The capability token.
    pub token: String,
    /// The role it grants.
    pub role: Role,
    /// It works for this many seconds.
    pub expires_in_secs: u64,
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
        reply: oneshot::Sender<Result<Welcome, Refusal>>,
    },
    /// An action from a connected client.
    Act {
        /// Who.
        from: ParticipantId,
        /// What.
        action: Action,
        /// The answer.
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// An action over HTTP with a bearer token.
    ActWithToken {
        /// The token.
        token: Option<String>,
        /// What.
        action: Action,
        /// The answer.
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Whose token this is: their role now (for HTTP routes only moderators may use).
    RoleOf {
        /// The bearer token.
        token: Option<String>,
        /// The answer.
        reply: oneshot::Sender<Result<Role, Refusal>>,
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
        reply: oneshot::Sender<Result<Invitation, Refusal>>,
    },
    /// A moderator takes back an invitation not yet used.
    RevokeInvite {
        /// The moderator's token.
        token: Option<String>,
        /// The invitation's id, or its whole token.
        invite: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// The room's public state with one page of its audience.
    InfoPage {
        /// The listeners after this id.
        after: Option<ParticipantId>,
        /// Listeners at most.
        limit: usize,
        /// The answer.
        reply: oneshot::Sender<RoomInfo>,
    },
    /// WHIP: publish.
    Publish {
        /// Bearer token.
        token: Option<String>,
        /// SDP offer.
        offer: String,
        /// The client's address (sessions are capped per address).
        client: IpAddr,
        /// The answer.
        reply: oneshot::Sender<Result<SessionCreated, Refusal>>,
    },
    /// WHEP: listen.
    Listen {
        /// Bearer token (optional: a stage member gets their mix-minus).
        token: Option<String>,
        /// SDP offer.
        offer: String,
        /// The client's address (sessions are capped per address).
        client: IpAddr,
        /// The answer.
        reply: oneshot::Sender<Result<SessionCreated, Refusal>>,
    },
    /// Trickle ICE for a session.
    Trickle {
        /// The session.
        session: String,
        /// The `application/trickle-ice-sdpfrag` body.
        fragment: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// DELETE of a session.
    Hangup {
        /// The session.
        session: String,
        /// The answer.
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// The room's public state.
    Info {
        /// The answer.
        reply: oneshot::Sender<RoomInfo>,
    },
    /// The room's recorder failed (its disk is full, or cannot be written): recording stops,
    /// the moderators are told why, and the room goes on.
    RecordingFailed {
        /// The episode it recorded.
        episode: i64,
        /// Why.
        why: String,
    },
    /// The server stops: every file is finished before the answer (and the episode rendered,
    /// when `render`).
    Shutdown {
        /// Render and publish the episode now (a server in a host's process, whose room ends
        /// with it), rather than at the next start.
        render: bool,
        /// Answered once the files are finished.
        reply: oneshot::Sender<()>,
    },
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
        reply: oneshot::Sender<Result<(), Refusal>>,
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
