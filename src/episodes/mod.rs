//! The show and its episodes: every recorded room becomes a podcast episode.
//!
//! The model ([`Show`], [`Episode`], [`Chapter`], [`Person`]) is what the database (`store`)
//! keeps, what rendering (`render`: the program normalised to -16 LUFS in one pass, MP3 with ID3
//! chapters, the Podcasting 2.0 chapters file) makes files of, and what the feed (`feed`) and the
//! server's pages show. No HTTP here, and nothing of the room's task: `server` records, and serves
//! what this module makes.

pub mod cover;
pub mod feed;
pub mod id3;
pub mod manage;
pub mod publish;
pub mod render;
pub mod store;

use serde::{Deserialize, Serialize};

/// Where an episode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its room is live and recording.
    Recording,
    /// The room ended; the MP3 and chapters are being made.
    Rendering,
    /// In the feed and on the episode pages.
    Published,
    /// Rendered, kept, but not in the feed nor listed (its page still answers its link).
    Unlisted,
    /// Rendering failed; `Episode::error` says why.
    Failed,
}

impl Status {
    /// The word the database, the API and the command line use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Rendering => "rendering",
            Self::Published => "published",
            Self::Unlisted => "unlisted",
            Self::Failed => "failed",
        }
    }

    /// The status named by [`Status::as_str`].
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Recording,
            Self::Rendering,
            Self::Published,
            Self::Unlisted,
            Self::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A chapter: a marked moment, on the program's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chapter {
    /// From the start of the episode's audio, ms.
    pub start_ms: u64,
    /// Its label.
    pub title: String,
}

/// Someone who spoke in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The name shown in the room.
    pub name: String,
    /// `host`, `co_host` or `speaker` (the highest role they had on stage).
    pub role: String,
}

/// A stage member's own track (their voice as received, on the program's timeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// Whose voice.
    pub name: String,
    /// The Ogg Opus file, relative to the episode's directory.
    pub file: String,
}

/// An episode's files, relative to its directory (`EPISODES_DIR/<id>/` under the data
/// directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// The program as recorded (Ogg Opus), the feed's alternate enclosure.
    pub program: String,
    /// Its size in bytes, once finished.
    pub program_bytes: Option<u64>,
    /// The rendition podcast apps play.
    pub mp3: Option<String>,
    /// Its exact size in bytes (the enclosure's length).
    pub mp3_bytes: Option<u64>,
    /// The Podcasting 2.0 JSON chapters file.
    pub chapters: Option<String>,
    /// One per stage member.
    pub tracks: Vec<Track>,
}

/// One recorded room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Its number in this show (never reused).
    pub id: i64,
    /// Its feed guid: stable for ever, whatever is renamed.
    pub guid: String,
    /// The room it was recorded in.
    pub room: String,
    /// Title (the room's title unless renamed).
    pub title: String,
    /// Description: what the room was about, its game, who spoke.
    pub description: String,
    /// The game played, when the host said.
    pub game: Option<String>,
    /// When recording started, ms since the Unix epoch.
    pub started_ms: i64,
    /// Length of its audio, ms.
    pub duration_ms: u64,
    /// Where it stands.
    pub status: Status,
    /// The server stopped while it recorded (a crash): the files were repaired and the end is
    /// missing.
    pub cut_short: bool,
    /// Its files.
    pub files: Files,
    /// Its chapters, the start first.
    pub chapters: Vec<Chapter>,
    /// Who spoke.
    pub people: Vec<Person>,
    /// The program's integrated loudness measured while recording, LUFS (rendering's gain).
    pub loudness_lufs: Option<f64>,
    /// Why rendering failed, or why recording stopped early.
    pub error: Option<String>,
}

/// The show every episode belongs to: set in the server's config file and on the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Show {
    /// The podcast's title.
    pub title: String,
    /// Who makes it (`itunes:author`, `itunes:owner`'s name).
    pub author: String,
    /// The owner's email (`itunes:owner`).
    pub email: String,
    /// What it is about.
    pub description: String,
    /// An RFC 5646 language tag (`en`, `fr-CA`).
    pub language: String,
    /// An Apple Podcasts category (`Leisure`, or `Leisure/Video Games`).
    pub category: String,
    /// `itunes:explicit`.
    pub explicit: bool,
    /// A square JPEG or PNG of 1400-3000 px; none: Booth draws a plain cover from the title.
    pub artwork: Option<std::path::PathBuf>,
    /// The public base URL the feed's links are made from (default: the server's own).
    pub public_url: Option<String>,
}

impl Default for Show {
    fn default() -> Self {
        Self {
            title: "Booth Live".into(),
            author: "Booth".into(),
            email: String::new(),
            description: "Live rooms recorded with Booth.".into(),
            language: "en".into(),
            category: "Leisure/Video Games".into(),
            explicit: false,
            artwork: None,
            public_url: None,
        }
    }
}

/// Where episodes live under the data directory.
pub const EPISODES_DIR: &str = "episodes";

/// A time as ISO 8601 in UTC with milliseconds (`2026-11-03T19:04:05.123Z`): the feed's live
/// items, the pages, the ID3 date (its first 19 characters) and `booth episodes` all read it.
#[must_use]
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A UUID's 16 bytes in its usual text form (`8-4-4-4-12` hex digits).
#[must_use]
pub fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
