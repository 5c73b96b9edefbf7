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
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::error::ApiError;
use super::room_task::{RoomHandle, RoomMsg, WsOut};
use crate::room::ParticipantId;
use crate::room::protocol::{ClientMsg, ProtocolError, Ref, ServerMsg};

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

fn msg(msg: &ServerMsg) -> Message {
    Message::Text(msg.to_text().into())
}

fn error_msg(code: &str, message: &str, reference: Ref) -> Message {
    msg(&ServerMsg::error(code, message, reference))
}

fn protocol_error(e: &ProtocolError, reference: Ref) -> Message {
    error_msg(e.code(), &e.to_string(), reference)
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
    let (token, name) = match ClientMsg::parse(&text) {
        Ok((ClientMsg::Hello { token, name }, _)) => (token.filter(|t| !t.is_empty()), name),
        Err((e @ ProtocolError::InvalidJson, reference)) => {
            let _ = socket.send(protocol_error(&e, reference)).await;
            close(&mut socket, "say hello first").await;
            return;
        }
        Ok(_) | Err(_) => {
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
    };
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
            let e = ApiError::from(e);
            let _ = socket.send(error_msg(e.code, &e.message, None)).await;
            close(&mut socket, &e.message).await;
            return;
        }
        _ => {
            close(&mut socket, "the room has ended").await;
            return;
        }
    };
    let who = welcome.you.id;
    let conn = welcome.conn;
    let hello_reply = msg(&ServerMsg::Welcome {
        you: welcome.you,
        room: Box::new(welcome.room),
    });
    if socket.send(hello_reply).await.is_ok() {
        serve(&mut socket, &room, who, &mut out_rx).await;
    }
    let _ = room.tx.send(RoomMsg::Closed { who, conn }).await;
}

async fn serve(
    socket: &mut WebSocket,
    room: &RoomHandle,
    who: ParticipantId,
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
async fn handle_text(text: &str, room: &RoomHandle, who: ParticipantId) -> Option<Message> {
    let (action, reference) = match ClientMsg::parse(text) {
        Ok((ClientMsg::Act(action), reference)) => (action, reference),
        Ok((ClientMsg::Ping, reference)) => return Some(msg(&ServerMsg::Pong { reference })),
        Ok((ClientMsg::VoiceLevel { level }, _)) => {
            let _ = room.tx.try_send(RoomMsg::VoiceLevel { who, level });
            return None;
        }
        Ok((ClientMsg::Hello { .. }, reference)) => {
            return Some(error_msg(
                "invalid_message",
                "hello comes once, first",
                reference,
            ));
        }
        Err((e, reference)) => return Some(protocol_error(&e, reference)),
    };
    let ended = |reference| Some(error_msg("room_ended", "the room has ended", reference));
    let (tx, rx) = oneshot::channel();
    let act = RoomMsg::Act {
        from: who,
        action,
        reply: tx,
    };
    if room.tx.send(act).await.is_err() {
        return ended(reference);
    }
    match rx.await {
        Ok(Ok(())) => Some(msg(&ServerMsg::Ok { reference })),
        Ok(Err(e)) => {
            let e = ApiError::from(e);
            Some(error_msg(e.code, &e.message, reference))
        }
        Err(_) => ended(reference),
    }
}
