//! A client of the room's HTTP API and WebSocket channel, as the web page is: create a room,
//! join it, act in it and read what it says. Its helpers assert only that each step was taken;
//! what a room does about it is for the tests to check.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use booth::room::protocol::{ClientMsg, ServerMsg};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A runtime for the async clients, beside the blocking test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Milliseconds since the Unix epoch, the clock `booth listen` reports its first frame on.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub async fn create_room(url: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{url}/api/rooms"))
        .json(&json!({"title": "Stage test", "game": "Tests"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.unwrap()
}

/// A request's status and its body as JSON (`{"raw": text}` when it is not JSON).
pub async fn status_of(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(json!({ "raw": body })),
    )
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The room channel's address on the server at `url`.
pub fn channel_url(url: &str, room: &str) -> String {
    format!("{}/api/rooms/{room}/ws", url.replacen("http", "ws", 1))
}

/// Connects to a room's channel and says hello; returns the socket and the welcome.
pub async fn join(url: &str, room: &str, token: Option<&str>, name: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(channel_url(url, room))
        .await
        .unwrap();
    let hello = ClientMsg::Hello {
        token: token.map(str::to_owned),
        name: name.to_owned(),
    };
    ws.send(Message::Text(hello.to_text().into()))
        .await
        .unwrap();
    let welcome = next_of(&mut ws, &["welcome", "error"]).await;
    (ws, welcome)
}

/// The next message of one of these types (others are skipped). Every message the server
/// sends must read as a `room::protocol::ServerMsg`: the typed protocol is what the wire says.
pub async fn next_of(ws: &mut Ws, types: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {types:?} message within 10 s"));
        match msg {
            Some(Ok(Message::Text(t))) => {
                if let Err(e) = ServerMsg::parse(&t) {
                    panic!("the server sent what the protocol does not say: {e}: {t}");
                }
                let v: Value = serde_json::from_str(&t).unwrap();
                if types.contains(&v["type"].as_str().unwrap_or("")) {
                    return v;
                }
            }
            Some(Ok(Message::Close(f))) => {
                return json!({"type": "closed", "reason": f.map(|f| f.reason.to_string())});
            }
            Some(Ok(_)) => {}
            other => return json!({"type": "closed", "reason": format!("{other:?}")}),
        }
    }
}

/// Sends an action and waits for its `ok` or `error`.
pub async fn act(ws: &mut Ws, action: Value) -> Value {
    let mut action = action;
    action["v"] = json!(1);
    action["ref"] = json!(unix_ms());
    ws.send(Message::Text(action.to_string().into()))
        .await
        .unwrap();
    next_of(ws, &["ok", "error"]).await
}

/// A listener named Guest raises a hand and the host (`host_token`, over HTTP) brings them
/// on stage: their room channel (kept open: closing it leaves the room) and speaker's token.
pub async fn brought_on_stage(url: &str, room: &str, host_token: &str) -> (Ws, String) {
    let (mut g, gw) = join(url, room, None, "Guest").await;
    assert_eq!(
        act(&mut g, json!({"type": "raise_hand"})).await["type"],
        "ok"
    );
    let (s, body) = status_of(
        reqwest::Client::new()
            .post(format!("{url}/api/rooms/{room}/actions"))
            .bearer_auth(host_token)
            .json(&json!({"type": "approve", "target": gw["you"]["id"]})),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    (g, gw["you"]["token"].as_str().unwrap().to_owned())
}
