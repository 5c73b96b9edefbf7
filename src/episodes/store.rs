//! The episodes database: one SQLite file (`booth.db`) under the data directory, holding the show
//! and every episode. The lists an episode carries (files, chapters, people) are JSON columns: they
//! are read and written with their episode, never queried on their own.
//!
//! WAL mode and a busy timeout let `booth episodes` work on the data directory while a server
//! runs. Never here: anything of HTTP or of a room's task; a panic on a damaged row (a row that
//! does not read is an error that names it).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{EPISODES_DIR, Episode, Files, Show, Status};

/// The database's file name under the data directory.
pub const DB_FILE: &str = "booth.db";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be made.
    #[error("cannot use the data directory {dir}: {source}")]
    Dir {
        /// Which.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("the episodes database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A row that does not read.
    #[error("episode {id} in the database is damaged: {why}")]
    Damaged {
        /// The episode.
        id: i64,
        /// What does not read.
        why: String,
    },
    /// No randomness for a guid.
    #[error("no randomness for an episode's guid: {0}")]
    Random(String),
}

/// What a new episode starts from: its room, as recording starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEpisode {
    /// The room's id.
    pub room: String,
    /// The room's title.
    pub title: String,
    /// The game, if the host named one.
    pub game: Option<String>,
    /// When recording started, ms since the Unix epoch.
    pub started_ms: i64,
    /// What proves the host's token (see [`host_key`]): who may rename, unlist or delete it.
    pub host_key: String,
}

/// The episodes database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    data_dir: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS show (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    guid TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    game TEXT,
    started_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    cut_short INTEGER NOT NULL DEFAULT 0,
    files TEXT NOT NULL,
    chapters TEXT NOT NULL,
    people TEXT NOT NULL,
    loudness_lufs REAL,
    error TEXT,
    host_key TEXT NOT NULL DEFAULT ''
);
";

const COLUMNS: &str = "id, guid, room, title, description, game, started_ms, duration_ms, status, \
                       cut_short, files, chapters, people, loudness_lufs, error";

impl Store {
    /// Opens (creating) `booth.db` under `data_dir`.
    ///
    /// # Errors
    /// The directory or the database cannot be opened.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Dir {
            dir: data_dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(data_dir.join(DB_FILE))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
            data_dir: data_dir.to_owned(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where an episode's files are.
    #[must_use]
    pub fn episode_dir(&self, id: i64) -> PathBuf {
        self.data_dir.join(EPISODES_DIR).join(id.to_string())
    }

    /// Keeps the show as configured.
    ///
    /// # Errors
    /// SQLite refused.
    pub fn set_show(&self, show: &Show) -> Result<(), StoreError> {
        let json = serde_json::to_string(show).unwrap_or_default();
        self.conn().execute(
            "INSERT INTO show (id, json) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET json = excluded.json",
            params![json],
        )?;
        Ok(())
    }

    /// The show as last configured (the default show when never set).
    ///
    /// # Errors
    /// SQLite refused.
    pub fn show(&self) -> Result<Show, StoreError> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT json FROM show WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default())
    }

    /// A new episode, recording.
    ///
    /// # Errors
    /// SQLite refused, or no randomness for its guid.
    pub fn create(&self, new: &NewEpisode) -> Result<Episode, StoreError> {
        let guid = new_guid()?;
        let files = Files {
            program: PROGRAM_FILE.into(),
            ..Files::default()
        };
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO episodes (guid, room, title, game, started_ms, status, files,
                 chapters, people, host_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '[]', '[]', ?8)",
                params![
                    guid,
                    new.room,
                    new.title,
                    new.game,
                    new.started_ms,
                    Status::Recording.as_str(),
                    json(&files),
                    new.host_key,
                ],
            )?;
            conn.last_insert_rowid()
        };
        self.get(id)?.ok_or(StoreError::Damaged {
            id,
            why: "not found after it was written".into(),
        })
    }

    /// The episode with this id.
    ///
    /// # Errors
    /// SQLite refused, or its row is damaged.
    pub fn get(&self, id: i64) -> Result<Option<Episode>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM episodes WHERE id = ?1");
        let raw = self
            .conn()
            .query_row(&sql, params![id], RawEpisode::read)
            .optional()?;
        raw.map(RawEpisode::episode).transpose()
    }

    /// Every episode, newest first.
    ///
    /// # Errors
    /// SQLite refused, or a row is damaged.
    pub fn list(&self) -> Result<Vec<Episode>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM episodes ORDER BY started_ms DESC, id DESC");
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], RawEpisode::read)?;
        let raws: Vec<RawEpisode> = rows.collect::<Result<_, _>>()?;
        drop(stmt);
        drop(conn);
        raws.into_iter().map(RawEpisode::episode).collect()
    }

    /// Episodes in one status, newest first.
    ///
    /// # Errors
    /// As [`Store::list`].
    pub fn with_status(&self, status: Status) -> Result<Vec<Episode>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|e| e.status == status)
            .collect())
    }

    /// Writes back everything of `episode` but its id, guid and room.
    ///
    /// # Errors
    /// SQLite refused.
    pub fn update(&self, e: &Episode) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE episodes SET title = ?2, description = ?3, game = ?4, started_ms = ?5,
             duration_ms = ?6, status = ?7, cut_short = ?8, files = ?9, chapters = ?10,
             people = ?11, loudness_lufs = ?12, error = ?13 WHERE id = ?1",
            params![
                e.id,
                e.title,
                e.description,
                e.game,
                e.started_ms,
                i64::try_from(e.duration_ms).unwrap_or(i64::MAX),
                e.status.as_str(),
                e.cut_short,
                json(&e.files),
                json(&e.chapters),
                json(&e.people),
                e.loudness_lufs,
                e.error,
            ],
        )?;
        Ok(())
    }

    /// Changes an episode with `change`, read and written under one lock (so two changes never
    /// lose each other's work). None: no such episode.
    ///
    /// # Errors
    /// SQLite refused, or the row is damaged.
    pub fn modify(
        &self,
        id: i64,
        change: impl FnOnce(&mut Episode),
    ) -> Result<Option<Episode>, StoreError> {
        let Some(mut e) = self.get(id)? else {
            return Ok(None);
        };
        change(&mut e);
        self.update(&e)?;
        Ok(Some(e))
    }

    /// Forgets an episode and deletes its files. False: there was none.
    ///
    /// # Errors
    /// SQLite refused. (Files that cannot be removed are left, and logged.)
    pub fn delete(&self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM episodes WHERE id = ?1", params![id])?;
        let dir = self.episode_dir(id);
        if n > 0
            && dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!("episode {id}: cannot remove {}: {e}", dir.display());
        }
        Ok(n > 0)
    }

    /// Whether `token` is the token of the host who recorded episode `id`.
    ///
    /// # Errors
    /// SQLite refused.
    pub fn is_host(&self, id: i64, token: &str) -> Result<bool, StoreError> {
        let key: Option<String> = self
            .conn()
            .query_row(
                "SELECT host_key FROM episodes WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(key.is_some_and(|k| !k.is_empty() && k == host_key(token)))
    }
}

/// The program's file name in an episode's directory.
pub const PROGRAM_FILE: &str = "program.ogg";

/// What the database keeps of a host's token: its SHA-256, in hex (never the token itself).
#[must_use]
pub fn host_key(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A random version-4 UUID, as an episode's feed guid.
fn new_guid() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(super::uuid_text(&b))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A row as SQLite gives it, before its JSON columns are read.
struct RawEpisode {
    id: i64,
    guid: String,
    room: String,
    title: String,
    description: String,
    game: Option<String>,
    started_ms: i64,
    duration_ms: i64,
    status: String,
    cut_short: bool,
    files: String,
    chapters: String,
    people: String,
    loudness_lufs: Option<f64>,
    error: Option<String>,
}

impl RawEpisode {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            guid: r.get(1)?,
            room: r.get(2)?,
            title: r.get(3)?,
            description: r.get(4)?,
            game: r.get(5)?,
            started_ms: r.get(6)?,
            duration_ms: r.get(7)?,
            status: r.get(8)?,
            cut_short: r.get(9)?,
            files: r.get(10)?,
            chapters: r.get(11)?,
            people: r.get(12)?,
            loudness_lufs: r.get(13)?,
            error: r.get(14)?,
        })
    }

    fn episode(self) -> Result<Episode, StoreError> {
        let id = self.id;
        let damaged = |why: String| StoreError::Damaged { id, why };
        let status = Status::parse(&self.status)
            .ok_or_else(|| damaged(format!("unknown status '{}'", self.status)))?;
        Ok(Episode {
            id,
            guid: self.guid,
            room: self.room,
            title: self.title,
            description: self.description,
            game: self.game,
            started_ms: self.started_ms,
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            status,
            cut_short: self.cut_short,
            files: serde_json::from_str(&self.files).map_err(|e| damaged(format!("files: {e}")))?,
            chapters: serde_json::from_str(&self.chapters)
                .map_err(|e| damaged(format!("chapters: {e}")))?,
            people: serde_json::from_str(&self.people)
                .map_err(|e| damaged(format!("people: {e}")))?,
            loudness_lufs: self.loudness_lufs,
            error: self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::Chapter;

    fn new(room: &str, started_ms: i64) -> NewEpisode {
        NewEpisode {
            room: room.into(),
            title: format!("Room {room}"),
            game: Some("Elden Ring".into()),
            started_ms,
            host_key: host_key("p1.secret"),
        }
    }

    #[test]
    fn an_episode_lives_through_a_reopened_database() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let store = Store::open(dir.path()).unwrap();
            let e = store.create(&new("abc", 1_000)).unwrap();
            assert_eq!(e.status, Status::Recording);
            assert_eq!(e.files.program, PROGRAM_FILE);
            store
                .modify(e.id, |e| {
                    e.chapters.push(Chapter {
                        start_ms: 0,
                        title: "Start".into(),
                    });
                    e.status = Status::Published;
                    e.duration_ms = 120_000;
                })
                .unwrap();
            e.id
        };
        let store = Store::open(dir.path()).unwrap();
        let e = store.get(id).unwrap().unwrap();
        assert_eq!(e.status, Status::Published);
        assert_eq!(e.duration_ms, 120_000);
        assert_eq!(e.chapters.len(), 1);
        assert_eq!(e.guid.len(), 36);
    }

    #[test]
    fn lists_newest_first_and_never_reuses_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = store.create(&new("a", 1)).unwrap();
        let b = store.create(&new("b", 2)).unwrap();
        assert_eq!(
            store
                .list()
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            [b.id, a.id]
        );
        assert!(store.delete(b.id).unwrap());
        assert!(!store.delete(b.id).unwrap());
        let c = store.create(&new("c", 3)).unwrap();
        assert!(c.id > b.id);
        assert_ne!(a.guid, c.guid);
    }

    #[test]
    fn only_the_hosts_token_manages_an_episode() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store.create(&new("a", 1)).unwrap();
        assert!(store.is_host(e.id, "p1.secret").unwrap());
        assert!(!store.is_host(e.id, "p1.other").unwrap());
        assert!(!store.is_host(e.id + 1, "p1.secret").unwrap());
    }

    #[test]
    fn the_show_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.show().unwrap(), Show::default());
        let show = Show {
            title: "Boss & <Co>".into(),
            ..Show::default()
        };
        store.set_show(&show).unwrap();
        assert_eq!(store.show().unwrap(), show);
    }

    #[test]
    fn a_damaged_row_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store.create(&new("a", 1)).unwrap();
        store
            .conn()
            .execute("UPDATE episodes SET chapters = '{' WHERE id = ?1", [e.id])
            .unwrap();
        assert!(matches!(store.get(e.id), Err(StoreError::Damaged { .. })));
    }
}
