//! WHIP forwards: a room's program pushed into WHIP endpoints (an existing SFU cluster, a
//! streaming service), as the room's host or a co-host asks (`/api/rooms/{id}/forwards`).
//!
//! A forward is a task that reads the room's program as Opus packets from its [`LiveHub`] (a
//! relay: it keeps the program encoded but is nobody's ears in the room) and publishes them
//! through a WHIP client peer. A session that fails is opened again after 1, 2, 4, 8, then every
//! 10 s; the forward stops when it is deleted or the room ends.
//!
//! Never here: the mix or encoding (the hub gives the room's one program), and never the
//! endpoint's token or a password in its URL in an answer or a log line.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Format, LiveHub, Next, Reader};
use crate::codec::frame::EncodedFrame;
use crate::room::Role;
use crate::rtc::RtcError;
use crate::rtc::peer::{ClientPeer, Mode};
use crate::rtc::signal::{check_endpoint_url, redact_url};
use crate::server::AppState;
use crate::server::api::{ask, bearer, parse_json, room_of};
use crate::server::error::ApiError;
use crate::server::metrics::Metrics;
use crate::server::room_task::{RoomHandle, RoomMsg};

/// Forwards a room may have at once.
pub const MAX_FORWARDS: usize = 4;
/// How long a session's media may take to come up after the endpoint answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before a failed session is opened again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a forward is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardState {
    /// Opening a session with the endpoint.
    Connecting,
    /// The program flows into the endpoint.
    Live,
    /// The last session failed (see `error`); another is opened soon.
    Retrying,
    /// Stopped: deleted, or the room ended.
    Ended,
}

/// A forward as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardInfo {
    /// Its id in the room.
    pub id: String,
    /// The endpoint, without any password.
    pub url: String,
    /// Where it is.
    pub state: ForwardState,
    /// Why the last session failed, while retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A request for a forward: the endpoint and its bearer token.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewForward {
    /// The WHIP endpoint (http or https).
    pub url: String,
    /// Its bearer token, if it wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for NewForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewForward")
            .field("url", &redact_url(&self.url))
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Why a forward cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The URL is not an http(s) URL.
    #[error("'{url}' is not a WHIP endpoint: {why} (give an http:// or https:// URL)")]
    BadUrl {
        /// The URL, without any password.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The room forwards to [`MAX_FORWARDS`] endpoints already.
    #[error("the room already forwards to {MAX_FORWARDS} endpoints: remove one first")]
    TooMany,
    /// The room has ended.
    #[error("the room has ended")]
    Ended,
}

impl From<ForwardError> for ApiError {
    fn from(e: ForwardError) -> Self {
        let message = e.to_string();
        match e {
            ForwardError::BadUrl { .. } => Self::bad_request("bad_forward", message),
            ForwardError::TooMany => Self::new(StatusCode::CONFLICT, "too_many_forwards", message),
            ForwardError::Ended => Self::gone(),
        }
    }
}

/// One running forward.
#[derive(Debug)]
struct Forward {
    id: String,
    url: String,
    status: Arc<Mutex<(ForwardState, Option<String>)>>,
    /// Set to stop the task; dropping it stops the task too.
    stop: watch::Sender<bool>,
}

impl Forward {
    fn info(&self) -> ForwardInfo {
        let (state, error) = self
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ForwardInfo {
            id: self.id.clone(),
            url: self.url.clone(),
            state,
            error,
        }
    }

    fn ended(&self) -> bool {
        self.info().state == ForwardState::Ended
    }
}

/// A room's forwards. Dropping it stops them all.
#[derive(Debug)]
pub struct Forwards {
    hub: Arc<LiveHub>,
    metrics: Arc<Metrics>,
    list: Mutex<Vec<Forward>>,
    next: AtomicU64,
}

impl Forwards {
    /// No forwards yet, for the room whose program `hub` carries.
    #[must_use]
    pub fn new(hub: Arc<LiveHub>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            hub,
            metrics,
            list: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        })
    }

    /// Starts forwarding the program to `target` (on the caller's tokio runtime).
    ///
    /// # Errors
    /// A URL that is not http(s), [`MAX_FORWARDS`] forwards already, a room that has ended.
    pub fn add(&self, target: NewForward) -> Result<ForwardInfo, ForwardError> {
        check_endpoint_url(&target.url).map_err(|why| ForwardError::BadUrl {
            url: redact_url(&target.url),
            why,
        })?;
        if self.hub.is_ended() {
            return Err(ForwardError::Ended);
        }
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|f| !f.ended());
        if list.len() >= MAX_FORWARDS {
            return Err(ForwardError::TooMany);
        }
        let id = format!("f{}", self.next.fetch_add(1, Relaxed));
        let status = Arc::new(Mutex::new((ForwardState::Connecting, None)));
        let (stop, stopped) = watch::channel(false);
        let url = redact_url(&target.url);
        self.metrics.forwards.fetch_add(1, Relaxed);
        tracing::info!(room = self.hub.room(), forward = %id, %url, "forwarding the program");
        tokio::spawn(
            Task {
                hub: Arc::clone(&self.hub),
                target,
                status: Arc::clone(&status),
                stop: stopped,
                counted: Counted(Arc::clone(&self.metrics)),
            }
            .run(),
        );
        let forward = Forward {
            id,
            url,
            status,
            stop,
        };
        let info = forward.info();
        list.push(forward);
        Ok(info)
    }

    /// The forwards, oldest first.
    #[must_use]
    pub fn list(&self) -> Vec<ForwardInfo> {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        list.iter().map(Forward::info).collect()
    }

    /// Stops and removes forward `id` (its session is hung up with a DELETE); false when there
    /// is no such forward.
    pub fn remove(&self, id: &str) -> bool {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        match list.iter().position(|f| f.id == id) {
            Some(i) => {
                let _ = list.remove(i).stop.send(true);
                true
            }
            None => false,
        }
    }
}

/// Counts a running forward in `/metrics` for as long as its task lives.
#[derive(Debug)]
struct Counted(Arc<Metrics>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.forwards.fetch_sub(1, Relaxed);
    }
}

/// How a session ended without failing.
enum End {
    /// The forward was deleted (or its room's forwards dropped).
    Stopped,
    /// The room ended.
    RoomEnded,
}

/// A forward's task: sessions one after another until stopped.
struct Task {
    hub: Arc<LiveHub>,
    target: NewForward,
    status: Arc<Mutex<(ForwardState, Option<String>)>>,
    stop: watch::Receiver<bool>,
    counted: Counted,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        while !self.hub.is_ended() {
            self.set(ForwardState::Connecting, None);
            match self.session(&mut backoff).await {
                Ok(End::Stopped | End::RoomEnded) => break,
                Err(why) => {
                    tracing::info!(
                        room = self.hub.room(),
                        url = %redact_url(&self.target.url),
                        "forward session failed, again in {backoff:?}: {why}"
                    );
                    self.set(ForwardState::Retrying, Some(why));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stopped(&mut self.stop) => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.set(ForwardState::Ended, None);
        drop(self.counted);
    }

    fn set(&self, state: ForwardState, error: Option<String>) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = (state, error);
    }

    /// One WHIP session: the program's packets into it until it fails (why), the forward is
    /// stopped, or the room ends. A session that came up resets `backoff`.
    async fn session(&mut self, backoff: &mut Duration) -> Result<End, String> {
        let url = &self.target.url;
        let connect = ClientPeer::connect(
            url,
            self.target.token.as_deref(),
            Mode::Publish,
            CONNECT_TIMEOUT,
        );
        let mut peer = tokio::select! {
            peer = connect => peer.map_err(|e| failure(url, &e))?,
            () = stopped(&mut self.stop) => return Ok(End::Stopped),
        };
        self.set(ForwardState::Live, None);
        *backoff = FIRST_BACKOFF;
        let frames = peer.frames.clone();
        let mut program = self.hub.subscribe(Format::Opus, Reader::Relay);
        let end = loop {
            tokio::select! {
                next = program.next() => match next {
                    Next::Chunk(chunk) => {
                        let frame = EncodedFrame { pts: chunk.pts, packet: chunk.data.to_vec() };
                        // A full queue drops the packet, as the network would; a closed one
                        // is the session ending, which the next turn hears.
                        let _ = frames.try_send(frame);
                    }
                    // Behind by seconds: start again at the live edge.
                    Next::Lagged => program = self.hub.subscribe(Format::Opus, Reader::Relay),
                    Next::Ended => break Ok(End::RoomEnded),
                },
                why = peer.wait_ended() => break Err(why),
                () = stopped(&mut self.stop) => break Ok(End::Stopped),
            }
        };
        drop(program);
        peer.close().await;
        end
    }
}

/// Why a session could not start, as the API shows it (no password of the URL).
fn failure(url: &str, e: &RtcError) -> String {
    let shown = redact_url(url);
    match e {
        RtcError::Refused {
            status, message, ..
        } => format!("the endpoint refused the program ({status}): {message}"),
        RtcError::Unreachable { message, .. } => {
            format!(
                "cannot reach the endpoint: {}",
                message.replace(url, &shown)
            )
        }
        RtcError::ConnectTimeout(s) => {
            format!("the endpoint answered, but the media did not connect within {s} s")
        }
        other => other.to_string(),
    }
}

/// Resolves once the forward is stopped (or whoever could stop it is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The routes, merged into the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/rooms/{room}/forwards", get(list).post(add))
        .route("/api/rooms/{room}/forwards/{forward}", delete(remove))
}

/// The room, once `headers` carry the token of its host or a co-host.
async fn moderated_room(
    state: &AppState,
    room: &str,
    headers: &HeaderMap,
) -> Result<RoomHandle, ApiError> {
    let room = room_of(state, room)?;
    let token = bearer(headers);
    if token.is_none() {
        return Err(ApiError::unauthorized(
            "forwarding the room needs the host's or a co-host's token (Authorization: Bearer)",
        ));
    }
    match ask(&room, |reply| RoomMsg::RoleOf { token, reply }).await?? {
        Role::Host | Role::CoHost => Ok(room),
        _ => Err(ApiError::forbidden(
            "not_allowed",
            "only the host or a co-host can forward the room",
        )),
    }
}

async fn add(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let handle = moderated_room(&state, &room, &headers).await?;
    let target: NewForward = parse_json(&body)?;
    let info = handle.forwards.add(target)?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn list(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Vec<ForwardInfo>>, ApiError> {
    let handle = moderated_room(&state, &room, &headers).await?;
    Ok(Json(handle.forwards.list()))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    Path((room, forward)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let handle = moderated_room(&state, &room, &headers).await?;
    if handle.forwards.remove(&forward) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("that forward"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::live::LiveOptions;

    fn forwards() -> (Arc<Forwards>, Arc<LiveHub>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let hub = LiveHub::new(
            "room",
            "Title",
            LiveOptions::default(),
            Arc::clone(&metrics),
        );
        let forwards = Forwards::new(Arc::clone(&hub), Arc::clone(&metrics));
        (forwards, hub, metrics)
    }

    fn nobody() -> NewForward {
        NewForward {
            url: "http://user:hunter2@127.0.0.1:9/whip".into(),
            token: Some("s3cret".into()),
        }
    }

    /// Waits until `done` holds, 10 s at most (generous: a busy machine).
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 10 s");
    }

    #[tokio::test]
    async fn four_forwards_at_most_each_counted_until_removed() {
        let (forwards, _hub, metrics) = forwards();
        let mut ids = Vec::new();
        for _ in 0..MAX_FORWARDS {
            ids.push(forwards.add(nobody()).unwrap().id);
        }
        assert_eq!(forwards.add(nobody()), Err(ForwardError::TooMany));
        assert_eq!(metrics.forwards.load(Relaxed), 4);
        let listed = forwards.list();
        assert_eq!(listed.len(), 4);
        let shown = serde_json::to_string(&listed).unwrap();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(forwards.remove(&ids[0]));
        assert!(!forwards.remove(&ids[0]));
        until(|| metrics.forwards.load(Relaxed) == 3).await;
        assert!(
            forwards.add(nobody()).is_ok(),
            "a removed forward frees its place"
        );
    }

    #[tokio::test]
    async fn a_forward_retries_saying_why_and_stops_when_the_room_ends() {
        let (forwards, hub, metrics) = forwards();
        let id = forwards.add(nobody()).unwrap().id;
        until(|| forwards.list()[0].state == ForwardState::Retrying).await;
        let error = forwards.list()[0].error.clone().unwrap_or_default();
        assert!(error.contains("cannot reach the endpoint"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        hub.end();
        assert_eq!(forwards.add(nobody()), Err(ForwardError::Ended));
        // The wait before the next attempt ends first (1 s); then the forward sees the end.
        until(|| metrics.forwards.load(Relaxed) == 0).await;
        assert_eq!(forwards.list()[0].state, ForwardState::Ended);
        assert!(forwards.remove(&id));
    }

    #[test]
    fn bad_urls_and_a_full_room_are_the_protocol_s_codes() {
        let bad = ForwardError::BadUrl {
            url: "rtmp://x".into(),
            why: "the scheme is 'rtmp'".into(),
        };
        let e = ApiError::from(bad);
        assert_eq!((e.status.as_u16(), e.code), (400, "bad_forward"));
        let e = ApiError::from(ForwardError::TooMany);
        assert_eq!((e.status.as_u16(), e.code), (409, "too_many_forwards"));
        assert!(e.message.contains("remove one first"), "{}", e.message);
        let shown = format!("{:?}", nobody());
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
