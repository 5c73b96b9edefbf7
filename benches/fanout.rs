//! Fan-out: how many WHEP listeners one core of `booth serve` carries.
//!
//! `cargo bench --bench fanout [-- N...]` (default N = 50 200 500 1000) starts `booth serve`
//! pinned to CPU 0 (`taskset`), creates a room, publishes a 440 Hz program by WHIP from this
//! process, attaches N listeners (str0m clients, one UDP socket each), and over 10 s measures
//! the server's CPU time (from /proc), the packets it sent (from /metrics) and what every
//! listener received. Run it pinned away from the server: `taskset -c 1 cargo bench --bench
//! fanout`. A measurement only: nothing here passes or fails on a number.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use booth::rtc::peer::{ClientPeer, Mode};

const MEASURE: Duration = Duration::from_secs(10);

fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .map(|r| r.text());
    let Ok(text) = text else { return 0.0 };
    let text = text.await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("booth_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![50, 200, 500, 1000]
    } else {
        counts
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (mut server, url, pid) = common::start_server(data.path(), Some("0"), &[]);

    rt.block_on(async {
        let (id, token) = common::create_room(&url, "fan-out").await;
        let publisher = ClientPeer::connect(
            &format!("{url}/whip/{id}"),
            Some(&token),
            Mode::Publish,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
        tokio::spawn(common::publish_tone(publisher.frames.clone()));

        println!("| listeners | server CPU (% of one core) | CPU per packet sent | packets/s out | loss | listeners per core |");
        println!("|---|---|---|---|---|---|");
        let mut peers: Vec<(ClientPeer, Arc<AtomicU64>)> = Vec::new();
        for &n in &counts {
            while peers.len() < n {
                let batch = (n - peers.len()).min(25);
                add_listeners(&url, &id, batch, &mut peers).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            measure(&url, pid, &peers).await;
        }
        for (mut p, _) in peers {
            p.close().await;
        }
    });
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = server.kill();
    let _ = server.wait();
}

/// Connects `batch` more listeners at once, each counting the packets it receives.
async fn add_listeners(
    url: &str,
    id: &str,
    batch: usize,
    peers: &mut Vec<(ClientPeer, Arc<AtomicU64>)>,
) {
    let mut joins = Vec::new();
    for _ in 0..batch {
        let whep = format!("{url}/whep/{id}");
        joins.push(tokio::spawn(async move {
            ClientPeer::connect(&whep, None, Mode::Listen, Duration::from_secs(20)).await
        }));
    }
    for j in joins {
        match j.await {
            Ok(Ok(mut peer)) => {
                let count = Arc::new(AtomicU64::new(0));
                let c = Arc::clone(&count);
                let mut incoming =
                    std::mem::replace(&mut peer.incoming, tokio::sync::mpsc::channel(1).1);
                tokio::spawn(async move {
                    while incoming.recv().await.is_some() {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                });
                peers.push((peer, count));
            }
            Ok(Err(e)) => eprintln!("a listener failed to connect: {e}"),
            Err(e) => eprintln!("a listener task failed: {e}"),
        }
    }
}

/// Measures the server for [`MEASURE`] with `peers` listening, and prints the table's row.
async fn measure(url: &str, pid: u32, peers: &[(ClientPeer, Arc<AtomicU64>)]) {
    let before: Vec<u64> = peers
        .iter()
        .map(|(_, c)| c.load(Ordering::Relaxed))
        .collect();
    let cpu0 = proc_cpu_seconds(pid);
    let out0 = metric(url, "packets_out_total").await;
    let t0 = Instant::now();
    tokio::time::sleep(MEASURE).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = proc_cpu_seconds(pid) - cpu0;
    let sent = metric(url, "packets_out_total").await - out0;
    let got: u64 = peers
        .iter()
        .zip(&before)
        .map(|((_, c), b)| c.load(Ordering::Relaxed) - b)
        .sum();
    let expected = peers.len() as f64 * 50.0 * secs;
    let loss = (1.0 - got as f64 / expected).max(0.0);
    let share = cpu / secs;
    println!(
        "| {} | {:.1} % | {:.1} us | {:.0} | {:.2} % | {:.0} |",
        peers.len(),
        share * 100.0,
        cpu * 1e6 / sent.max(1.0),
        sent / secs,
        loss * 100.0,
        peers.len() as f64 / share.max(1e-9),
    );
}
