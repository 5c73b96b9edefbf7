//! The WebSocket room channel: `hello` first, then actions in and events out, as JSON text
//! messages carrying `"v": 1`. A client that sends garbage gets an `error` message and stays
//! connected; one that floods is rate limited, then cut off. Nothing a client sends can stop the
//! room.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::error::ApiError;
use super::room_task::{PROTOCOL_VERSION, RoomHandle, RoomMsg, WsOut};
use crate::room::Action;

/// Largest message a client may send.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// How much a room channel's socket reads at once, at either end. The room's messages are a
/// few hundred bytes; WebSocket's library zeroes its whole read buffer before every read (128
/// KiB unless told), which was 2% of a host's time with one listener (`perf record`: the server's
/// end and the host's own room channel, each read five to ten times a second, each read
/// followed by one that finds nothing). A message longer than this takes more reads.
pub const READ_BUFFER: usize = 4 * 1024;
/// Messages per second a client may send, and the burst allowed above it.
const RATE: f64 = 20.0;
const BURST: f64 = 40.0;
/// Messages dropped for flooding before the connection is closed.
const FLOOD_LIMIT: u32 = 400;

/// `GET /api/rooms/{room}/ws`.
///
/// # Errors
/// The room does not exist.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    let room = state
        .room(&room)
        .ok_or_else(|| ApiError::not_found("that room"))?;
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            state.shared.metrics.websockets.fetch_add(0, Relaxed);
            run(socket, room).await;
        }))
}

fn msg(value: Value) -> Message {
    let mut value = value;
    if let Value::Object(map) = &mut value {
        map.insert("v".into(), json!(PROTOCOL_VERSION));
    }
    Message::Text(value.to_string().into())
}

fn error_msg(code: &str, message: &str, reference: Option<&Value>) -> Message {
    let mut v = json!({ "type": "error", "code": code, "message": message });
    if let (Some(r), Value::Object(map)) = (reference, &mut v) {
        map.insert("ref".into(), r.clone());
    }
    msg(v)
}

async fn close(socket: &mut WebSocket, reason: &str) {
    let frame = CloseFrame {
        code: 1008,
        reason: reason.chars().take(100).collect::<String>().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn run(mut socket: WebSocket, room: RoomHandle) {
    // The first message must be `hello`.
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        close(&mut socket, "say hello first").await;
        return;
    };
    let hello: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => {
            let _ = socket
                .send(error_msg("invalid_json", "the message is not JSON", None))
                .await;
            close(&mut socket, "say hello first").await;
            return;
        }
    };
    if hello.get("type").and_then(Value::as_str) != Some("hello") {
        let _ = socket
            .send(error_msg(
                "hello_first",
                "the first message must be hello",
                None,
            ))
            .await;
        close(&mut socket, "say hello first").await;
        return;
    }
    let token = hello
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let name = hello
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (out_tx, mut out_rx) = mpsc::channel(256);
    let (tx, rx) = oneshot::channel();
    let sent = room
        .tx
        .send(RoomMsg::Hello {
            token,
            name,
            out: out_tx,
            reply: tx,
        })
        .await;
    let welcome = match (sent, rx.await) {
        (Ok(()), Ok(Ok(w))) => w,
        (_, Ok(Err(e))) => {
            let _ = socket.send(error_msg(e.code, &e.message, None)).await;
            close(&mut socket, &e.message).await;
            return;
        }
        _ => {
            close(&mut socket, "the room has ended").await;
            return;
        }
    };
    let who = welcome.id;
    let conn = welcome.conn;
    let hello_reply = msg(json!({
        "type": "welcome",
        "you": { "id": welcome.id, "role": welcome.role, "name": welcome.name, "token": welcome.token },
        "room": welcome.room,
    }));
    if socket.send(hello_reply).await.is_ok() {
        serve(&mut socket, &room, who, &mut out_rx).await;
    }
    let _ = room.tx.send(RoomMsg::Closed { who, conn }).await;
}

async fn serve(
    socket: &mut WebSocket,
    room: &RoomHandle,
    who: crate::room::ParticipantId,
    out: &mut mpsc::Receiver<WsOut>,
) {
    let mut tokens = BURST;
    let mut refilled = Instant::now();
    let mut dropped = 0u32;
    let mut warned: Option<Instant> = None;
    loop {
        tokio::select! {
            outgoing = out.recv() => match outgoing {
                Some(WsOut::Text(text)) => {
                    if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Some(WsOut::Close(reason)) => {
                    close(socket, &reason).await;
                    return;
                }
                None => return,
            },
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = socket.send(error_msg("text_only", "messages are JSON text", None)).await;
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                let now = Instant::now();
                tokens = (tokens + now.duration_since(refilled).as_secs_f64() * RATE).min(BURST);
                refilled = now;
                if tokens < 1.0 {
                    dropped += 1;
                    if dropped > FLOOD_LIMIT {
                        close(socket, "too many messages").await;
                        return;
                    }
                    if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(1)) {
                        warned = Some(now);
                        let _ = socket.send(error_msg("rate_limited", "slow down: messages are being dropped", None)).await;
                    }
                    continue;
                }
                tokens -= 1.0;
                if let Some(reply) = handle_text(&text, room, who).await
                    && socket.send(reply).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Handles one client message; the reply to send, if any.
async fn handle_text(
    text: &str,
    room: &RoomHandle,
    who: crate::room::ParticipantId,
) -> Option<Message> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Some(error_msg("invalid_json", "the message is not JSON", None)),
    };
    let reference = value.get("ref").cloned();
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Some(error_msg(
            "invalid_message",
            "a message needs a \"type\"",
            reference.as_ref(),
        ));
    };
    if kind == "ping" {
        return Some(msg(json!({ "type": "pong", "ref": reference })));
    }
    if kind == "voice_level" {
        // A publisher's own voice activity (the host's program also carries the game, so its
        // level alone would say "speaking" all the time).
        let level = value.get("level").and_then(Value::as_f64).unwrap_or(0.0) as f32;
        let _ = room.tx.try_send(RoomMsg::VoiceLevel { who, level });
        return None;
    }
    let action: Action = match serde_json::from_value(value.clone()) {
        Ok(a) => a,
        Err(e) if e.to_string().contains("unknown variant") => {
            return Some(error_msg(
                "unknown_type",
                &format!("unknown message type \"{kind}\""),
                reference.as_ref(),
            ));
        }
        Err(e) => {
            return Some(error_msg(
                "invalid_message",
                &format!("\"{kind}\" is missing something: {e}"),
                reference.as_ref(),
            ));
        }
    };
    let (tx, rx) = oneshot::channel();
    if room
        .tx
        .send(RoomMsg::Act {
            from: who,
            action,
            reply: tx,
        })
        .await
        .is_err()
    {
        return Some(error_msg(
            "room_ended",
            "the room has ended",
            reference.as_ref(),
        ));
    }
    match rx.await {
        Ok(Ok(())) => Some(msg(json!({ "type": "ok", "ref": reference }))),
        Ok(Err(e)) => Some(error_msg(e.code, &e.message, reference.as_ref())),
        Err(_) => Some(error_msg(
            "room_ended",
            "the room has ended",
            reference.as_ref(),
        )),
    }
}
