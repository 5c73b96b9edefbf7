//! The WebSocket room channel: `hello` first, then actions in and events out, as JSON text
//! messages carrying `"v": 1`. A client that sends garbage gets an `error` message and stays
//! connected; one that floods is rate limited, then cut off. Nothing a client sends can stop the
//! room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::client::ClientAddr;
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
/// How long one message may take to go out before the client counts as gone: a client that
/// stops reading fills its socket, then this.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued for one connection; a client whose queue is full is disconnected by the
/// room (it never waits for a reader).
const OUT_QUEUE: usize = 256;
/// The window over which flooding is judged.
const FLOOD_WINDOW: Duration = Duration::from_secs(2);
/// A client that has this many times its rate dropped within one window is cut off.
const FLOOD_FACTOR: f64 = 5.0;

/// Room-channel WebSockets open per client address, across the server.
#[derive(Debug, Default)]
pub struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One WebSocket counted against its address, until dropped.
#[derive(Debug)]
pub struct AddressSlot {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerAddress {
    /// A slot for `ip`, unless it already holds `max`.
    #[must_use]
    pub fn take(&self, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            map: Arc::clone(&self.0),
            ip,
        })
    }

    /// WebSockets open from `ip`.
    #[must_use]
    pub fn count(&self, ip: IpAddr) -> usize {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A client's allowance: `rate` messages a second with bursts of twice that; far beyond it for
/// a whole window, the connection ends.
#[derive(Debug)]
struct Allowance {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    window_start: Instant,
    window_dropped: f64,
}

/// What to do with one incoming message.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Take,
    Drop,
    Cut,
}

impl Allowance {
    fn new(per_sec: u32, now: Instant) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            rate,
            tokens: 2.0 * rate,
            refilled: now,
            window_start: now,
            window_dropped: 0.0,
        }
    }

    fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(2.0 * self.rate);
        self.refilled = now;
        if now.saturating_duration_since(self.window_start) >= FLOOD_WINDOW {
            self.window_start = now;
            self.window_dropped = 0.0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Take;
        }
        self.window_dropped += 1.0;
        // Dropped: five times the rate, over one window (a client sending six times its rate).
        let far = FLOOD_FACTOR * self.rate * FLOOD_WINDOW.as_secs_f64();
        if self.window_dropped >= far {
            Verdict::Cut
        } else {
            Verdict::Drop
        }
    }
}

/// `GET /api/rooms/{room}/ws`.
///
/// # Errors
/// The room does not exist.
pub async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    ClientAddr(ip): ClientAddr,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    let room = state
        .room(&room)
        .ok_or_else(|| ApiError::not_found("that room"))?;
    let limits = Arc::clone(&state.shared.limits);
    let slot = state
        .websockets
        .take(ip, limits.ws_per_address)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!(
                    "this address has {} room channels open already: close one first",
                    limits.ws_per_address
                ),
            )
        })?;
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            state.shared.metrics.websockets.fetch_add(0, Relaxed);
            run(socket, room, limits.ws_messages_per_sec).await;
            drop(slot);
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
    let _ = send(socket, Message::Close(Some(frame))).await;
}

/// Sends one message, giving up on a client that does not take it in time.
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn run(mut socket: WebSocket, room: RoomHandle, per_sec: u32) {
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
    let (out_tx, mut out_rx) = mpsc::channel(OUT_QUEUE);
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
    if send(&mut socket, hello_reply).await {
        serve(&mut socket, &room, who, &mut out_rx, per_sec).await;
    }
    let _ = room.tx.send(RoomMsg::Closed { who, conn }).await;
}

async fn serve(
    socket: &mut WebSocket,
    room: &RoomHandle,
    who: ParticipantId,
    out: &mut mpsc::Receiver<WsOut>,
    per_sec: u32,
) {
    let mut allowance = Allowance::new(per_sec, Instant::now());
    let mut warned: Option<Instant> = None;
    loop {
        tokio::select! {
            outgoing = out.recv() => match outgoing {
                Some(WsOut::Text(text)) => {
                    if !send(socket, Message::Text(text.as_ref().into())).await {
                        return;
                    }
                }
                Some(WsOut::Close(reason)) => {
                    close(socket, &reason).await;
                    return;
                }
                // The room let this connection go (it stopped reading, or the room is gone).
                None => {
                    close(socket, "too slow: the room's messages were not being read").await;
                    return;
                }
            },
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = send(socket, error_msg("text_only", "messages are JSON text", None)).await;
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                let now = Instant::now();
                match allowance.check(now) {
                    Verdict::Take => {}
                    Verdict::Cut => {
                        close(socket, "too many messages").await;
                        return;
                    }
                    Verdict::Drop => {
                        if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(1)) {
                            warned = Some(now);
                            let _ = send(socket, error_msg("rate_limited", "slow down: messages are being dropped", None)).await;
                        }
                        continue;
                    }
                }
                if let Some(reply) = handle_text(&text, room, who).await
                    && !send(socket, reply).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_throttled_over_its_rate_and_cut_off_far_over_it() {
        let start = Instant::now();
        let mut a = Allowance::new(20, start);
        let verdicts: Vec<Verdict> = (0..40).map(|_| a.check(start)).collect();
        assert!(verdicts.iter().all(|v| *v == Verdict::Take), "the burst");
        assert_eq!(a.check(start), Verdict::Drop);
        // 10 a second for a minute: always within the rate.
        let mut calm = Allowance::new(20, start);
        for i in 0..600 {
            assert_eq!(
                calm.check(start + Duration::from_millis(100 * i)),
                Verdict::Take
            );
        }
        // 10,000 a second: cut off well within the window.
        let mut flood = Allowance::new(20, start);
        let cut = (0..20_000u64)
            .position(|i| flood.check(start + Duration::from_micros(100 * i)) == Verdict::Cut);
        assert!(cut.is_some_and(|i| i < 1000), "{cut:?}");
    }

    #[test]
    fn an_address_holds_at_most_its_share_of_channels() {
        let per = PerAddress::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        let a = per.take(ip, 2);
        let b = per.take(ip, 2);
        assert!(a.is_some() && b.is_some());
        assert!(per.take(ip, 2).is_none());
        drop(a);
        assert_eq!(per.count(ip), 1);
        assert!(per.take(ip, 2).is_some());
    }
}
