//! Going live from `booth host` (and the overlay): start the room server in this process or use
//! a remote one, create the room (or join one with a token), and publish the engine's Opus
//! frames by WHIP to a remote server. When the server runs in this process the engine hands the
//! program to the room's task before Opus instead: the room mixes and encodes it once for
//! everyone (one generation of Opus, not two), and no encryption, packets or wake-ups come
//! between a host and its own server; guests and listeners still come over WebRTC. The host
//! hears the room from it directly too. The engine thread knows nothing of this: it hands its
//! frames to a consumer like any other (a ring, or a channel that wakes the publishing task).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::engine::{FrameSink, MeterReadout};
use crate::host::RoomTarget;
use crate::rtc::jitter::PlayoutDecoder;
use crate::rtc::peer::{ClientPeer, Mode};
use crate::server::{RunningServer, ServeOptions};

/// The room the program is live in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRoom {
    /// The server's base URL.
    pub server: String,
    /// The room id.
    pub room: String,
    /// What listeners open.
    pub listener_link: String,
    /// The host's own link (with the host token), when this process created the room.
    pub host_link: Option<String>,
    /// The token the program is published with.
    pub token: String,
    /// Whether the server runs in this process.
    pub embedded: bool,
}

/// Why going live failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LiveError(String);

/// A live program. Stop it to hang up (and stop the in-process server).
#[derive(Debug)]
pub struct GoLive {
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    peer: Option<ClientPeer>,
    /// Publishing into the server in this process.
    here: Option<crate::server::LocalSession>,
    voices: Option<tokio::task::JoinHandle<()>>,
    channel: Option<tokio::task::JoinHandle<()>>,
    room: LiveRoom,
    reported: AtomicBool,
    actions: tokio::sync::mpsc::UnboundedSender<Value>,
    messages_tx: mpsc::Sender<Value>,
    messages: Option<mpsc::Receiver<Value>>,
}

impl GoLive {
    /// Goes live; adds the WHIP publisher to the engine's `consumers`. The room hears how loud
    /// the voice is from the engine's `meters` (its speaking indicator follows the voice, not
    /// the game under it).
    ///
    /// # Errors
    /// The server cannot start or be reached, refuses the room or the token, or the media does
    /// not connect.
    pub fn start(
        target: &RoomTarget,
        consumers: &mut Vec<FrameSink>,
        room_voices: Option<rtrb::Producer<f32>>,
        meters: Arc<MeterReadout>,
    ) -> Result<Self, LiveError> {
        // One worker: the publisher, the room channel, hearing the room and an in-process
        // server for a handful of guests are a few packets every 20 ms. A second worker only
        // added wake-ups: each task woken on one worker woke the other to steal it.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("booth-live")
            .enable_all()
            .build()
            .map_err(|e| LiveError(format!("cannot start the network runtime: {e}")))?;
        let (server, room) = rt.block_on(open_room(target))?;
        // The engine hands the room's own task its program when the server runs in this
        // process (no codec or WebRTC between a host and its own server), else its packets
        // straight to a WHIP peer's task.
        let (peer, here) = match &server {
            Some(running) => {
                let mut here = rt
                    .block_on(running.publish_here(&room.room, &room.token))
                    .map_err(|e| LiveError(format!("cannot publish to the room: {e}")))?;
                if let Some(program) = here.program.take() {
                    consumers.push(FrameSink::Program(program));
                }
                (None, Some(here))
            }
            None => {
                let whip = format!("{}/whip/{}", room.server, room.room);
                let peer = rt
                    .block_on(ClientPeer::connect(
                        &whip,
                        Some(&room.token),
                        Mode::Publish,
                        Duration::from_secs(10),
                    ))
                    .map_err(|e| LiveError(format!("cannot publish to {whip}: {e}")))?;
                consumers.push(FrameSink::Publisher(peer.frames.clone()));
                (Some(peer), None)
            }
        };
        let (messages_tx, messages) = mpsc::channel();
        let (actions, actions_rx) = tokio::sync::mpsc::unbounded_channel();
        let (joined_tx, joined) = tokio::sync::oneshot::channel();
        let channel = rt.spawn(stay_in_the_room(
            room.clone(),
            meters,
            messages_tx.clone(),
            actions_rx,
            joined_tx,
        ));
        // Live means the room knows the host is there: until its channel is welcomed, a host
        // that went away would leave the room waiting for a host it never saw. A room slow to
        // answer does not stop the program; the channel keeps trying.
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), joined).await });
        let voices = room_voices.map(|producer| match &server {
            Some(running) => {
                let heard = rt.block_on(running.listen_here(&room.room, &room.token));
                rt.spawn(async move {
                    match heard {
                        Ok(mut here) => {
                            if let Some(incoming) = here.incoming.as_mut() {
                                play_the_room(incoming, producer).await;
                            }
                        }
                        Err(e) => tracing::warn!(
                            "cannot hear the room's other voices ({e}); the program goes out anyway"
                        ),
                    }
                })
            }
            None => {
                let whep = format!("{}/whep/{}", room.server, room.room);
                rt.spawn(hear_the_room(whep, room.token.clone(), producer))
            }
        });
        Ok(Self {
            rt,
            server,
            peer,
            here,
            voices,
            channel: Some(channel),
            room,
            reported: AtomicBool::new(false),
            actions,
            messages_tx,
            messages: Some(messages),
        })
    }

    /// What the room says (its channel's messages as they arrive, starting with `welcome`),
    /// plus the answers to [`GoLive::invite`] (`invite_link`, or `error`). Taken once.
    pub fn take_messages(&mut self) -> Option<mpsc::Receiver<Value>> {
        self.messages.take()
    }

    /// Sends a room action (`room::Action` as JSON, e.g. `{"type": "approve", "target": 7}`) on
    /// the room channel; the room answers with `ok` or `error` carrying the same `ref`.
    pub fn act(&self, action: Value) {
        let _ = self.actions.send(action);
    }

    /// Asks the server for an invitation link (`co_host` or `speaker`); the answer arrives
    /// among the messages as `{"type": "invite_link", "role", "link"}`, or an `error`.
    pub fn invite(&self, role: &str) {
        let url = format!("{}/api/rooms/{}/invites", self.room.server, self.room.room);
        let token = self.room.token.clone();
        let role = role.to_owned();
        let tx = self.messages_tx.clone();
        self.rt.spawn(async move {
            let answer = async {
                let response = crate::rtc::signal::http_client()
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "role": role }))
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach the room server: {e}"))?;
                let status = response.status();
                let v: Value = response.json().await.unwrap_or(Value::Null);
                match v.get("link").and_then(Value::as_str) {
                    Some(link) if status.is_success() => Ok(link.to_owned()),
                    _ => Err(v
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the server refused the invitation")
                        .to_owned()),
                }
            }
            .await;
            let _ = tx.send(match answer {
                Ok(link) => serde_json::json!({"type": "invite_link", "role": role, "link": link}),
                Err(message) => {
                    serde_json::json!({"type": "error", "code": "invite", "message": message})
                }
            });
        });
    }

    /// The room.
    #[must_use]
    pub fn room(&self) -> &LiveRoom {
        &self.room
    }

    /// Why the publication ended, the first time it is asked after it did.
    #[must_use]
    pub fn lost(&self) -> Option<String> {
        let why = match (&self.peer, &self.here) {
            (Some(peer), _) => peer.ended()?,
            (None, Some(here)) if here.ended() => "the room let the host's program go".to_owned(),
            _ => return None,
        };
        (!self.reported.swap(true, Ordering::Relaxed)).then_some(why)
    }

    /// Hangs up and stops the in-process server.
    pub fn stop(mut self) {
        if let Some(voices) = self.voices.take() {
            voices.abort();
        }
        if let Some(channel) = self.channel.take() {
            channel.abort();
        }
        if let Some(mut peer) = self.peer.take() {
            self.rt.block_on(peer.close());
        }
        drop(self.here.take());
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

/// Holds the room channel open while live, so the room knows the host (or speaker) is there: if
/// this process goes away, the room's host-drop rules apply (a grace period, then a co-host takes
/// over or the room ends). Everything the room says goes to `messages`; `actions` go to the
/// room. The channel is re-opened (with backoff) when it drops, until the room ends or refuses
/// the token.
async fn stay_in_the_room(
    room: LiveRoom,
    meters: Arc<MeterReadout>,
    messages: mpsc::Sender<Value>,
    mut actions: tokio::sync::mpsc::UnboundedReceiver<Value>,
    joined: tokio::sync::oneshot::Sender<()>,
) {
    let mut joined = Some(joined);
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!(
        "{}/api/rooms/{}/ws",
        room.server.replacen("http", "ws", 1),
        room.room
    );
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::server::ws::READ_BUFFER);
    let mut backoff = Duration::from_millis(500);
    loop {
        // No Nagle: the levels are small writes that should leave at once.
        let connected =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await;
        if let Ok((mut ws, _)) = connected {
            backoff = Duration::from_millis(500);
            let hello =
                serde_json::json!({"v": 1, "type": "hello", "token": room.token, "name": ""});
            if ws
                .send(Message::Text(hello.to_string().into()))
                .await
                .is_err()
            {
                continue;
            }
            let mut report = tokio::time::interval(Duration::from_millis(200));
            loop {
                let msg = tokio::select! {
                    msg = ws.next() => msg,
                    action = actions.recv() => {
                        let Some(mut action) = action else { return };
                        if let Some(obj) = action.as_object_mut() {
                            obj.insert("v".into(), Value::from(1));
                        }
                        if ws.send(Message::Text(action.to_string().into())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    _ = report.tick() => {
                        // Sent five times a second even when unchanged: the room shows a
                        // report older than 600 ms as silence.
                        // The mic's peak after its chain: the light follows the voice.
                        let level =
                            crate::dsp::level_fraction(meters.read().mic_peak_dbfs);
                        let m = serde_json::json!({"v": 1, "type": "voice_level", "level": level});
                        if ws.send(Message::Text(m.to_string().into())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                // The first answer (a welcome, or why not) says the room has heard the hello.
                if let Some(joined) = joined.take() {
                    let _ = joined.send(());
                }
                let last = ends_the_channel(&v);
                let _ = messages.send(v);
                if last {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Whether a room message is the last one the channel will carry for this participant: the
/// room ended, or it refuses them (removed, a token it does not know).
#[must_use]
pub fn ends_the_channel(v: &Value) -> bool {
    v["type"] == "ended"
        || (v["type"] == "error"
            && matches!(
                v["code"].as_str(),
                Some("removed" | "unauthorized" | "room_ended")
            ))
}

/// A line for the terminal about a room message a host acts on (raised hands, who is on stage,
/// reactions, errors, the end), or `None` for the rest.
#[must_use]
pub fn describe(v: &Value) -> Option<String> {
    let names = |list: &Value, f: &dyn Fn(&Value) -> String| -> Vec<String> {
        list.as_array()
            .map(|q| q.iter().map(f).collect())
            .unwrap_or_default()
    };
    let name = |m: &Value| m["name"].as_str().unwrap_or("?").to_owned();
    match v.get("type").and_then(Value::as_str)? {
        "hand_queue" => {
            let names = names(&v["queue"], &name);
            (!names.is_empty()).then(|| format!("hands raised: {}", names.join(", ")))
        }
        "stage_changed" => {
            let who = names(&v["stage"], &|m| {
                format!("{} ({})", name(m), m["role"].as_str().unwrap_or("?"))
            });
            Some(format!("on stage: {}", who.join(", ")))
        }
        "reaction" => Some(format!("reaction {}", v["emoji"].as_str().unwrap_or(""))),
        "error" => Some(format!(
            "the room says: {}",
            v["message"].as_str().unwrap_or("error")
        )),
        "ended" => Some("the room has ended".into()),
        "invite_link" => Some(format!(
            "invitation ({}): {}",
            v["role"].as_str().unwrap_or("?"),
            v["link"].as_str().unwrap_or("")
        )),
        _ => None,
    }
}

/// Receives the host's mix-minus (everyone in the room but the host) and writes it, 48 kHz
/// stereo, into the engine's ring for the room's voices, paced by a 20 ms clock behind a jitter
/// buffer. Without it the program still goes out; the host just does not hear the guests.
async fn hear_the_room(whep: String, token: String, voices: rtrb::Producer<f32>) {
    let mut peer =
        match ClientPeer::connect(&whep, Some(&token), Mode::Listen, Duration::from_secs(10)).await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    "cannot hear the room's other voices ({e}); the program goes out anyway"
                );
                return;
            }
        };
    play_the_room(&mut peer.incoming, voices).await;
    peer.close().await;
}

/// Plays what `incoming` brings into `voices` until it closes, behind a jitter buffer.
async fn play_the_room(
    incoming: &mut tokio::sync::mpsc::Receiver<crate::rtc::peer::InFrame>,
    mut voices: rtrb::Producer<f32>,
) {
    let Ok(mut playout) = PlayoutDecoder::new(2, 10) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        if playout.is_idle() {
            // Nothing to play until a packet comes (the host alone on stage is sent nothing):
            // wait for one without waking every 20 ms, then play out from a tick after it.
            match incoming.recv().await {
                Some(f) => playout.push(f.rtp_time, f.packet),
                None => break,
            }
            tick.reset();
            continue;
        }
        tokio::select! {
            frame = incoming.recv() => match frame {
                Some(f) => playout.push(f.rtp_time, f.packet),
                None => break,
            },
            _ = tick.tick() => {
                let played = playout.next_frame();
                if played.silent {
                    continue;
                }
                let room = voices.slots().min(played.pcm.len());
                if let Ok(chunk) = voices.write_chunk_uninit(room) {
                    chunk.fill_from_iter(played.pcm.iter().copied());
                }
            }
        }
    }
}

async fn open_room(target: &RoomTarget) -> Result<(Option<RunningServer>, LiveRoom), LiveError> {
    let (server, base) = match &target.server {
        Some(url) => (None, url.trim_end_matches('/').to_owned()),
        None => {
            let opts = ServeOptions {
                bind: target.bind,
                udp_ports: target.udp_ports,
                data_dir: target.data_dir.clone(),
                ..ServeOptions::default()
            };
            let running = match crate::server::start(opts.clone()).await {
                Ok(r) => r,
                // The usual port is taken (another Booth, another program): any free one will do
                // for a room this process hosts; the link printed says which.
                Err(crate::server::ServeError::Http { .. }) if target.bind.port() != 0 => {
                    let mut any = opts;
                    any.bind.set_port(0);
                    crate::server::start(any)
                        .await
                        .map_err(|e| LiveError(e.to_string()))?
                }
                Err(e) => return Err(LiveError(e.to_string())),
            };
            let base = running.base_url.clone();
            (Some(running), base)
        }
    };
    let http = crate::rtc::signal::http_client();
    let room = match (&target.room, &target.token) {
        (Some(room), Some(token)) => LiveRoom {
            server: base.clone(),
            room: room.clone(),
            listener_link: format!("{base}/r/{room}"),
            host_link: None,
            token: token.clone(),
            embedded: server.is_some(),
        },
        (Some(_), None) => {
            return Err(LiveError(
                "joining a room needs its token: --room ID --token TOKEN".into(),
            ));
        }
        (None, _) => {
            let url = format!("{base}/api/rooms");
            let body = serde_json::json!({ "title": target.title, "game": target.game });
            let response =
                http.post(&url).json(&body).send().await.map_err(|e| {
                    LiveError(format!("cannot reach the room server at {base}: {e}"))
                })?;
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                let why = v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(LiveError(format!(
                    "the room server refused the room ({status}): {why}"
                )));
            }
            let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
            match (field("id"), field("host_token"), field("listener_link")) {
                (Some(room), Some(token), Some(listener_link)) => LiveRoom {
                    server: base.clone(),
                    room,
                    listener_link,
                    host_link: field("host_link"),
                    token,
                    embedded: server.is_some(),
                },
                _ => {
                    return Err(LiveError(format!(
                        "{url} did not answer like a Booth room server"
                    )));
                }
            }
        }
    };
    Ok((server, room))
}
