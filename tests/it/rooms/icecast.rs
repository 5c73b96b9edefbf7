//! Icecast push against Debian's icecast2, run from the configs in docs/scaling/ as they are
//! published: a live room goes to an origin Icecast as MP3 and Ogg Opus mounts that ffmpeg
//! plays back as the room's 440 Hz; a second icecast2, a relay of the first, serves the same;
//! the origin killed and started again has the room back within 10 s. And a wrong password is
//! a clear refusal that never shows the password.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LiveRoom, game_and_silence, host_from_files, host_playing, serve_with};
use crate::support::{GAME_TONE, Process, have_tool, http_get, metric, run, tempdir, tone_db};

pub(crate) const SOURCE_PASSWORD: &str = "booth-source-7f3a";
const RELAY_PASSWORD: &str = "booth-relay-51c9";

/// An icecast2 started from a template in docs/scaling/, killed when dropped.
pub(crate) struct Icecast {
    process: Option<Process>,
    config: PathBuf,
    pub(crate) port: u16,
}

impl Icecast {
    /// Fills in `template` (a file in docs/scaling/) for `port`, with its logs in `dir/name`,
    /// relaying `origin` when it is a relay, and starts it.
    pub(crate) fn start(template: &str, dir: &Path, name: &str, origin: Option<u16>) -> Self {
        let port = free_port();
        let logs = dir.join(name);
        std::fs::create_dir_all(&logs).unwrap();
        // icecast2 drops root for `nobody`, who must reach and write its log directory.
        chmod(dir, 0o755);
        chmod(&logs, 0o777);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/scaling")
            .join(template);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let text = text
            .replace("@PORT@", &port.to_string())
            .replace("@DIR@", logs.to_str().unwrap())
            .replace("@SOURCE_PASSWORD@", SOURCE_PASSWORD)
            .replace("@RELAY_PASSWORD@", RELAY_PASSWORD)
            .replace("@ADMIN_PASSWORD@", "booth-admin-c0de")
            .replace("@ORIGIN_HOST@", "127.0.0.1")
            .replace("@ORIGIN_PORT@", &origin.unwrap_or(0).to_string());
        // A leftover is a capitalised word between two '@'s.
        let between: Vec<&str> = text.split('@').collect();
        let left = between[1..between.len().saturating_sub(1).max(1)]
            .iter()
            .find(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
        assert_eq!(left, None, "a placeholder left in {template}");
        let config = dir.join(format!("{name}.xml"));
        std::fs::write(&config, text).unwrap();
        let mut icecast = Self {
            process: None,
            config,
            port,
        };
        icecast.run();
        icecast
    }

    /// Starts icecast2 on its config and waits until it answers.
    fn run(&mut self) {
        self.process = Some(Process::spawn(
            Command::new("icecast2")
                .arg("-c")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
        poll(Duration::from_secs(20), "icecast2 to answer", || {
            status(self.port).is_some()
        });
    }

    /// Kills it at once (SIGKILL: no goodbye to its sources).
    fn kill(&mut self) {
        self.process = None;
    }

    /// Sends it `signal` (`STOP`: it stops reading anything; `CONT`: it goes on).
    fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().map(Process::id).unwrap();
        run(Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()));
    }

    fn url(&self, mount: &str) -> String {
        format!("http://127.0.0.1:{}{mount}", self.port)
    }

    /// Whether its status lists both of `room`'s mounts.
    pub(crate) fn has_room(&self, room: &str) -> bool {
        status(self.port).is_some_and(|s| {
            s.contains(&format!("/{room}.mp3\"")) && s.contains(&format!("/{room}.ogg\""))
        })
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Icecast's JSON status, if it answers.
fn status(port: u16) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        let r = client
            .get(format!("http://127.0.0.1:{port}/status-json.xsl"))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    })
}

fn poll(within: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "no {what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// POSTs `body` as JSON (with `token` as the bearer, if any): the status and the answer's body.
fn post_json(url: &str, token: Option<&str>, body: &serde_json::Value) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut request = reqwest::Client::new().post(url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

/// `seconds` of a stream as ffmpeg plays it: 48 kHz, left channel.
fn pull(url: &str, seconds: u32) -> Vec<f32> {
    let out = run(Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-nostdin",
            "-rw_timeout",
            "10000000",
            "-i",
            url,
        ])
        .args(["-t", &seconds.to_string()])
        .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"]));
    out.stdout
        .chunks_exact(8)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The room's 440 Hz at the level the host plays it (-9 dBFS RMS), and nothing at 1 kHz.
fn assert_room_tone(url: &str) {
    let left = pull(url, 3);
    assert!(left.len() >= 48_000 * 2, "{url}: {} samples", left.len());
    let tone = tone_db(&left, GAME_TONE.freq);
    let other = tone_db(&left, 1000.0);
    eprintln!("{url}: 440 Hz at {tone:.1} dB, 1 kHz at {other:.1} dB");
    assert!(tone > -13.0, "{url}: 440 Hz at {tone:.1} dB");
    assert!(other < tone - 30.0, "{url}: 1 kHz at {other:.1} dB");
}

#[test]
fn a_live_room_is_on_icecast_and_its_relay_and_comes_back_after_a_restart() {
    if !have_tool("icecast2") || !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let mut origin = Icecast::start("icecast-origin.xml", dir.path(), "origin", None);
    let push = format!("http://source:{SOURCE_PASSWORD}@127.0.0.1:{}/", origin.port);
    let (server, url) = serve_with(&dir.path().join("data"), &["--icecast", &push]);
    let (game, silence) = game_and_silence(dir.path(), 120.0);
    let host = host_from_files(&["--server", &url], &game, &silence, 120.0);
    let LiveRoom {
        room, host_token, ..
    } = LiveRoom::of(&host);

    poll(Duration::from_secs(20), "mounts on the origin", || {
        origin.has_room(&room)
    });
    let info = http_get(&format!("{url}/api/rooms/{room}"));
    assert!(
        info.contains(&origin.url(&format!("/{room}.mp3"))),
        "{info}"
    );
    assert!(!info.contains(SOURCE_PASSWORD), "{info}");
    assert_eq!(metric(&url, "icecast_pushes"), 2);
    assert_room_tone(&origin.url(&format!("/{room}.mp3")));
    assert_room_tone(&origin.url(&format!("/{room}.ogg")));

    let relay = Icecast::start("icecast-relay.xml", dir.path(), "relay", Some(origin.port));
    poll(Duration::from_secs(20), "mounts on the relay", || {
        relay.has_room(&room)
    });
    assert_room_tone(&relay.url(&format!("/{room}.mp3")));
    assert_room_tone(&relay.url(&format!("/{room}.ogg")));

    origin.kill();
    let restarted = Instant::now();
    origin.run();
    let answered = restarted.elapsed();
    poll(
        Duration::from_secs(10),
        "the room back on the origin",
        || origin.has_room(&room),
    );
    let back = restarted.elapsed();
    eprintln!(
        "the origin killed and started again: it answered in {answered:?}, the room was back \
         on it {back:?} after the start"
    );
    assert!(back < Duration::from_secs(10), "back after {back:?}");
    // A new connection starts the Ogg stream again with its header: players join it as usual.
    assert_room_tone(&origin.url(&format!("/{room}.ogg")));

    // The room ends: its mounts leave Icecast, and the pushes say so.
    let (ended, body) = post_json(
        &format!("{url}/api/rooms/{room}/actions"),
        Some(&host_token),
        &serde_json::json!({"type": "end"}),
    );
    assert_eq!(ended, 204, "{body}");
    poll(Duration::from_secs(10), "the mounts gone", || {
        status(origin.port).is_some_and(|s| !s.contains(&format!("/{room}.")))
    });
    assert_eq!(metric(&url, "icecast_pushes"), 0);
    let info = http_get(&format!("{url}/api/rooms/{room}"));
    assert_eq!(info.matches("\"state\":\"stopped\"").count(), 2, "{info}");
    assert!(!server.stderr().contains(SOURCE_PASSWORD));
}

/// `booth host --icecast` with the room server in its own process takes its room there too.
#[test]
fn booth_host_pushes_its_own_room_to_icecast() {
    if !have_tool("icecast2") {
        return;
    }
    let dir = tempdir();
    let origin = Icecast::start("icecast-origin.xml", dir.path(), "origin", None);
    let push = format!(
        "http://source:{SOURCE_PASSWORD}@127.0.0.1:{}/booth",
        origin.port
    );
    let (game, silence) = game_and_silence(dir.path(), 30.0);
    let data = dir.path().join("data");
    let host = host_playing(
        &["--bind", "127.0.0.1:0", "--data", data.to_str().unwrap()],
        &game,
        &silence,
        30.0,
        &["--icecast", &push],
    );
    let room = LiveRoom::of(&host).room;
    let mp3 = format!("http://127.0.0.1:{}/booth/{room}.mp3", origin.port);
    assert_eq!(host.line("icecast: ", Duration::from_secs(5)), mp3);
    poll(Duration::from_secs(20), "the mounts under /booth", || {
        status(origin.port).is_some_and(|s| {
            s.contains(&format!("/booth/{room}.mp3\""))
                && s.contains(&format!("/booth/{room}.ogg\""))
        })
    });
    assert!(!host.stderr().contains(SOURCE_PASSWORD));
}

#[test]
fn a_wrong_password_is_a_clear_refusal_that_hides_it() {
    if !have_tool("icecast2") {
        return;
    }
    let dir = tempdir();
    let origin = Icecast::start("icecast-origin.xml", dir.path(), "origin", None);
    let (server, url) = serve_with(&dir.path().join("data"), &[]);
    let create = |icecast: &str| {
        post_json(
            &format!("{url}/api/rooms"),
            None,
            &serde_json::json!({"title": "Raid night", "icecast": icecast}),
        )
    };
    let (status, body) = create("ftp://source:not-this-one@127.0.0.1/");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("bad_icecast") && !body.contains("not-this-one"),
        "{body}"
    );

    let wrong = format!("http://source:not-this-one@127.0.0.1:{}/", origin.port);
    let (status, body) = create(&wrong);
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let room = created["id"].as_str().unwrap().to_owned();
    let mut info = String::new();
    poll(
        Duration::from_secs(15),
        "the refusal in the room's info",
        || {
            info = http_get(&format!("{url}/api/rooms/{room}"));
            info.contains("refused the source password")
        },
    );
    assert!(info.contains("\"retrying\""), "{info}");
    assert!(!info.contains("not-this-one"), "{info}");
    assert!(!origin.has_room(&room));
    let log = server.stderr();
    assert!(log.contains("refused the source password"), "{log}");
    assert!(!log.contains("not-this-one"), "{log}");
}

/// The resident memory of process `pid`, kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// An Icecast that stops reading (SIGSTOP) is dropped within seconds, not buffered for: the
/// server's memory stays where it was, and the push is back once Icecast reads again.
#[test]
fn a_stalled_icecast_is_dropped_not_buffered_for() {
    if !have_tool("icecast2") || !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let origin = Icecast::start("icecast-origin.xml", dir.path(), "origin", None);
    let push = format!("http://source:{SOURCE_PASSWORD}@127.0.0.1:{}/", origin.port);
    let (server, url) = serve_with(&dir.path().join("data"), &["--icecast", &push]);
    let (game, silence) = game_and_silence(dir.path(), 120.0);
    let host = host_from_files(&["--server", &url], &game, &silence, 120.0);
    let room = LiveRoom::of(&host).room;
    poll(Duration::from_secs(20), "mounts on the origin", || {
        origin.has_room(&room)
    });
    let before = rss_kb(server.pid());

    origin.signal("STOP");
    let stalled = poll(Duration::from_secs(45), "both pushes given up", || {
        metric(&url, "icecast_pushes") == 0
    });
    let info = http_get(&format!("{url}/api/rooms/{room}"));
    assert!(
        info.contains("stalled") || info.contains("behind"),
        "{info}"
    );
    let after = rss_kb(server.pid());
    eprintln!(
        "a stalled Icecast dropped after {stalled:?}; the server's RSS {before} -> {after} kB"
    );
    assert!(after < before + 8 * 1024, "RSS {before} -> {after} kB");

    origin.signal("CONT");
    let back = poll(Duration::from_secs(20), "both pushes back", || {
        metric(&url, "icecast_pushes") == 2
    });
    eprintln!("the pushes were back {back:?} after Icecast went on");
    assert_room_tone(&origin.url(&format!("/{room}.ogg")));
}
