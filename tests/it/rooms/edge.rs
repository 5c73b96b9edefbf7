//! The server's HTTP edge as the internet meets it: security headers on the pages, an API that
//! other sites cannot drive, CORS where players need it, `/metrics` kept private, and
//! connections that cannot hold the server (half-open ones closed after the header timeout,
//! those over a cap closed at once) while other clients are served; and all of it through
//! nginx over TLS, as `docs/scaling/nginx-tls.conf` documents.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::channel::{create_room, rt, status_of};
use super::interop::aiortc_python;
use super::streams::{Nginx, free_port};
use super::{serve, serve_with};
use crate::support::{Process, have_tool, metric, tempdir};

/// Another loopback address: a client that is not the one holding the connections.
const OTHER_CLIENT: [u8; 4] = [127, 0, 0, 2];

#[test]
fn the_room_page_carries_the_security_headers_and_the_api_refuses_other_sites() {
    let dir = tempdir();
    let (_server, url) = serve(dir.path());
    rt().block_on(async {
        let http = reqwest::Client::new();
        let room = create_room(&url).await;
        let id = room["id"].as_str().unwrap();
        let page = http.get(format!("{url}/r/{id}")).send().await.unwrap();
        let h = page.headers();
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        for want in [
            "frame-ancestors 'none'",
            "script-src 'self'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(want), "{want} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let api = http
            .get(format!("{url}/api/rooms/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(api.headers()["x-content-type-options"], "nosniff");

        let new_room = json!({"title": "t", "game": "g"});
        let (s, body) = status_of(
            http.post(format!("{url}/api/rooms"))
                .header("origin", "https://evil.example")
                .json(&new_room),
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (403, Some("foreign_origin")));
        let (s, body) = status_of(
            http.post(format!("{url}/api/rooms"))
                .header("origin", &url)
                .json(&new_room),
        )
        .await;
        assert_eq!(s, 201, "the server's own page may: {body}");
        let (s, body) = status_of(
            http.post(format!("{url}/api/rooms"))
                .header("content-type", "text/plain")
                .body(new_room.to_string()),
        )
        .await;
        assert_eq!((s, body["error"].as_str()), (415, Some("json_required")));

        // A foreign site's preflight to the API gets no CORS; to WHEP it does.
        let preflight = |path: String| {
            http.request(reqwest::Method::OPTIONS, format!("{url}{path}"))
                .header("origin", "https://player.example")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
        };
        let api = preflight("/api/rooms".into()).await.unwrap();
        assert!(
            !api.headers().contains_key("access-control-allow-origin"),
            "{:?}",
            api.headers()
        );
        let whep = preflight(format!("/whep/{id}")).await.unwrap();
        assert_eq!(whep.headers()["access-control-allow-origin"], "*");
        let whep = http
            .post(format!("{url}/whep/{id}"))
            .header("origin", "https://player.example")
            .header("content-type", "application/sdp")
            .body("v=0\r\n")
            .send()
            .await
            .unwrap();
        assert_eq!(whep.headers()["access-control-allow-origin"], "*");
        assert_ne!(whep.status().as_u16(), 403, "WHEP is open to other sites");
    });
}

#[test]
fn metrics_need_the_token_or_their_own_listener() {
    let dir = tempdir();
    let (_server, url) = serve_with(dir.path(), &["--metrics-token", "m3trics"]);
    rt().block_on(async {
        let http = reqwest::Client::new();
        let get = |token: Option<&str>| {
            let req = http.get(format!("{url}/metrics"));
            let req = match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            };
            status_of(req)
        };
        assert_eq!(get(None).await.0, 401);
        assert_eq!(get(Some("m3trics-not")).await.0, 401);
        let (s, body) = get(Some("m3trics")).await;
        assert_eq!(s, 200);
        assert!(body["raw"].as_str().unwrap().contains("booth_rooms "));
    });

    let dir = tempdir();
    let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--udp-port", "0"];
    args.extend(["--metrics-bind", "127.0.0.1:0", "--data"]);
    args.push(dir.path().to_str().unwrap());
    let server = crate::support::BoothProcess::spawn(&args);
    let url = server.line("booth: serving rooms on ", Duration::from_secs(20));
    let apart = server.line("booth: metrics on ", Duration::from_secs(5));
    rt().block_on(async {
        let (s, _) = status_of(reqwest::Client::new().get(format!("{url}/metrics"))).await;
        assert_eq!(s, 404, "the main listener has no /metrics");
    });
    let base = apart.trim_end_matches("/metrics");
    assert_eq!(metric(base, "rooms"), 0);
}

/// Opens `n` connections to `addr`, each sending half a request line and nothing more.
async fn half_open(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // Refused connections are closed by the server; the write may then fail: fine.
        let _ = s.write_all(b"GET /healthz HT").await;
        held.push(s);
    }
    held
}

/// How many of `held` the server has closed (a read ends, or fails) within `within`.
async fn closed_by_server(held: &mut [TcpStream], within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    let mut closed = 0;
    for s in held.iter_mut() {
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => {} // a 408 before the close
                Err(_) => break,
            }
        }
    }
    closed
}

/// A GET of /healthz from another address: how long it took.
async fn served_elsewhere(url: &str) -> Duration {
    let started = Instant::now();
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from(OTHER_CLIENT))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = other.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    started.elapsed()
}

/// `/metrics`, asked from another address.
async fn metrics_text(url: &str) -> String {
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from(OTHER_CLIENT))
        .build()
        .unwrap();
    let r = other.get(format!("{url}/metrics")).send().await.unwrap();
    r.text().await.unwrap()
}

fn server_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// The test holds 1,000 sockets and the server as many: the soft limit must allow both.
fn enough_descriptors() -> bool {
    let Ok(out) = std::process::Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
    else {
        return false;
    };
    let limit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let enough = limit == "unlimited" || limit.parse::<u64>().is_ok_and(|n| n >= 2200);
    if !enough {
        assert!(
            std::env::var_os("BOOTH_REQUIRE_TOOLS").is_none(),
            "ulimit -n is {limit}: raise it to 4096 (tests/run does)"
        );
        eprintln!("skipped: ulimit -n is {limit}, 1,000 connections need more");
    }
    enough
}

#[test]
fn a_thousand_half_open_connections_are_closed_after_the_header_timeout() {
    if !enough_descriptors() {
        return;
    }
    let dir = tempdir();
    let (_server, url) = serve_with(
        dir.path(),
        &[
            "--limit",
            "header_timeout_secs=3",
            "--limit",
            "connections_per_address=5000",
        ],
    );
    rt().block_on(async {
        let mut held = half_open(server_addr(&url), 1000).await;
        let took = served_elsewhere(&url).await;
        assert!(took < Duration::from_secs(3), "served in {took:?}");
        let open = metrics_text(&url).await;
        assert!(
            crate::support::metric_of(&open, "http_connections").is_some_and(|n| n >= 1000),
            "1,000 open:\n{open}"
        );
        let closed = closed_by_server(&mut held, Duration::from_secs(20)).await;
        assert_eq!(closed, 1000, "half-open connections closed");
        let took = served_elsewhere(&url).await;
        assert!(took < Duration::from_secs(3), "served in {took:?}");
    });
}

#[test]
fn connections_over_the_per_address_cap_are_closed_at_once() {
    if !enough_descriptors() {
        return;
    }
    let dir = tempdir();
    let (_server, url) = serve_with(
        dir.path(),
        &[
            "--limit",
            "connections_per_address=100",
            "--limit",
            "header_timeout_secs=60",
        ],
    );
    rt().block_on(async {
        let mut held = half_open(server_addr(&url), 1000).await;
        let took = served_elsewhere(&url).await;
        assert!(took < Duration::from_secs(3), "served in {took:?}");
        let closed = closed_by_server(&mut held, Duration::from_secs(5)).await;
        assert_eq!(closed, 900, "all over the cap closed, none under it");
        let text = metrics_text(&url).await;
        assert!(
            text.contains("booth_http_refused_total 900"),
            "refusals counted:\n{text}"
        );
    });
}

#[test]
fn a_request_whose_body_never_comes_gets_408() {
    let dir = tempdir();
    let (_server, url) = serve_with(dir.path(), &["--limit", "request_timeout_secs=2"]);
    rt().block_on(async {
        let socket = TcpSocket::new_v4().unwrap();
        let mut s = socket.connect(server_addr(&url)).await.unwrap();
        s.write_all(
            b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"title\":",
        )
        .await
        .unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(15), async {
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        })
        .await;
        assert!(read.is_ok(), "no answer within 15 s");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    });
}

/// A self-signed certificate for localhost, made with openssl: (certificate, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    (cert, key)
}

/// nginx with `docs/scaling/nginx-tls.conf` in front of `booth`: the process and its https URL.
fn nginx_tls(dir: &Path, booth: &str) -> (Nginx, String) {
    let (cert, key) = self_signed(dir);
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scaling/nginx-tls.conf"),
    )
    .unwrap();
    let port = free_port();
    let conf = template
        .replace("@DIR@", dir.to_str().unwrap())
        .replace("@PORT@", &port.to_string())
        .replace("@CERT@", cert.to_str().unwrap())
        .replace("@KEY@", key.to_str().unwrap())
        .replace("@BOOTH@", booth.strip_prefix("http://").unwrap());
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    // nginx's workers run as nobody when started as root: they must reach these.
    for d in [dir, &dir.join("tmp")] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    (
        Nginx::start(dir, &conf, port),
        format!("https://127.0.0.1:{port}"),
    )
}

#[test]
fn behind_nginx_over_tls_rooms_channel_and_streams_work_and_clients_are_told_apart() {
    if !have_tool("nginx") || !have_tool("openssl") {
        return;
    }
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let (server, url) = serve_with(
        &dir.path().join("data"),
        &["--limit", "trusted_proxies=[\"127.0.0.1\"]"],
    );
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let (_nginx, https) = nginx_tls(&nginx_dir, &url);
    let client = Process::spawn(
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/tls_client.py"))
            .arg(&https)
            .arg(nginx_dir.join("cert.pem"))
            .arg(IpAddr::from(OTHER_CLIENT).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = client.finish();
    assert!(out.status.success(), "{out:?}");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["create_status"], 201, "{seen}");
    assert_eq!(seen["welcome_role"], "host", "{seen}");
    assert_eq!(seen["live_status"], 200, "{seen}");
    assert_eq!(seen["live_type"], "audio/mpeg", "{seen}");
    assert_eq!(seen["live_bytes"], 8192, "{seen}");
    assert_eq!(
        (&seen["foreign_status"], &seen["foreign_error"]),
        (&json!(403), &json!("foreign_origin")),
        "{seen}"
    );
    // Booth logged the refusal for the client nginx forwarded for: not nginx itself, and not
    // the address the client forged.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        let log = server.stderr();
        if let Some(line) = log.lines().find(|l| l.contains("refused POST /api/rooms")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no refusal logged:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(refusal.contains("from 127.0.0.2 "), "{refusal}");
}
