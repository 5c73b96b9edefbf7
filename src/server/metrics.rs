//! Server counters, exported at `/metrics` in the Prometheus text format. Atomics only: every
//! room task adds to them without locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// See the module doc.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Rooms open now.
    pub rooms: AtomicU64,
    /// WHEP listener sessions connected now.
    pub listeners: AtomicU64,
    /// WHIP publisher sessions connected now.
    pub publishers: AtomicU64,
    /// WebSocket connections now.
    pub websockets: AtomicU64,
    /// UDP datagrams received.
    pub packets_in: AtomicU64,
    /// UDP datagrams sent.
    pub packets_out: AtomicU64,
    /// Datagrams that could not be sent (socket buffer full).
    pub send_drops: AtomicU64,
    /// Datagrams no session claimed.
    pub unrouted: AtomicU64,
    /// Mix ticks run, and the microseconds they took in all.
    pub mix_ticks: AtomicU64,
    /// Microseconds spent mixing, encoding and sending, summed over ticks.
    pub mix_micros: AtomicU64,
    /// The longest tick, in microseconds.
    pub mix_micros_max: AtomicU64,
    /// Program frames encoded: only while someone hears the program (a listener off stage,
    /// or the recording).
    pub program_frames: AtomicU64,
    /// Mix-minus frames encoded (one per stage member who listens, per 20 ms; none for a host
    /// in the server's process while the room holds nothing but its own voice).
    pub minus_frames: AtomicU64,
    /// HTTP/WS requests refused with a 4xx.
    pub rejected: AtomicU64,
}

impl Metrics {
    /// Records one mix tick's duration.
    pub fn record_tick(&self, micros: u64) {
        self.mix_ticks.fetch_add(1, Relaxed);
        self.mix_micros.fetch_add(micros, Relaxed);
        self.mix_micros_max.fetch_max(micros, Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP booth_{name} {help}");
            let _ = writeln!(out, "# TYPE booth_{name} {kind}");
            let _ = writeln!(out, "booth_{name} {value}");
        };
        put("rooms", "gauge", "Rooms open.", self.rooms.load(Relaxed));
        put(
            "listeners",
            "gauge",
            "WHEP sessions connected.",
            self.listeners.load(Relaxed),
        );
        put(
            "publishers",
            "gauge",
            "WHIP sessions connected.",
            self.publishers.load(Relaxed),
        );
        put(
            "websockets",
            "gauge",
            "Room channel connections.",
            self.websockets.load(Relaxed),
        );
        put(
            "packets_in_total",
            "counter",
            "UDP datagrams received.",
            self.packets_in.load(Relaxed),
        );
        put(
            "packets_out_total",
            "counter",
            "UDP datagrams sent.",
            self.packets_out.load(Relaxed),
        );
        put(
            "send_drops_total",
            "counter",
            "Datagrams dropped at a full socket.",
            self.send_drops.load(Relaxed),
        );
        put(
            "unrouted_total",
            "counter",
            "Datagrams no session claimed.",
            self.unrouted.load(Relaxed),
        );
        put(
            "mix_ticks_total",
            "counter",
            "20 ms mix ticks run.",
            self.mix_ticks.load(Relaxed),
        );
        put(
            "mix_seconds_total_micros",
            "counter",
            "Microseconds spent in mix ticks.",
            self.mix_micros.load(Relaxed),
        );
        put(
            "mix_tick_max_micros",
            "gauge",
            "Longest mix tick, microseconds.",
            self.mix_micros_max.load(Relaxed),
        );
        put(
            "program_frames_total",
            "counter",
            "Program frames encoded for listeners and the recording.",
            self.program_frames.load(Relaxed),
        );
        put(
            "minus_frames_total",
            "counter",
            "Mix-minus frames encoded for stage members who listen.",
            self.minus_frames.load(Relaxed),
        );
        put(
            "rejected_total",
            "counter",
            "Requests refused with a 4xx.",
            self.rejected.load(Relaxed),
        );
        out
    }
}
