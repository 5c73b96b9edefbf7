//! The room as the overlay shows it, kept up to date from the room channel's messages (see the
//! room protocol). Pure: no IO, no drawing; time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::live::RoomNews;
use crate::room::protocol::{EpisodeRef, RoomInfo, ServerMsg};
use crate::room::{EndReason, Event, HandEntry, ParticipantId, Role, StageMember};

/// Someone on stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnStage {
    /// Participant id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Host, co-host or speaker.
    pub role: Role,
    /// Muted by a moderator or themself.
    pub muted: bool,
}

impl From<&StageMember> for OnStage {
    fn from(m: &StageMember) -> Self {
        Self {
            id: m.id.0,
            name: m.name.clone(),
            role: m.role,
            muted: m.muted,
        }
    }
}

/// A raised hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hand {
    /// Participant id.
    pub id: u64,
    /// Name.
    pub name: String,
}

impl From<&HandEntry> for Hand {
    fn from(h: &HandEntry) -> Self {
        Self {
            id: h.id.0,
            name: h.name.clone(),
        }
    }
}

/// A reaction, shown for a few seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// Who sent it.
    pub from: String,
    /// When it arrived.
    pub at: Instant,
}

/// A voice level (0..1) above which someone counts as speaking.
pub const SPEAKING_LEVEL: f32 = 0.12;

/// How long someone still counts as speaking after their level fell: the light does not flicker
/// between words.
pub const SPEAKING_HOLD: Duration = Duration::from_millis(700);

/// Who is speaking: everyone whose level rose above [`SPEAKING_LEVEL`] within the last
/// [`SPEAKING_HOLD`].
#[derive(Clone, Debug, Default)]
pub struct Speaking {
    last_loud: BTreeMap<u64, Instant>,
}

impl Speaking {
    /// Takes in a `levels` message.
    pub fn update(&mut self, levels: &[(ParticipantId, f32)], now: Instant) {
        for &(id, level) in levels {
            if level > SPEAKING_LEVEL {
                self.last_loud.insert(id.0, now);
            }
        }
        self.last_loud
            .retain(|_, at| now.saturating_duration_since(*at) < SPEAKING_HOLD);
    }

    /// Whether `id` is speaking at `now`.
    #[must_use]
    pub fn is_speaking(&self, id: u64, now: Instant) -> bool {
        self.last_loud
            .get(&id)
            .is_some_and(|at| now.saturating_duration_since(*at) < SPEAKING_HOLD)
    }

    /// Everyone speaking at `now`, by id.
    #[must_use]
    pub fn ids(&self, now: Instant) -> Vec<u64> {
        self.last_loud
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) < SPEAKING_HOLD)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// How long a reaction stays on screen.
pub const REACTION_SHOWN: Duration = Duration::from_secs(6);

/// The room, as last heard.
#[derive(Clone, Debug, Default)]
pub struct RoomView {
    /// The host's own participant id.
    pub me: Option<u64>,
    /// Title.
    pub title: String,
    /// Game.
    pub game: String,
    /// When the room started, on this machine's clock.
    pub started: Option<Instant>,
    /// The stage, host first.
    pub stage: Vec<OnStage>,
    /// Raised hands, oldest first.
    pub hands: Vec<Hand>,
    /// Everyone in the room's channel who is not on stage, by id.
    pub audience: BTreeMap<u64, String>,
    /// People on the room channel in the audience.
    pub listener_count: u64,
    /// Players listening (WHEP sessions: browsers, WHEP players, `booth listen`).
    pub listening: u64,
    /// Who is speaking.
    pub speaking: Speaking,
    /// The time of the last [`RoomView::apply`] or [`RoomView::expire`]: what "now" is when
    /// drawing.
    pub now: Option<Instant>,
    /// Recent reactions, newest last.
    pub reactions: Vec<Reaction>,
    /// Moments marked so far.
    pub moments: u32,
    /// The room is being recorded.
    pub recording: bool,
    /// The episode the room records into.
    pub episode: Option<EpisodeRef>,
    /// The host's connection is away (grace period running).
    pub host_away: bool,
    /// The room has ended, and why.
    pub ended: Option<String>,
}

/// The error code the server sends moderators when a recording's write failed.
pub const RECORDING_FAILED: &str = "recording_failed";

/// What the window should tell the user about room news, besides updating the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomNotice {
    /// Nothing to say.
    Nothing,
    /// The room refused something (`message`).
    Refused(String),
    /// The recording stopped because a write failed (disk full, permissions); the room goes
    /// on unrecorded. The server's reason.
    RecordingFailed(String),
    /// An invitation link for a role.
    InviteLink {
        /// Co-host or speaker.
        role: Role,
        /// The link.
        link: String,
    },
}

impl RoomView {
    /// Takes in one piece of room news.
    pub fn apply(&mut self, news: &RoomNews, now: Instant) -> RoomNotice {
        self.now = Some(now);
        match news {
            RoomNews::Said(said) => self.take(said, now),
            RoomNews::InviteLink { role, link } => RoomNotice::InviteLink {
                role: *role,
                link: link.clone(),
            },
            RoomNews::InviteRefused(why) => RoomNotice::Refused(why.clone()),
        }
    }

    fn take(&mut self, said: &ServerMsg, now: Instant) -> RoomNotice {
        match said {
            ServerMsg::Welcome { you, room } => self.welcome(you.id, room, now),
            ServerMsg::Audience { listening } => self.listening = *listening as u64,
            ServerMsg::Episode(episode) => self.episode = Some(episode.clone()),
            ServerMsg::Error { code, message, .. } if code == RECORDING_FAILED => {
                self.recording = false;
                return RoomNotice::RecordingFailed(message.clone());
            }
            ServerMsg::Error { message, .. } => return RoomNotice::Refused(message.clone()),
            ServerMsg::Event(event) => self.event(event, now),
            ServerMsg::Allowed { .. } | ServerMsg::Ok { .. } | ServerMsg::Pong { .. } => {}
        }
        RoomNotice::Nothing
    }

    fn welcome(&mut self, me: ParticipantId, info: &RoomInfo, now: Instant) {
        *self = Self::default();
        self.now = Some(now);
        self.me = Some(me.0);
        let room = &info.room;
        self.title.clone_from(&room.title);
        self.game.clone_from(&room.game);
        let elapsed = Duration::from_millis(room.elapsed_ms);
        self.started = now.checked_sub(elapsed).or(Some(now));
        self.stage = room.stage.iter().map(OnStage::from).collect();
        self.hands = room.hand_queue.iter().flatten().map(Hand::from).collect();
        self.listener_count = room.listener_count as u64;
        self.listening = info.listening as u64;
        self.recording = room.recording;
        self.episode.clone_from(&info.episode);
        self.host_away = room.host_away;
        for m in &room.audience {
            self.audience.insert(m.id.0, m.name.clone());
        }
    }

    fn event(&mut self, event: &Event, now: Instant) {
        match event {
            Event::StageChanged { stage } => {
                self.stage = stage.iter().map(OnStage::from).collect();
                for m in &self.stage {
                    self.audience.remove(&m.id);
                }
            }
            Event::HandQueue { queue } => self.hands = queue.iter().map(Hand::from).collect(),
            Event::HandRaised { entry } => {
                self.hands.retain(|h| h.id != entry.id.0);
                self.hands.push(Hand::from(entry));
            }
            Event::HandLowered { id } => self.hands.retain(|h| h.id != id.0),
            Event::ListenerCount { count } => self.listener_count = *count as u64,
            Event::Levels { levels } => self.speaking.update(levels, now),
            Event::Joined { id, name, role } => {
                if *role == Role::Listener {
                    self.audience.insert(id.0, name.clone());
                }
            }
            Event::Left { id } | Event::Removed { id } => {
                self.audience.remove(&id.0);
                self.hands.retain(|h| h.id != id.0);
            }
            Event::RoleChanged { id, role } => {
                if *role == Role::Listener {
                    let name = self.name_of(id.0);
                    self.audience.insert(id.0, name);
                }
            }
            Event::Renamed { id, name } => self.renamed(id.0, name),
            Event::Reaction { id, emoji } => self.reacted(id.0, emoji, now),
            Event::Moment(_) => self.moments += 1,
            Event::Recording { on } => self.recording = *on,
            Event::HostAway { .. } => self.host_away = true,
            Event::HostBack | Event::HostChanged { .. } => self.host_away = false,
            Event::Ended { reason } => {
                self.ended = Some(match reason {
                    EndReason::HostGone => "the host was gone too long".to_owned(),
                    EndReason::HostEnded => "the host ended the room".to_owned(),
                    EndReason::Unused => "nobody used the room, so it closed".to_owned(),
                });
            }
            Event::Invited { .. }
            | Event::InviteDeclined { .. }
            | Event::HandDenied { .. }
            | Event::Muted { .. }
            | Event::Unmuted { .. } => {}
        }
    }

    fn renamed(&mut self, id: u64, name: &str) {
        if let Some(m) = self.stage.iter_mut().find(|m| m.id == id) {
            name.clone_into(&mut m.name);
        }
        if let Some(h) = self.hands.iter_mut().find(|h| h.id == id) {
            name.clone_into(&mut h.name);
        }
        if let Some(a) = self.audience.get_mut(&id) {
            name.clone_into(a);
        }
    }

    fn reacted(&mut self, id: u64, emoji: &str, now: Instant) {
        let from = self.name_of(id);
        self.reactions.push(Reaction {
            emoji: emoji.to_owned(),
            from,
            at: now,
        });
        if self.reactions.len() > 12 {
            self.reactions.remove(0);
        }
    }

    /// A participant's name, from whatever list they are in.
    #[must_use]
    pub fn name_of(&self, id: u64) -> String {
        self.stage
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.name.clone())
            .or_else(|| {
                self.hands
                    .iter()
                    .find(|h| h.id == id)
                    .map(|h| h.name.clone())
            })
            .or_else(|| self.audience.get(&id).cloned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("#{id}"))
    }

    /// Whether someone on stage is speaking now.
    #[must_use]
    pub fn is_speaking(&self, id: u64) -> bool {
        self.now
            .is_some_and(|now| self.speaking.is_speaking(id, now))
    }

    /// Names of the people speaking now.
    #[must_use]
    pub fn speaking(&self) -> Vec<String> {
        self.stage
            .iter()
            .filter(|m| self.is_speaking(m.id) && !m.muted)
            .map(|m| m.name.clone())
            .collect()
    }

    /// Drops reactions older than [`REACTION_SHOWN`].
    pub fn expire(&mut self, now: Instant) {
        self.now = Some(now);
        self.reactions
            .retain(|r| now.saturating_duration_since(r.at) < REACTION_SHOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server would send, read back as the overlay reads it.
    fn said(json: &str) -> RoomNews {
        RoomNews::Said(ServerMsg::parse(json).unwrap())
    }

    #[test]
    fn a_welcome_then_a_raised_hand_then_the_stage() {
        let now = Instant::now();
        let mut v = RoomView::default();
        v.apply(
            &said(
                r#"{"type": "welcome", "you": {"id": 1, "role": "host", "name": "Host", "token": "p1.x"},
                "room": {"id": "r", "title": "T", "game": "G", "elapsed_ms": 5000, "stage": [
                    {"id": 1, "name": "Host", "role": "host", "muted": false}],
                    "hand_queue": [], "listener_count": 0, "recording": true, "ended": false,
                    "host_away": false, "listening": 0, "live": true,
                    "audience": [{"id": 2, "name": "Ada"}]}}"#,
            ),
            now,
        );
        assert_eq!(v.me, Some(1));
        assert!(v.recording);
        assert_eq!(v.audience.get(&2).map(String::as_str), Some("Ada"));
        v.apply(
            &said(
                r#"{"type": "hand_queue", "queue": [{"id": 2, "name": "Ada", "raised_at_ms": 9}]}"#,
            ),
            now,
        );
        assert_eq!(v.hands.len(), 1);
        v.apply(
            &said(
                r#"{"type": "hand_raised", "entry": {"id": 3, "name": "Bo", "raised_at_ms": 12}}"#,
            ),
            now,
        );
        assert_eq!(v.hands.iter().map(|h| h.id).collect::<Vec<_>>(), [2, 3]);
        v.apply(&said(r#"{"type": "hand_lowered", "id": 3}"#), now);
        v.apply(&said(r#"{"type": "listener_count", "count": 250}"#), now);
        assert_eq!((v.hands.len(), v.listener_count), (1, 250));
        v.apply(
            &said(
                r#"{"type": "stage_changed", "stage": [
                {"id": 1, "name": "Host", "role": "host", "muted": false},
                {"id": 2, "name": "Ada", "role": "speaker", "muted": false}]}"#,
            ),
            now,
        );
        assert!(!v.audience.contains_key(&2));
        assert_eq!(v.stage[1].role, Role::Speaker);
        v.apply(&said(r#"{"type": "levels", "levels": [[2, 0.8]]}"#), now);
        assert_eq!(v.speaking(), vec!["Ada".to_owned()]);
        assert_eq!(
            v.apply(
                &said(r#"{"type": "error", "code": "stage_full", "message": "the stage is full"}"#),
                now
            ),
            RoomNotice::Refused("the stage is full".into())
        );
    }

    #[test]
    fn a_failed_recording_is_its_own_notice_and_turns_recording_off() {
        let now = Instant::now();
        let mut v = RoomView {
            recording: true,
            ..RoomView::default()
        };
        let notice = v.apply(
            &said(
                r#"{"type": "error", "code": "recording_failed", "message": "recording stopped: No space left on device"}"#,
            ),
            now,
        );
        assert_eq!(
            notice,
            RoomNotice::RecordingFailed("recording stopped: No space left on device".into())
        );
        assert!(!v.recording);
    }

    #[test]
    fn junk_never_reaches_the_view() {
        for junk in [
            "null",
            r#"{"type": "stage_changed", "stage": "nope"}"#,
            r#"{"type": "levels", "levels": [[], [1], ["x", 2]]}"#,
            r#"{"type": "welcome"}"#,
            r#"{"type": 7}"#,
        ] {
            assert!(ServerMsg::parse(junk).is_err(), "{junk}");
        }
    }
}
