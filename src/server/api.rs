//! HTTP routes: rooms, actions, invitations, WHIP/WHEP, pages, health and metrics. What every
//! route passes through first (headers, origins, CORS, deadlines) is in [`super::edge`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::AppState;
use super::client::ClientAddr;
use super::edge::{self, EdgePolicy};
use super::error::ApiError;
use super::live::icecast::{IcecastPush, IcecastTarget};
use super::room_task::{self, RoomHandle, RoomMsg};
use super::rooms;
use super::tokens;
use crate::room::protocol::{CreatedRoom, Invitation, NewInvite, NewRoom, RoomInfo};
use crate::room::{Action, ParticipantId, RoomConfig};

/// Largest request body accepted (SDP offers are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// The whole HTTP surface, behind the edge (see [`super::edge`]).
pub fn router(state: Arc<AppState>, policy: Arc<EdgePolicy>) -> Router {
    let media = Router::new()
        .route("/whip/{room}", post(whip))
        .route("/whep/{room}", post(whep))
        .route("/whip/{room}/{session}", patch(trickle).delete(hangup))
        .route("/whep/{room}/{session}", patch(trickle).delete(hangup))
        .layer(edge::media_cors());
    let mut app = Router::new()
        .merge(super::episodes::routes())
        .merge(super::live::routes::routes().layer(edge::stream_cors()))
        .merge(super::live::forward::routes())
        .merge(media)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/r/{room}", get(room_page))
        .route("/assets/{file}", get(web_asset))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{room}", get(room_info))
        .route("/api/rooms/{room}/actions", post(act))
        .route("/api/rooms/{room}/invites", post(invite))
        .route(
            "/api/rooms/{room}/invites/{invite}",
            axum::routing::delete(revoke_invite),
        )
        .route("/api/rooms/{room}/ws", get(super::ws::handler));
    if !policy.metrics_apart {
        app = app.route("/metrics", get(edge::metrics));
    }
    let app = app
        .fallback(|| async { ApiError::not_found("that page") })
        .layer(DefaultBodyLimit::max(MAX_BODY));
    edge::guard(app, policy).with_state(state)
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
             <title>No such room</title><link rel=stylesheet href=/assets/room.css><main>\
             <section class=ended><h2>This room doesn't exist</h2><p>It may have ended. Ask for \
             a new link.</p></section></main>",
        )
            .into_response();
    }
    asset("text/html; charset=utf-8", ROOM_HTML)
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
    crate::room::clean_text(s, max)
}

async fn create_room(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Err(refused) = admit_creation(&state, client, &headers) {
        return Ok(refused.into_response());
    }
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
    let id = tokens::room_id().map_err(ApiError::internal)?;
    let mut host_token = String::new();
    let registered = rooms::register(&state.rooms, &state.shared.limits, || {
        let (mut handle, token) = room_task::spawn(
            id.clone(),
            RoomConfig::new(title.clone(), game.clone()),
            host_name,
            state.shared.clone(),
        )?;
        host_token = token;
        handle.icecast = icecast.map(|target| {
            Arc::new(IcecastPush::start(
                &handle.live,
                &target,
                &state.shared.metrics,
            ))
        });
        Ok::<_, ApiError>(handle)
    });
    let handle = match registered {
        Ok(opened) => opened?,
        Err(refused) => return Ok(refused.into_response()),
    };
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

/// Whether `client` may create a room now: the server's room key, the server's room cap, then
/// the client's bucket (a refused creation costs the client nothing but the last check).
fn admit_creation(
    state: &AppState,
    client: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<(), rooms::CreationRefused> {
    let limits = &state.shared.limits;
    rooms::check_room_key(limits, headers)?;
    rooms::check_capacity(state)?;
    state
        .creations
        .take(client, limits, std::time::Instant::now())
        .inspect_err(|_| {
            tracing::debug!(%client, "room creation refused: rate limited");
        })
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

/// `GET /api/rooms/{id}`'s query: which page of the audience.
#[derive(Debug, Deserialize)]
struct AudiencePage {
    /// Listeners with ids above this one.
    audience_after: Option<u64>,
    /// At most this many (and never more than the server's `audience_page`).
    limit: Option<usize>,
}

async fn room_info(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    page: Result<axum::extract::Query<AudiencePage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RoomInfo>, ApiError> {
    let axum::extract::Query(page) = page.map_err(|e| {
        ApiError::bad_request(
            "bad_query",
            format!("audience_after and limit are numbers: {e}"),
        )
    })?;
    let room = room_of(&state, &room)?;
    let most = state.shared.limits.audience_page;
    let limit = page.limit.unwrap_or(most).min(most);
    let after = page.audience_after.map(ParticipantId);
    let mut info = ask(&room, |reply| RoomMsg::InfoPage {
        after,
        limit,
        reply,
    })
    .await?;
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
            id: inv.id,
            token: inv.token,
            role: inv.role,
            link,
            expires_in_secs: inv.expires_in_secs,
        }),
    )
        .into_response())
}

/// `DELETE /api/rooms/{id}/invites/{invite}`: a moderator takes back an invitation not yet
/// used.
async fn revoke_invite(
    State(state): State<Arc<AppState>>,
    Path((room_id, invite)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let room = room_of(&state, &room_id)?;
    let token = bearer(&headers);
    ask(&room, |reply| RoomMsg::RevokeInvite {
        token,
        invite,
        reply,
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
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
