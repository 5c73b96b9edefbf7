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
