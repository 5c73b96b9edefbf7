//! HTTP routes: rooms, actions, invitations, WHIP/WHEP, health and metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;
use tower_http::cors::{Any, CorsLayer};

use super::AppState;
use super::client::ClientAddr;
use super::error::ApiError;
use super::live::icecast::{IcecastPush, IcecastTarget};
use super::room_task::{self, RoomHandle, RoomMsg};
use super::tokens;
use crate::room::protocol::{CreatedRoom, Invitation, NewInvite, NewRoom, RoomInfo};
use crate::room::{Action, ParticipantId, RoomConfig};

/// Largest request body accepted (SDP offers are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// The whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([header::LOCATION, header::LINK, header::ETAG]);
    Router::new()
        .merge(super::episodes::routes())
        .merge(super::live::routes::routes())
        .merge(super::live::forward::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/r/{room}", get(room_page))
        .route("/assets/{file}", get(web_asset))
        .route("/metrics", get(metrics))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{room}", get(room_info))
        .route("/api/rooms/{room}/actions", post(act))
        .route("/api/rooms/{room}/invites", post(invite))
        .route("/api/rooms/{room}/ws", get(super::ws::handler))
        .route("/whip/{room}", post(whip))
        .route("/whep/{room}", post(whep))
        .route("/whip/{room}/{session}", patch(trickle).delete(hangup))
        .route("/whep/{room}/{session}", patch(trickle).delete(hangup))
        .fallback(|| async { ApiError::not_found("that page") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
        .with_state(state)
}

/// The web room client, embedded in the binary.
const ROOM_HTML: &str = include_str!("../../assets/web/room.html");

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The files the room page loads from `/assets/`: (name, content type, body). room.js imports
/// the other modules by these names.
const WEB_ASSETS: [(&str, &str, &str); 11] = [
    ("room.css", CSS, include_str!("../../assets/web/room.css")),
    ("room.js", JS, include_str!("../../assets/web/room.js")),
    (
        "channel.js",
        JS,
        include_str!("../../assets/web/channel.js"),
    ),
    ("state.js", JS, include_str!("../../assets/web/state.js")),
    ("media.js", JS, include_str!("../../assets/web/media.js")),
    ("view.js", JS, include_str!("../../assets/web/view.js")),
    ("stream.js", JS, include_str!("../../assets/web/stream.js")),
    ("hls.js", JS, include_str!("../../assets/web/hls.js")),
    ("keys.js", JS, include_str!("../../assets/web/keys.js")),
    (
        "episode.css",
        CSS,
        include_str!("../../assets/web/episode.css"),
    ),
    (
        "episode.js",
        JS,
        include_str!("../../assets/web/episode.js"),
    ),
];

async fn web_asset(Path(file): Path<String>) -> Response {
    match WEB_ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some(&(_, content_type, body)) => asset(content_type, body),
        None => ApiError::not_found("that page").into_response(),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn room_page(State(state): State<Arc<AppState>>, Path(room): Path<String>) -> Response {
    if state.room(&room).is_none() {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
             <title>No such room</title><body style='font-family:system-ui;background:#0d0f1a;\
             color:#f3f4fa;display:grid;place-items:center;min-height:90vh'><main><h1>This room \
             doesn't exist</h1><p>It may have ended. Ask for a new link.</p></main>",
        )
            .into_response();
    }
    asset("text/html; charset=utf-8", ROOM_HTML)
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.shared.metrics.render(),
    )
}

/// The bearer token of a request, if any.
pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The open room `id`, or 404.
pub(super) fn room_of(state: &AppState, id: &str) -> Result<RoomHandle, ApiError> {
    state
        .room(id)
        .ok_or_else(|| ApiError::not_found("that room"))
}

/// Sends a message to a room task and waits for its answer.
pub(super) async fn ask<T>(
    room: &RoomHandle,
    make: impl FnOnce(oneshot::Sender<T>) -> RoomMsg,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    room.tx.send(make(tx)).await.map_err(|_| ApiError::gone())?;
    rx.await.map_err(|_| ApiError::gone())
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid: {e}")))
}

pub(super) fn clean_text(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(max)
        .collect()
}

async fn create_room(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NewRoom = parse_json(&body)?;
    let title = clean_text(&req.title, 100);
    if title.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_title",
            "a room needs a title",
        ));
    }
    let game = clean_text(&req.game, 100);
    let host_name = req
        .host_name
        .map(|n| clean_text(&n, 40))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Host".to_owned());
    let icecast = icecast_target(&state, req.icecast.as_deref())?;
    let id = tokens::random_id(10).map_err(ApiError::internal)?;
    let (mut handle, host_token) = room_task::spawn(
        id.clone(),
        RoomConfig::new(title.clone(), game.clone()),
        host_name,
        state.shared.clone(),
    )?;
    handle.icecast = icecast.map(|target| {
        Arc::new(IcecastPush::start(
            &handle.live,
            &target,
            &state.shared.metrics,
        ))
    });
    state
        .rooms
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id.clone(), handle.clone());
    let episode = if req.record {
        ask(&handle, |reply| RoomMsg::Act {
            from: ParticipantId(1),
            action: Action::StartRecording,
            reply,
        })
        .await??;
        ask(&handle, |reply| RoomMsg::Info { reply }).await?.episode
    } else {
        None
    };
    let base = &state.base_url;
    let body = CreatedRoom {
        listener_link: format!("{base}/r/{id}"),
        host_link: format!("{base}/r/{id}#token={host_token}"),
        whip_url: format!("{base}/whip/{id}"),
        whep_url: format!("{base}/whep/{id}"),
        ws_url: format!("{}/api/rooms/{id}/ws", base.replacen("http", "ws", 1)),
        id: id.clone(),
        title,
        game,
        host_token,
        episode,
        icecast: handle
            .icecast
            .as_ref()
            .map(|push| push.status())
            .unwrap_or_default(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/rooms/{id}"))],
        Json(body),
    )
        .into_response())
}

/// The Icecast server a new room is pushed to: its own, else the server's default.
fn icecast_target(
    state: &AppState,
    asked: Option<&str>,
) -> Result<Option<IcecastTarget>, ApiError> {
    match asked.map(str::trim).filter(|url| !url.is_empty()) {
        Some(url) => IcecastTarget::parse(url)
            .map(Some)
            .map_err(|e| ApiError::bad_request("bad_icecast", e.to_string())),
        None => Ok(state.icecast.clone()),
    }
}

async fn room_info(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
) -> Result<Json<RoomInfo>, ApiError> {
    let room = room_of(&state, &room)?;
    let mut info = ask(&room, |reply| RoomMsg::Info { reply }).await?;
    if let Some(push) = &room.icecast {
        info.icecast = push.status();
    }
    Ok(Json(info))
}

async fn act(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let room = room_of(&state, &room)?;
    let action: Action = parse_json(&body)?;
    let token = bearer(&headers);
    ask(&room, |reply| RoomMsg::ActWithToken {
        token,
        action,
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn invite(
    State(state): State<Arc<AppState>>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let room = room_of(&state, &room_id)?;
    let req: NewInvite = parse_json(&body)?;
    let token = bearer(&headers);
    let inv = ask(&room, |reply| RoomMsg::Invite {
        token,
        role: req.role,
        reply,
    })
    .await??;
    let link = format!("{}/r/{room_id}#invite={}", state.base_url, inv.token);
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            token: inv.token,
            role: inv.role,
            link,
        }),
    )
        .into_response())
}

fn sdp_body(headers: &HeaderMap, body: Bytes) -> Result<String, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/sdp") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong_content_type",
            "send the offer as Content-Type: application/sdp",
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("bad_sdp", "the offer is not UTF-8 text"))
}

fn session_response(
    state: &AppState,
    kind: &str,
    room: &str,
    created: room_task::SessionCreated,
) -> Response {
    let mut response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, format!("/{kind}/{room}/{}", created.id)),
            (header::ETAG, format!("\"{}\"", created.id)),
        ],
        created.answer,
    )
        .into_response();
    for url in &state.ice_servers {
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"ice-server\"")) {
            response.headers_mut().append(header::LINK, v);
        }
    }
    response
}

async fn whip(
    State(state): State<Arc<AppState>>,
    Path(room_id): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let room = room_of(&state, &room_id)?;
    let token = bearer(&headers);
    if token.is_none() {
        state.shared.metrics.rejected.fetch_add(1, Relaxed);
        return Err(ApiError::unauthorized(
            "publishing needs a bearer token (the host's, or a speaker's)",
        ));
    }
    let offer = sdp_body(&headers, body)?;
    let created = ask(&room, |reply| RoomMsg::Publish {
        token,
        offer,
        client,
        reply,
    })
    .await?
    .inspect_err(|_| {
        state.shared.metrics.rejected.fetch_add(1, Relaxed);
    })?;
    Ok(session_response(&state, "whip", &room_id, created))
}

async fn whep(
    State(state): State<Arc<AppState>>,
    Path(room_id): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let room = room_of(&state, &room_id)?;
    let token = bearer(&headers);
    let offer = sdp_body(&headers, body)?;
    let created = ask(&room, |reply| RoomMsg::Listen {
        token,
        offer,
        client,
        reply,
    })
    .await?
    .inspect_err(|_| {
        state.shared.metrics.rejected.fetch_add(1, Relaxed);
    })?;
    Ok(session_response(&state, "whep", &room_id, created))
}

async fn trickle(
    State(state): State<Arc<AppState>>,
    Path((room_id, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let room = room_of(&state, &room_id)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.eq_ignore_ascii_case("application/trickle-ice-sdpfrag") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "wrong_content_type",
            "PATCH takes Content-Type: application/trickle-ice-sdpfrag",
        ));
    }
    let fragment = String::from_utf8_lossy(&body).into_owned();
    ask(&room, |reply| RoomMsg::Trickle {
        session,
        fragment,
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn hangup(
    State(state): State<Arc<AppState>>,
    Path((room_id, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = room_of(&state, &room_id)?;
    ask(&room, |reply| RoomMsg::Hangup { session, reply }).await??;
    Ok(StatusCode::OK)
}
