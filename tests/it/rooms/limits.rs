//! Who may create rooms and how long they last, against a real `booth serve`: the per-address
//! creation limit (429), the server's room cap (503), the room key, rooms that expire when
//! their host never comes or nobody is left, and tokens kept out of the process list.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::channel::{join, next_of, rt, status_of};
use super::{game_and_silence, host_from_files, serve_with};
use crate::support::{BoothProcess, tempdir};

/// `POST /api/rooms` with a title, as if from `client` behind the test's trusted proxy (none:
/// straight from the test); its status, `Retry-After` and body.
async fn create(
    http: &reqwest::Client,
    url: &str,
    client: Option<&str>,
    key: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut req = http
        .post(format!("{url}/api/rooms"))
        .json(&json!({"title": "Limits test"}));
    if let Some(ip) = client {
        req = req.header("x-forwarded-for", ip);
    }
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// The server process's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// 1,000 creations from one address: the first `burst` make rooms, the rest get 429.
async fn thousand_from(
    http: &reqwest::Client,
    url: &str,
    client: Option<&str>,
    burst: usize,
) -> Vec<String> {
    let mut made = Vec::new();
    for n in 0..1000 {
        let (status, retry, body) = create(http, url, client, None).await;
        if n < burst {
            assert_eq!(status, 201, "creation {n}: {body}");
            made.push(body["id"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(status, 429, "creation {n}: {body}");
            assert_eq!(body["error"], "rate_limited", "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("try again in"),
                "{body}"
            );
            assert!(retry.is_some_and(|s| s >= 1), "no Retry-After on the 429");
        }
    }
    made
}

/// Polls `check` every 200 ms until it holds, or fails after `within`.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < end, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `booth_rooms` gauge of `/metrics`.
async fn rooms_gauge(http: &reqwest::Client, url: &str) -> u64 {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    crate::support::metric_of(&text, "rooms").unwrap_or_else(|| panic!("no booth_rooms in {text}"))
}

async fn room_status(http: &reqwest::Client, url: &str, id: &str) -> u16 {
    status_of(http.get(format!("{url}/api/rooms/{id}"))).await.0
}

#[test]
fn a_thousand_creations_from_one_address_are_refused_after_the_limit() {
    let dir = tempdir();
    let (server, url) = serve_with(
        &dir.path().join("data"),
        &[
            "--limit",
            "room_creations_burst=5",
            "--limit",
            "room_creations_per_hour=2",
        ],
    );
    rt().block_on(async {
        let http = reqwest::Client::new();
        // A first room warms the server up (its codecs, its first task), so what follows
        // measures what refused creations cost.
        let (status, _, body) = create(&http, &url, None, None).await;
        assert_eq!(status, 201, "{body}");
        let before = rss_kib(server.pid());
        let made = thousand_from(&http, &url, None, 4).await;
        let after = rss_kib(server.pid());
        assert_eq!(made.len(), 4);
        assert_eq!(rooms_gauge(&http, &url).await, 5);
        // Without the limit each room costs its task, mixer and codecs (hundreds of KiB):
        // 1,000 of them are far above this.
        assert!(
            after.saturating_sub(before) < 32 * 1024,
            "the server grew from {before} KiB to {after} KiB"
        );
        eprintln!("VmRSS {before} KiB before, {after} KiB after 1,000 creations");
    });
}

#[test]
fn another_address_still_creates_rooms_and_a_full_server_says_so() {
    let dir = tempdir();
    let (_server, url) = serve_with(
        &dir.path().join("data"),
        &[
            "--limit",
            "trusted_proxies=[\"127.0.0.1\"]",
            "--limit",
            "room_creations_burst=3",
            "--limit",
            "room_creations_per_hour=1",
            "--limit",
            "max_rooms=5",
        ],
    );
    rt().block_on(async {
        let http = reqwest::Client::new();
        thousand_from(&http, &url, Some("198.51.100.7"), 3).await;
        // Another client behind the same proxy is its own address: its room works.
        let (status, _, room) = create(&http, &url, Some("203.0.113.9"), None).await;
        assert_eq!(status, 201, "{room}");
        let id = room["id"].as_str().unwrap();
        assert_eq!(room_status(&http, &url, id).await, 200);
        let (_ws, welcome) = join(&url, id, room["host_token"].as_str(), "Host").await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["you"]["role"], "host", "{welcome}");
        // Five rooms open: the next is refused for the server's sake, not the client's.
        let (status, _, body) = create(&http, &url, Some("203.0.113.10"), None).await;
        assert_eq!(status, 201, "{body}");
        let (status, retry, body) = create(&http, &url, Some("203.0.113.11"), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("too_many_rooms"))
        );
        assert!(retry.is_some(), "no Retry-After on the 503");
        assert_eq!(rooms_gauge(&http, &url).await, 5);
    });
}

#[test]
fn rooms_nobody_uses_end_and_leave_the_server() {
    let dir = tempdir();
    let (_server, url) = serve_with(
        &dir.path().join("data"),
        &["--limit", "host_absent_secs=2", "--limit", "idle_secs=3"],
    );
    rt().block_on(async {
        let http = reqwest::Client::new();
        let (_, _, absent) = create(&http, &url, None, None).await;
        let (_, _, idle) = create(&http, &url, None, None).await;
        let absent = absent["id"].as_str().unwrap().to_owned();
        let idle_id = idle["id"].as_str().unwrap().to_owned();
        // A listener waits in the room whose host never comes: it is told the room ended.
        let (mut waiting, welcome) = join(&url, &absent, None, "Early").await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        // The other room's host is there for longer than idle_secs: the room stays.
        let (host, welcome) = join(&url, &idle_id, idle["host_token"].as_str(), "Host").await;
        assert_eq!(welcome["you"]["role"], "host", "{welcome}");
        let ended = next_of(&mut waiting, &["ended", "closed"]).await;
        assert!(
            ended["type"] == "ended" && ended["reason"] == "unused" || ended["type"] == "closed",
            "{ended}"
        );
        let t = Instant::now();
        eventually(
            Duration::from_secs(20),
            "the unhosted room gone",
            async || room_status(&http, &url, &absent).await == 404,
        )
        .await;
        eprintln!(
            "the unhosted room left the server {:?} after its end",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(room_status(&http, &url, &idle_id).await, 200);
        assert_eq!(rooms_gauge(&http, &url).await, 1);
        drop(host);
        eventually(Duration::from_secs(30), "the idle room gone", async || {
            room_status(&http, &url, &idle_id).await == 404
        })
        .await;
        let (s, body) = status_of(http.get(format!("{url}/api/rooms/{idle_id}"))).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
        assert_eq!(rooms_gauge(&http, &url).await, 0);
    });
}

#[test]
fn a_room_key_keeps_the_server_to_its_owner() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(crate::support::booth());
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--udp-port",
        "0",
        "--data",
    ])
    .arg(&data)
    .env("BOOTH_ROOM_KEY", "owner-key-7")
    .env("BOOTH_LOG", "booth=debug,warn");
    let server = BoothProcess::start(&mut cmd);
    let url = server.line("booth: serving rooms on ", Duration::from_secs(20));
    rt().block_on(async {
        let http = reqwest::Client::new();
        let (status, _, body) = create(&http, &url, None, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("room_key_required"))
        );
        let (status, _, body) = create(&http, &url, None, Some("owner-key-8")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("bad_room_key"))
        );
        assert!(!body.to_string().contains("owner-key"), "{body}");
        let (status, _, body) = create(&http, &url, None, Some("owner-key-7")).await;
        assert_eq!(status, 201, "{body}");
    });
    let (game, silence) = game_and_silence(dir.path(), 3.0);
    let host = host_from_files(
        &["--server", &url, "--room-key", "owner-key-7"],
        &game,
        &silence,
        3.0,
    );
    let room = host.line("room:   ", Duration::from_secs(30));
    assert_eq!(room.len(), 16);
    host.wait_ok(Duration::from_secs(60));
    let refused = host_from_files(&["--server", &url], &game, &silence, 3.0);
    let mut refused = refused;
    assert!(!refused.wait_exit(Duration::from_secs(30)).success());
    assert!(
        refused.stderr().contains("--room-key"),
        "{}",
        refused.stderr()
    );
}

#[test]
fn a_token_file_keeps_the_token_out_of_the_process_list() {
    let dir = tempdir();
    let (_server, url) = serve_with(&dir.path().join("data"), &[]);
    let room = rt().block_on(async {
        let http = reqwest::Client::new();
        create(&http, &url, None, None).await.2
    });
    let token = room["host_token"].as_str().unwrap();
    let file = dir.path().join("host.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let (game, silence) = game_and_silence(dir.path(), 4.0);
    let host = host_from_files(
        &[
            "--server",
            &url,
            "--room",
            room["id"].as_str().unwrap(),
            "--token-file",
            file.to_str().unwrap(),
        ],
        &game,
        &silence,
        4.0,
    );
    // Live in the room: the server took the token from the file.
    host.line("listen: ", Duration::from_secs(30));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", host.pid())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(cmdline.contains("--token-file"), "{cmdline}");
    assert!(!cmdline.contains(token), "the token is in the command line");
    host.wait_ok(Duration::from_secs(60));
    assert_empty_token_file_is_refused(&url, room["id"].as_str().unwrap(), dir.path());
}

/// An empty token file is an error that names the file, not a silent anonymous join.
fn assert_empty_token_file_is_refused(url: &str, room: &str, dir: &Path) {
    let file = dir.join("empty.token");
    std::fs::write(&file, "\n").unwrap();
    let mut p = BoothProcess::spawn(&[
        "listen",
        &format!("{url}/r/{room}"),
        "--token-file",
        file.to_str().unwrap(),
        "--seconds",
        "1",
    ]);
    assert!(!p.wait_exit(Duration::from_secs(30)).success());
    assert!(p.stderr().contains("empty.token"), "{}", p.stderr());
}
