//! From a finished recording to a published episode: its description written, its program
//! rendered (`render`), its row updated. Runs on a thread of its own, never on a room's task; a
//! failure marks the episode failed with the reason, and never takes anything else down.

use std::path::PathBuf;

use super::render::{self, Artwork, RenderJob};
use super::store::{Store, StoreError};
use super::{Episode, Person, Show, Status, cover};

/// Why an episode could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such episode.
    #[error("there is no episode {0}")]
    NoSuchEpisode(i64),
    /// Rendering failed (the episode is marked failed with this reason).
    #[error("episode {id} could not be rendered: {why}")]
    Render {
        /// The episode.
        id: i64,
        /// Why.
        why: String,
    },
}

/// The description podcast apps show: what the room was, its game, who spoke.
#[must_use]
pub fn describe(title: &str, game: Option<&str>, people: &[Person]) -> String {
    let mut d = format!("Recorded live in the Booth room \u{201c}{title}\u{201d}");
    if let Some(g) = game.filter(|g| !g.is_empty()) {
        d.push_str(&format!(", playing {g}"));
    }
    d.push('.');
    if !people.is_empty() {
        let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
        d.push_str(&format!(" On stage: {}.", names.join(", ")));
    }
    d
}

/// The show's artwork: the configured file, or the cover Booth draws from the show's title
/// (kept under the data directory). With its extension (`png`, `jpg`).
///
/// # Errors
/// The configured file cannot be read, or the default cover cannot be drawn or kept.
pub fn artwork(store: &Store, show: &Show) -> Result<(Artwork, &'static str), String> {
    if let Some(path) = &show.artwork {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("the show's artwork {}: {e}", path.display()))?;
        let (mime, ext) = if bytes.starts_with(b"\x89PNG") {
            ("image/png", "png")
        } else {
            ("image/jpeg", "jpg")
        };
        return Ok((
            Artwork {
                mime: mime.into(),
                bytes,
            },
            ext,
        ));
    }
    let path = default_cover_path(store);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => {
            let b = cover::default_cover(&show.title).map_err(|e| e.to_string())?;
            std::fs::write(&path, &b).map_err(|e| format!("{}: {e}", path.display()))?;
            b
        }
    };
    Ok((
        Artwork {
            mime: "image/png".into(),
            bytes,
        },
        "png",
    ))
}

/// Where the default cover is kept (drawn again when the show's title changes: see
/// [`forget_default_cover`]).
#[must_use]
pub fn default_cover_path(store: &Store) -> PathBuf {
    store.data_dir().join("cover.png")
}

/// Forgets the drawn cover (the show's title changed).
pub fn forget_default_cover(store: &Store) {
    let _ = std::fs::remove_file(default_cover_path(store));
}

/// Renders episode `id` and publishes it: status `published` with its MP3 and chapters, or
/// `failed` with the reason.
///
/// # Errors
/// See [`PublishError`]; the episode's row says the same.
pub fn publish(store: &Store, id: i64) -> Result<Episode, PublishError> {
    let episode = store.get(id)?.ok_or(PublishError::NoSuchEpisode(id))?;
    let show = store.show()?;
    let dir = store.episode_dir(id);
    let artwork = artwork(store, &show).map(|(a, _)| a);
    let artwork = match artwork {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("episode {id}: no artwork: {e}");
            None
        }
    };
    let job = RenderJob {
        title: episode.title.clone(),
        show_title: show.title.clone(),
        author: show.author.clone(),
        started_ms: episode.started_ms,
        artwork,
        chapters: episode.chapters.clone(),
        loudness_lufs: episode.loudness_lufs,
    };
    match render::render(&dir.join(&episode.files.program), &dir, &job) {
        Ok(r) => {
            let program_bytes = std::fs::metadata(dir.join(&episode.files.program))
                .ok()
                .map(|m| m.len());
            let e = store.modify(id, |e| {
                e.files.mp3 = Some(r.mp3.clone());
                e.files.mp3_bytes = Some(r.mp3_bytes);
                e.files.chapters = Some(r.chapters.clone());
                e.files.program_bytes = program_bytes.or(e.files.program_bytes);
                e.duration_ms = r.duration_ms;
                e.loudness_lufs = r.loudness_lufs.or(e.loudness_lufs);
                e.description = describe(&e.title, e.game.as_deref(), &e.people);
                e.status = Status::Published;
            })?;
            e.ok_or(PublishError::NoSuchEpisode(id))
        }
        Err(err) => {
            let why = err.to_string();
            store.modify(id, |e| {
                e.status = Status::Failed;
                e.error = Some(why.clone());
            })?;
            Err(PublishError::Render { id, why })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_the_room_its_game_and_who_spoke() {
        let people = [
            Person {
                name: "Ana".into(),
                role: "host".into(),
            },
            Person {
                name: "Bo".into(),
                role: "speaker".into(),
            },
        ];
        let d = describe("Launch night", Some("Hollow Stars"), &people);
        assert_eq!(
            d,
            "Recorded live in the Booth room \u{201c}Launch night\u{201d}, playing Hollow Stars. \
             On stage: Ana, Bo."
        );
        assert!(!describe("X", None, &[]).contains("playing"));
    }
}
