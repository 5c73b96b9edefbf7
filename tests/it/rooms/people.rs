//! People in a room on a real `booth serve`, over real WebSockets: a moderator's decision
//! outlives a reconnect; names are cleaned; a big audience comes and goes as counts; the hand
//! queue, renames, invitations and the audience's pages have their limits; a client that floods
//! or stops reading is cut off while everyone else is served on time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::channel::{Ws, act, channel_url, create_room, join, next_of, rt, status_of};
use super::serve_with;
use crate::support::tempdir;

/// A room on a fresh server started with `limits` (`NAME=VALUE` each): the server, its URL,
/// the room's id and the host's token.
fn room_with(
    dir: &std::path::Path,
    limits: &[&str],
) -> (crate::support::BoothProcess, String, String, String) {
    let mut args = Vec::new();
    for l in limits {
        args.extend_from_slice(&["--limit", l]);
    }
    let (server, url) = serve_with(&dir.join("data"), &args);
    let created = rt().block_on(create_room(&url));
    let room = created["id"].as_str().unwrap().to_owned();
    let token = created["host_token"].as_str().unwrap().to_owned();
    (server, url, room, token)
}

async fn invite(url: &str, room: &str, host: &str, role: &str) -> Value {
    let (s, body) = status_of(
        reqwest::Client::new()
            .post(format!("{url}/api/rooms/{room}/invites"))
            .bearer_auth(host)
            .json(&json!({ "role": role })),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body
}

async fn host_acts(url: &str, room: &str, host: &str, action: Value) -> u16 {
    status_of(
        reqwest::Client::new()
            .post(format!("{url}/api/rooms/{room}/actions"))
            .bearer_auth(host)
            .json(&action),
    )
    .await
    .0
}

/// Closes a channel and waits until the host hears that its person left.
async fn leave(mut ws: Ws, host: &mut Ws, id: &Value) {
    ws.close(None).await.unwrap();
    loop {
        let left = next_of(host, &["left"]).await;
        if left["id"] == *id {
            return;
        }
    }
}

#[test]
fn a_demoted_speaker_or_unmade_co_host_who_reconnects_keeps_the_demotion() {
    let dir = tempdir();
    let (_server, url, room, host) = room_with(dir.path(), &[]);
    rt().block_on(async {
        let (mut h, _) = join(&url, &room, Some(&host), "Host").await;
        let inv = invite(&url, &room, &host, "speaker").await;
        let (s, sw) = join(&url, &room, inv["token"].as_str(), "Sam").await;
        assert_eq!(sw["you"]["role"], "speaker", "{sw}");
        let sid = sw["you"]["id"].clone();
        let moved = json!({"type": "move_to_audience", "target": sid});
        assert_eq!(host_acts(&url, &room, &host, moved).await, 204);
        leave(s, &mut h, &sid).await;
        let (_s, again) = join(&url, &room, sw["you"]["token"].as_str(), "Sam").await;
        assert_eq!(again["you"]["role"], "listener", "{again}");

        let inv = invite(&url, &room, &host, "co_host").await;
        let (c, cw) = join(&url, &room, inv["token"].as_str(), "Cleo").await;
        assert_eq!(cw["you"]["role"], "co_host", "{cw}");
        let cid = cw["you"]["id"].clone();
        let unmade = json!({"type": "unmake_co_host", "target": cid});
        assert_eq!(host_acts(&url, &room, &host, unmade).await, 204);
        leave(c, &mut h, &cid).await;
        let (_c, again) = join(&url, &room, cw["you"]["token"].as_str(), "Cleo").await;
        assert_eq!(again["you"]["role"], "speaker", "{again}");
    });
}

#[test]
fn a_16_kib_name_with_control_characters_arrives_cleaned_and_cut() {
    let dir = tempdir();
    let (_server, url, room, host) = room_with(dir.path(), &[]);
    rt().block_on(async {
        let (mut h, _) = join(&url, &room, Some(&host), "Host").await;
        // As long as one message may be (16 KiB), with controls and a bidi override.
        let name = format!(
            "  Eve\u{202E}\u{7}\t\t Mallory{}{}",
            "\u{1}x".repeat(100),
            "y".repeat(15_500)
        );
        let (_e, ew) = join(&url, &room, None, &name).await;
        let shown = ew["you"]["name"].as_str().unwrap().to_owned();
        assert!(shown.starts_with("Eve Mallory"), "{shown}");
        assert_eq!(shown.chars().count(), 40, "{shown}");
        assert!(!shown.chars().any(|c| c.is_control() || c == '\u{202E}'));
        let joined = next_of(&mut h, &["joined"]).await;
        assert_eq!(joined["name"], shown.as_str());
    });
}

#[test]
fn a_big_audience_coming_and_going_reaches_others_as_counts() {
    let dir = tempdir();
    let (_server, url, room, host) =
        room_with(dir.path(), &["big_audience=10", "ws_per_address=300"]);
    rt().block_on(async {
        let (mut h, _) = join(&url, &room, Some(&host), "Host").await;
        let started = Instant::now();
        let mut people = Vec::new();
        for i in 0..250 {
            people.push(join(&url, &room, None, &format!("L{i}")).await.0);
        }
        for p in people {
            drop(p);
        }
        let (mut events, mut counts, mut last) = (0, 0, None);
        // Everything the host hears until the room has been quiet for 3 s.
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(3), h.next()).await {
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("joined" | "left") => events += 1,
                Some("listener_count") => {
                    counts += 1;
                    last = v["count"].as_u64();
                }
                _ => {}
            }
        }
        assert_eq!(last, Some(0), "the last count is not the empty audience");
        let seconds = started.elapsed().as_secs() as usize;
        eprintln!(
            "250 joins and leaves: {events} join/leave events, {counts} counts in {seconds} s"
        );
        assert!(
            events <= 40,
            "{events} join and leave events for 250 people"
        );
        assert!(
            counts <= 2 * seconds + 24,
            "{counts} counts in {seconds} s: not throttled"
        );
    });
}

#[test]
fn the_hand_queue_is_capped_and_renames_are_rate_limited() {
    let dir = tempdir();
    let (_server, url, room, _host) = room_with(dir.path(), &["hand_queue=3"]);
    rt().block_on(async {
        let mut people = Vec::new();
        for i in 0..4 {
            people.push(join(&url, &room, None, &format!("P{i}")).await.0);
        }
        for p in &mut people[..3] {
            assert_eq!(act(p, json!({"type": "raise_hand"})).await["type"], "ok");
        }
        let refused = act(&mut people[3], json!({"type": "raise_hand"})).await;
        assert_eq!(refused["code"], "hand_queue_full", "{refused}");
        let p = &mut people[0];
        for n in 0..3 {
            let r = act(p, json!({"type": "set_name", "name": format!("Name {n}")})).await;
            assert_eq!(r["type"], "ok", "{r}");
        }
        let r = act(p, json!({"type": "set_name", "name": "Name 4"})).await;
        assert_eq!(r["code"], "rate_limited", "{r}");
    });
}

#[test]
fn invitations_expire_and_can_be_revoked() {
    let dir = tempdir();
    let (_server, url, room, host) = room_with(dir.path(), &["invite_secs=2"]);
    rt().block_on(async {
        let made = Instant::now();
        let old = invite(&url, &room, &host, "speaker").await;
        assert_eq!(old["expires_in_secs"], 2);
        let revoked = invite(&url, &room, &host, "speaker").await;
        let delete = |id: &Value| {
            reqwest::Client::new()
                .delete(format!("{url}/api/rooms/{room}/invites/{id}"))
                .bearer_auth(&host)
        };
        assert_eq!(status_of(delete(&revoked["id"])).await.0, 204);
        assert_eq!(status_of(delete(&revoked["id"])).await.0, 404);
        let (_r, rw) = join(&url, &room, revoked["token"].as_str(), "R").await;
        assert_eq!(rw["code"], "unauthorized", "{rw}");
        tokio::time::sleep_until((made + Duration::from_millis(2_500)).into()).await;
        let (_o, ow) = join(&url, &room, old["token"].as_str(), "O").await;
        assert_eq!(ow["code"], "unauthorized", "{ow}");
        let fresh = invite(&url, &room, &host, "speaker").await;
        let (_f, fw) = join(&url, &room, fresh["token"].as_str(), "F").await;
        assert_eq!(fw["you"]["role"], "speaker", "{fw}");
    });
}

#[test]
fn the_audience_reads_in_pages() {
    let dir = tempdir();
    let (_server, url, room, _host) = room_with(dir.path(), &["audience_page=10"]);
    rt().block_on(async {
        let mut people = Vec::new();
        for i in 0..25 {
            people.push(join(&url, &room, None, &format!("A{i}")).await.0);
        }
        let get = |query: String| {
            let url = format!("{url}/api/rooms/{room}{query}");
            async move { status_of(reqwest::Client::new().get(url)).await }
        };
        let (s, first) = get(String::new()).await;
        assert_eq!(s, 200, "{first}");
        assert_eq!(first["listener_count"], 25);
        assert_eq!(first["stage"].as_array().unwrap().len(), 1, "{first}");
        let mut seen = Vec::new();
        let mut page = first;
        loop {
            let ids = page["audience"].as_array().unwrap();
            assert!(ids.len() <= 10, "{page}");
            seen.extend(ids.iter().map(|a| a["id"].as_u64().unwrap()));
            let Some(next) = page["audience_next"].as_u64() else {
                break;
            };
            page = get(format!("?audience_after={next}&limit=50")).await.1;
        }
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (25, 25), "{seen:?}");
        let (_, small) = get("?limit=5".into()).await;
        assert_eq!(small["audience"].as_array().unwrap().len(), 5);
        assert_eq!(get("?limit=many".into()).await.0, 400);
        drop(people);
    });
}

#[test]
fn an_address_holds_only_so_many_room_channels() {
    let dir = tempdir();
    let (_server, url, room, _host) = room_with(dir.path(), &["ws_per_address=3"]);
    rt().block_on(async {
        let mut open = Vec::new();
        for i in 0..3 {
            open.push(join(&url, &room, None, &format!("W{i}")).await.0);
        }
        let refused = tokio_tungstenite::connect_async(channel_url(&url, &room)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status().as_u16(), 429);
            }
            other => panic!("a fourth channel was not refused: {:?}", other.map(|_| ())),
        }
        open.pop().unwrap().close(None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio_tungstenite::connect_async(channel_url(&url, &room))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the closed channel was not given back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Connects, says hello, then sends `ping`s at 10,000 a second until the server cuts it off;
/// whether it was told `rate_limited` first and the close reason.
async fn flood(url: &str, room: &str) -> (bool, String) {
    let (ws, _) = join(url, room, None, "Flood").await;
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let mut limited = false;
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Text(t) if t.contains("rate_limited") => limited = true,
                Message::Close(f) => return (limited, f.map(|f| f.reason.to_string())),
                _ => {}
            }
        }
        (limited, None)
    });
    let ping = json!({"v": 1, "type": "ping"}).to_string();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    'sending: for _ in 0..1_000 {
        tick.tick().await;
        for _ in 0..100 {
            if tx.send(Message::Text(ping.clone().into())).await.is_err() || reader.is_finished() {
                break 'sending;
            }
        }
    }
    let (limited, reason) = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the flooding client was not cut off")
        .unwrap();
    (limited, reason.unwrap_or_default())
}

#[test]
fn a_flooding_client_is_throttled_then_dropped_and_others_hear_events_on_time() {
    let dir = tempdir();
    let (_server, url, room, host) = room_with(dir.path(), &[]);
    rt().block_on(async {
        let (mut h, _) = join(&url, &room, Some(&host), "Host").await;
        let (mut watcher, _) = join(&url, &room, None, "Watcher").await;
        let running = Arc::new(AtomicBool::new(true));
        let floods = {
            let (url, room, running) = (url.clone(), room.clone(), Arc::clone(&running));
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                // Cut off, the flooder comes straight back, for as long as the test measures.
                while running.load(Ordering::Relaxed) {
                    outcomes.push(flood(&url, &room).await);
                }
                outcomes
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut latencies = Vec::new();
        for i in 0..20 {
            let sent = Instant::now();
            let ok = act(
                &mut h,
                json!({"type": "mark_moment", "label": format!("m{i}")}),
            )
            .await;
            assert_eq!(ok["type"], "ok", "{ok}");
            let moment = next_of(&mut watcher, &["moment"]).await;
            assert_eq!(moment["label"], format!("m{i}"));
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        running.store(false, Ordering::Relaxed);
        let outcomes = floods.await.unwrap();
        latencies.sort();
        let median = latencies[latencies.len() / 2];
        eprintln!(
            "event latency under a flood: median {median:?}, max {:?}; {} flooding connections",
            latencies[latencies.len() - 1],
            outcomes.len()
        );
        assert!(median < Duration::from_millis(200), "{latencies:?}");
        assert!(!outcomes.is_empty());
        for (limited, reason) in &outcomes {
            assert!(*limited, "no rate_limited before the cut");
            assert_eq!(reason, "too many messages");
        }
    });
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_memory_stays_bounded() {
    let dir = tempdir();
    let (server, url, room, host) = room_with(dir.path(), &[]);
    rt().block_on(async {
        // A raw socket with a tiny receive buffer: the server's messages back up at once.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let addr = url.trim_start_matches("http://").parse().unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut stuck, _) = tokio_tungstenite::client_async(channel_url(&url, &room), stream)
            .await
            .unwrap();
        let hello = json!({"v": 1, "type": "hello", "name": "Stuck"}).to_string();
        stuck.send(Message::Text(hello.into())).await.unwrap();
        let before = rss_kib(server.pid());
        let label = "a long label so that every moment is a few hundred bytes on the wire....";
        let sent = 30_000;
        for chunk in 0..sent / 100 {
            let posts = (0..100).map(|i| {
                host_acts(
                    &url,
                    &room,
                    &host,
                    json!({"type": "mark_moment", "label": format!("{label}{chunk}-{i}")}),
                )
            });
            for s in futures_util::future::join_all(posts).await {
                assert_eq!(s, 204);
            }
        }
        let after = rss_kib(server.pid());
        // Now read what reached the stuck client: far fewer moments than were sent, then the end.
        let mut moments = 0;
        let read = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(Ok(m)) = stuck.next().await {
                if matches!(&m, Message::Text(t) if t.contains("\"moment\"")) {
                    moments += 1;
                }
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        eprintln!(
            "a client that never read: {moments} of {sent} moments reached it; serve VmRSS {before} -> {after} KiB"
        );
        assert!(read.is_ok(), "the stuck client's channel never ended");
        assert!(moments < sent, "every moment was queued for a client that never read");
        assert!(after < before + 64 * 1024, "VmRSS grew {before} -> {after} KiB");
    });
}

#[test]
fn the_channel_takes_the_operators_rate() {
    let dir = tempdir();
    let (_server, url, room, _host) = room_with(dir.path(), &["ws_messages_per_sec=5"]);
    rt().block_on(async {
        let (mut ws, _) = join(&url, &room, None, "Quick").await;
        let ping = json!({"v": 1, "type": "ping"}).to_string();
        for _ in 0..30 {
            ws.send(Message::Text(ping.clone().into())).await.unwrap();
        }
        let (mut pongs, mut limited) = (0, 0);
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(1), ws.next()).await
        {
            let v: Value = serde_json::from_str(&t).unwrap();
            match v["type"].as_str() {
                Some("pong") => pongs += 1,
                Some("error") if v["code"] == "rate_limited" => limited += 1,
                _ => {}
            }
        }
        // A burst of twice the rate is let through; the rest is dropped, with one warning.
        assert!((10..=11).contains(&pongs), "{pongs} pongs");
        assert_eq!(limited, 1);
    });
}
