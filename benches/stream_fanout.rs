//! HTTP stream listeners per core: N clients on a room's MP3 stream from `booth serve`, and the
//! same N on the same room's MP3 mount from Debian's icecast2, in the same run.
//!
//! `cargo bench --bench stream_fanout [-- N...]` (default N = 500 1000). Both servers run pinned
//! to CPU 1 (`taskset`), this process to CPU 0. A WHIP publisher sends the room a 440 Hz program;
//! `booth serve --icecast` pushes the room's MP3 (128 kbit/s) to icecast2 when this build has
//! that option, else ffmpeg feeds icecast2 a 128 kbit/s MP3 of a tone (and one reader keeps
//! Booth's MP3 encoder running, as the push would). Each server's CPU time (utime + stime from
//! /proc) is taken over 20 s with no listener (the source running), then, for each N, over 20 s
//! after a 5 s warm-up with N listeners on each server at once; the idle figure is taken off.
//! The readers: one current-thread tokio runtime holding every connection (HTTP/1.0 GET),
//! reading and counting bytes; a reader that got under 90% of the stream's rate is reported.
//! A measurement only: nothing here passes or fails on a number.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

const WARM_UP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(20);
/// 128 kbit/s.
const STREAM_BYTES_PER_SEC: f64 = 16_000.0;
const PASSWORD: &str = "bench-source";
/// Readers connected at once to each server while N are added, and the pause between batches.
const RAMP_BATCH: usize = 5;
const RAMP_PAUSE: Duration = Duration::from_millis(20);
/// A connection that brings no byte for this long is made again.
const FIRST_BYTES: Duration = Duration::from_secs(3);

/// icecast2's configuration when this checkout has no template of its own: Debian's limits
/// raised for the run, a private port and log directory, and the user it drops to.
const ICECAST_XML: &str = "<icecast>
    <limits>
        <clients>1000</clients>
        <sources>8</sources>
        <queue-size>524288</queue-size>
        <client-timeout>30</client-timeout>
        <header-timeout>15</header-timeout>
        <source-timeout>10</source-timeout>
        <burst-on-connect>1</burst-on-connect>
        <burst-size>65535</burst-size>
    </limits>
    <authentication>
        <source-password>@SOURCE_PASSWORD@</source-password>
        <relay-password>@RELAY_PASSWORD@</relay-password>
        <admin-user>admin</admin-user>
        <admin-password>@ADMIN_PASSWORD@</admin-password>
    </authentication>
    <hostname>127.0.0.1</hostname>
    <listen-socket>
        <port>@PORT@</port>
        <bind-address>127.0.0.1</bind-address>
    </listen-socket>
    <paths>
        <logdir>@DIR@</logdir>
        <webroot>/usr/share/icecast2/web</webroot>
        <adminroot>/usr/share/icecast2/admin</adminroot>
    </paths>
    <logging>
        <accesslog>access.log</accesslog>
        <errorlog>error.log</errorlog>
        <loglevel>2</loglevel>
    </logging>
    <security>
        <chroot>0</chroot>
        <changeowner>
            <user>nobody</user>
            <group>nogroup</group>
        </changeowner>
    </security>
</icecast>
";

/// A child process killed when the bench ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server under measurement.
struct Server {
    name: &'static str,
    pid: u32,
    addr: SocketAddr,
    path: String,
    /// CPU seconds a second with no listener.
    idle: f64,
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![500, 1000]
    } else {
        counts
    };
    let pinned = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !pinned {
        println!("taskset is missing: nothing is pinned, the figures share both cores");
    }
    let cpu = pinned.then_some("1");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let max = counts.iter().copied().max().unwrap_or(0);
    let (icecast, icecast_port) = start_icecast(data.path(), cpu, max + 100);
    let icecast_url = format!("http://source:{PASSWORD}@127.0.0.1:{icecast_port}/");
    let push = booth_has_icecast();
    let extra: Vec<&str> = if push {
        vec!["--icecast", &icecast_url]
    } else {
        Vec::new()
    };
    let booth_data = data.path().join("booth");
    std::fs::create_dir_all(&booth_data)
        .unwrap_or_else(|e| panic!("{}: {e}", booth_data.display()));
    let (booth, url, booth_pid) = common::start_server(&booth_data, cpu, &extra);
    let _booth = Killed(booth);
    rt.block_on(run(
        &url,
        booth_pid,
        icecast.0.id(),
        icecast_port,
        push,
        &counts,
    ));
    drop(icecast);
}

async fn run(url: &str, booth_pid: u32, icecast_pid: u32, port: u16, push: bool, counts: &[usize]) {
    let (room, token) = common::create_room(url, "stream fan-out").await;
    let publisher = booth::rtc::peer::ClientPeer::connect(
        &format!("{url}/whip/{room}"),
        Some(&token),
        booth::rtc::peer::Mode::Publish,
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("publish: {e}"));
    tokio::spawn(common::publish_tone(publisher.frames.clone()));
    let booth_addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("booth's address in {url}: {e}"));
    let icecast_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut booth = Server {
        name: "Booth",
        pid: booth_pid,
        addr: booth_addr,
        path: format!("/live/{room}.mp3"),
        idle: 0.0,
    };
    let (mut icecast, _source) = if push {
        println!("icecast2 is fed by booth serve --icecast (the room's own MP3)");
        (
            icecast_server(icecast_pid, icecast_addr, &format!("/{room}.mp3")),
            None,
        )
    } else {
        println!(
            "icecast2 is fed by ffmpeg (a 128 kbit/s MP3 of a tone); one reader keeps Booth's MP3 encoder running"
        );
        let source = start_ffmpeg_source(port);
        (
            icecast_server(icecast_pid, icecast_addr, "/bench.mp3"),
            Some(source),
        )
    };
    // Booth's encoder starts with its first reader: without the push, one reader keeps it
    // running all along, so that the idle figure includes the encode.
    let _keeper = (!push).then(|| readers(&booth, 1));
    wait_for_mount(&icecast).await;
    tokio::time::sleep(WARM_UP).await;
    let idle = cpu_over(&[booth.pid, icecast.pid], MEASURE).await;
    booth.idle = idle[0][0] + idle[0][1];
    icecast.idle = idle[1][0] + idle[1][1];
    println!(
        "idle (source running, no listener): Booth {:.2} % of a core, icecast2 {:.2} %",
        booth.idle * 100.0,
        icecast.idle * 100.0
    );
    println!(
        "| listeners | server | CPU (% of a core: user + system) | per listener (us CPU per listener-second) | % of a core per 1,000 listeners | listeners per core | readers under 90% of real time |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in counts {
        measure(&booth, &icecast, n).await;
    }
    drop(publisher);
}

fn icecast_server(pid: u32, addr: SocketAddr, path: &str) -> Server {
    Server {
        name: "icecast2",
        pid,
        addr,
        path: path.to_owned(),
        idle: 0.0,
    }
}

/// N readers on each server at once; one row each, and their ratio.
async fn measure(booth: &Server, icecast: &Server, n: usize) {
    let mut sets = ramp(&[booth, icecast], n).await;
    let on_icecast = sets.pop().unwrap_or_default();
    let on_booth = sets.pop().unwrap_or_default();
    tokio::time::sleep(WARM_UP).await;
    let before: Vec<Vec<u64>> = [&on_booth, &on_icecast]
        .iter()
        .map(|r| r.iter().map(|(c, _)| c.load(Relaxed)).collect())
        .collect();
    let cpu = cpu_over(&[booth.pid, icecast.pid], MEASURE).await;
    let mut per_listener = Vec::new();
    for (i, (server, set)) in [(booth, &on_booth), (icecast, &on_icecast)]
        .into_iter()
        .enumerate()
    {
        let rates: Vec<f64> = set
            .iter()
            .zip(&before[i])
            .map(|((c, _), b)| (c.load(Relaxed) - b) as f64 / MEASURE.as_secs_f64())
            .collect();
        let short = rates
            .iter()
            .filter(|r| **r < 0.9 * STREAM_BYTES_PER_SEC)
            .count();
        let [user, system] = cpu[i];
        let us = (user + system - server.idle).max(0.0) / n as f64 * 1e6;
        per_listener.push(us);
        println!(
            "| {n} | {} | {:.1} % ({:.1} user + {:.1} system) | {us:.1} | {:.2} % | {:.0} | {short} (slowest {:.0}% of real time) |",
            server.name,
            (user + system) * 100.0,
            user * 100.0,
            system * 100.0,
            us * 1000.0 / 1e6 * 100.0,
            1e6 / us.max(1e-3),
            rates.iter().copied().fold(f64::INFINITY, f64::min) / STREAM_BYTES_PER_SEC * 100.0,
        );
    }
    println!(
        "| {n} | Booth / icecast2 | | {:.2} | | | |",
        per_listener[0] / per_listener[1].max(1e-9)
    );
    for (_, task) in on_booth.into_iter().chain(on_icecast) {
        task.abort();
    }
    // Let both servers see the connections go before the next count.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// CPU seconds a second (user, system) of each of `pids` over `window`.
async fn cpu_over(pids: &[u32], window: Duration) -> Vec<[f64; 2]> {
    let before: Vec<[f64; 2]> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(p, b)| {
            let a = cpu_seconds(*p);
            [(a[0] - b[0]) / secs, (a[1] - b[1]) / secs]
        })
        .collect()
}

/// utime and stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> [f64; 2] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    [ticks(11) / 100.0, ticks(12) / 100.0]
}

type Readers = Vec<(Arc<AtomicU64>, JoinHandle<()>)>;

/// `n` readers of `server`'s stream, each counting the bytes it got.
fn readers(server: &Server, n: usize) -> Readers {
    (0..n)
        .map(|_| {
            let count = Arc::new(AtomicU64::new(0));
            let task = tokio::spawn(read_stream(
                server.addr,
                server.path.clone(),
                Arc::clone(&count),
            ));
            (count, task)
        })
        .collect()
}

/// `n` readers on each of `servers`, connected a few at a time (listeners come one by one, not
/// in one SYN flood); returns once every one has had its first bytes, or after a minute.
async fn ramp(servers: &[&Server], n: usize) -> Vec<Readers> {
    let mut sets: Vec<Readers> = servers.iter().map(|_| Vec::with_capacity(n)).collect();
    while sets[0].len() < n {
        let batch = (n - sets[0].len()).min(RAMP_BATCH);
        for (set, server) in sets.iter_mut().zip(servers) {
            set.extend(readers(server, batch));
        }
        tokio::time::sleep(RAMP_PAUSE).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && sets
            .iter()
            .flatten()
            .any(|(count, _)| count.load(Relaxed) == 0)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sets
}

/// Reads an endless response and counts its bytes. A connection that brings nothing within
/// [`FIRST_BYTES`] is made again: icecast2 listens with a backlog of 5, and the connections
/// past it wait for a retransmission of the handshake.
async fn read_stream(addr: SocketAddr, path: String, count: Arc<AtomicU64>) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: booth-bench\r\n\r\n");
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        if let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await
            && tcp.write_all(request.as_bytes()).await.is_ok()
            && let Ok(Ok(first)) = tokio::time::timeout(FIRST_BYTES, tcp.read(&mut buf)).await
            && first > 0
        {
            count.fetch_add(first as u64, Relaxed);
            while let Ok(n) = tcp.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                count.fetch_add(n as u64, Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until icecast2 serves the mount (its source has connected).
async fn wait_for_mount(icecast: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = readers(icecast, 1);
    while probe[0].0.load(Relaxed) < 4_096 {
        assert!(
            Instant::now() < deadline,
            "icecast2 never served {} (see its error.log)",
            icecast.path
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    probe[0].1.abort();
}

/// Whether this build's `booth serve` can push rooms to Icecast.
fn booth_has_icecast() -> bool {
    Command::new(env!("CARGO_BIN_EXE_booth"))
        .args(["serve", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--icecast"))
}

/// Starts icecast2 on a free port, allowing `clients` clients: it and its port.
fn start_icecast(dir: &std::path::Path, cpu: Option<&str>, clients: usize) -> (Killed, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    let logs = dir.join("icecast");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{}: {e}", logs.display()));
    // icecast2 drops to `nobody`, who must write its logs.
    let _ = Command::new("chmod")
        .arg("777")
        .arg(dir)
        .arg(&logs)
        .status();
    let template =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scaling/icecast-origin.xml");
    let xml = std::fs::read_to_string(&template).unwrap_or_else(|_| ICECAST_XML.to_owned());
    let mut xml = xml
        .replace("@PORT@", &port.to_string())
        .replace("@DIR@", &logs.display().to_string())
        .replace("@SOURCE_PASSWORD@", PASSWORD)
        .replace("@RELAY_PASSWORD@", "bench-relay")
        .replace("@ADMIN_PASSWORD@", "bench-admin");
    if let (Some(a), Some(b)) = (xml.find("<clients>"), xml.find("</clients>")) {
        xml.replace_range(a..b, &format!("<clients>{clients}"));
    }
    let config = dir.join("icecast.xml");
    std::fs::write(&config, xml).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu, "icecast2"]);
            c
        }
        None => Command::new("icecast2"),
    };
    let child = command
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start icecast2 (apt-get install icecast2): {e}"));
    let icecast = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "icecast2 did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (icecast, port)
}

/// ffmpeg sending icecast2 a 128 kbit/s MP3 of a tone at real-time pace, as a source does.
fn start_ffmpeg_source(port: u16) -> Killed {
    let target = format!("icecast://source:{PASSWORD}@127.0.0.1:{port}/bench.mp3");
    let child = Command::new("taskset")
        .args([
            "-c",
            "0",
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"])
        .args(["-content_type", "audio/mpeg", "-f", "mp3", &target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start ffmpeg: {e}"));
    Killed(child)
}
