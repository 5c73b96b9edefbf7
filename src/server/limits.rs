//! What one server lets any one client, address and room take: the limits an operator sets in
//! `booth serve --config FILE` (its `[limits]` table) or with `--limit NAME=VALUE`, with defaults
//! that are safe on the public internet and roomy for a real audience.
//!
//! Plain data: nothing here does IO except [`Limits::load`] reading the config file.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every limit of one server. Field names are the names `--limit` and the config file use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Limits {
    // --- rooms ---
    /// Rooms open at once on the server (creation beyond it: 503).
    pub max_rooms: usize,
    /// Rooms one address may create in a burst...
    pub room_creations_burst: u32,
    /// ...and then per hour (429 beyond it).
    pub room_creations_per_hour: u32,
    /// When set, `POST /api/rooms` needs this key (`Authorization: Bearer KEY`): a public
    /// server private to its owner.
    pub room_key: Option<String>,
    /// A room whose host never connects ends after this many seconds.
    pub host_absent_secs: u64,
    /// A room with nobody connected (no WebSocket, no media session, no stream reader) ends
    /// after this many seconds.
    pub idle_secs: u64,

    // --- WebRTC sessions (WHIP/WHEP) ---
    /// Sessions in one room, connected or not.
    pub sessions_per_room: usize,
    /// Sessions in one room still connecting (ICE/DTLS not done).
    pub pending_sessions_per_room: usize,
    /// Sessions one address may hold across the server.
    pub sessions_per_address: usize,
    /// Sessions one address may have still connecting across the server.
    pub pending_sessions_per_address: usize,
    /// Trickled ICE candidates kept per session (ICE-lite needs none; extra are ignored).
    pub candidates_per_session: usize,

    // --- people and the room channel ---
    /// A name (hello, `set_name`) is cut to this many characters.
    pub name_chars: usize,
    /// Raised hands kept in a room's queue.
    pub hand_queue: usize,
    /// Room-channel messages one WebSocket may send per second (a short burst of twice this
    /// is let through; a client far beyond it is disconnected).
    pub ws_messages_per_sec: u32,
    /// Room-channel WebSockets one address may hold across the server.
    pub ws_per_address: usize,
    /// Above this many people in a room, joins and leaves go out as counts, at most once a
    /// second, instead of one event per person.
    pub big_audience: usize,
    /// People listed per page of `GET /api/rooms/{id}`'s audience.
    pub audience_page: usize,
    /// An invitation link works for this many seconds.
    pub invite_secs: u64,

    // --- HTTP ---
    /// TCP connections open at once (streams and WebSockets included).
    pub max_connections: usize,
    /// TCP connections one address may hold.
    pub connections_per_address: usize,
    /// A request's headers must arrive within this many seconds.
    pub header_timeout_secs: u64,
    /// An ordinary request (not a stream or a WebSocket) must be answered within this many
    /// seconds.
    pub request_timeout_secs: u64,
    /// When set, `/metrics` needs `Authorization: Bearer TOKEN`.
    pub metrics_token: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (the client address the limits
    /// above count by). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rooms: 200,
            room_creations_burst: 10,
            room_creations_per_hour: 30,
            room_key: None,
            host_absent_secs: 600,
            idle_secs: 1800,
            sessions_per_room: 2000,
            pending_sessions_per_room: 200,
            sessions_per_address: 64,
            pending_sessions_per_address: 16,
            candidates_per_session: 8,
            name_chars: 40,
            hand_queue: 100,
            ws_messages_per_sec: 20,
            ws_per_address: 32,
            big_audience: 200,
            audience_page: 100,
            invite_secs: 24 * 3600,
            max_connections: 20_000,
            connections_per_address: 256,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            metrics_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A config file or a `--limit` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML Booth understands.
    #[error("the config file {path} is not valid: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, from the parser.
        message: String,
    },
    /// A `--limit NAME=VALUE` that is malformed, names no limit, or has a value of the wrong
    /// kind.
    #[error("--limit {given}: {message} (see `booth serve --help` for the names)")]
    Flag {
        /// What was given.
        given: String,
        /// What is wrong.
        message: String,
    },
}

/// The parts of `booth serve --config FILE` that are Booth's (other tables are refused, so a
/// typo is noticed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    limits: Limits,
}

impl Limits {
    /// The `[limits]` table of a TOML config file, defaults for what it leaves out.
    ///
    /// # Errors
    /// The file cannot be read or is not valid.
    pub fn load(path: &Path) -> Result<Self, LimitsError> {
        let text = std::fs::read_to_string(path).map_err(|source| LimitsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str::<ConfigFile>(&text)
            .map(|c| c.limits)
            .map_err(|e| LimitsError::File {
                path: path.display().to_string(),
                message: e.message().to_owned(),
            })
    }

    /// Sets one limit from `NAME=VALUE` (a TOML value: `max_rooms=50`, `room_key="s3cret"`,
    /// `trusted_proxies=["127.0.0.1"]`; a bare word is taken as a string).
    ///
    /// # Errors
    /// Not `NAME=VALUE`, no such limit, or a value of the wrong kind.
    pub fn set(&mut self, given: &str) -> Result<(), LimitsError> {
        let flag = |message: String| LimitsError::Flag {
            given: redact(given),
            message,
        };
        let (name, value) = given
            .split_once('=')
            .ok_or_else(|| flag("expected NAME=VALUE".into()))?;
        let name = name.trim();
        let value = value.trim();
        let mut table = toml::Table::try_from(&*self).map_err(|e| flag(e.to_string()))?;
        if !table.contains_key(name) && !Self::optional(name) {
            return Err(flag(format!("there is no limit called '{name}'")));
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        table.insert(name.to_owned(), parsed);
        *self = table
            .try_into()
            .map_err(|e: toml::de::Error| flag(e.message().to_owned()))?;
        Ok(())
    }

    /// Limits that are absent from the serialised table while unset.
    fn optional(name: &str) -> bool {
        matches!(name, "room_key" | "metrics_token")
    }

    /// [`Self::host_absent_secs`] as a duration.
    #[must_use]
    pub fn host_absent(&self) -> Duration {
        Duration::from_secs(self.host_absent_secs)
    }

    /// [`Self::idle_secs`] as a duration.
    #[must_use]
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_secs)
    }

    /// [`Self::invite_secs`] as a duration.
    #[must_use]
    pub fn invite_ttl(&self) -> Duration {
        Duration::from_secs(self.invite_secs)
    }

    /// [`Self::header_timeout_secs`] as a duration.
    #[must_use]
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// [`Self::request_timeout_secs`] as a duration.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}

/// A secret given on the command line is never echoed back in an error.
fn redact(given: &str) -> String {
    match given.split_once('=') {
        Some((name, _)) if LimitsError::is_secret(name.trim()) => format!("{}=…", name.trim()),
        _ => given.to_owned(),
    }
}

impl LimitsError {
    fn is_secret(name: &str) -> bool {
        matches!(name, "room_key" | "metrics_token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_sets_numbers_strings_and_lists_and_refuses_unknown_names() {
        let mut l = Limits::default();
        l.set("max_rooms=5").unwrap();
        l.set("room_key=s3cret").unwrap();
        l.set("metrics_token=\"m\"").unwrap();
        l.set("trusted_proxies=[\"127.0.0.1\"]").unwrap();
        assert_eq!(l.max_rooms, 5);
        assert_eq!(l.room_key.as_deref(), Some("s3cret"));
        assert_eq!(l.metrics_token.as_deref(), Some("m"));
        assert_eq!(l.trusted_proxies, vec![IpAddr::from([127, 0, 0, 1])]);
        assert!(
            l.set("max_roms=5")
                .unwrap_err()
                .to_string()
                .contains("max_roms")
        );
        assert!(l.set("max_rooms=many").is_err());
        assert!(l.set("max_rooms").is_err());
        let e = l.set("room_key=[1]").unwrap_err().to_string();
        assert!(!e.contains("[1]"), "{e}");
    }

    #[test]
    fn a_config_file_sets_what_it_names_and_refuses_typos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("booth.toml");
        std::fs::write(&path, "[limits]\nmax_rooms = 3\nidle_secs = 60\n").unwrap();
        let l = Limits::load(&path).unwrap();
        assert_eq!((l.max_rooms, l.idle_secs), (3, 60));
        assert_eq!(l.hand_queue, Limits::default().hand_queue);
        std::fs::write(&path, "[limits]\nmax_room = 3\n").unwrap();
        assert!(Limits::load(&path).is_err());
        std::fs::write(&path, "[limitz]\n").unwrap();
        assert!(Limits::load(&path).is_err());
    }
}
