//! THE permissions table: which role may attempt which action. Rank rules (a moderator acts
//! only on lower ranks) and state rules (a hand must be raised to be approved) come on top, in
//! `Room`.

use super::Role;

/// Every kind of action; on the wire by its protocol name (`raise_hand`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `raise_hand`
    RaiseHand,
    /// `lower_hand`
    LowerHand,
    /// `invite`
    Invite,
    /// `accept_invite`
    AcceptInvite,
    /// `decline_invite`
    DeclineInvite,
    /// `approve`
    Approve,
    /// `deny`
    Deny,
    /// `move_to_audience`
    MoveToAudience,
    /// `leave_stage`
    LeaveStage,
    /// `mute`
    Mute,
    /// `unmute`
    Unmute,
    /// `mute_self`
    MuteSelf,
    /// `remove`
    Remove,
    /// `make_co_host`
    MakeCoHost,
    /// `unmake_co_host`
    UnmakeCoHost,
    /// `react`
    React,
    /// `mark_moment`
    MarkMoment,
    /// `start_recording`
    StartRecording,
    /// `stop_recording`
    StopRecording,
    /// `end`
    End,
    /// `set_name`
    SetName,
}

impl ActionKind {
    /// Every action kind.
    pub const ALL: [ActionKind; 21] = [
        ActionKind::RaiseHand,
        ActionKind::LowerHand,
        ActionKind::Invite,
        ActionKind::AcceptInvite,
        ActionKind::DeclineInvite,
        ActionKind::Approve,
        ActionKind::Deny,
        ActionKind::MoveToAudience,
        ActionKind::LeaveStage,
        ActionKind::Mute,
        ActionKind::Unmute,
        ActionKind::MuteSelf,
        ActionKind::Remove,
        ActionKind::MakeCoHost,
        ActionKind::UnmakeCoHost,
        ActionKind::React,
        ActionKind::MarkMoment,
        ActionKind::StartRecording,
        ActionKind::StopRecording,
        ActionKind::End,
        ActionKind::SetName,
    ];

    /// Its protocol name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::RaiseHand => "raise_hand",
            ActionKind::LowerHand => "lower_hand",
            ActionKind::Invite => "invite",
            ActionKind::AcceptInvite => "accept_invite",
            ActionKind::DeclineInvite => "decline_invite",
            ActionKind::Approve => "approve",
            ActionKind::Deny => "deny",
            ActionKind::MoveToAudience => "move_to_audience",
            ActionKind::LeaveStage => "leave_stage",
            ActionKind::Mute => "mute",
            ActionKind::Unmute => "unmute",
            ActionKind::MuteSelf => "mute_self",
            ActionKind::Remove => "remove",
            ActionKind::MakeCoHost => "make_co_host",
            ActionKind::UnmakeCoHost => "unmake_co_host",
            ActionKind::React => "react",
            ActionKind::MarkMoment => "mark_moment",
            ActionKind::StartRecording => "start_recording",
            ActionKind::StopRecording => "stop_recording",
            ActionKind::End => "end",
            ActionKind::SetName => "set_name",
        }
    }

    /// What it does, for messages ("a listener may not ...").
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            ActionKind::RaiseHand => "raise a hand (they are on stage already)",
            ActionKind::LowerHand => "lower a hand",
            ActionKind::Invite => "invite people to speak",
            ActionKind::AcceptInvite => "accept an invitation",
            ActionKind::DeclineInvite => "decline an invitation",
            ActionKind::Approve => "approve raised hands",
            ActionKind::Deny => "deny raised hands",
            ActionKind::MoveToAudience => "move people to the audience",
            ActionKind::LeaveStage => "leave the stage",
            ActionKind::Mute => "mute others",
            ActionKind::Unmute => "unmute",
            ActionKind::MuteSelf => "mute themself",
            ActionKind::Remove => "remove people",
            ActionKind::MakeCoHost => "make co-hosts",
            ActionKind::UnmakeCoHost => "unmake co-hosts",
            ActionKind::React => "react",
            ActionKind::MarkMoment => "mark moments",
            ActionKind::StartRecording => "start recording",
            ActionKind::StopRecording => "stop recording",
            ActionKind::End => "end the room",
            ActionKind::SetName => "change their name",
        }
    }
}

/// See the module doc.
#[derive(Debug, Clone, Copy)]
pub struct Permissions;

impl Permissions {
    /// The actions `role` may attempt: its row of the table.
    #[must_use]
    pub fn for_role(role: Role) -> Vec<ActionKind> {
        ActionKind::ALL
            .into_iter()
            .filter(|&a| Self::allowed(a, role))
            .collect()
    }

    /// Whether `role` may attempt `action`.
    #[must_use]
    pub const fn allowed(action: ActionKind, role: Role) -> bool {
        use ActionKind as A;
        use Role::{CoHost, Host, Listener, Speaker};
        match action {
            A::RaiseHand | A::LowerHand | A::AcceptInvite | A::DeclineInvite => {
                matches!(role, Listener)
            }
            A::Invite | A::Approve | A::Deny | A::MoveToAudience | A::Mute | A::Remove => {
                matches!(role, Host | CoHost)
            }
            A::MarkMoment | A::StartRecording | A::StopRecording => matches!(role, Host | CoHost),
            A::LeaveStage => matches!(role, CoHost | Speaker),
            A::Unmute | A::MuteSelf => matches!(role, Host | CoHost | Speaker),
            A::MakeCoHost | A::UnmakeCoHost | A::End => matches!(role, Host),
            A::React | A::SetName => true,
        }
    }
}
