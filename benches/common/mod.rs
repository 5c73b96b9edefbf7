//! What the room benches share: talking to a `booth serve` they started. Benchmarks only; a
//! failure panics with what went wrong.

use booth::room::protocol::{CreatedRoom, NewRoom};

/// A new room titled `title` on the server at `url`: its id and the host's token.
pub async fn create_room(url: &str, title: &str) -> (String, String) {
    let new = NewRoom {
        title: title.to_owned(),
        game: "bench".to_owned(),
        host_name: None,
    };
    let room: CreatedRoom = reqwest::Client::new()
        .post(format!("{url}/api/rooms"))
        .json(&new)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("create room: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("the server's room: {e}"));
    (room.id, room.host_token)
}
