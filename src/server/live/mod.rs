//! A room's program for everything that is not a WebRTC session: endless HTTP streams (MP3 and
//! Ogg Opus), HLS, and the relays that carry it further (an Icecast source, a WHIP forward).
//!
//! Each room has one [`LiveHub`]. While anyone wants its program (a [`Subscription`], or HLS),
//! the room's task hands it every 20 ms tick (the program's Opus packet and PCM) through a
//! bounded queue; one encoder thread per room ([`encoder`]) turns the ticks into each format
//! ONCE, into rings of chunks that every reader shares (a chunk is reference-counted bytes:
//! a thousand listeners cost one encode and a thousand cursors). A reader that falls behind
//! the ring is dropped, never buffered for: memory stays bounded however slow a reader is.
//!
//! Never here: the mix (the room's task makes the program), HTTP (see [`routes`]), or a wait
//! the room's task could feel (it only ever `try_send`s).

pub mod conn;
pub mod encoder;
pub mod forward;
pub mod hls;
pub mod icecast;
pub mod routes;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use self::hls::HlsWindow;
use super::metrics::Metrics;

/// The program's forms a reader can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// MP3, constant bitrate, in chunks of whole frames.
    Mp3,
    /// Ogg Opus, in chunks of whole pages (about 100 ms each).
    Ogg,
    /// One 20 ms Opus packet of the program per chunk (48 kHz stereo).
    Opus,
}

/// Who reads a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// A listener: counts in the room's audience and in `/metrics`.
    Listener,
    /// A relay (an Icecast source, a WHIP forward): keeps the stream encoded, but is nobody's
    /// ears in this room.
    Relay,
}

/// One piece of a stream.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The bytes (shared by every reader).
    pub data: Bytes,
    /// The chunk's first sample on the program's clock (48 kHz samples).
    pub pts: u64,
}

/// What [`Subscription::next`] gives.
#[derive(Debug)]
pub enum Next {
    /// The next chunk.
    Chunk(Chunk),
    /// The reader fell further behind than the ring holds: it is dropped.
    Lagged,
    /// The room ended, or the server stops.
    Ended,
}

/// How the streams are made; the same for every room of a server.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// MP3 bitrate, kbit/s.
    pub mp3_kbps: u32,
    /// HLS segment length.
    pub hls_segment: Duration,
    /// Segments a live HLS playlist lists.
    pub hls_window: usize,
    /// Where HLS playlists and segments are also written (`DIR/{room}/index.m3u8`), for any web
    /// server or CDN to serve; HLS is then made for as long as each room lives.
    pub hls_dir: Option<PathBuf>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            mp3_kbps: 128,
            hls_segment: Duration::from_secs(2),
            hls_window: 6,
            hls_dir: None,
        }
    }
}

/// Chunks a stream keeps: 10 s of Ogg (100 ms pages), 19 s of MP3 (192 ms chunks); a reader
/// further behind is dropped.
const RING_CHUNKS: usize = 100;

/// Chunks of the backlog a new listener is sent at once so its player starts playing straight
/// away (about 0.5 s: more would only add to the delay).
fn burst_chunks(format: Format) -> u64 {
    match format {
        Format::Mp3 => 3,
        Format::Ogg => 5,
        // Relays of packets start at the live edge.
        Format::Opus => 0,
    }
}

/// How long HLS stays made after its last request (when no `--hls-dir` asks for it always).
const HLS_LINGER: Duration = Duration::from_secs(30);

/// A ring of one format's chunks, numbered from 0.
#[derive(Debug, Default)]
struct Ring {
    chunks: VecDeque<Chunk>,
    /// The number of `chunks[0]`.
    first: u64,
    /// What a new reader is sent before any chunk (Ogg: the identification and comment pages).
    header: Bytes,
}

impl Ring {
    fn next(&self) -> u64 {
        self.first + self.chunks.len() as u64
    }

    fn push(&mut self, chunk: Chunk, cap: usize) {
        if self.chunks.len() == cap {
            self.chunks.pop_front();
            self.first += 1;
        }
        self.chunks.push_back(chunk);
    }
}

/// One format's ring and the readers that keep it made.
#[derive(Debug, Default)]
struct Stream {
    ring: Mutex<Ring>,
    readers: AtomicUsize,
    /// Bumped on every new chunk of this format, and when the room ends: a reader wakes for
    /// its own format only (an Ogg page or an Opus packet every 20 ms would otherwise wake
    /// every MP3 listener too).
    changed: watch::Sender<u64>,
}

/// See the module doc.
#[derive(Debug)]
pub struct LiveHub {
    room: String,
    title: String,
    options: LiveOptions,
    metrics: Arc<Metrics>,
    mp3: Stream,
    ogg: Stream,
    opus: Stream,
    /// Listeners counted in the audience (HTTP streams).
    listeners: AtomicUsize,
    /// HLS players seen lately, by address.
    hls_players: Mutex<HashMap<IpAddr, Instant>>,
    /// Milliseconds since `born` of the last HLS request.
    hls_asked: AtomicU64,
    born: Instant,
    pub(crate) hls: Mutex<HlsWindow>,
    /// Bumped on every new HLS segment, and when the room ends.
    changed: watch::Sender<u64>,
    ended: AtomicBool,
}

impl LiveHub {
    /// A hub for `room`, with nothing made yet.
    #[must_use]
    pub fn new(room: &str, title: &str, options: LiveOptions, metrics: Arc<Metrics>) -> Arc<Self> {
        let hls = HlsWindow::new(options.hls_window);
        Arc::new(Self {
            room: room.to_owned(),
            title: title.to_owned(),
            options,
            metrics,
            mp3: Stream::default(),
            ogg: Stream::default(),
            opus: Stream::default(),
            listeners: AtomicUsize::new(0),
            hls_players: Mutex::new(HashMap::new()),
            hls_asked: AtomicU64::new(0),
            born: Instant::now(),
            hls: Mutex::new(hls),
            changed: watch::channel(0).0,
            ended: AtomicBool::new(false),
        })
    }

    /// The room's id.
    #[must_use]
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The room's title: the streams' name.
    #[must_use]
    pub fn title(&self) -> String {
        self.title.clone()
    }

    /// How the streams are made.
    #[must_use]
    pub fn options(&self) -> &LiveOptions {
        &self.options
    }

    /// Whether the room has ended (or the server stopped).
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.ended.load(Relaxed)
    }

    /// A reader of `format`, from a short burst of the backlog (MP3, Ogg) or the live edge
    /// (Opus). While it lives, the room's program is made in that format.
    pub fn subscribe(self: &Arc<Self>, format: Format, reader: Reader) -> Subscription {
        let stream = self.stream(format);
        stream.readers.fetch_add(1, Relaxed);
        if reader == Reader::Listener {
            self.listeners.fetch_add(1, Relaxed);
            self.metrics.stream_listeners.fetch_add(1, Relaxed);
        }
        let (cursor, header) = {
            let ring = stream.ring.lock().unwrap_or_else(PoisonError::into_inner);
            (
                ring.next()
                    .saturating_sub(burst_chunks(format))
                    .max(ring.first),
                ring.header.clone(),
            )
        };
        Subscription {
            hub: Arc::clone(self),
            format,
            reader,
            cursor,
            header,
            changed: stream.changed.subscribe(),
        }
    }

    /// Listeners of the HTTP streams and HLS players heard from lately: this room's audience
    /// beside its WebRTC listeners.
    #[must_use]
    pub fn audience(&self) -> usize {
        let hls = {
            let mut players = self
                .hls_players
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let fresh = self.hls_player_fresh();
            players.retain(|_, at| at.elapsed() < fresh);
            players.len()
        };
        self.listeners.load(Relaxed) + hls
    }

    /// An HLS player is gone once it has not asked for the playlist for this long.
    fn hls_player_fresh(&self) -> Duration {
        self.options.hls_segment * 3 + Duration::from_secs(2)
    }

    /// An HLS request from `from` (None: unknown): keeps HLS made, and counts the player.
    pub fn hls_requested(&self, from: Option<IpAddr>) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.hls_asked.store(ms.max(1), Relaxed);
        if let Some(ip) = from {
            self.hls_players
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(ip, Instant::now());
        }
    }

    /// Whether HLS is made now: always with `--hls-dir`, else while players ask for it.
    #[must_use]
    pub fn hls_wanted(&self) -> bool {
        if self.options.hls_dir.is_some() {
            return true;
        }
        let asked = self.hls_asked.load(Relaxed);
        asked != 0
            && self
                .born
                .elapsed()
                .saturating_sub(Duration::from_millis(asked))
                < HLS_LINGER
    }

    /// Whether `format` is being read (or, for MP3, needed by HLS).
    #[must_use]
    pub fn wants(&self, format: Format) -> bool {
        self.stream(format).readers.load(Relaxed) > 0
            || (format == Format::Mp3 && self.hls_wanted())
    }

    /// Whether the room's task should hand this hub its ticks.
    #[must_use]
    pub fn wanted(&self) -> bool {
        !self.is_ended()
            && [Format::Mp3, Format::Ogg, Format::Opus]
                .iter()
                .any(|f| self.wants(*f))
    }

    /// Ends every stream: readers get what is left, then [`Next::Ended`].
    pub fn end(&self) {
        if !self.ended.swap(true, Relaxed) {
            for stream in [&self.mp3, &self.ogg, &self.opus] {
                stream.changed.send_modify(|n| *n += 1);
            }
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Sets what a new reader of `format` is sent first.
    pub(crate) fn set_header(&self, format: Format, header: Bytes) {
        self.stream(format)
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .header = header;
    }

    /// Adds a chunk to `format`'s ring and wakes its readers.
    pub(crate) fn push(&self, format: Format, chunk: Chunk) {
        let cap = if format == Format::Opus {
            RING_CHUNKS * 5
        } else {
            RING_CHUNKS
        };
        let stream = self.stream(format);
        stream
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(chunk, cap);
        stream.changed.send_modify(|n| *n += 1);
    }

    /// Wakes whoever waits on HLS (a new segment).
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// A receiver woken on every new HLS segment, and at the end.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn stream(&self, format: Format) -> &Stream {
        match format {
            Format::Mp3 => &self.mp3,
            Format::Ogg => &self.ogg,
            Format::Opus => &self.opus,
        }
    }
}

/// A reader of one of a room's streams. Dropping it stops counting it.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<LiveHub>,
    format: Format,
    reader: Reader,
    cursor: u64,
    header: Bytes,
    changed: watch::Receiver<u64>,
}

impl Subscription {
    /// What a new reader sends first: Ogg's identification and comment pages; nothing for the
    /// other formats.
    #[must_use]
    pub fn header(&self) -> Bytes {
        self.header.clone()
    }

    /// The format read.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next chunk, once there is one.
    pub async fn next(&mut self) -> Next {
        loop {
            self.changed.borrow_and_update();
            {
                let ring = self
                    .hub
                    .stream(self.format)
                    .ring
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // A reader that came before the encoder started learns the header with its
                // first chunk (it is set before any chunk is pushed).
                if self.header.is_empty() && !ring.header.is_empty() {
                    self.header = ring.header.clone();
                }
                if self.cursor < ring.first {
                    self.hub.metrics.stream_drops.fetch_add(1, Relaxed);
                    return Next::Lagged;
                }
                let at = usize::try_from(self.cursor - ring.first).unwrap_or(usize::MAX);
                if let Some(chunk) = ring.chunks.get(at) {
                    self.cursor += 1;
                    return Next::Chunk(chunk.clone());
                }
            }
            if self.hub.is_ended() {
                return Next::Ended;
            }
            if self.changed.changed().await.is_err() {
                return Next::Ended;
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.stream(self.format).readers.fetch_sub(1, Relaxed);
        if self.reader == Reader::Listener {
            self.hub.listeners.fetch_sub(1, Relaxed);
            self.hub.metrics.stream_listeners.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<LiveHub> {
        LiveHub::new(
            "room",
            "Launch night",
            LiveOptions::default(),
            Arc::new(Metrics::default()),
        )
    }

    fn chunk(n: u8) -> Chunk {
        Chunk {
            data: Bytes::from(vec![n]),
            pts: u64::from(n),
        }
    }

    fn now(sub: &mut Subscription) -> Option<Next> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()?;
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), sub.next())
                .await
                .ok()
        })
    }

    fn byte(next: Option<Next>) -> Option<u8> {
        match next {
            Some(Next::Chunk(c)) => c.data.first().copied(),
            _ => None,
        }
    }

    #[test]
    fn a_new_listener_starts_with_a_short_burst_of_the_backlog() {
        let hub = hub();
        for n in 0..20 {
            hub.push(Format::Mp3, chunk(n));
        }
        let mut sub = hub.subscribe(Format::Mp3, Reader::Listener);
        assert_eq!(byte(now(&mut sub)), Some(17));
        // Ogg pages are shorter: more of them make the same half second.
        for n in 0..20 {
            hub.push(Format::Ogg, chunk(n));
        }
        let mut ogg = hub.subscribe(Format::Ogg, Reader::Listener);
        assert_eq!(byte(now(&mut ogg)), Some(15));
        // A relay of Opus packets starts at the live edge.
        hub.push(Format::Opus, chunk(7));
        let mut relay = hub.subscribe(Format::Opus, Reader::Relay);
        assert!(now(&mut relay).is_none());
        hub.push(Format::Opus, chunk(8));
        assert_eq!(byte(now(&mut relay)), Some(8));
    }

    #[test]
    fn readers_keep_the_stream_made_and_listeners_count_in_the_audience() {
        let hub = hub();
        assert!(!hub.wanted());
        let listener = hub.subscribe(Format::Ogg, Reader::Listener);
        let relay = hub.subscribe(Format::Mp3, Reader::Relay);
        assert!(hub.wanted() && hub.wants(Format::Ogg) && hub.wants(Format::Mp3));
        assert!(!hub.wants(Format::Opus));
        assert_eq!(hub.audience(), 1);
        assert_eq!(hub.metrics.stream_listeners.load(Relaxed), 1);
        drop((listener, relay));
        assert!(!hub.wanted());
        assert_eq!(hub.audience(), 0);
        // HLS players count by address while they keep asking.
        hub.hls_requested(Some(IpAddr::from([10, 0, 0, 1])));
        hub.hls_requested(Some(IpAddr::from([10, 0, 0, 1])));
        hub.hls_requested(Some(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(hub.audience(), 2);
        assert!(hub.wants(Format::Mp3));
    }

    #[test]
    fn a_reader_too_far_behind_is_dropped_and_the_end_ends_everyone() {
        let hub = hub();
        let mut slow = hub.subscribe(Format::Mp3, Reader::Listener);
        let mut fast = hub.subscribe(Format::Mp3, Reader::Listener);
        for n in 0..=RING_CHUNKS as u8 {
            hub.push(Format::Mp3, chunk(n));
            assert_eq!(byte(now(&mut fast)), Some(n));
        }
        assert!(matches!(now(&mut slow), Some(Next::Lagged)));
        assert_eq!(hub.metrics.stream_drops.load(Relaxed), 1);
        hub.end();
        assert!(matches!(now(&mut fast), Some(Next::Ended)));
        assert!(!hub.wanted());
    }
}
