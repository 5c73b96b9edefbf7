//! `booth episodes`: the show's episodes managed on a data directory, with or without a server
//! running on it (the database is shared safely). Each function does one command and returns
//! what to print.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::store::{Store, StoreError};
use super::{Episode, Show, Status};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such episode.
    #[error("there is no episode {0} (`booth episodes list` shows them)")]
    NoSuchEpisode(i64),
    /// It cannot be published or unlisted yet.
    #[error("episode {id} is {status}: only a rendered episode can be published or unlisted")]
    NotRendered {
        /// The episode.
        id: i64,
        /// Where it stands.
        status: &'static str,
    },
    /// A file could not be exported.
    #[error("cannot export to {path}: {source}")]
    Export {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The show's config file.
    #[error("the show's config {path}: {why}")]
    ShowConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Reads a show's TOML config file (every field optional: `title`, `author`, `email`,
/// `description`, `language`, `category`, `explicit`, `artwork`, `public_url`).
///
/// # Errors
/// The file cannot be read or is not such a TOML file.
pub fn load_show(path: &Path) -> Result<Show, ManageError> {
    let bad = |why: String| ManageError::ShowConfig {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    toml::from_str(&text).map_err(|e| bad(e.to_string()))
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn date(ms: i64) -> String {
    let iso = super::iso8601(ms);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

/// `booth episodes list`: one line per episode, newest first.
///
/// # Errors
/// The database.
pub fn list(store: &Store) -> Result<String, ManageError> {
    let episodes = store.list()?;
    if episodes.is_empty() {
        return Ok("no episodes yet: rooms recorded as episodes appear here\n".into());
    }
    let mut out = format!(
        "{:>4}  {:<10} {:<20} {:>8}  {}\n",
        "id", "status", "recorded", "length", "title"
    );
    for e in &episodes {
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:<20} {:>8}  {}{}",
            e.id,
            e.status.as_str(),
            date(e.started_ms),
            duration(e.duration_ms),
            e.title,
            if e.cut_short { " (cut short)" } else { "" }
        );
    }
    Ok(out)
}

/// `booth episodes show ID`: everything about one episode.
///
/// # Errors
/// The database, or no such episode.
pub fn show(store: &Store, id: i64) -> Result<String, ManageError> {
    let e = get(store, id)?;
    let mut out = String::new();
    let _ = writeln!(out, "episode {}: {}", e.id, e.title);
    let _ = writeln!(out, "  status:      {}", e.status.as_str());
    let _ = writeln!(out, "  recorded:    {}", date(e.started_ms));
    let _ = writeln!(out, "  length:      {}", duration(e.duration_ms));
    let _ = writeln!(out, "  guid:        {}", e.guid);
    let _ = writeln!(out, "  room:        {}", e.room);
    if e.cut_short {
        let _ = writeln!(out, "  cut short:   the server stopped while it recorded");
    }
    if let Some(err) = &e.error {
        let _ = writeln!(out, "  note:        {err}");
    }
    if let Some(l) = e.loudness_lufs {
        let _ = writeln!(out, "  loudness:    {l:.1} LUFS as recorded");
    }
    let _ = writeln!(out, "  description: {}", e.description);
    for c in &e.chapters {
        let _ = writeln!(out, "  chapter {:>8}  {}", duration(c.start_ms), c.title);
    }
    for p in &e.people {
        let _ = writeln!(out, "  on stage:    {} ({})", p.name, p.role);
    }
    let dir = store.episode_dir(e.id);
    for f in files(&e) {
        let _ = writeln!(out, "  file:        {}", dir.join(f).display());
    }
    Ok(out)
}

fn get(store: &Store, id: i64) -> Result<Episode, ManageError> {
    store.get(id)?.ok_or(ManageError::NoSuchEpisode(id))
}

fn files(e: &Episode) -> Vec<&str> {
    let mut f = vec![e.files.program.as_str()];
    f.extend(e.files.mp3.as_deref());
    f.extend(e.files.chapters.as_deref());
    f.extend(e.files.tracks.iter().map(|t| t.file.as_str()));
    f
}

/// `booth episodes publish|unlist ID`.
///
/// # Errors
/// The database, no such episode, or one not rendered yet.
pub fn set_status(store: &Store, id: i64, status: Status) -> Result<String, ManageError> {
    let e = get(store, id)?;
    if !matches!(e.status, Status::Published | Status::Unlisted) {
        return Err(ManageError::NotRendered {
            id,
            status: e.status.as_str(),
        });
    }
    store.modify(id, |e| e.status = status)?;
    Ok(format!("episode {id} is {}\n", status.as_str()))
}

/// `booth episodes delete ID`: the episode and its files.
///
/// # Errors
/// The database, or no such episode.
pub fn delete(store: &Store, id: i64) -> Result<String, ManageError> {
    if !store.delete(id)? {
        return Err(ManageError::NoSuchEpisode(id));
    }
    Ok(format!("episode {id} deleted, with its files\n"))
}

/// `booth episodes export DIR`: every published or unlisted episode's files copied into
/// `DIR/<id>-<title>/`, with its metadata as `episode.json`.
///
/// # Errors
/// The database, or a file that cannot be copied.
pub fn export(store: &Store, to: &Path) -> Result<String, ManageError> {
    let mut out = String::new();
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |source| ManageError::Export { path, source }
    };
    for e in store.list()? {
        if !matches!(e.status, Status::Published | Status::Unlisted) {
            continue;
        }
        let dir = to.join(format!("{}-{}", e.id, slug(&e.title)));
        std::fs::create_dir_all(&dir).map_err(fail(&dir))?;
        let from = store.episode_dir(e.id);
        for f in files(&e) {
            let target = dir.join(f);
            std::fs::copy(from.join(f), &target).map_err(fail(&target))?;
        }
        let meta = dir.join("episode.json");
        let json = serde_json::to_string_pretty(&e).unwrap_or_default();
        std::fs::write(&meta, json).map_err(fail(&meta))?;
        let _ = writeln!(out, "{}", dir.display());
    }
    if out.is_empty() {
        out.push_str("no rendered episodes to export\n");
    }
    Ok(out)
}

/// A file-name-safe form of a title.
#[must_use]
pub fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        "episode".into()
    } else {
        s.chars().take(60).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_lengths_read_as_people_write_them() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_796_000_000_000), "2026-11-30 00:53 UTC");
        assert_eq!(duration(3_723_000), "1:02:03");
    }

    #[test]
    fn a_slug_keeps_letters_and_digits() {
        assert_eq!(slug("Boss & <Co> \"live\" 🎮 2"), "boss-co-live-2");
        assert_eq!(slug("🎮"), "episode");
    }
}
