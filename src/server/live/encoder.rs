//! A room's live encoder: one thread per room that turns the program's ticks into every format
//! its readers want, once for all of them. The room's task hands it ticks through a bounded
//! queue and never waits on it: a full queue loses the tick (counted), as a congested network
//! would.
//!
//! Never here: the mix, sockets, or anything a tick could block on but the files of
//! `--hls-dir` (written on this thread, never on the room's).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use super::hls::Segmenter;
use super::{Chunk, Format, LiveHub};
use crate::codec::mp3::{Mp3Encoder, Mp3Settings};
use crate::codec::ogg_opus::OggOpusWriter;
use crate::codec::opus::{EncoderSettings, SAMPLE_RATE};

/// Ticks the queue holds (1 s): the encoder is late by more only when the machine is overloaded.
const QUEUE_TICKS: usize = 50;
/// An MP3 chunk is sent once it holds this much audio: fewer, larger writes per listener.
const MP3_CHUNK_SAMPLES: u64 = 4_608;
/// An Ogg page (and chunk) ends at least this often.
const OGG_PAGE: Duration = Duration::from_millis(100);

/// One 20 ms tick of the program.
#[derive(Debug)]
pub struct Tick {
    /// The program's Opus packet.
    pub opus: Bytes,
    /// The same 20 ms as PCM, 48 kHz interleaved stereo.
    pub pcm: Vec<f32>,
    /// Its first sample on the program's clock (48 kHz).
    pub pts: u64,
}

/// The room's handle on its encoder thread. Dropping it lets the thread finish what it holds
/// and end.
#[derive(Debug)]
pub struct LiveFeed {
    tx: SyncSender<Tick>,
    _thread: JoinHandle<()>,
}

impl LiveFeed {
    /// Starts the encoder thread of `hub`, for a program encoded with `settings`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(hub: Arc<LiveHub>, settings: EncoderSettings) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE_TICKS);
        let thread = std::thread::Builder::new()
            .name(format!("live-{}", hub.room()))
            .spawn(move || run(&hub, &settings, &rx))?;
        Ok(Self {
            tx,
            _thread: thread,
        })
    }

    /// Hands the encoder a tick; false when it is behind and the tick is lost.
    pub fn send(&self, tick: Tick) -> bool {
        match self.tx.try_send(tick) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// What the thread keeps between ticks.
struct Encoders {
    mp3: Option<Mp3Encoder>,
    mp3_out: Vec<u8>,
    /// LAME's output not yet cut into whole frames.
    mp3_carry: Vec<u8>,
    /// Whole MP3 frames not yet sent, and the samples they hold.
    mp3_pending: Vec<u8>,
    mp3_pending_samples: u64,
    /// Samples of every MP3 frame made so far (the streams' own clock).
    mp3_samples: u64,
    ogg: Option<OggOpusWriter<Vec<u8>>>,
    ogg_pts: Option<u64>,
    hls: Segmenter,
}

fn run(hub: &Arc<LiveHub>, settings: &EncoderSettings, rx: &Receiver<Tick>) {
    let mut enc = Encoders {
        mp3: None,
        mp3_out: Vec::with_capacity(8 * 1024),
        mp3_carry: Vec::with_capacity(8 * 1024),
        mp3_pending: Vec::with_capacity(8 * 1024),
        mp3_pending_samples: 0,
        mp3_samples: 0,
        ogg: None,
        ogg_pts: None,
        hls: Segmenter::new(hub),
    };
    while let Ok(tick) = rx.recv() {
        if hub.wants(Format::Opus) {
            hub.push(
                Format::Opus,
                Chunk {
                    data: tick.opus.clone(),
                    pts: tick.pts,
                },
            );
        }
        if hub.wants(Format::Ogg) {
            ogg_tick(hub, settings, &mut enc, &tick);
        }
        if hub.wants(Format::Mp3) {
            mp3_tick(hub, &mut enc, &tick);
        } else {
            enc.hls.pause(hub);
        }
    }
    enc.hls.finish(hub);
}

fn ogg_tick(hub: &LiveHub, settings: &EncoderSettings, enc: &mut Encoders, tick: &Tick) {
    if enc.ogg.is_none() {
        let title = hub.title();
        let comments = [("TITLE", title.as_str()), ("ENCODER", "Booth")];
        match OggOpusWriter::with_comments(Vec::new(), settings, SAMPLE_RATE, &comments) {
            Ok(mut w) => {
                w.set_page_duration(OGG_PAGE);
                hub.set_header(Format::Ogg, Bytes::from(std::mem::take(w.get_mut())));
                enc.ogg = Some(w);
            }
            Err(e) => {
                tracing::error!("room {}: no Ogg stream: {e}", hub.room());
                return;
            }
        }
    }
    let Some(w) = enc.ogg.as_mut() else { return };
    if tick.opus.is_empty() {
        return;
    }
    let pts = *enc.ogg_pts.get_or_insert(tick.pts);
    if let Err(e) = w.write_packet(&tick.opus) {
        tracing::warn!("room {}: Ogg stream: {e}", hub.room());
        return;
    }
    hub.metrics.stream_ogg_packets.fetch_add(1, Relaxed);
    let pages = w.get_mut();
    if !pages.is_empty() {
        let data = Bytes::from(std::mem::take(pages));
        enc.ogg_pts = None;
        hub.push(Format::Ogg, Chunk { data, pts });
    }
}

fn mp3_tick(hub: &LiveHub, enc: &mut Encoders, tick: &Tick) {
    if enc.mp3.is_none() {
        let settings = Mp3Settings {
            bitrate_kbps: hub.options().mp3_kbps,
            // A live encode of one room: LAME's faster setting costs little at 128 kbit/s.
            quality: 5,
            ..Mp3Settings::default()
        };
        match Mp3Encoder::new(settings) {
            Ok(m) => enc.mp3 = Some(m),
            Err(e) => {
                tracing::error!("room {}: no MP3 stream: {e}", hub.room());
                return;
            }
        }
    }
    let Some(mp3) = enc.mp3.as_mut() else { return };
    enc.mp3_out.clear();
    if let Err(e) = mp3.encode(&tick.pcm, &mut enc.mp3_out) {
        tracing::warn!("room {}: MP3 stream: {e}", hub.room());
        return;
    }
    hub.metrics.stream_mp3_ticks.fetch_add(1, Relaxed);
    let hls = hub.hls_wanted();
    if !hls {
        enc.hls.pause(hub);
    }
    enc.mp3_carry.extend_from_slice(&enc.mp3_out);
    let mut at = 0;
    loop {
        let rest = &enc.mp3_carry[at..];
        if rest.len() < 4 {
            break;
        }
        // LAME writes nothing but whole frames; should a byte not start one, skip it.
        let Some(len) = super::hls::mp3_frame_len(rest) else {
            at += 1;
            continue;
        };
        if rest.len() < len {
            break;
        }
        let frame = &enc.mp3_carry[at..at + len];
        let pts = enc.mp3_samples;
        enc.mp3_samples += super::hls::MP3_FRAME_SAMPLES;
        enc.mp3_pending.extend_from_slice(frame);
        enc.mp3_pending_samples += super::hls::MP3_FRAME_SAMPLES;
        if hls {
            enc.hls.frame(hub, frame, pts);
        }
        at += len;
    }
    enc.mp3_carry.drain(..at);
    if enc.mp3_pending_samples >= MP3_CHUNK_SAMPLES {
        let pts = enc.mp3_samples - enc.mp3_pending_samples;
        let data = Bytes::copy_from_slice(&enc.mp3_pending);
        enc.mp3_pending.clear();
        enc.mp3_pending_samples = 0;
        hub.push(Format::Mp3, Chunk { data, pts });
    }
}
