//! The people a room knows: names cleaned at the edge, the role store (the role each person
//! last held, kept while they are away so that reconnecting never undoes a moderator's
//! decision), the forgetting of listeners who left, the audience count sent as a count (at most
//! once per interval) when the room is big, and the audience read page by page.
//!
//! Pure like the rest of `room`: no IO, time is an input.

use std::time::Instant;

use super::{AudienceMember, Event, Output, ParticipantId, Role, Room};

/// Characters a name never shows: controls, and the bidi overrides, embeddings, isolates and
/// marks that let a name reorder the text around it.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `s` as shown to others: hidden characters removed, runs of whitespace made one space,
/// trimmed, and cut to `max` characters.
#[must_use]
pub fn clean_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in s.chars().filter(|c| c.is_whitespace() || !hidden(*c)) {
        if chars >= max {
            break;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            // A space is kept only with something after it.
            if chars + 2 > max {
                break;
            }
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

impl Room {
    /// A name as the room keeps it: cleaned and cut to the room's limit, `fallback` when
    /// nothing is left.
    pub(super) fn clean_name(&self, name: &str, fallback: impl FnOnce() -> String) -> String {
        let cleaned = clean_text(name, self.config.name_chars);
        if cleaned.is_empty() {
            fallback()
        } else {
            cleaned
        }
    }

    /// The role `id` last held in this room, present or away (`None`: never here, removed,
    /// or a listener forgotten since).
    #[must_use]
    pub fn stored_role(&self, id: ParticipantId) -> Option<Role> {
        self.roles.get(&id).copied()
    }

    /// A present person's name.
    #[must_use]
    pub fn name(&self, id: ParticipantId) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.as_str())
    }

    /// People present (stage and audience).
    #[must_use]
    pub fn present(&self) -> usize {
        self.members.len()
    }

    /// Above `big_audience` people, audience joins and leaves go out as counts.
    pub(super) fn is_big(&self) -> bool {
        self.members.len() > self.config.big_audience
    }

    /// A listener left: forgotten after `forget_after` unless they come back.
    pub(super) fn note_gone(&mut self, id: ParticipantId, now: Instant) {
        if self.roles.get(&id) == Some(&Role::Listener) {
            self.gone.push_back((id, now + self.config.forget_after));
        }
    }

    /// Forgets the listeners whose grace ran out and who did not come back; stage members,
    /// co-hosts and the demoted-but-away keep their place in the store only as long as their
    /// stored role is above listener.
    pub(super) fn forget_gone(&mut self, now: Instant) {
        while let Some(&(id, at)) = self.gone.front() {
            if at > now {
                break;
            }
            self.gone.pop_front();
            if !self.members.contains_key(&id) && self.roles.get(&id) == Some(&Role::Listener) {
                self.roles.remove(&id);
            }
        }
    }

    /// When the store next has someone to forget.
    pub(super) fn next_forget(&self) -> Option<Instant> {
        self.gone.front().map(|(_, at)| *at)
    }

    /// Tells everyone the audience count if it changed: at once in a small room, at most once
    /// per `count_interval` in a big one (the rest waits for `Input::Tick`).
    pub(super) fn emit_count(&mut self, now: Instant) {
        if self.listener_count() == self.listeners_announced {
            self.count_due = None;
            return;
        }
        let next = self.count_sent_at.map(|t| t + self.config.count_interval);
        match next {
            Some(at) if self.is_big() && at > now => {
                self.count_due.get_or_insert(at);
            }
            _ => self.flush_count(now),
        }
    }

    /// Sends the count now if one is waiting and due.
    pub(super) fn flush_count_if_due(&mut self, now: Instant) {
        if self.count_due.is_some_and(|at| at <= now) {
            self.flush_count(now);
        }
    }

    fn flush_count(&mut self, now: Instant) {
        self.count_due = None;
        let count = self.listener_count();
        if count != self.listeners_announced {
            self.listeners_announced = count;
            self.count_sent_at = Some(now);
            self.outputs
                .push_back(Output::Broadcast(Event::ListenerCount { count }));
        }
    }

    /// Listeners present with ids above `after`, lowest first, at most `limit`; and the id to
    /// ask the next page after, when there are more.
    #[must_use]
    pub fn audience_page(
        &self,
        after: Option<ParticipantId>,
        limit: usize,
    ) -> (Vec<AudienceMember>, Option<ParticipantId>) {
        let mut ids: Vec<ParticipantId> = self
            .members
            .iter()
            .filter(|(id, m)| m.role == Role::Listener && after.is_none_or(|a| **id > a))
            .map(|(id, _)| *id)
            .collect();
        let more = ids.len() > limit;
        if more {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        let page: Vec<AudienceMember> = ids
            .iter()
            .filter_map(|id| {
                self.members.get(id).map(|m| AudienceMember {
                    id: *id,
                    name: m.name.clone(),
                })
            })
            .collect();
        let next = if more { ids.last().copied() } else { None };
        (page, next)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Action, Input, RoomConfig, RoomError};
    use super::*;

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
        assert_eq!(r.roles.len(), 2, "the host and the away speaker");
        assert!(r.gone.is_empty());
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
}
