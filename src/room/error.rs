//! Why the room refused an input: messages a person can read, and stable codes for the wire.

use super::{ParticipantId, Role};

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
    /// The hand queue holds as many hands as the room keeps.
    #[error("the hand queue is full: wait for the hosts to take some hands, then raise yours")]
    HandQueueFull,
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
            RoomError::HandQueueFull => "hand_queue_full",
            RoomError::NotInvited => "not_invited",
            RoomError::HandNotRaised => "hand_not_raised",
            RoomError::InvalidInput(_) => "invalid_input",
            RoomError::Ended => "room_ended",
            RoomError::HostPresent => "host_present",
            RoomError::WrongTarget(_) => "wrong_target",
        }
    }
}
