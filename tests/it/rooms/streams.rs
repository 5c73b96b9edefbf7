//! The room as plain HTTP streams and HLS, for players without WebRTC: ffmpeg pulls
//! `/live/{room}.mp3` and `.ogg` and hears the host's 440 Hz game; fifty players share one
//! encode; a reader that stops reading is dropped while the others play on; nginx serves the
//! `--hls-dir` files and proxies Booth's own HLS, with the configuration `docs/scaling/`
//! documents.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{LiveRoom, game_and_silence, host_from_files, serve, serve_with};
use crate::support::{
    BoothProcess, Process, channel, have_tool, http_get, metric, steady_tone_db, tempdir,
    tone_levels,
};

/// What a player that read an HTTP stream got.
struct Pulled {
    /// From sending the request to the first byte of audio.
    first_audio: Duration,
    /// The response's head.
    head: String,
    /// The audio bytes.
    body: Vec<u8>,
}

/// Reads `url` as the simplest player would (HTTP/1.0, so the body is the stream itself),
/// until `bytes` of it have come or `within` has passed.
fn pull(url: &str, bytes: usize, within: Duration) -> Pulled {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let addr: SocketAddr = host.parse().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let asked = Instant::now();
    write!(
        s,
        "GET /{path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: test-player\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut first_audio = None;
    let mut head_len = None;
    while asked.elapsed() < within {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if head_len.is_none()
            && let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
        {
            head_len = Some(end + 4);
        }
        if let Some(h) = head_len {
            if first_audio.is_none() && got.len() > h {
                first_audio = Some(asked.elapsed());
            }
            if got.len() - h >= bytes {
                break;
            }
        }
    }
    let h = head_len.unwrap_or_else(|| panic!("no HTTP head from {url}: {got:?}"));
    Pulled {
        first_audio: first_audio.unwrap_or_else(|| panic!("no audio from {url}")),
        head: String::from_utf8_lossy(&got[..h]).into_owned(),
        body: got[h..].to_vec(),
    }
}

/// ffmpeg playing `url` for `seconds`: the audio it decoded, 48 kHz stereo.
fn ffmpeg_play(url: &str, seconds: f32) -> Process {
    Process::spawn(
        Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-nostdin",
                "-rw_timeout",
                "15000000",
                "-i",
                url,
            ])
            .args(["-t", &seconds.to_string()])
            .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
}

fn samples(out: &[u8]) -> Vec<f32> {
    out.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The 440 Hz level of decoded stereo audio's left channel, dB.
fn game_db(stereo: &[f32]) -> f32 {
    steady_tone_db(&channel(stereo, 0), 440.0)
}

/// Decodes `bytes` of a stream (written to `dir/name`) with ffmpeg.
fn decode(dir: &Path, name: &str, bytes: &[u8]) -> Vec<f32> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    crate::support::ffmpeg_decode(&path)
}

/// A server, and a host playing the 440 Hz game into a room on it for `seconds`.
fn tone_room(
    dir: &Path,
    seconds: f32,
    serve_args: &[&str],
) -> (BoothProcess, BoothProcess, LiveRoom) {
    let (server, url) = if serve_args.is_empty() {
        serve(&dir.join("data"))
    } else {
        serve_with(&dir.join("data"), serve_args)
    };
    let (game, silence) = game_and_silence(dir, seconds + 2.0);
    let host = host_from_files(&["--server", &url], &game, &silence, seconds);
    let room = LiveRoom::of(&host);
    (server, host, room)
}

#[test]
fn any_player_hears_the_room_over_http() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let (_server, _host, room) = tone_room(dir.path(), 40.0, &[]);
    let live = format!("{}/live/{}", room.url, room.room);

    // The simplest player: audio within 2 s of asking (a burst of the backlog, then live).
    for (ext, kind) in [("mp3", "audio/mpeg"), ("ogg", "audio/ogg")] {
        let got = pull(&format!("{live}.{ext}"), 48_000, Duration::from_secs(15));
        assert!(
            got.first_audio < Duration::from_secs(2),
            "{ext}: first audio after {:?}",
            got.first_audio
        );
        assert!(got.head.starts_with("HTTP/1.0 200") || got.head.starts_with("HTTP/1.1 200"));
        assert!(got.head.contains(kind), "{}", got.head);
        assert!(
            got.head.contains("icy-name: Live from Booth"),
            "{}",
            got.head
        );
        let audio = decode(dir.path(), &format!("pulled.{ext}"), &got.body);
        assert!(audio.len() > 48_000 * 2, "{ext}: {} samples", audio.len());
        let level = game_db(&audio);
        assert!(level > -16.0, "{ext}: the game's tone at {level:.1} dB");
    }

    // ffmpeg as the player, on both streams.
    for ext in ["mp3", "ogg"] {
        let out = ffmpeg_play(&format!("{live}.{ext}"), 3.0).finish();
        let audio = samples(&out.stdout);
        assert!(
            audio.len() >= 48_000 * 2 * 2,
            "{ext}: ffmpeg decoded {} samples: {}",
            audio.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        let level = game_db(&audio);
        assert!(
            level > -16.0,
            "{ext}: ffmpeg heard the tone at {level:.1} dB"
        );
    }

    // A playlist file for players that want one.
    let m3u = http_get(&format!("{live}.m3u"));
    assert!(m3u.starts_with("#EXTM3U"), "{m3u}");
    assert!(m3u.contains(&format!("{live}.mp3")), "{m3u}");
}

#[test]
fn fifty_players_share_one_encode() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let (_server, _host, room) = tone_room(dir.path(), 90.0, &[]);
    let url = &room.url;
    let mp3 = format!("{url}/live/{}.mp3", room.room);
    // The stream is running before the count starts.
    drop(pull(&mp3, 4_000, Duration::from_secs(10)));
    let ticks_before = metric(url, "stream_mp3_ticks_total");
    let started = Instant::now();
    // Each plays 20 s, so all fifty play at once even when a busy machine is slow to start them.
    // Each player's output is read as it comes (as a sound card would take it): a player whose
    // pipe is full stops reading the stream, and the server rightly drops it after seconds.
    let players: Vec<std::thread::JoinHandle<std::process::Output>> = (0..50)
        .map(|_| {
            let player = ffmpeg_play(&mp3, 20.0);
            std::thread::spawn(move || player.finish())
        })
        .collect();

    // All fifty count in the room's audience and in /metrics.
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && most < 50 {
        most = most.max(metric(url, "stream_listeners"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(most, 50, "stream listeners seen at most");
    let info = http_get(&format!("{url}/api/rooms/{}", room.room));
    let listening: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(
        listening["listening"].as_u64().unwrap_or(0) >= 50,
        "the room's audience: {info}"
    );

    for (i, p) in players.into_iter().enumerate() {
        let out = p
            .join()
            .unwrap_or_else(|_| panic!("player {i}: its reader panicked"));
        let audio = samples(&out.stdout);
        assert!(
            audio.len() >= 48_000 * 2 * 15,
            "player {i}: {} samples: {}",
            audio.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        let level = game_db(&audio);
        assert!(level > -16.0, "player {i}: the tone at {level:.1} dB");
    }
    // One MP3 encode for everyone: 50 ticks a second of wall time, not 50 x 50.
    let ticks = metric(url, "stream_mp3_ticks_total") - ticks_before;
    let most_ticks = (started.elapsed().as_secs_f64() * 50.0 * 1.1) as u64 + 50;
    assert!(
        ticks <= most_ticks,
        "{ticks} MP3 ticks encoded in {:?}: more than one encode",
        started.elapsed()
    );
    assert_eq!(metric(url, "stream_ticks_lost_total"), 0);
}

/// How long the steady player of the slow-reader test reads.
const STEADY: Duration = Duration::from_secs(40);

#[test]
fn a_player_that_stops_reading_is_dropped_and_the_others_play_on() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempdir();
    let (_server, _host, room) = tone_room(dir.path(), 90.0, &[]);
    let url = room.url.clone();
    let mp3 = format!("{url}/live/{}.mp3", room.room);

    // One player reads the whole time...
    let steady_url = mp3.clone();
    let steady = std::thread::spawn(move || pull(&steady_url, usize::MAX, STEADY));
    // ...another asks for the stream with a tiny window and never reads it.
    let stalled = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    stalled.set_recv_buffer_size(4_096).unwrap();
    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    stalled.connect(&addr.into()).unwrap();
    let mut stalled: TcpStream = stalled.into();
    write!(
        stalled,
        "GET /live/{}.mp3 HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        room.room
    )
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&url, "stream_listeners") < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&url, "stream_listeners"), 2);
    // The stalled one is dropped: its buffers fill in seconds, then it has a few more.
    let deadline = Instant::now() + Duration::from_secs(40);
    while metric(&url, "stream_drops_total") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        metric(&url, "stream_drops_total"),
        1,
        "the stalled reader was not dropped"
    );
    assert_eq!(metric(&url, "stream_listeners"), 1);
    // Its connection is closed: what the kernel held, then the end.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sink = Vec::new();
    let closed = stalled.read_to_end(&mut sink);
    assert!(
        closed.is_ok()
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the stalled connection is still open: {closed:?}"
    );

    // The steady player was never held up: it got the stream at its real-time rate (128 kbit/s)
    // the whole time, and it holds the tone throughout.
    let got = steady.join().unwrap();
    let realtime = 16_000.0 * STEADY.as_secs_f64();
    assert!(
        got.body.len() as f64 > 0.95 * realtime,
        "the steady player got {} bytes in {STEADY:?}: held up",
        got.body.len()
    );
    let audio = decode(dir.path(), "steady.mp3", &got.body);
    let left = channel(&audio, 0);
    // Nearly every 100 ms of it holds the tone (a busy machine may make the host itself late
    // once or twice; the stream has no gap of its own).
    let levels = tone_levels(&left[4_800..], 440.0, 4_800);
    let quiet = levels.iter().filter(|&&l| l < -20.0).count();
    assert!(
        quiet * 100 <= levels.len(),
        "{quiet} of {} windows of the steady player's audio without the tone",
        levels.len()
    );
}

/// A free TCP port on loopback.
pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running nginx, stopped (workers and all) when dropped.
pub(super) struct Nginx(Process);

impl Nginx {
    /// Runs nginx with `conf` (written into `dir`, its prefix) until it answers on `port`.
    pub(super) fn start(dir: &Path, conf: &str, port: u16) -> Self {
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let p = Process::spawn(
            Command::new("nginx")
                .arg("-p")
                .arg(dir)
                .args(["-c", "nginx.conf", "-e"])
                .arg(dir.join("error.log"))
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {:?}",
                std::fs::read_to_string(dir.join("error.log"))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(p)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILL would leave them running).
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        // Until the master has exited (a zombie until the Process reaps it).
        let running = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        };
        while running(self.0.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// nginx with `docs/scaling/nginx-hls.conf`: files from `hls_dir` on one port, a cached proxy of
/// `booth` on another; the process and the two base URLs.
fn nginx(dir: &Path, hls_dir: &Path, booth: &str) -> (Nginx, String, String) {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scaling/nginx-hls.conf"),
    )
    .unwrap();
    let (files, proxy) = (free_port(), free_port());
    let conf = template
        .replace("@DIR@", dir.to_str().unwrap())
        .replace("@HLS_DIR@", hls_dir.to_str().unwrap())
        .replace("@FILES_PORT@", &files.to_string())
        .replace("@PROXY_PORT@", &proxy.to_string())
        .replace("@BOOTH@", booth.strip_prefix("http://").unwrap());
    // nginx's workers run as nobody when started as root: they must reach and write these.
    for d in ["tmp", "cache"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for d in [dir, hls_dir, &dir.join("tmp"), &dir.join("cache")] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    }
    let nginx = Nginx::start(dir, &conf, proxy);
    (
        nginx,
        format!("http://127.0.0.1:{files}"),
        format!("http://127.0.0.1:{proxy}"),
    )
}

/// The `#EXTINF` durations of a playlist.
fn segment_seconds(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

#[test]
fn hls_plays_through_nginx_from_files_and_through_its_cache() {
    if !have_tool("ffmpeg") || !have_tool("nginx") {
        return;
    }
    let dir = tempdir();
    let hls_dir = dir.path().join("hls");
    std::fs::create_dir_all(&hls_dir).unwrap();
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let (_server, _host, room) =
        tone_room(dir.path(), 60.0, &["--hls-dir", hls_dir.to_str().unwrap()]);
    let (_nginx, files, proxy) = nginx(&nginx_dir, &hls_dir, &room.url);

    // The files: wait for a few segments to be written.
    let playlist_file = hls_dir.join(&room.room).join("index.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&playlist_file).unwrap_or_default();
        if segment_seconds(&text).len() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no HLS files written: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }

    for (how, base) in [("files", &files), ("proxy", &proxy)] {
        let playlist_url = format!("{base}/hls/{}/index.m3u8", room.room);
        let playlist = http_get(&playlist_url);
        assert!(playlist.starts_with("#EXTM3U"), "{how}: {playlist}");
        assert!(
            playlist.contains("#EXT-X-TARGETDURATION:2"),
            "{how}: {playlist}"
        );
        let durations = segment_seconds(&playlist);
        assert!(!durations.is_empty(), "{how}: {playlist}");
        for d in &durations {
            assert!(
                (d - 2.0).abs() <= 0.2,
                "{how}: a segment of {d} s in {playlist}"
            );
        }
        // Each segment decodes to as long as the playlist says.
        let last = playlist
            .lines()
            .rev()
            .find(|l| l.ends_with(".mp3"))
            .unwrap();
        let segment =
            crate::support::ffmpeg_decode(Path::new(&format!("{base}/hls/{}/{last}", room.room)));
        let seconds = segment.len() as f64 / 2.0 / 48_000.0;
        assert!(
            (seconds - 2.0).abs() <= 0.2,
            "{how}: segment {last} decodes to {seconds:.3} s"
        );

        let out = ffmpeg_play(&playlist_url, 4.0).finish();
        let audio = samples(&out.stdout);
        assert!(
            audio.len() >= 48_000 * 2 * 3,
            "{how}: ffmpeg decoded {} samples: {}",
            audio.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        let level = game_db(&audio);
        assert!(level > -16.0, "{how}: the tone at {level:.1} dB over HLS");
    }
    // The proxy's cache answers repeated segment requests itself.
    let playlist = http_get(&format!("{proxy}/hls/{}/index.m3u8", room.room));
    let first = playlist.lines().find(|l| l.ends_with(".mp3")).unwrap();
    let seg = format!("{proxy}/hls/{}/{first}", room.room);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = rt.block_on(async {
        reqwest::get(&seg).await.unwrap();
        let r = reqwest::get(&seg).await.unwrap();
        r.headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap_or("").to_owned())
    });
    assert_eq!(cache.as_deref(), Some("HIT"));
}
