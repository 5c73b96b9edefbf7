//! What each action does to the room, once the permissions table allowed the actor's role to try
//! it; rank rules (a moderator acts only on lower ranks) and state rules (a hand must be raised
//! to be approved) are checked here. Pure, like the rest of `room`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    Action, EndReason, Event, HandEntry, Marker, MediaCommand, Output, ParticipantId, Permissions,
    Role, Room, RoomError,
};

fn valid_emoji(e: &str) -> bool {
    !e.is_empty()
        && e.len() <= 16
        && !e
            .chars()
            .any(|c| c.is_ascii_alphanumeric() || c.is_control() || c.is_whitespace())
}

/// Records one more use at `now` if fewer than `limit` fell within the last `window`.
fn within(q: &mut VecDeque<Instant>, now: Instant, window: Duration, limit: u32) -> bool {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        q.pop_front();
    }
    if q.len() >= limit as usize {
        return false;
    }
    q.push_back(now);
    true
}

impl Room {
    pub(super) fn act(
        &mut self,
        from: ParticipantId,
        action: Action,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.removed.contains(&from) {
            return Err(RoomError::Removed);
        }
        let role = self.role(from).ok_or(RoomError::NotInRoom)?;
        let kind = action.kind();
        if !Permissions::allowed(kind, role) {
            return Err(RoomError::NotAllowed {
                action: kind.describe(),
                role,
            });
        }
        match action {
            Action::RaiseHand => self.raise_hand(from, now)?,
            Action::LowerHand => self.lower_hand(from),
            Action::Invite { target } => self.invite(role, target, from)?,
            Action::AcceptInvite => self.accept_invite(from, now)?,
            Action::DeclineInvite => self.decline_invite(from)?,
            Action::Approve { target } => self.approve(target, now)?,
            Action::Deny { target } => self.deny(target)?,
            Action::MoveToAudience { target } => self.move_to_audience(role, target, from, now)?,
            Action::LeaveStage => self.set_role(from, Role::Listener, now),
            Action::Mute { target } => self.mute(role, target, from)?,
            Action::Unmute => self.unmute(from)?,
            Action::MuteSelf => self.set_muted(from, true, from),
            Action::Remove { target } => self.remove(role, target, from, now)?,
            Action::MakeCoHost { target } => self.make_co_host(role, target, from, now)?,
            Action::UnmakeCoHost { target } => self.unmake_co_host(role, target, from, now)?,
            Action::React { emoji } => self.react(from, emoji, now)?,
            Action::MarkMoment { label } => self.mark_moment(from, label.as_deref(), now),
            Action::StartRecording => self.set_recording(true),
            Action::StopRecording => self.set_recording(false),
            Action::End => self.end(EndReason::HostEnded),
            Action::SetName { name } => self.rename(from, &name, now)?,
        }
        Ok(())
    }

    fn has_hand(&self, id: ParticipantId) -> bool {
        self.hands.iter().any(|(x, _)| *x == id)
    }

    fn raise_hand(&mut self, from: ParticipantId, now: Instant) -> Result<(), RoomError> {
        if self.has_hand(from) {
            return Ok(());
        }
        if self.hands.len() >= self.config.hand_queue {
            return Err(RoomError::HandQueueFull);
        }
        let (window, limit) = (self.config.hand_raise_window, self.config.hand_raise_limit);
        let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
        if !within(&mut m.raises, now, window, limit) {
            return Err(RoomError::RateLimited);
        }
        let entry = HandEntry {
            id: from,
            name: m.name.clone(),
            raised_at_ms: self.ms(now),
        };
        self.hands.push_back((from, now));
        self.outputs
            .push_back(Output::ToModerators(Event::HandRaised { entry }));
        Ok(())
    }

    fn lower_hand(&mut self, from: ParticipantId) {
        self.take_hand_down(from);
    }

    fn invite(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
    ) -> Result<(), RoomError> {
        if self.target(role, target, from)? != Role::Listener {
            return Err(RoomError::WrongTarget(
                "only listeners can be invited to speak",
            ));
        }
        self.invited.insert(target);
        self.outputs
            .push_back(Output::To(target, Event::Invited { by: from }));
        Ok(())
    }

    fn accept_invite(&mut self, from: ParticipantId, now: Instant) -> Result<(), RoomError> {
        if !self.invited.contains(&from) {
            return Err(RoomError::NotInvited);
        }
        if self.speakers() >= self.config.max_speakers {
            return Err(RoomError::StageFull);
        }
        self.set_role(from, Role::Speaker, now);
        Ok(())
    }

    fn decline_invite(&mut self, from: ParticipantId) -> Result<(), RoomError> {
        if !self.invited.remove(&from) {
            return Err(RoomError::NotInvited);
        }
        self.outputs
            .push_back(Output::ToModerators(Event::InviteDeclined { id: from }));
        Ok(())
    }

    fn approve(&mut self, target: ParticipantId, now: Instant) -> Result<(), RoomError> {
        if !self.has_hand(target) {
            return Err(RoomError::HandNotRaised);
        }
        if self.speakers() >= self.config.max_speakers {
            return Err(RoomError::StageFull);
        }
        self.set_role(target, Role::Speaker, now);
        Ok(())
    }

    fn deny(&mut self, target: ParticipantId) -> Result<(), RoomError> {
        if !self.has_hand(target) {
            return Err(RoomError::HandNotRaised);
        }
        self.take_hand_down(target);
        self.outputs
            .push_back(Output::To(target, Event::HandDenied { id: target }));
        Ok(())
    }

    fn move_to_audience(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
        now: Instant,
    ) -> Result<(), RoomError> {
        if !self.target(role, target, from)?.on_stage() {
            return Err(RoomError::WrongTarget("they are not on stage"));
        }
        self.set_role(target, Role::Listener, now);
        Ok(())
    }

    fn mute(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
    ) -> Result<(), RoomError> {
        if !self.target(role, target, from)?.on_stage() {
            return Err(RoomError::WrongTarget("only people on stage can be muted"));
        }
        self.set_muted(target, true, from);
        Ok(())
    }

    fn unmute(&mut self, from: ParticipantId) -> Result<(), RoomError> {
        if !self.is_muted(from) {
            return Err(RoomError::WrongTarget(
                "you are not muted (a speaker unmutes only themself)",
            ));
        }
        self.set_muted(from, false, from);
        Ok(())
    }

    fn remove(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
        now: Instant,
    ) -> Result<(), RoomError> {
        self.target(role, target, from)?;
        self.removed.insert(target);
        self.outputs
            .push_back(Output::Broadcast(Event::Removed { id: target }));
        self.outputs
            .push_back(Output::Media(MediaCommand::StopPublishing(target)));
        self.outputs
            .push_back(Output::Media(MediaCommand::Disconnect(target)));
        let was = self.members.remove(&target);
        self.roles.remove(&target);
        self.take_hand_down(target);
        self.invited.remove(&target);
        self.order.retain(|x| *x != target);
        if was.is_some_and(|m| m.role.on_stage()) {
            self.emit_stage();
        }
        self.emit_count(now);
        Ok(())
    }

    fn make_co_host(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.target(role, target, from)? == Role::CoHost {
            return Ok(());
        }
        if self.cohosts() >= self.config.max_cohosts {
            return Err(RoomError::CoHostsFull);
        }
        self.set_role(target, Role::CoHost, now);
        Ok(())
    }

    fn unmake_co_host(
        &mut self,
        role: Role,
        target: ParticipantId,
        from: ParticipantId,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.target(role, target, from)? != Role::CoHost {
            return Err(RoomError::WrongTarget("they are not a co-host"));
        }
        self.set_role(target, Role::Speaker, now);
        Ok(())
    }

    fn react(&mut self, from: ParticipantId, emoji: String, now: Instant) -> Result<(), RoomError> {
        if !valid_emoji(&emoji) {
            return Err(RoomError::InvalidInput("a reaction is one emoji".into()));
        }
        let (window, limit) = (self.config.reaction_window, self.config.reaction_limit);
        let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
        if !within(&mut m.reactions, now, window, limit) {
            return Err(RoomError::RateLimited);
        }
        self.outputs
            .push_back(Output::Broadcast(Event::Reaction { id: from, emoji }));
        Ok(())
    }

    fn mark_moment(&mut self, from: ParticipantId, label: Option<&str>, now: Instant) {
        let n = self.markers.len() + 1;
        let mut label = super::clean_text(label.unwrap_or(""), 80);
        if label.is_empty() {
            label = format!("Moment {n}");
        }
        let marker = Marker {
            at_ms: self.ms(now),
            label,
            by: from,
        };
        self.markers.push(marker.clone());
        self.outputs
            .push_back(Output::Broadcast(Event::Moment(marker)));
    }

    fn set_recording(&mut self, on: bool) {
        if self.recording != on {
            self.recording = on;
            self.outputs
                .push_back(Output::Media(MediaCommand::Recording(on)));
            self.outputs
                .push_back(Output::Broadcast(Event::Recording { on }));
        }
    }

    fn rename(&mut self, from: ParticipantId, name: &str, now: Instant) -> Result<(), RoomError> {
        let name = self.clean_name(name, String::new);
        if name.is_empty() {
            return Err(RoomError::InvalidInput(
                "a name needs a letter or two".into(),
            ));
        }
        let (window, limit) = (self.config.rename_window, self.config.rename_limit);
        let m = self.members.get_mut(&from).ok_or(RoomError::NotInRoom)?;
        if m.name == name {
            return Ok(());
        }
        if !within(&mut m.renames, now, window, limit) {
            return Err(RoomError::RateLimited);
        }
        m.name.clone_from(&name);
        let on_stage = m.role.on_stage();
        self.outputs
            .push_back(Output::Broadcast(Event::Renamed { id: from, name }));
        // Moderators rename the raised hand from `renamed` itself.
        if on_stage {
            self.emit_stage();
        }
        Ok(())
    }

    fn set_muted(&mut self, id: ParticipantId, muted: bool, by: ParticipantId) {
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        if m.muted == muted {
            return;
        }
        m.muted = muted;
        self.outputs
            .push_back(Output::Media(MediaCommand::SetMuted(id, muted)));
        let event = if muted {
            Event::Muted { id, by }
        } else {
            Event::Unmuted { id }
        };
        self.outputs.push_back(Output::Broadcast(event));
        self.emit_stage();
    }
}
