//! What the benches share: a "device" feeding impulses into the engine's game ring, and
//! talking to a `booth serve` they started. Benchmarks only; a failure panics with what went
//! wrong.

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use booth::room::protocol::{CreatedRoom, NewRoom};

/// A new room titled `title` on the server at `url`: its id and the host's token.
pub async fn create_room(url: &str, title: &str) -> (String, String) {
    let new = NewRoom {
        title: title.to_owned(),
        game: "bench".to_owned(),
        host_name: None,
        record: false,
        icecast: None,
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

/// The "device": periods of `period_ms` for `seconds`, an impulse every 500 ms, paced by the
/// clock; when each impulse went into the ring.
pub fn feed_impulses(
    mut game_tx: rtrb::Producer<f32>,
    seconds: u64,
    period_ms: u64,
) -> Vec<Instant> {
    let start = Instant::now();
    let mut pushes = Vec::new();
    let mut period = vec![0.0f32; 96 * period_ms as usize];
    let every = (500 / period_ms).max(2);
    for n in 0..seconds * 1000 / period_ms {
        let due = start + Duration::from_millis(period_ms * n);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        period.fill(0.0);
        let impulse = n % every == every / 2;
        if impulse {
            period[0] = 0.9;
            period[1] = 0.9;
        }
        let _ = game_tx.push_partial_slice(&period);
        if impulse {
            pushes.push(Instant::now());
        }
    }
    pushes
}
