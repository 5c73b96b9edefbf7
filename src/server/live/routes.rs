//! The live streams over HTTP: `/live/{room}.mp3` and `.ogg` (endless responses any player
//! opens), `/live/{room}.m3u` (a playlist file naming the MP3 stream), and HLS under
//! `/hls/{room}/` (`index.m3u8` and its `{n}.mp3` segments).
//!
//! Never here: encoding (the room's [`LiveHub`] does it once for every reader).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};

use super::conn::Peer;
use super::hls::PLAYLIST;
use super::{Format, LiveHub, Next, Reader, Subscription};
use crate::server::AppState;
use crate::server::api::room_of;
use crate::server::error::ApiError;

/// The routes, merged into the server's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/live/{file}", get(live))
        .route("/hls/{room}/{file}", get(hls))
}

type PeerInfo = Option<axum::Extension<ConnectInfo<Peer>>>;

fn hub_of(state: &AppState, room: &str) -> Result<Arc<LiveHub>, ApiError> {
    Ok(room_of(state, room)?.live)
}

async fn live(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
    peer: PeerInfo,
) -> Result<Response, ApiError> {
    let (room, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found("that stream"))?;
    let hub = hub_of(&state, room)?;
    if hub.is_ended() {
        return Err(ApiError::gone());
    }
    let (format, content_type) = match ext {
        "mp3" => (Format::Mp3, "audio/mpeg"),
        "ogg" => (Format::Ogg, "audio/ogg"),
        "m3u" => return Ok(m3u(&state, &hub)),
        _ => return Err(ApiError::not_found("that stream")),
    };
    if let Some(axum::Extension(ConnectInfo(peer))) = peer {
        peer.mark_live();
    }
    let sub = hub.subscribe(format, Reader::Listener);
    let mut response = Body::from_stream(stream_body(sub)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    // Players show these (the ICY headers Icecast sends); a title that is not a valid header
    // value is left out rather than mangled.
    if let Ok(name) = HeaderValue::from_str(&hub.title()) {
        headers.insert("icy-name", name);
    }
    headers.insert("icy-pub", HeaderValue::from_static("0"));
    if format == Format::Mp3
        && let Ok(br) = HeaderValue::from_str(&hub.options().mp3_kbps.to_string())
    {
        headers.insert("icy-br", br);
    }
    Ok(response)
}

/// The chunks of a subscription as a response body: Ogg's header pages first; a reader that
/// falls behind the ring gets an error, which makes hyper drop the connection.
fn stream_body(
    sub: Subscription,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold((Some(sub), true), |(sub, first)| async move {
        let mut sub = sub?;
        match sub.next().await {
            Next::Chunk(chunk) => {
                let header = sub.header();
                let data = if first && !header.is_empty() {
                    let mut both = BytesMut::with_capacity(header.len() + chunk.data.len());
                    both.extend_from_slice(&header);
                    both.extend_from_slice(&chunk.data);
                    both.freeze()
                } else {
                    chunk.data
                };
                Some((Ok(data), (Some(sub), false)))
            }
            Next::Lagged => Some((
                Err(std::io::Error::other("the listener fell behind the stream")),
                (None, false),
            )),
            Next::Ended => None,
        }
    })
}

fn m3u(state: &AppState, hub: &LiveHub) -> Response {
    let title: String = hub
        .title()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let body = format!(
        "#EXTM3U\n#EXTINF:-1,{title}\n{}/live/{}.mp3\n",
        state.base_url,
        hub.room()
    );
    (
        [
            (header::CONTENT_TYPE, "audio/x-mpegurl; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn hls(
    State(state): State<Arc<AppState>>,
    Path((room, file)): Path<(String, String)>,
    peer: PeerInfo,
) -> Result<Response, ApiError> {
    let hub = hub_of(&state, &room)?;
    hub.hls_requested(peer.map(|axum::Extension(ConnectInfo(p))| p.addr.ip()));
    if file == PLAYLIST {
        return playlist(&hub).await;
    }
    let seq: u64 = file
        .strip_suffix(".mp3")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::not_found("that segment"))?;
    let segment = hub
        .hls
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .segment(seq)
        .ok_or_else(|| ApiError::not_found("that segment"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/mpeg"),
            // A segment never changes: any cache may keep it.
            (header::CACHE_CONTROL, "public, max-age=60, immutable"),
        ],
        segment,
    )
        .into_response())
}

/// The playlist; the first request of a room waits for its first segment.
async fn playlist(hub: &LiveHub) -> Result<Response, ApiError> {
    let wait = hub.options().hls_segment * 2 + Duration::from_secs(3);
    let mut changes = hub.watch();
    let deadline = tokio::time::Instant::now() + wait;
    let text = loop {
        changes.borrow_and_update();
        let text = hub
            .hls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .playlist();
        if let Some(text) = text {
            break text;
        }
        if hub.is_ended()
            || tokio::time::timeout_at(deadline, changes.changed())
                .await
                .map_or(true, |r| r.is_err())
        {
            let mut r = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "hls_starting",
                "the stream is starting: try again in a moment",
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return Ok(r);
        }
    };
    // A cache may keep the playlist for a second, never longer: it changes every segment.
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "public, max-age=1"),
        ],
        text,
    )
        .into_response())
}
