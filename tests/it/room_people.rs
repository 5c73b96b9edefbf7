//! The room's people: names cleaned at the edge, roles that outlive a reconnect, listeners
//! forgotten once gone, hands and renames within their limits, counts for a big audience.

use std::time::{Duration, Instant};

use booth::room::{
    Action, Event, Input, Output, ParticipantId, Role, Room, RoomConfig, RoomError, clean_text,
};

fn room(config: RoomConfig) -> (Room, Instant) {
    let now = Instant::now();
    (Room::new(config, ParticipantId(1), "Host".into(), now), now)
}

fn join(r: &mut Room, id: u64, role: Role, now: Instant) -> Result<(), RoomError> {
    r.handle(
        Input::Join {
            id: ParticipantId(id),
            name: format!("P{id}"),
            role,
        },
        now,
    )
}

fn host_does(r: &mut Room, action: Action, now: Instant) {
    r.handle(
        Input::Action {
            from: ParticipantId(1),
            action,
        },
        now,
    )
    .unwrap();
}

fn drop_out(r: &mut Room, id: u64, now: Instant) {
    r.handle(
        Input::Disconnected {
            id: ParticipantId(id),
        },
        now,
    )
    .unwrap();
}

fn drain(r: &mut Room) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

#[test]
fn names_lose_controls_and_bidi_overrides_and_are_cut() {
    assert_eq!(
        clean_text("  Ada \u{202E}\tLove\n\nlace  ", 40),
        "Ada Love lace"
    );
    assert_eq!(clean_text("\u{0007}\u{2066}", 40), "");
    assert_eq!(clean_text(&"é".repeat(5000), 40).chars().count(), 40);
    assert_eq!(clean_text("ab   cd", 3), "ab");
    assert_eq!(clean_text("ab   cd", 4), "ab c");
}

#[test]
fn a_demoted_speaker_who_reconnects_stays_in_the_audience() {
    let (mut r, now) = room(RoomConfig::default());
    join(&mut r, 2, Role::Speaker, now).unwrap();
    host_does(
        &mut r,
        Action::MoveToAudience {
            target: ParticipantId(2),
        },
        now,
    );
    drop_out(&mut r, 2, now);
    // The token still grants what the invitation said; the store remembers the demotion.
    join(&mut r, 2, Role::Speaker, now).unwrap();
    assert_eq!(r.role(ParticipantId(2)), Some(Role::Listener));
}

#[test]
fn an_unmade_co_host_who_reconnects_is_not_co_host_and_a_promotion_sticks() {
    let (mut r, now) = room(RoomConfig::default());
    join(&mut r, 2, Role::CoHost, now).unwrap();
    host_does(
        &mut r,
        Action::UnmakeCoHost {
            target: ParticipantId(2),
        },
        now,
    );
    drop_out(&mut r, 2, now);
    join(&mut r, 2, Role::CoHost, now).unwrap();
    assert_eq!(r.role(ParticipantId(2)), Some(Role::Speaker));
    join(&mut r, 3, Role::Listener, now).unwrap();
    host_does(
        &mut r,
        Action::MakeCoHost {
            target: ParticipantId(3),
        },
        now,
    );
    drop_out(&mut r, 3, now);
    join(&mut r, 3, Role::Listener, now).unwrap();
    assert_eq!(r.role(ParticipantId(3)), Some(Role::CoHost));
}

#[test]
fn a_removed_person_is_not_stored_and_cannot_come_back() {
    let (mut r, now) = room(RoomConfig::default());
    join(&mut r, 2, Role::Speaker, now).unwrap();
    host_does(
        &mut r,
        Action::Remove {
            target: ParticipantId(2),
        },
        now,
    );
    assert_eq!(r.stored_role(ParticipantId(2)), None);
    assert_eq!(join(&mut r, 2, Role::Speaker, now), Err(RoomError::Removed));
}

#[test]
fn the_old_host_comes_back_after_a_hand_over_as_co_host() {
    let config = RoomConfig {
        host_grace: Duration::from_secs(5),
        ..RoomConfig::default()
    };
    let (mut r, now) = room(config);
    join(&mut r, 2, Role::CoHost, now).unwrap();
    drop_out(&mut r, 1, now);
    let later = now + Duration::from_secs(6);
    r.handle(Input::Tick, later).unwrap();
    assert_eq!(r.role(ParticipantId(2)), Some(Role::Host));
    join(&mut r, 1, Role::Host, later).unwrap();
    assert_eq!(r.role(ParticipantId(1)), Some(Role::CoHost));
    // Someone else claiming the host's role still cannot.
    assert_eq!(
        join(&mut r, 9, Role::Host, later),
        Err(RoomError::HostPresent)
    );
}

#[test]
fn listeners_who_left_are_forgotten_after_the_grace_and_stage_members_are_kept() {
    let config = RoomConfig {
        forget_after: Duration::from_secs(60),
        ..RoomConfig::default()
    };
    let (mut r, now) = room(config);
    for id in 2..10_002 {
        join(&mut r, id, Role::Listener, now).unwrap();
        drop_out(&mut r, id, now);
    }
    join(&mut r, 20_000, Role::Speaker, now).unwrap();
    drop_out(&mut r, 20_000, now);
    assert_eq!(r.stored_role(ParticipantId(5)), Some(Role::Listener));
    let later = now + Duration::from_secs(61);
    assert!(r.poll_timeout().is_some_and(|t| t <= later));
    r.handle(Input::Tick, later).unwrap();
    assert_eq!(r.stored_role(ParticipantId(5)), None);
    assert!(
        (2..10_002).all(|id| r.stored_role(ParticipantId(id)).is_none()),
        "every listener who left is forgotten"
    );
    assert_eq!(r.stored_role(ParticipantId(1)), Some(Role::Host));
    assert_eq!(r.stored_role(ParticipantId(20_000)), Some(Role::Speaker));
}

#[test]
fn a_big_audience_hears_counts_at_most_once_a_second_not_joins() {
    let config = RoomConfig {
        big_audience: 10,
        ..RoomConfig::default()
    };
    let (mut r, now) = room(config);
    for id in 2..260 {
        join(&mut r, id, Role::Listener, now).unwrap();
    }
    let out = drain(&mut r);
    let joins = out
        .iter()
        .filter(|o| matches!(o, Output::Broadcast(Event::Joined { .. })))
        .count();
    let counts = out
        .iter()
        .filter(|o| matches!(o, Output::Broadcast(Event::ListenerCount { .. })))
        .count();
    assert!(joins <= 10, "{joins} joins went out one by one");
    assert!(counts <= 11, "{counts} counts in the same instant");
    let later = now + Duration::from_secs(1);
    assert!(r.poll_timeout().is_some_and(|t| t <= later));
    r.handle(Input::Tick, later).unwrap();
    assert!(
        drain(&mut r).contains(&Output::Broadcast(Event::ListenerCount { count: 258 })),
        "the last count arrives after the interval"
    );
}

#[test]
fn the_audience_reads_in_pages() {
    let (mut r, now) = room(RoomConfig::default());
    for id in 2..27 {
        join(&mut r, id, Role::Listener, now).unwrap();
    }
    let (first, next) = r.audience_page(None, 10);
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].id, ParticipantId(2));
    assert_eq!(next, Some(ParticipantId(11)));
    let (second, _) = r.audience_page(next, 10);
    assert_eq!(second[0].id, ParticipantId(12));
    let (last, end) = r.audience_page(Some(ParticipantId(21)), 10);
    assert_eq!((last.len(), end), (5, None));
}
