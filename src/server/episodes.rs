//! Episodes on the server: what happens to a recording once its files are finished (rendered and
//! published on a thread of its own), the repair of recordings a crash left unfinished, and the
//! routes: the feed, the episode pages, the JSON API, the media files, and the host's changes
//! (rename, unlist, publish, delete) with the token of the room that recorded it.
//!
//! Never here: a blocking render on a request or a room's task.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::media_files::serve_file;
use super::podcast_pages;
use super::recorder::{self, RecordError, Recorded};
use crate::episodes::feed::{self, LiveItem};
use crate::episodes::publish::{self, PublishError};
use crate::episodes::store::Store;
use crate::episodes::{Episode, Status, Track};

/// The links of a server's episodes, from its public base URL.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// Links under `base` (no trailing slash).
    #[must_use]
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// An episode's page.
    #[must_use]
    pub fn page(&self, id: i64) -> String {
        feed::episode_page_url(&self.base, id)
    }

    /// The feed.
    #[must_use]
    pub fn feed(&self) -> String {
        feed::feed_url(&self.base)
    }

    /// One of an episode's files.
    #[must_use]
    pub fn media(&self, id: i64, file: &str) -> String {
        feed::media_url(&self.base, id, file)
    }
}

/// Now, ms since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A recorder finished (on its writer thread): the episode takes its files, then is rendered and
/// published on a thread of its own. A recorder that finished badly is repaired as after a crash.
pub fn recorded(store: &Arc<Store>, id: i64, result: Result<Recorded, RecordError>) {
    match result {
        Ok(r) => keep_recorded(store, id, &r),
        Err(e) => {
            tracing::warn!("episode {id}: the recording ended badly ({e}); repairing it");
            repair(store, id);
        }
    }
    let store = Arc::clone(store);
    let spawned = std::thread::Builder::new()
        .name(format!("booth-render-{id}"))
        .spawn(move || render(&store, id));
    if let Err(e) = spawned {
        tracing::error!("episode {id}: cannot start rendering: {e}");
    }
}

/// A recorder finished as the server stops: its files are kept; rendering waits for the next
/// start.
pub fn recorded_at_shutdown(store: &Store, id: i64, result: Result<Recorded, RecordError>) {
    match result {
        Ok(r) => keep_recorded(store, id, &r),
        Err(e) => {
            tracing::warn!("episode {id}: the recording ended badly ({e}); repairing it");
            repair(store, id);
        }
    }
}

fn keep_recorded(store: &Store, id: i64, r: &Recorded) {
    let dir = store.episode_dir(id);
    let tracks: Vec<Track> = r
        .tracks
        .iter()
        .map(|(name, path)| Track {
            name: name.clone(),
            file: relative(&dir, path),
        })
        .collect();
    let result = store.modify(id, |e| {
        e.duration_ms = r.duration_ms;
        e.files.program = relative(&dir, &r.program);
        e.files.program_bytes = Some(r.program_bytes);
        e.files.tracks = tracks;
        e.loudness_lufs = r.loudness_lufs;
        e.status = Status::Rendering;
    });
    if let Err(e) = result {
        tracing::error!("episode {id}: cannot keep its recording: {e}");
    }
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Renders and publishes episode `id` now, logging how it went.
pub fn render(store: &Store, id: i64) {
    match publish::publish(store, id) {
        Ok(e) => tracing::info!("episode {id} published: {} ({} ms)", e.title, e.duration_ms),
        Err(PublishError::Render { why, .. }) => {
            tracing::error!("episode {id} could not be rendered: {why}");
        }
        Err(e) => tracing::error!("episode {id}: {e}"),
    }
}

/// Repairs the files of an episode a crash left recording: each file ends on its last whole
/// page, with EOS; the episode is marked cut short, with the duration its program holds.
fn repair(store: &Store, id: i64) {
    let Ok(Some(episode)) = store.get(id) else {
        return;
    };
    let dir = store.episode_dir(id);
    let program = recorder::repair_file(&dir.join(&episode.files.program));
    let mut tracks = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("track-") && name.ends_with(".ogg") {
                if let Err(e) = recorder::repair_file(&entry.path()) {
                    tracing::warn!("episode {id}: track {name} cannot be repaired: {e}");
                    continue;
                }
                tracks.push(Track {
                    name: track_name(&name),
                    file: name,
                });
            }
        }
    }
    tracks.sort_by(|a, b| a.file.cmp(&b.file));
    let result = store.modify(id, |e| {
        e.cut_short = true;
        e.files.tracks = tracks;
        e.loudness_lufs = None;
        match &program {
            Ok(r) => {
                e.duration_ms = r.duration_ms;
                e.status = Status::Rendering;
            }
            Err(why) => {
                e.status = Status::Failed;
                e.error = Some(format!("the recording cannot be repaired: {why}"));
            }
        }
    });
    if let Err(e) = result {
        tracing::error!("episode {id}: {e}");
    }
}

/// The name in a track's file name (`track-<member>-<name>.ogg`), for a track found after a
/// crash.
fn track_name(file: &str) -> String {
    let stem = file.trim_start_matches("track-").trim_end_matches(".ogg");
    stem.split_once('-')
        .map_or(stem, |(_, name)| name)
        .replace('-', " ")
}

/// At start: episodes a crash left recording are repaired, and every episode left rendering is
/// rendered, on one thread in the background.
pub fn recover(store: &Arc<Store>) {
    let store = Arc::clone(store);
    let spawned = std::thread::Builder::new()
        .name("booth-recover".into())
        .spawn(move || {
            for e in store.with_status(Status::Recording).unwrap_or_default() {
                tracing::warn!("episode {} was cut short by a crash: repairing it", e.id);
                repair(&store, e.id);
            }
            for e in store.with_status(Status::Rendering).unwrap_or_default() {
                render(&store, e.id);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start repairing episodes: {e}");
    }
}

// ------------------------------------------------------------------------------ the routes

/// The feed, the pages, the API and the media.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/podcast.xml", get(podcast_xml))
        .route("/episodes", get(episodes_page))
        .route("/episodes/{id}", get(episode_page))
        .route("/api/episodes", get(list))
        .route("/api/episodes/{id}", get(one).patch(change).delete(delete))
        .route("/media/episodes/{id}/{file}", get(media).head(media))
        .route("/media/cover.{ext}", get(cover).head(cover))
}

/// An episode as the API gives it: the episode and its links.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpisodeView {
    /// The episode.
    #[serde(flatten)]
    pub episode: Episode,
    /// Its page.
    pub page: String,
    /// The MP3, once rendered.
    pub audio: Option<String>,
    /// The Ogg Opus program.
    pub alternate: String,
    /// The JSON chapters, once rendered.
    pub chapters_url: Option<String>,
    /// The show's feed.
    pub feed: String,
}

/// `PATCH /api/episodes/{id}`: what the host changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EpisodeChange {
    /// A new title.
    #[serde(default)]
    pub title: Option<String>,
    /// `published` or `unlisted`.
    #[serde(default)]
    pub status: Option<Status>,
}

fn view(urls: &Urls, e: Episode) -> EpisodeView {
    EpisodeView {
        page: urls.page(e.id),
        audio: e.files.mp3.as_ref().map(|f| urls.media(e.id, f)),
        alternate: urls.media(e.id, &e.files.program),
        chapters_url: e.files.chapters.as_ref().map(|f| urls.media(e.id, f)),
        feed: urls.feed(),
        episode: e,
    }
}

fn public_urls(state: &AppState, show: &crate::episodes::Show) -> Urls {
    Urls::new(show.public_url.as_deref().unwrap_or(&state.base_url))
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn published(state: &AppState) -> Result<Vec<Episode>, ApiError> {
    state
        .episodes
        .with_status(Status::Published)
        .map_err(store_error)
}

fn episode(state: &AppState, id: &str) -> Result<Episode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found("that episode"))?;
    state
        .episodes
        .get(id)
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("that episode"))
}

/// Published and unlisted episodes answer their links; the others are not out yet.
fn viewable(e: &Episode) -> bool {
    matches!(e.status, Status::Published | Status::Unlisted)
}

async fn podcast_xml(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let show = state.episodes.show().map_err(store_error)?;
    let urls = public_urls(&state, &show);
    let all = state.episodes.list().map_err(store_error)?;
    let live: Vec<LiveItem> = all
        .iter()
        .filter(|e| e.status == Status::Recording)
        .map(|e| LiveItem {
            room: e.room.clone(),
            title: e.title.clone(),
            started_ms: e.started_ms,
            guid: e.guid.clone(),
            people: e.people.clone(),
            // A podcast app plays the live item from the room's MP3 stream.
            stream: state
                .room(&e.room)
                .map(|_| format!("{}/live/{}.mp3", urls.base(), e.room)),
        })
        .collect();
    let ext = cover_ext(&show);
    let xml = feed::podcast_xml(&show, urls.base(), ext, &all, &live);
    Ok((
        [(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")],
        xml,
    )
        .into_response())
}

fn cover_ext(show: &crate::episodes::Show) -> &'static str {
    match &show.artwork {
        Some(p) if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")) => "png",
        Some(_) => "jpg",
        None => "png",
    }
}

async fn episodes_page(State(state): State<Arc<AppState>>) -> Result<Html<String>, ApiError> {
    let show = state.episodes.show().map_err(store_error)?;
    let urls = public_urls(&state, &show);
    Ok(Html(podcast_pages::episodes_page(
        &show,
        urls.base(),
        &published(&state)?,
    )))
}

async fn episode_page(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Html<String>, ApiError> {
    let e = episode(&state, &id)?;
    if !viewable(&e) {
        return Err(ApiError::not_found("that episode"));
    }
    let show = state.episodes.show().map_err(store_error)?;
    let urls = public_urls(&state, &show);
    Ok(Html(podcast_pages::episode_page(&show, urls.base(), &e)))
}

async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Vec<EpisodeView>>, ApiError> {
    let show = state.episodes.show().map_err(store_error)?;
    let urls = public_urls(&state, &show);
    Ok(Json(
        published(&state)?
            .into_iter()
            .map(|e| view(&urls, e))
            .collect(),
    ))
}

/// Any episode by its number, whatever its status (a host waits on `rendering` for `published`).
async fn one(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<EpisodeView>, ApiError> {
    let e = episode(&state, &id)?;
    let show = state.episodes.show().map_err(store_error)?;
    Ok(Json(view(&public_urls(&state, &show), e)))
}

fn authorize(state: &AppState, headers: &HeaderMap, id: i64) -> Result<(), ApiError> {
    let token = super::api::bearer(headers)
        .ok_or_else(|| ApiError::unauthorized("the host's token of the room that recorded it"))?;
    if state.episodes.is_host(id, &token).map_err(store_error)? {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "only the host who recorded an episode can change it",
        ))
    }
}

async fn change(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EpisodeView>, ApiError> {
    let e = episode(&state, &id)?;
    authorize(&state, &headers, e.id)?;
    let change: EpisodeChange = super::api::parse_json(&body)?;
    let title = change.title.map(|t| super::api::clean_text(&t, 200));
    if title.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::bad_request(
            "invalid_title",
            "an episode needs a title",
        ));
    }
    if let Some(s) = change.status {
        if !matches!(s, Status::Published | Status::Unlisted) {
            return Err(ApiError::bad_request(
                "invalid_status",
                "an episode can be published or unlisted",
            ));
        }
        if !viewable(&e) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_rendered",
                "the episode is not rendered yet",
            ));
        }
    }
    let changed = state
        .episodes
        .modify(e.id, |e| {
            if let Some(t) = title {
                e.title = t;
            }
            if let Some(s) = change.status {
                e.status = s;
            }
        })
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("that episode"))?;
    let show = state.episodes.show().map_err(store_error)?;
    Ok(Json(view(&public_urls(&state, &show), changed)))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let e = episode(&state, &id)?;
    authorize(&state, &headers, e.id)?;
    if matches!(e.status, Status::Recording | Status::Rendering) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_rendered",
            "the episode is still being recorded or rendered",
        ));
    }
    state.episodes.delete(e.id).map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn media(
    State(state): State<Arc<AppState>>,
    UrlPath((id, file)): UrlPath<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let e = episode(&state, &id)?;
    let known = e.files.mp3.as_deref() == Some(file.as_str())
        || e.files.program == file
        || e.files.chapters.as_deref() == Some(file.as_str())
        || e.files.tracks.iter().any(|t| t.file == file);
    if !viewable(&e) || !known {
        return Err(ApiError::not_found("that file"));
    }
    let path = state.episodes.episode_dir(e.id).join(&file);
    Ok(serve_file(&path, content_type(&file), &method, &headers).await)
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "opus") => "audio/ogg; codecs=opus",
        Some("json") => "application/json+chapters",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

async fn cover(
    State(state): State<Arc<AppState>>,
    UrlPath(ext): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let show = state.episodes.show().map_err(store_error)?;
    if ext != cover_ext(&show) {
        return Err(ApiError::not_found("that cover"));
    }
    let path = match &show.artwork {
        Some(p) => p.clone(),
        None => {
            let store = Arc::clone(&state.episodes);
            let drawn = tokio::task::spawn_blocking(move || {
                publish::artwork(&store, &show).map(|_| publish::default_cover_path(&store))
            })
            .await
            .map_err(store_error)?;
            drawn.map_err(ApiError::internal)?
        }
    };
    Ok(serve_file(&path, content_type(&format!("x.{ext}")), &method, &headers).await)
}
