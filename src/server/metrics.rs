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
    /// WebRTC sessions closed because handling them panicked (the room went on).
    pub session_panics: AtomicU64,
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
    /// WHIP forwards running now (connecting, live or retrying).
    pub forwards: AtomicU64,
    /// Listeners of the live HTTP streams (MP3, Ogg) now.
    pub stream_listeners: AtomicU64,
    /// Ticks encoded to MP3 for the live streams and HLS (one per room per 20 ms, however
    /// many listen).
    pub stream_mp3_ticks: AtomicU64,
    /// Opus packets paged into the live Ogg streams (one per room per 20 ms).
    pub stream_ogg_packets: AtomicU64,
    /// HLS segments made.
    pub hls_segments: AtomicU64,
    /// Stream readers dropped for falling behind.
    pub stream_drops: AtomicU64,
    /// Ticks the live encoders could not take in time.
    pub stream_ticks_lost: AtomicU64,
    /// Icecast mounts being pushed now (connected and streaming).
    pub icecast_pushes: AtomicU64,
    /// HTTP connections open.
    pub http_connections: AtomicU64,
    /// HTTP connections closed at once: over the server's or an address's connection cap.
    pub http_refused: AtomicU64,
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
        for Series {
            name,
            kind,
            help,
            value,
        } in SERIES
        {
            let _ = writeln!(out, "# HELP booth_{name} {help}");
            let _ = writeln!(out, "# TYPE booth_{name} {kind}");
            let _ = writeln!(out, "booth_{name} {}", value(self).load(Relaxed));
        }
        out
    }
}

/// One series of the exposition.
struct Series {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Metrics) -> &AtomicU64,
}

const SERIES: [Series; 25] = [
    Series {
        name: "rooms",
        kind: "gauge",
        help: "Rooms open.",
        value: |m| &m.rooms,
    },
    Series {
        name: "listeners",
        kind: "gauge",
        help: "WHEP sessions connected.",
        value: |m| &m.listeners,
    },
    Series {
        name: "publishers",
        kind: "gauge",
        help: "WHIP sessions connected.",
        value: |m| &m.publishers,
    },
    Series {
        name: "websockets",
        kind: "gauge",
        help: "Room channel connections.",
        value: |m| &m.websockets,
    },
    Series {
        name: "packets_in_total",
        kind: "counter",
        help: "UDP datagrams received.",
        value: |m| &m.packets_in,
    },
    Series {
        name: "packets_out_total",
        kind: "counter",
        help: "UDP datagrams sent.",
        value: |m| &m.packets_out,
    },
    Series {
        name: "send_drops_total",
        kind: "counter",
        help: "Datagrams dropped at a full socket.",
        value: |m| &m.send_drops,
    },
    Series {
        name: "unrouted_total",
        kind: "counter",
        help: "Datagrams no session claimed.",
        value: |m| &m.unrouted,
    },
    Series {
        name: "mix_ticks_total",
        kind: "counter",
        help: "20 ms mix ticks run.",
        value: |m| &m.mix_ticks,
    },
    Series {
        name: "mix_seconds_total_micros",
        kind: "counter",
        help: "Microseconds spent in mix ticks.",
        value: |m| &m.mix_micros,
    },
    Series {
        name: "mix_tick_max_micros",
        kind: "gauge",
        help: "Longest mix tick, microseconds.",
        value: |m| &m.mix_micros_max,
    },
    Series {
        name: "program_frames_total",
        kind: "counter",
        help: "Program frames encoded for listeners and the recording.",
        value: |m| &m.program_frames,
    },
    Series {
        name: "minus_frames_total",
        kind: "counter",
        help: "Mix-minus frames encoded for stage members who listen.",
        value: |m| &m.minus_frames,
    },
    Series {
        name: "session_panics_total",
        kind: "counter",
        help: "WebRTC sessions closed because handling them failed (their room went on).",
        value: |m| &m.session_panics,
    },
    Series {
        name: "rejected_total",
        kind: "counter",
        help: "Requests refused with a 4xx.",
        value: |m| &m.rejected,
    },
    Series {
        name: "stream_listeners",
        kind: "gauge",
        help: "Listeners of the live HTTP streams (MP3, Ogg).",
        value: |m| &m.stream_listeners,
    },
    Series {
        name: "stream_mp3_ticks_total",
        kind: "counter",
        help: "20 ms ticks encoded to MP3 for the live streams and HLS, once per room.",
        value: |m| &m.stream_mp3_ticks,
    },
    Series {
        name: "stream_ogg_packets_total",
        kind: "counter",
        help: "Opus packets paged into the live Ogg streams, once per room.",
        value: |m| &m.stream_ogg_packets,
    },
    Series {
        name: "hls_segments_total",
        kind: "counter",
        help: "HLS segments made.",
        value: |m| &m.hls_segments,
    },
    Series {
        name: "stream_drops_total",
        kind: "counter",
        help: "Stream readers dropped for falling behind.",
        value: |m| &m.stream_drops,
    },
    Series {
        name: "stream_ticks_lost_total",
        kind: "counter",
        help: "Ticks a live encoder could not take in time.",
        value: |m| &m.stream_ticks_lost,
    },
    Series {
        name: "forwards",
        kind: "gauge",
        help: "WHIP forwards running (connecting, live or retrying).",
        value: |m| &m.forwards,
    },
    Series {
        name: "icecast_pushes",
        kind: "gauge",
        help: "Icecast mounts being pushed (connected and streaming).",
        value: |m| &m.icecast_pushes,
    },
    Series {
        name: "http_connections",
        kind: "gauge",
        help: "HTTP connections open.",
        value: |m| &m.http_connections,
    },
    Series {
        name: "http_refused_total",
        kind: "counter",
        help: "HTTP connections closed at once, over a connection cap.",
        value: |m| &m.http_refused,
    },
];
