//! The room as the overlay shows it, kept up to date from the room channel's messages (see the
//! room protocol). Pure: no IO, no drawing; time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// Someone on stage.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OnStage {
    /// Participant id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `host`, `co_host` or `speaker`.
    #[serde(default)]
    pub role: String,
    /// Muted by a moderator or themself.
    #[serde(default)]
    pub muted: bool,
}

/// A raised hand.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Hand {
    /// Participant id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
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
    pub fn update(&mut self, v: &Value, now: Instant) {
        for pair in v["levels"].as_array().into_iter().flatten() {
            if let (Some(id), Some(level)) = (pair[0].as_u64(), pair[1].as_f64())
                && level > f64::from(SPEAKING_LEVEL)
            {
                self.last_loud.insert(id, now);
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
    /// The host's connection is away (grace period running).
    pub host_away: bool,
    /// The room has ended, and why.
    pub ended: Option<String>,
}

/// What the window should tell the user about a message, besides updating the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Nothing to say.
    Nothing,
    /// The room refused something (`message`).
    Refused(String),
    /// An invitation link for a role.
    InviteLink {
        /// `co_host` or `speaker`.
        role: String,
        /// The link.
        link: String,
    },
}

fn parse<T: for<'de> Deserialize<'de>>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

impl RoomView {
    /// Takes in one message from the room channel.
    pub fn apply(&mut self, v: &Value, now: Instant) -> Heard {
        self.now = Some(now);
        let id = v.get("id").and_then(Value::as_u64);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "welcome" => {
                *self = Self::default();
                self.me = v["you"]["id"].as_u64();
                let room = &v["room"];
                self.title = room["title"].as_str().unwrap_or("").to_owned();
                self.game = room["game"].as_str().unwrap_or("").to_owned();
                let elapsed = Duration::from_millis(room["elapsed_ms"].as_u64().unwrap_or(0));
                self.started = now.checked_sub(elapsed).or(Some(now));
                self.stage = parse(&room["stage"]).unwrap_or_default();
                self.hands = parse(&room["hand_queue"]).unwrap_or_default();
                self.listener_count = room["listener_count"].as_u64().unwrap_or(0);
                self.recording = room["recording"].as_bool().unwrap_or(false);
                self.host_away = room["host_away"].as_bool().unwrap_or(false);
                if let Some(a) = room["audience"].as_array() {
                    for m in a {
                        if let Some(id) = m["id"].as_u64() {
                            self.audience
                                .insert(id, m["name"].as_str().unwrap_or("").to_owned());
                        }
                    }
                }
            }
            "stage_changed" => {
                self.stage = parse(&v["stage"]).unwrap_or_default();
                for m in &self.stage {
                    self.audience.remove(&m.id);
                }
            }
            "hand_queue" => self.hands = parse(&v["queue"]).unwrap_or_default(),
            "listener_count" => self.listener_count = v["count"].as_u64().unwrap_or(0),
            "audience" => self.listening = v["listening"].as_u64().unwrap_or(0),
            "levels" => self.speaking.update(v, now),
            "joined" => {
                if let Some(id) = id
                    && v["role"].as_str().is_none_or(|r| r == "listener")
                {
                    self.audience
                        .insert(id, v["name"].as_str().unwrap_or("").to_owned());
                }
            }
            "left" | "removed" => {
                if let Some(id) = id {
                    self.audience.remove(&id);
                    self.hands.retain(|h| h.id != id);
                }
            }
            "role_changed" => {
                if let (Some(id), Some("listener")) = (id, v["role"].as_str()) {
                    let name = self.name_of(id);
                    self.audience.insert(id, name);
                }
            }
            "renamed" => {
                if let Some(id) = id {
                    let name = v["name"].as_str().unwrap_or("").to_owned();
                    if let Some(m) = self.stage.iter_mut().find(|m| m.id == id) {
                        m.name.clone_from(&name);
                    }
                    if let Some(h) = self.hands.iter_mut().find(|h| h.id == id) {
                        h.name.clone_from(&name);
                    }
                    if let Some(a) = self.audience.get_mut(&id) {
                        *a = name;
                    }
                }
            }
            "reaction" => {
                let from = id.map(|i| self.name_of(i)).unwrap_or_default();
                self.reactions.push(Reaction {
                    emoji: v["emoji"].as_str().unwrap_or("").to_owned(),
                    from,
                    at: now,
                });
                if self.reactions.len() > 12 {
                    self.reactions.remove(0);
                }
            }
            "moment" => self.moments += 1,
            "recording" => self.recording = v["on"].as_bool().unwrap_or(false),
            "host_away" => self.host_away = true,
            "host_back" | "host_changed" => self.host_away = false,
            "ended" => {
                self.ended = Some(match v["reason"].as_str() {
                    Some("host_gone") => "the host was gone too long".to_owned(),
                    _ => "the host ended the room".to_owned(),
                });
            }
            "error" => {
                return Heard::Refused(
                    v["message"]
                        .as_str()
                        .unwrap_or("the room refused that")
                        .to_owned(),
                );
            }
            "invite_link" => {
                return Heard::InviteLink {
                    role: v["role"].as_str().unwrap_or("").to_owned(),
                    link: v["link"].as_str().unwrap_or("").to_owned(),
                };
            }
            _ => {}
        }
        Heard::Nothing
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
    use serde_json::json;

    #[test]
    fn a_welcome_then_a_raised_hand_then_the_stage() {
        let now = Instant::now();
        let mut v = RoomView::default();
        v.apply(
            &json!({"type": "welcome", "you": {"id": 1, "role": "host"},
                "room": {"title": "T", "game": "G", "elapsed_ms": 5000, "stage": [
                    {"id": 1, "name": "Host", "role": "host", "muted": false}],
                    "hand_queue": [], "listener_count": 0, "recording": true,
                    "audience": [{"id": 2, "name": "Ada"}]}}),
            now,
        );
        assert_eq!(v.me, Some(1));
        assert!(v.recording);
        assert_eq!(v.audience.get(&2).map(String::as_str), Some("Ada"));
        v.apply(
            &json!({"type": "hand_queue", "queue": [{"id": 2, "name": "Ada", "raised_at_ms": 9}]}),
            now,
        );
        assert_eq!(v.hands.len(), 1);
        v.apply(
            &json!({"type": "stage_changed", "stage": [
            {"id": 1, "name": "Host", "role": "host", "muted": false},
            {"id": 2, "name": "Ada", "role": "speaker", "muted": false}]}),
            now,
        );
        assert!(!v.audience.contains_key(&2));
        v.apply(&json!({"type": "levels", "levels": [[2, 0.8]]}), now);
        assert_eq!(v.speaking(), vec!["Ada".to_owned()]);
        assert_eq!(
            v.apply(
                &json!({"type": "error", "message": "the stage is full"}),
                now
            ),
            Heard::Refused("the stage is full".into())
        );
    }

    #[test]
    fn junk_messages_change_nothing_and_never_panic() {
        let now = Instant::now();
        let mut v = RoomView::default();
        for junk in [
            json!(null),
            json!({"type": "stage_changed", "stage": "nope"}),
            json!({"type": "levels", "levels": [[], [1], ["x", 2]]}),
            json!({"type": "welcome"}),
            json!({"type": 7}),
        ] {
            v.apply(&junk, now);
        }
        assert!(v.stage.is_empty());
    }
}
