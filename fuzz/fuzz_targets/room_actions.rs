//! The room state machine under any sequence of joins, leaves, actions and time. After every
//! input: the stage and co-host caps hold, there is one host, a removed person never comes
//! back, and an action the room accepted was one the permissions table allows the actor's role.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use booth::room::{Action, Input, ParticipantId, Permissions, Role, Room, RoomConfig};
use libfuzzer_sys::fuzz_target;

/// Participants are numbered 0..PEOPLE; 0 is the host the room starts with.
const PEOPLE: u8 = 12;

#[derive(Debug, Arbitrary)]
struct Who(u8);

impl Who {
    fn id(&self) -> ParticipantId {
        ParticipantId(u64::from(self.0 % PEOPLE))
    }
}

#[derive(Debug, Arbitrary)]
enum Act {
    RaiseHand,
    LowerHand,
    Invite(Who),
    AcceptInvite,
    DeclineInvite,
    Approve(Who),
    Deny(Who),
    MoveToAudience(Who),
    LeaveStage,
    Mute(Who),
    Unmute,
    MuteSelf,
    Remove(Who),
    MakeCoHost(Who),
    UnmakeCoHost(Who),
    React(String),
    MarkMoment(Option<String>),
    StartRecording,
    StopRecording,
    End,
    SetName(String),
}

impl Act {
    fn action(self) -> Action {
        match self {
            Act::RaiseHand => Action::RaiseHand,
            Act::LowerHand => Action::LowerHand,
            Act::Invite(w) => Action::Invite { target: w.id() },
            Act::AcceptInvite => Action::AcceptInvite,
            Act::DeclineInvite => Action::DeclineInvite,
            Act::Approve(w) => Action::Approve { target: w.id() },
            Act::Deny(w) => Action::Deny { target: w.id() },
            Act::MoveToAudience(w) => Action::MoveToAudience { target: w.id() },
            Act::LeaveStage => Action::LeaveStage,
            Act::Mute(w) => Action::Mute { target: w.id() },
            Act::Unmute => Action::Unmute,
            Act::MuteSelf => Action::MuteSelf,
            Act::Remove(w) => Action::Remove { target: w.id() },
            Act::MakeCoHost(w) => Action::MakeCoHost { target: w.id() },
            Act::UnmakeCoHost(w) => Action::UnmakeCoHost { target: w.id() },
            Act::React(emoji) => Action::React { emoji },
            Act::MarkMoment(label) => Action::MarkMoment { label },
            Act::StartRecording => Action::StartRecording,
            Act::StopRecording => Action::StopRecording,
            Act::End => Action::End,
            Act::SetName(name) => Action::SetName { name },
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Step {
    Join {
        who: Who,
        name: String,
        role: u8,
    },
    Leave(Who),
    Disconnect(Who),
    Act {
        who: Who,
        act: Act,
    },
    Levels(Vec<(Who, f32)>),
    /// Time passes, in seconds (host grace, rate-limit windows).
    Wait(u8),
    Tick,
}

const MAX_COHOSTS: usize = 2;
const MAX_SPEAKERS: usize = 3;

fuzz_target!(|steps: Vec<Step>| {
    let start = Instant::now();
    let mut now = start;
    let config = RoomConfig {
        max_cohosts: MAX_COHOSTS,
        max_speakers: MAX_SPEAKERS,
        ..RoomConfig::new("fuzz", "game")
    };
    let mut room = Room::new(config, ParticipantId(0), "Host".into(), now);
    let mut removed: HashSet<ParticipantId> = HashSet::new();
    for step in steps {
        let input = match step {
            Step::Join { who, name, role } => Input::Join {
                id: who.id(),
                name,
                role: Role::ALL[usize::from(role % 4)],
            },
            Step::Leave(who) => Input::Leave { id: who.id() },
            Step::Disconnect(who) => Input::Disconnected { id: who.id() },
            Step::Act { who, act } => Input::Action {
                from: who.id(),
                action: act.action(),
            },
            Step::Levels(levels) => {
                Input::Levels(levels.into_iter().map(|(w, l)| (w.id(), l)).collect())
            }
            Step::Wait(seconds) => {
                now += Duration::from_secs(u64::from(seconds));
                Input::Tick
            }
            Step::Tick => Input::Tick,
        };
        let actor = match &input {
            Input::Action { from, action } => Some((*from, room.role(*from), action.kind())),
            _ => None,
        };
        let accepted = room.handle(input, now).is_ok();
        while room.poll_output().is_some() {}

        if let (true, Some((from, role, kind))) = (accepted, actor) {
            let role = role.unwrap_or_else(|| panic!("{from} is not in the room but acted"));
            assert!(
                Permissions::allowed(kind, role),
                "a {role} did {kind:?}, which the table forbids"
            );
        }
        let roles: Vec<(ParticipantId, Role)> = (0..u64::from(PEOPLE))
            .map(ParticipantId)
            .filter_map(|id| room.role(id).map(|r| (id, r)))
            .collect();
        let count = |want: Role| roles.iter().filter(|(_, r)| *r == want).count();
        assert!(count(Role::Host) <= 1, "two hosts: {roles:?}");
        assert!(count(Role::CoHost) <= MAX_COHOSTS, "too many co-hosts: {roles:?}");
        assert!(count(Role::Speaker) <= MAX_SPEAKERS, "too many speakers: {roles:?}");
        for id in (0..u64::from(PEOPLE)).map(ParticipantId) {
            if room.is_removed(id) {
                removed.insert(id);
            }
        }
        for id in &removed {
            assert!(room.is_removed(*id), "{id} was removed, then forgiven");
            assert!(room.role(*id).is_none(), "{id} was removed but is back");
        }
    }
});
