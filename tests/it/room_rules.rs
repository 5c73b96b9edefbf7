//! The room's rules on a fake clock: every action against every role, and the scenarios a host
//! and an audience live through.

use std::time::{Duration, Instant};

use booth::room::{
    Action, ActionKind, EndReason, Event, Input, MediaCommand, Output, ParticipantId, Permissions,
    Role, Room, RoomConfig, RoomError,
};

const HOST: ParticipantId = ParticipantId(1);
const COHOST: ParticipantId = ParticipantId(2);
const SPEAKER: ParticipantId = ParticipantId(3);
const LISTENER: ParticipantId = ParticipantId(4);
const HAND: ParticipantId = ParticipantId(5);
const INVITED: ParticipantId = ParticipantId(6);

struct Clock(Instant);

impl Clock {
    fn at(&self, secs: f64) -> Instant {
        self.0 + Duration::from_secs_f64(secs)
    }
}

/// A room with a host, a co-host, a speaker, a listener, a listener with a raised hand and an
/// invited listener.
fn full_room(clock: &Clock) -> Room {
    let t = clock.at(0.0);
    let mut room = Room::new(RoomConfig::new("Review", "Game"), HOST, "Host".into(), t);
    let join = |room: &mut Room, id, role| {
        room.handle(
            Input::Join {
                id,
                name: format!("p{id}"),
                role,
            },
            t,
        )
        .unwrap();
    };
    join(&mut room, COHOST, Role::CoHost);
    join(&mut room, SPEAKER, Role::Speaker);
    join(&mut room, LISTENER, Role::Listener);
    join(&mut room, HAND, Role::Listener);
    join(&mut room, INVITED, Role::Listener);
    act(&mut room, HAND, Action::RaiseHand, t).unwrap();
    act(&mut room, HOST, Action::Invite { target: INVITED }, t).unwrap();
    drain(&mut room);
    room
}

fn act(
    room: &mut Room,
    from: ParticipantId,
    action: Action,
    now: Instant,
) -> Result<(), RoomError> {
    room.handle(Input::Action { from, action }, now)
}

fn drain(room: &mut Room) -> Vec<Output> {
    std::iter::from_fn(|| room.poll_output()).collect()
}

/// A room whose host has listeners `ids` (with no names), all there at `t`.
fn room_of_listeners(ids: std::ops::Range<u64>, t: Instant) -> Room {
    let mut room = Room::new(RoomConfig::new("R", "G"), HOST, "Host".into(), t);
    for id in ids {
        joins(&mut room, ParticipantId(id), "", t);
    }
    room
}

/// Listener `id` joins `room` at `t`, named `name`.
fn joins(room: &mut Room, id: ParticipantId, name: &str, t: Instant) {
    let join = Input::Join {
        id,
        name: name.into(),
        role: Role::Listener,
    };
    room.handle(join, t).unwrap();
}

fn approve(id: u64) -> Action {
    Action::Approve {
        target: ParticipantId(id),
    }
}

fn invite(id: u64) -> Action {
    Action::Invite {
        target: ParticipantId(id),
    }
}

fn make_co_host(id: u64) -> Action {
    Action::MakeCoHost {
        target: ParticipantId(id),
    }
}

fn actor(role: Role, kind: ActionKind) -> ParticipantId {
    match (role, kind) {
        (Role::Host, _) => HOST,
        (Role::CoHost, _) => COHOST,
        (Role::Speaker, _) => SPEAKER,
        // The invited listener answers invitations; the plain listener does everything else.
        (Role::Listener, ActionKind::AcceptInvite | ActionKind::DeclineInvite) => INVITED,
        (Role::Listener, _) => LISTENER,
    }
}

/// The action of `kind`, aimed where it would be valid apart from permission.
fn action(kind: ActionKind) -> Action {
    match kind {
        ActionKind::RaiseHand => Action::RaiseHand,
        ActionKind::LowerHand => Action::LowerHand,
        ActionKind::Invite => Action::Invite { target: LISTENER },
        ActionKind::AcceptInvite => Action::AcceptInvite,
        ActionKind::DeclineInvite => Action::DeclineInvite,
        ActionKind::Approve => Action::Approve { target: HAND },
        ActionKind::Deny => Action::Deny { target: HAND },
        ActionKind::MoveToAudience => Action::MoveToAudience { target: SPEAKER },
        ActionKind::LeaveStage => Action::LeaveStage,
        ActionKind::Mute => Action::Mute { target: SPEAKER },
        ActionKind::Unmute => Action::Unmute,
        ActionKind::MuteSelf => Action::MuteSelf,
        ActionKind::Remove => Action::Remove { target: LISTENER },
        ActionKind::MakeCoHost => Action::MakeCoHost { target: SPEAKER },
        ActionKind::UnmakeCoHost => Action::UnmakeCoHost { target: COHOST },
        ActionKind::React => Action::React {
            emoji: "🔥".into()
        },
        ActionKind::MarkMoment => Action::MarkMoment {
            label: Some("boss fight".into()),
        },
        ActionKind::StartRecording => Action::StartRecording,
        ActionKind::StopRecording => Action::StopRecording,
        ActionKind::End => Action::End,
        ActionKind::SetName => Action::SetName {
            name: "New name".into(),
        },
    }
}

const Y: bool = true;
const N: bool = false;

/// The permissions, written out as the spec: host, co-host, speaker, listener.
const TABLE: [(&str, [bool; 4]); 21] = [
    ("raise_hand", [N, N, N, Y]),
    ("lower_hand", [N, N, N, Y]),
    ("invite", [Y, Y, N, N]),
    ("accept_invite", [N, N, N, Y]),
    ("decline_invite", [N, N, N, Y]),
    ("approve", [Y, Y, N, N]),
    ("deny", [Y, Y, N, N]),
    ("move_to_audience", [Y, Y, N, N]),
    ("leave_stage", [N, Y, Y, N]),
    ("mute", [Y, Y, N, N]),
    ("unmute", [Y, Y, Y, N]),
    ("mute_self", [Y, Y, Y, N]),
    ("remove", [Y, Y, N, N]),
    ("make_co_host", [Y, N, N, N]),
    ("unmake_co_host", [Y, N, N, N]),
    ("react", [Y, Y, Y, Y]),
    ("mark_moment", [Y, Y, N, N]),
    ("start_recording", [Y, Y, N, N]),
    ("stop_recording", [Y, Y, N, N]),
    ("end", [Y, N, N, N]),
    ("set_name", [Y, Y, Y, Y]),
];

#[test]
fn every_action_against_every_role() {
    let clock = Clock(Instant::now());
    assert_eq!(TABLE.len(), ActionKind::ALL.len());
    for kind in ActionKind::ALL {
        let row = TABLE
            .iter()
            .find(|(name, _)| *name == kind.name())
            .unwrap_or_else(|| panic!("{} is missing from the table", kind.name()));
        for (i, role) in Role::ALL.into_iter().enumerate() {
            let expected = row.1[i];
            assert_eq!(
                Permissions::allowed(kind, role),
                expected,
                "Permissions says {} for {} by a {role:?}",
                Permissions::allowed(kind, role),
                kind.name()
            );
            let mut room = full_room(&clock);
            let who = actor(role, kind);
            if kind == ActionKind::Unmute && role != Role::Listener {
                act(&mut room, who, Action::MuteSelf, clock.at(1.0)).unwrap();
            }
            if kind == ActionKind::StopRecording {
                act(&mut room, HOST, Action::StartRecording, clock.at(1.0)).unwrap();
            }
            let result = act(&mut room, who, action(kind), clock.at(2.0));
            if expected {
                assert!(result.is_ok(), "{} by a {role:?}: {result:?}", kind.name());
            } else {
                assert!(
                    matches!(result, Err(RoomError::NotAllowed { .. })),
                    "{} by a {role:?} should be refused, got {result:?}",
                    kind.name()
                );
            }
        }
    }
}

#[test]
fn hands_are_served_first_come_first_served_and_rate_limited() {
    let clock = Clock(Instant::now());
    let mut room = room_of_listeners(10..14, clock.at(0.0));
    for (i, id) in [12, 10, 13].into_iter().enumerate() {
        act(
            &mut room,
            ParticipantId(id),
            Action::RaiseHand,
            clock.at(i as f64),
        )
        .unwrap();
    }
    act(
        &mut room,
        ParticipantId(12),
        Action::RaiseHand,
        clock.at(3.0),
    )
    .unwrap();
    assert_eq!(
        room.hand_queue(),
        vec![ParticipantId(12), ParticipantId(10), ParticipantId(13)]
    );
    assert_the_queue_goes_to_the_moderators_only(&drain(&mut room));
    assert_the_approved_go_on_stage_and_the_denied_are_told(&mut room, &clock);
    assert_raising_a_hand_is_rate_limited(&mut room, &clock, ParticipantId(11));
}

fn assert_the_queue_goes_to_the_moderators_only(outputs: &[Output]) {
    assert!(
        outputs
            .iter()
            .all(|o| !matches!(o, Output::Broadcast(Event::HandRaised { .. }))),
        "the queue went to everyone"
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::ToModerators(Event::HandRaised { .. })))
    );
}

/// With hands raised by 12, 10 and 13: 10 approved, 12 denied, 11 (no hand) not approved.
fn assert_the_approved_go_on_stage_and_the_denied_are_told(room: &mut Room, clock: &Clock) {
    act(room, HOST, approve(10), clock.at(4.0)).unwrap();
    assert_eq!(room.role(ParticipantId(10)), Some(Role::Speaker));
    assert!(room.may_publish(ParticipantId(10)));
    assert_eq!(
        room.hand_queue(),
        vec![ParticipantId(12), ParticipantId(13)]
    );
    let deny = Action::Deny {
        target: ParticipantId(12),
    };
    act(room, HOST, deny, clock.at(4.0)).unwrap();
    let denied = Event::HandDenied {
        id: ParticipantId(12),
    };
    assert!(drain(room).contains(&Output::To(ParticipantId(12), denied)));
    assert_eq!(
        act(room, HOST, approve(11), clock.at(5.0)),
        Err(RoomError::HandNotRaised)
    );
}

/// Raise and lower five times in a minute, then no more until the window passes.
fn assert_raising_a_hand_is_rate_limited(room: &mut Room, clock: &Clock, spammer: ParticipantId) {
    for i in 0..5 {
        act(
            room,
            spammer,
            Action::RaiseHand,
            clock.at(10.0 + f64::from(i)),
        )
        .unwrap();
        act(
            room,
            spammer,
            Action::LowerHand,
            clock.at(10.5 + f64::from(i)),
        )
        .unwrap();
    }
    assert_eq!(
        act(room, spammer, Action::RaiseHand, clock.at(20.0)),
        Err(RoomError::RateLimited)
    );
    act(room, spammer, Action::RaiseHand, clock.at(71.0)).unwrap();
}

#[test]
fn the_stage_holds_ten_speakers_and_two_co_hosts() {
    let clock = Clock(Instant::now());
    let t = clock.at(0.0);
    let mut room = room_of_listeners(10..22, t);
    for id in 10..22 {
        act(&mut room, ParticipantId(id), Action::RaiseHand, t).unwrap();
    }
    for id in 10..20 {
        act(&mut room, HOST, approve(id), t).unwrap();
    }
    // Ten speakers: nobody more comes on stage, approved or invited.
    assert_eq!(
        act(&mut room, HOST, approve(20), t),
        Err(RoomError::StageFull)
    );
    act(&mut room, HOST, invite(21), t).unwrap();
    assert_eq!(
        act(&mut room, ParticipantId(21), Action::AcceptInvite, t),
        Err(RoomError::StageFull)
    );
    act(&mut room, HOST, make_co_host(10), t).unwrap();
    act(&mut room, HOST, make_co_host(11), t).unwrap();
    assert_eq!(
        act(&mut room, HOST, make_co_host(12), t),
        Err(RoomError::CoHostsFull)
    );
    // Two speakers became co-hosts: two seats are free again.
    act(&mut room, HOST, approve(20), t).unwrap();
    act(&mut room, ParticipantId(21), Action::AcceptInvite, t).unwrap();
    let stage = room.stage();
    assert_eq!(stage.len(), 1 + 2 + 10);
    assert_eq!(stage[0].role, Role::Host);
    assert_eq!((stage[1].role, stage[2].role), (Role::CoHost, Role::CoHost));
}

#[test]
fn invitations_are_accepted_or_declined_by_the_invited_only() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    let t = clock.at(1.0);
    assert_eq!(
        act(&mut room, LISTENER, Action::AcceptInvite, t),
        Err(RoomError::NotInvited)
    );
    act(&mut room, INVITED, Action::DeclineInvite, t).unwrap();
    assert!(
        drain(&mut room).contains(&Output::ToModerators(Event::InviteDeclined { id: INVITED }))
    );
    assert_eq!(
        act(&mut room, INVITED, Action::AcceptInvite, t),
        Err(RoomError::NotInvited)
    );
    act(&mut room, COHOST, Action::Invite { target: LISTENER }, t).unwrap();
    assert!(drain(&mut room).contains(&Output::To(LISTENER, Event::Invited { by: COHOST })));
    act(&mut room, LISTENER, Action::AcceptInvite, t).unwrap();
    assert_eq!(room.role(LISTENER), Some(Role::Speaker));
    assert_eq!(
        act(&mut room, HOST, Action::Invite { target: SPEAKER }, t),
        Err(RoomError::WrongTarget(
            "only listeners can be invited to speak"
        ))
    );
}

#[test]
fn moderators_mute_and_only_the_speaker_unmutes_themself() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    let t = clock.at(1.0);
    act(&mut room, COHOST, Action::Mute { target: SPEAKER }, t).unwrap();
    assert!(room.is_muted(SPEAKER));
    let out = drain(&mut room);
    assert!(out.contains(&Output::Media(MediaCommand::SetMuted(SPEAKER, true))));
    assert!(out.contains(&Output::Broadcast(Event::Muted {
        id: SPEAKER,
        by: COHOST
    })));
    // Nobody else can unmute them: Unmute applies to oneself, and the host is not muted.
    assert!(act(&mut room, HOST, Action::Unmute, t).is_err());
    assert!(room.is_muted(SPEAKER));
    act(&mut room, SPEAKER, Action::Unmute, t).unwrap();
    assert!(!room.is_muted(SPEAKER));
    // A co-host cannot mute the host or another co-host; nobody mutes themself with Mute.
    assert!(matches!(
        act(&mut room, COHOST, Action::Mute { target: HOST }, t),
        Err(RoomError::NotAllowed { .. })
    ));
    act(&mut room, HOST, Action::MakeCoHost { target: SPEAKER }, t).unwrap();
    assert!(matches!(
        act(&mut room, COHOST, Action::Mute { target: SPEAKER }, t),
        Err(RoomError::NotAllowed { .. })
    ));
    assert!(matches!(
        act(&mut room, COHOST, Action::Remove { target: SPEAKER }, t),
        Err(RoomError::NotAllowed { .. })
    ));
    assert!(act(&mut room, HOST, Action::Mute { target: HOST }, t).is_err());
    act(&mut room, HOST, Action::Mute { target: SPEAKER }, t).unwrap();
    // Moving to the audience clears the mute.
    act(
        &mut room,
        HOST,
        Action::MoveToAudience { target: SPEAKER },
        t,
    )
    .unwrap();
    assert_eq!(room.role(SPEAKER), Some(Role::Listener));
    assert!(!room.is_muted(SPEAKER) && !room.may_publish(SPEAKER));
    assert!(drain(&mut room).contains(&Output::Media(MediaCommand::StopPublishing(SPEAKER))));
}

#[test]
fn the_removed_stay_out_for_the_rooms_life() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    let t = clock.at(1.0);
    act(&mut room, COHOST, Action::Remove { target: SPEAKER }, t).unwrap();
    let out = drain(&mut room);
    for o in [
        Output::Media(MediaCommand::StopPublishing(SPEAKER)),
        Output::Media(MediaCommand::Disconnect(SPEAKER)),
        Output::Broadcast(Event::Removed { id: SPEAKER }),
    ] {
        assert!(out.contains(&o), "{o:?} missing from {out:?}");
    }
    assert!(room.is_removed(SPEAKER) && !room.may_publish(SPEAKER));
    let again = room.handle(
        Input::Join {
            id: SPEAKER,
            name: "back".into(),
            role: Role::Listener,
        },
        clock.at(3600.0),
    );
    assert_eq!(again, Err(RoomError::Removed));
    assert_eq!(
        act(&mut room, SPEAKER, Action::RaiseHand, t),
        Err(RoomError::Removed)
    );
}

#[test]
fn a_dropped_host_has_a_grace_period_then_a_co_host_takes_over() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    room.handle(Input::Disconnected { id: HOST }, clock.at(10.0))
        .unwrap();
    assert!(drain(&mut room).contains(&Output::Broadcast(Event::HostAway { until_ms: 60_000 })));
    assert_eq!(room.poll_timeout(), Some(clock.at(70.0)));
    // Back in time.
    room.handle(
        Input::Join {
            id: HOST,
            name: "Host".into(),
            role: Role::Host,
        },
        clock.at(40.0),
    )
    .unwrap();
    assert!(drain(&mut room).contains(&Output::Broadcast(Event::HostBack)));
    assert_eq!(room.poll_timeout(), None);
    // Gone for good: the co-host becomes host.
    room.handle(Input::Disconnected { id: HOST }, clock.at(100.0))
        .unwrap();
    room.handle(Input::Tick, clock.at(159.0)).unwrap();
    assert_eq!(room.role(COHOST), Some(Role::CoHost));
    room.handle(Input::Tick, clock.at(160.0)).unwrap();
    assert_eq!(room.role(COHOST), Some(Role::Host));
    assert!(drain(&mut room).contains(&Output::Broadcast(Event::HostChanged { id: COHOST })));
    act(&mut room, COHOST, Action::End, clock.at(161.0)).unwrap();
    assert!(room.is_ended());
}

#[test]
fn a_dropped_host_with_no_co_host_ends_the_room() {
    let clock = Clock(Instant::now());
    let mut room = Room::new(
        RoomConfig::new("R", "G"),
        HOST,
        "Host".into(),
        clock.at(0.0),
    );
    room.handle(
        Input::Join {
            id: LISTENER,
            name: "L".into(),
            role: Role::Listener,
        },
        clock.at(0.0),
    )
    .unwrap();
    room.handle(Input::Leave { id: HOST }, clock.at(1.0))
        .unwrap();
    room.handle(Input::Tick, clock.at(61.0)).unwrap();
    assert!(room.is_ended());
    let out = drain(&mut room);
    assert!(out.contains(&Output::Broadcast(Event::Ended {
        reason: EndReason::HostGone
    })));
    assert!(out.contains(&Output::Media(MediaCommand::EndRoom)));
    assert_eq!(
        act(&mut room, LISTENER, Action::RaiseHand, clock.at(62.0)),
        Err(RoomError::Ended)
    );
    assert!(!room.may_publish(HOST));
    room.handle(Input::Leave { id: LISTENER }, clock.at(63.0))
        .unwrap();
}

#[test]
fn reactions_names_levels_and_moments() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    assert_reactions_are_checked_and_rate_limited(&mut room, &clock);
    let t = clock.at(0.0);
    assert_names_are_cleaned_when_they_join(&mut room, t);
    room.handle(Input::Levels(vec![(SPEAKER, 0.734), (LISTENER, 0.9)]), t)
        .unwrap();
    // Only those on stage have a level, to two decimals.
    assert_eq!(
        drain(&mut room),
        vec![Output::Broadcast(Event::Levels {
            levels: vec![(SPEAKER, 0.73)]
        })]
    );
    act(
        &mut room,
        COHOST,
        Action::MarkMoment { label: None },
        clock.at(95.5),
    )
    .unwrap();
    assert_eq!(room.markers()[0].at_ms, 95_500);
    assert_eq!(room.markers()[0].label, "Moment 1");
}

/// A listener's reactions: nothing, words, five emoji at once or a control character are
/// refused; ten within a second go, an eleventh soon after is refused, and one ten seconds
/// later goes.
fn assert_reactions_are_checked_and_rate_limited(room: &mut Room, clock: &Clock) {
    let react = |emoji: &str| Action::React {
        emoji: emoji.into(),
    };
    for bad in ["", "hello", "🔥🔥🔥🔥🔥", "\u{7}"] {
        assert!(
            act(room, LISTENER, react(bad), clock.at(1.0)).is_err(),
            "{bad:?}"
        );
    }
    for i in 0..10 {
        act(
            room,
            LISTENER,
            react("👏"),
            clock.at(2.0 + f64::from(i) * 0.1),
        )
        .unwrap();
    }
    assert_eq!(
        act(room, LISTENER, react("👏"), clock.at(3.5)),
        Err(RoomError::RateLimited)
    );
    act(room, LISTENER, react("👏"), clock.at(12.5)).unwrap();
}

/// Names as they join, as everyone is told them: control characters gone, markup kept as
/// text, 40 characters at most, and a blank one replaced.
fn assert_names_are_cleaned_when_they_join(room: &mut Room, t: Instant) {
    joins(room, ParticipantId(40), "  <b>Ada\u{0}\u{1b}[31m </b>", t);
    joins(room, ParticipantId(41), &"x".repeat(100), t);
    joins(room, ParticipantId(42), " \t ", t);
    let joined: Vec<String> = drain(room)
        .into_iter()
        .filter_map(|o| match o {
            Output::Broadcast(Event::Joined { name, .. }) => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(
        joined[0], "<b>Ada[31m </b>",
        "control characters go; markup stays text for the client to escape"
    );
    assert_eq!(joined[1].chars().count(), 40);
    assert!(joined[2].starts_with("Listener "));
}

#[test]
fn actions_and_events_speak_the_protocols_json() {
    let a: Action = serde_json::from_str(r#"{"type":"mute","target":3}"#).unwrap();
    assert_eq!(a, Action::Mute { target: SPEAKER });
    let a: Action = serde_json::from_str(r#"{"type":"mark_moment","v":1}"#).unwrap();
    assert_eq!(a, Action::MarkMoment { label: None });
    assert!(serde_json::from_str::<Action>(r#"{"type":"teleport"}"#).is_err());
    let e = serde_json::to_value(Event::Muted {
        id: SPEAKER,
        by: HOST,
    })
    .unwrap();
    assert_eq!(e, serde_json::json!({"type": "muted", "id": 3, "by": 1}));
    let e = serde_json::to_value(Event::RoleChanged {
        id: COHOST,
        role: Role::CoHost,
    })
    .unwrap();
    assert_eq!(
        e,
        serde_json::json!({"type": "role_changed", "id": 2, "role": "co_host"})
    );
}

#[test]
fn a_new_name_reaches_everyone_and_stays_clean() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    let t = clock.at(1.0);
    act(
        &mut room,
        HAND,
        Action::SetName {
            name: "  Ada\u{0} Lovelace ".into(),
        },
        t,
    )
    .unwrap();
    let out = drain(&mut room);
    assert!(
        out.contains(&Output::Broadcast(Event::Renamed {
            id: HAND,
            name: "Ada Lovelace".into()
        })),
        "{out:?}"
    );
    assert!(
        act(
            &mut room,
            HAND,
            Action::SetName {
                name: " \u{7} ".into()
            },
            t
        )
        .is_err()
    );
}

#[test]
fn a_recording_that_stopped_by_itself_is_off_for_everyone_and_can_start_again() {
    let clock = Clock(Instant::now());
    let mut room = full_room(&clock);
    act(&mut room, HOST, Action::StartRecording, clock.at(1.0)).unwrap();
    drain(&mut room);
    room.handle(Input::RecordingStopped, clock.at(2.0)).unwrap();
    let out = drain(&mut room);
    assert_eq!(
        out,
        [Output::Broadcast(Event::Recording { on: false })],
        "no media command: the recorder is already gone"
    );
    assert!(!room.snapshot(clock.at(2.0)).recording);
    room.handle(Input::RecordingStopped, clock.at(3.0)).unwrap();
    assert!(drain(&mut room).is_empty());
    act(&mut room, HOST, Action::StartRecording, clock.at(4.0)).unwrap();
    assert!(drain(&mut room).contains(&Output::Media(MediaCommand::Recording(true))));
}
