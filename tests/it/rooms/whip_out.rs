//! WHIP out: the program published into a WHIP endpoint Booth did not write (aiohttp + aiortc,
//! `tests/peers/whip_endpoint.py`), straight from `booth host --whip`, and forwarded from a
//! room by its host (`/api/rooms/{id}/forwards`).
//!
//! aiortc's ICE skips 127.0.0.1, so the endpoint listens on this machine's routed address (the
//! one a room server puts in its candidates, as in the interop test), and Booth's client peer,
//! which binds towards the endpoint, meets it there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::channel::{join, rt, status_of};
use super::interop::aiortc_python;
use super::{LiveRoom, game_and_silence, host_from_files, serve};
use crate::support::{BoothProcess, channel, read_wav, tempdir, tone_db};

/// How long a forward may take to connect, on a busy machine.
const SOON: Duration = Duration::from_secs(30);

/// The endpoint: its process, the directory it records into, and its URL.
struct Endpoint {
    process: BoothProcess,
    dir: PathBuf,
    url: String,
}

impl Endpoint {
    /// Starts `whip_endpoint.py` on the routed address and `port` (0: any free one), recording
    /// into `dir`, wanting `token`.
    fn start(python: &Path, dir: &Path, token: &str, port: u16) -> Self {
        let ip = routed_ip();
        let process = BoothProcess::start(
            Command::new(python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/whip_endpoint.py"))
                .args([
                    &ip.to_string(),
                    &port.to_string(),
                    dir.to_str().unwrap(),
                    token,
                ]),
        );
        let url = process.line("listening ", Duration::from_secs(30));
        Self {
            process,
            dir: dir.to_owned(),
            url,
        }
    }

    /// The port it listens on.
    fn port(&self) -> u16 {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.port())
            .expect("the endpoint's URL has a port")
    }

    /// The recording of session `n`.
    fn recording(&self, n: u32) -> PathBuf {
        self.dir.join(format!("session-{n}.wav"))
    }

    /// Waits for a line the endpoint prints (`session 1 deleted`).
    fn said(&self, line: &str, within: Duration) {
        self.process.line(line, within);
    }
}

/// The address packets to another machine leave from: not loopback (aiortc skips it).
fn routed_ip() -> IpAddr {
    let ip = booth::rtc::local_ip_towards(IpAddr::from([192, 0, 2, 1]));
    assert!(
        !ip.is_loopback(),
        "this machine has no address besides loopback; aiortc needs one (see tests/run)"
    );
    ip
}

/// Waits until the WAV at `path` holds `seconds` of audio (the endpoint rewrites its header on
/// every write), then reads its left channel at 48 kHz.
fn recorded_left(path: &Path, seconds: f32, within: Duration) -> Vec<f32> {
    let end = Instant::now() + within;
    let bytes_wanted = (seconds * 48_000.0 * 4.0) as u64;
    while path.metadata().map_or(0, |m| m.len()) < bytes_wanted {
        assert!(
            Instant::now() < end,
            "{} did not reach {seconds} s within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (x, channels, rate) = read_wav(path);
    assert_eq!((channels, rate), (2, 48_000), "{}", path.display());
    channel(&x, 0)
}

/// Asserts the endpoint heard the game's 440 Hz (-9 dBFS RMS) and nothing at 700 Hz in `left`.
fn assert_heard_the_game(left: &[f32], by: &str) {
    let (tone, off) = tone_and_other(left);
    eprintln!("{by}: the WHIP endpoint heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1} dB)");
    assert!(
        (-15.0..-3.0).contains(&tone) && tone - off > 30.0,
        "{by}: the WHIP endpoint heard 440 Hz at {tone:.1} dB (700 Hz at {off:.1} dB)"
    );
}

/// The levels of 440 Hz and of 700 Hz (nothing plays there) in the last two thirds of `left`.
fn tone_and_other(left: &[f32]) -> (f32, f32) {
    let tail = &left[left.len() / 3..];
    (tone_db(tail, 440.0), tone_db(tail, 700.0))
}

/// `booth host --headless --whip URL --token TOKEN` on the game and mic `files` for `seconds`;
/// `more` adds options.
fn host_whip(
    url: &str,
    token: &str,
    files: (&Path, &Path),
    seconds: &str,
    more: &[&str],
) -> BoothProcess {
    let mut args = vec!["host", "--headless", "--whip", url, "--token", token];
    args.extend(["--game-file", files.0.to_str().unwrap()]);
    args.extend([
        "--mic-file",
        files.1.to_str().unwrap(),
        "--seconds",
        seconds,
    ]);
    args.extend_from_slice(more);
    BoothProcess::spawn(&args)
}

#[test]
fn booth_host_publishes_into_a_whip_endpoint_booth_did_not_write() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 10.0);
    let endpoint = Endpoint::start(&python, d, "whip-secret", 0);

    // A wrong token: the endpoint's refusal, with its status, and no room server started.
    let mut refused = host_whip(&endpoint.url, "not-it", (&game, &silence), "2", &[]);
    let status = refused.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "a refused WHIP session exited 0");
    let said = refused.stderr();
    assert!(
        said.contains("refused the program (401)") && !said.contains("not-it"),
        "{said}"
    );
    assert!(!said.contains("serving rooms"), "{said}");

    let host = host_whip(
        &endpoint.url,
        "whip-secret",
        (&game, &silence),
        "8",
        &["--no-noise-suppression", "--voice-gate", "0"],
    );
    assert_eq!(
        host.line("whip:   ", Duration::from_secs(30)),
        endpoint.url,
        "booth host does not say where it publishes"
    );
    let err = host.wait_ok(Duration::from_secs(60));
    assert!(
        !err.contains("whip-secret"),
        "the token was printed:\n{err}"
    );
    // Hanging up is a DELETE of the session, which the endpoint saw.
    endpoint.said("session 1 deleted", Duration::from_secs(10));
    let left = recorded_left(&endpoint.recording(1), 5.0, Duration::from_secs(10));
    assert_heard_the_game(&left, "booth host --whip");
}

#[test]
fn booth_host_says_why_and_fails_when_the_whip_endpoint_goes_away() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 90.0);
    let endpoint = Endpoint::start(&python, d, "whip-secret", 0);
    let mut host = host_whip(&endpoint.url, "whip-secret", (&game, &silence), "90", &[]);
    // Published (the media is up), then the endpoint dies.
    host.line("whip:   ", Duration::from_secs(30));
    drop(endpoint);
    // STUN's retransmissions give the session up after about 20 s.
    let status = host.wait_exit(Duration::from_secs(60));
    let said = host.stderr();
    assert!(
        !status.success(),
        "booth host went on without its endpoint:\n{said}"
    );
    assert!(
        said.contains("the WHIP endpoint's session ended: the media connection was lost"),
        "{said}"
    );
}

#[test]
fn a_room_forwards_its_program_into_a_whip_endpoint() {
    let Some(python) = aiortc_python() else {
        return;
    };
    let dir = tempdir();
    let d = dir.path();
    let (game, silence) = game_and_silence(d, 90.0);
    let endpoint = Endpoint::start(&python, d, "forward-secret", 0);
    let (_server, url) = serve(&d.join("data"));
    let host = host_from_files(&["--server", &url], &game, &silence, 90.0);
    let room = LiveRoom::of(&host);
    let forwards = format!("{url}/api/rooms/{}/forwards", room.room);
    let http = reqwest::Client::new();
    let target = json!({"url": endpoint.url, "token": "forward-secret"});
    rt().block_on(async {
        assert_only_moderators_forward(&http, &url, &room, &forwards, &target).await;
        let (s, created) = status_of(
            http.post(&forwards)
                .bearer_auth(&room.host_token)
                .json(&target),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        assert!(!created.to_string().contains("forward-secret"), "{created}");
        assert_eq!(created["url"], endpoint.url.as_str());
        let forward = (room.host_token.as_str(), created["id"].as_str().unwrap());
        wait_for_state(&http, &forwards, forward, "live", SOON).await;
        assert_eq!(forwards_running(&url).await, 1);
        let left = recorded_left(&endpoint.recording(1), 5.0, Duration::from_secs(30));
        assert_heard_the_game(&left, "a room forward");

        let endpoint =
            assert_the_forward_outlives_its_endpoint(&http, &forwards, forward, endpoint, &python)
                .await;

        let (s, body) = status_of(
            http.delete(format!("{forwards}/{}", forward.1))
                .bearer_auth(&room.host_token),
        )
        .await;
        assert_eq!(s, 204, "{body}");
        endpoint.said("session 1 deleted", Duration::from_secs(15));
        let (s, list) = status_of(http.get(&forwards).bearer_auth(&room.host_token)).await;
        assert_eq!((s, list), (200, json!([])));
        let end = Instant::now() + Duration::from_secs(15);
        while forwards_running(&url).await != 0 {
            assert!(Instant::now() < end, "the deleted forward still counts");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_unreachable_endpoints_are_retried_four_at_most(&http, &forwards, &room).await;
    });
}

/// The endpoint dies and comes back on the same address: the forward says it is retrying,
/// then is live in a new session that hears the game. The endpoint that came back.
async fn assert_the_forward_outlives_its_endpoint(
    http: &reqwest::Client,
    forwards: &str,
    forward: (&str, &str),
    endpoint: Endpoint,
    python: &Path,
) -> Endpoint {
    let port = endpoint.port();
    let again = endpoint.dir.join("again");
    drop(endpoint);
    let lost = Instant::now();
    // A session whose peer went silent is given up after STUN's retransmissions (9 of them,
    // backing off to 3 s each: about 20 s).
    let retrying =
        wait_for_state(http, forwards, forward, "retrying", Duration::from_secs(60)).await;
    eprintln!(
        "the forward saw the endpoint gone after {:?}: {retrying}",
        lost.elapsed()
    );
    std::fs::create_dir_all(&again).unwrap();
    let endpoint = Endpoint::start(python, &again, "forward-secret", port);
    wait_for_state(http, forwards, forward, "live", SOON).await;
    eprintln!("live again {:?} after the endpoint died", lost.elapsed());
    let left = recorded_left(&endpoint.recording(1), 3.0, Duration::from_secs(30));
    assert_heard_the_game(&left, "a room forward, reconnected");
    endpoint
}

/// Forwards to an endpoint nobody answers at keep retrying and say why; a fifth is refused.
async fn assert_unreachable_endpoints_are_retried_four_at_most(
    http: &reqwest::Client,
    forwards: &str,
    room: &LiveRoom,
) {
    let nobody = json!({"url": "http://127.0.0.1:9/whip"});
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (s, created) = status_of(
            http.post(forwards)
                .bearer_auth(&room.host_token)
                .json(&nobody),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (s, body) = status_of(
        http.post(forwards)
            .bearer_auth(&room.host_token)
            .json(&nobody),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("too_many_forwards")),
        "{body}"
    );
    let retrying = wait_for_state(
        http,
        forwards,
        (&room.host_token, &ids[0]),
        "retrying",
        SOON,
    )
    .await;
    assert!(
        retrying["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot reach")),
        "{retrying}"
    );
    for id in ids {
        let (s, body) = status_of(
            http.delete(format!("{forwards}/{id}"))
                .bearer_auth(&room.host_token),
        )
        .await;
        assert_eq!(s, 204, "{body}");
    }
}

/// No token, a token that is not the room's, a listener's: refused; a URL that is not
/// http(s): 400 `bad_forward`.
async fn assert_only_moderators_forward(
    http: &reqwest::Client,
    url: &str,
    room: &LiveRoom,
    forwards: &str,
    target: &Value,
) {
    let (s, body) = status_of(http.post(forwards).json(target)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (s, body) = status_of(http.post(forwards).bearer_auth("p1.0000").json(target)).await;
    assert_eq!(s, 401, "{body}");
    let (_ws, welcome) = join(url, &room.room, None, "Listener").await;
    let listener = welcome["you"]["token"].as_str().unwrap();
    let (s, body) = status_of(http.post(forwards).bearer_auth(listener).json(target)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("not_allowed")),
        "{body}"
    );
    let (s, body) = status_of(http.get(forwards).bearer_auth(listener)).await;
    assert_eq!(s, 403, "{body}");
    let rtmp = json!({"url": "rtmp://live.example/app/key"});
    let (s, body) = status_of(
        http.post(forwards)
            .bearer_auth(&room.host_token)
            .json(&rtmp),
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("bad_forward")),
        "{body}"
    );
}

/// Polls the forwards until `id` is in `state` (`within` at most); the forward then.
async fn wait_for_state(
    http: &reqwest::Client,
    forwards: &str,
    (token, id): (&str, &str),
    state: &str,
    within: Duration,
) -> Value {
    let end = Instant::now() + within;
    loop {
        let (s, list) = status_of(http.get(forwards).bearer_auth(token)).await;
        assert_eq!(s, 200, "{list}");
        let now = list
            .as_array()
            .and_then(|l| l.iter().find(|f| f["id"] == id))
            .cloned()
            .unwrap_or(Value::Null);
        if now["state"] == state {
            return now;
        }
        assert!(
            Instant::now() < end,
            "forward {id} not {state} within {within:?}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's `booth_forwards` gauge (read off the runtime: `metric` blocks).
async fn forwards_running(url: &str) -> u64 {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || crate::support::metric(&url, "forwards"))
        .await
        .unwrap()
}
