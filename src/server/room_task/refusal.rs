//! Why a room refuses a request: a domain error its callers can match on. The HTTP and
//! WebSocket edges turn a refusal into an `ApiError` (a status, a stable code, a message);
//! inside the room nothing speaks HTTP.

use crate::room::RoomError;

/// See the module doc.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The request needs a token and has none.
    #[error("a token is required")]
    NoToken,
    /// A token this room does not know.
    #[error("that token is not valid for this room")]
    BadToken,
    /// An invitation that is not (or no longer) valid.
    #[error("that invitation is not valid")]
    BadInvitation,
    /// No invitation by that id waits to be used (used, expired, revoked, or never made).
    #[error("that invitation does not exist: it was used, it expired, or it was revoked")]
    NoSuchInvitation,
    /// Removed for the room's life.
    #[error("you were removed from this room")]
    Removed,
    /// Publishing needs a place on stage.
    #[error("only the host, co-hosts and speakers on stage may publish")]
    NotOnStage,
    /// Only the host invites co-hosts, and only moderators invite speakers.
    #[error("only the host invites co-hosts, and only moderators invite speakers")]
    MayNotInvite,
    /// The room has ended.
    #[error("the room has ended")]
    Ended,
    /// The room's rules refused an action.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// No session by that id.
    #[error("that session does not exist")]
    NoSuchSession,
    /// An SDP offer or trickle fragment the room cannot use: `code` is the protocol's
    /// (`no_audio`, `no_opus`, `bad_sdp`, `wrong_direction`, `bad_candidate`, `not_webrtc`).
    #[error("{message}")]
    BadMedia {
        /// The protocol's code.
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// A trickle that restarts ICE.
    #[error("ICE restarts are not supported: start a new session")]
    IceRestart,
    /// A cap on sessions (the room's, or the client address's) is reached.
    #[error("{}", .0.message())]
    SessionCap(super::admission::SessionCap),
    /// Something failed inside the server (randomness, a codec); the detail is for the log.
    #[error("internal: {0}")]
    Internal(String),
}

impl Refusal {
    /// An offer or fragment the room cannot use.
    pub(crate) fn media(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadMedia {
            code,
            message: message.into(),
        }
    }

    /// A failure inside the server.
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}
