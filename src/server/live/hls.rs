//! HLS of a room (RFC 8216): MP3 packed-audio segments cut from the live MP3 stream at whole
//! frames, each led by the ID3 `PRIV` timestamp Apple's packed-audio format asks for, and a
//! live playlist over a sliding window of them. The segments are kept in memory and, with
//! `--hls-dir`, also written as files (`DIR/{room}/index.m3u8`, `DIR/{room}/{n}.mp3`) for any
//! web server or CDN to serve under the same paths as `/hls/{room}/`.
//!
//! Never here: encoding (the MP3 frames come cut from the encoder thread) or HTTP.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::LiveHub;

/// Samples (per channel) in an MPEG-1 layer III frame.
pub const MP3_FRAME_SAMPLES: u64 = 1_152;
/// Segments kept beyond the playlist's window, for players still fetching them.
const KEPT_BEHIND: usize = 3;
/// The playlist's file name.
pub const PLAYLIST: &str = "index.m3u8";
/// Apple's owner identifier of the packed-audio timestamp.
const TIMESTAMP_OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";

/// The length in bytes of the MPEG-1 layer III frame whose header starts `bytes`, if it does.
#[must_use]
pub fn mp3_frame_len(bytes: &[u8]) -> Option<usize> {
    const KBPS: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    const RATES: [u32; 3] = [44_100, 48_000, 32_000];
    let h = bytes.get(..4)?;
    // Sync, MPEG-1, layer III.
    if h[0] != 0xFF || h[1] & 0xFE != 0xFA {
        return None;
    }
    let kbps = *KBPS.get(usize::from(h[2] >> 4)).filter(|k| **k != 0)?;
    let rate = *RATES.get(usize::from((h[2] >> 2) & 3))?;
    let padding = u32::from((h[2] >> 1) & 1);
    usize::try_from(144_000 * kbps / rate + padding).ok()
}

/// One segment.
#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    seconds: f64,
    data: Bytes,
}

/// The segments a room's playlist lists, and a few more.
#[derive(Debug)]
pub struct HlsWindow {
    segments: VecDeque<Segment>,
    window: usize,
    ended: bool,
}

impl HlsWindow {
    /// An empty window listing `window` segments.
    #[must_use]
    pub fn new(window: usize) -> Self {
        Self {
            segments: VecDeque::new(),
            window: window.max(3),
            ended: false,
        }
    }

    /// Whether there is any segment yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Segment `seq`, while it is kept.
    #[must_use]
    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.seq == seq)
            .map(|s| s.data.clone())
    }

    /// The playlist (segments named `{seq}.mp3`, beside it); `None` before the first segment.
    #[must_use]
    pub fn playlist(&self) -> Option<String> {
        let listed: Vec<&Segment> = self
            .segments
            .iter()
            .skip(self.segments.len().saturating_sub(self.window))
            .collect();
        let first = listed.first()?;
        let target = listed
            .iter()
            .map(|s| s.seconds.round() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = String::with_capacity(64 + 32 * listed.len());
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:3");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", first.seq);
        for s in &listed {
            let _ = writeln!(out, "#EXTINF:{:.3},", s.seconds);
            let _ = writeln!(out, "{}.mp3", s.seq);
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        }
        Some(out)
    }

    fn push(&mut self, segment: Segment) -> Vec<u64> {
        self.segments.push_back(segment);
        let mut gone = Vec::new();
        while self.segments.len() > self.window + KEPT_BEHIND {
            if let Some(s) = self.segments.pop_front() {
                gone.push(s.seq);
            }
        }
        gone
    }
}

/// Cuts MP3 frames into segments (on the encoder thread).
#[derive(Debug)]
pub struct Segmenter {
    target_samples: u64,
    data: Vec<u8>,
    samples: u64,
    first_pts: Option<u64>,
    next_seq: u64,
    /// HLS is not made now (nobody asked lately).
    paused: bool,
    dir: Option<PathBuf>,
    /// The directory could not be written (said once).
    dir_failed: bool,
}

impl Segmenter {
    /// A segmenter for `hub`'s room, with its options.
    #[must_use]
    pub fn new(hub: &LiveHub) -> Self {
        let o = hub.options();
        let target = (o.hls_segment.as_secs_f64() * 48_000.0) as u64;
        Self {
            target_samples: target.max(MP3_FRAME_SAMPLES),
            data: Vec::new(),
            samples: 0,
            first_pts: None,
            next_seq: 0,
            paused: true,
            dir: o.hls_dir.as_ref().map(|d| d.join(hub.room())),
            dir_failed: false,
        }
    }

    /// One MP3 frame, at `pts` (48 kHz samples) on the stream's clock.
    pub fn frame(&mut self, hub: &LiveHub, frame: &[u8], pts: u64) {
        self.paused = false;
        if self.first_pts.is_none() {
            self.first_pts = Some(pts);
            self.data.clear();
            self.data.extend_from_slice(&timestamp_tag(pts));
        }
        self.data.extend_from_slice(frame);
        self.samples += MP3_FRAME_SAMPLES;
        // Cut at the frame nearest the target length.
        if self.samples + MP3_FRAME_SAMPLES / 2 >= self.target_samples {
            self.cut(hub);
        }
    }

    fn cut(&mut self, hub: &LiveHub) {
        let segment = Segment {
            seq: self.next_seq,
            seconds: self.samples as f64 / 48_000.0,
            data: Bytes::from(std::mem::take(&mut self.data)),
        };
        self.next_seq += 1;
        self.samples = 0;
        self.first_pts = None;
        self.write_file(&segment);
        let (gone, playlist) = {
            let mut w = hub.hls.lock().unwrap_or_else(PoisonError::into_inner);
            let gone = w.push(segment);
            (gone, w.playlist())
        };
        hub.metrics.hls_segments.fetch_add(1, Relaxed);
        if let Some(p) = playlist {
            self.write_playlist(&p);
        }
        self.remove_files(&gone);
        hub.notify();
    }

    /// HLS is not wanted for now (nobody asked for a while): what was made goes, and a later
    /// request starts a fresh window (its numbers go on, so no cache mixes the two).
    pub fn pause(&mut self, hub: &LiveHub) {
        if self.paused {
            return;
        }
        self.paused = true;
        self.samples = 0;
        self.data.clear();
        self.first_pts = None;
        let gone: Vec<u64> = {
            let mut w = hub.hls.lock().unwrap_or_else(PoisonError::into_inner);
            w.segments.drain(..).map(|s| s.seq).collect()
        };
        self.remove_files(&gone);
    }

    /// The room ended: the last part becomes a segment and the playlist ends.
    pub fn finish(&mut self, hub: &LiveHub) {
        if self.samples > 0 {
            self.cut(hub);
        }
        let playlist = {
            let mut w = hub.hls.lock().unwrap_or_else(PoisonError::into_inner);
            w.ended = true;
            w.playlist()
        };
        if let Some(p) = playlist {
            self.write_playlist(&p);
        }
        hub.notify();
    }

    fn write_file(&mut self, segment: &Segment) {
        let Some(dir) = self.dir.clone() else { return };
        let name = format!("{}.mp3", segment.seq);
        let result = std::fs::create_dir_all(&dir)
            .and_then(|()| write_atomically(&dir, &name, &segment.data));
        self.dir_result(result);
    }

    fn write_playlist(&mut self, playlist: &str) {
        let Some(dir) = self.dir.clone() else { return };
        let result = write_atomically(&dir, PLAYLIST, playlist.as_bytes());
        self.dir_result(result);
    }

    fn remove_files(&self, seqs: &[u64]) {
        let Some(dir) = &self.dir else { return };
        for seq in seqs {
            let _ = std::fs::remove_file(dir.join(format!("{seq}.mp3")));
        }
    }

    fn dir_result(&mut self, result: std::io::Result<()>) {
        match result {
            Ok(()) => self.dir_failed = false,
            Err(e) if !self.dir_failed => {
                self.dir_failed = true;
                tracing::error!(
                    "cannot write HLS files under {}: {e} (HLS is still served over HTTP)",
                    self.dir.as_deref().map_or(Path::new("?"), |d| d).display()
                );
            }
            Err(_) => {}
        }
    }
}

/// Writes `name` in `dir` whole or not at all: a web server never serves half a file.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// The ID3v2.4 tag with the `PRIV` frame that gives a packed-audio segment's start on the
/// 90 kHz MPEG-2 clock (33 bits), as HLS asks (RFC 8216 3.4).
#[must_use]
pub fn timestamp_tag(pts_48k: u64) -> Vec<u8> {
    let ts = (pts_48k * 15 / 8) & ((1 << 33) - 1);
    let frame_len = TIMESTAMP_OWNER.len() + 8;
    let tag_len = 10 + frame_len;
    let mut out = Vec::with_capacity(10 + tag_len);
    out.extend_from_slice(b"ID3\x04\x00\x00");
    out.extend_from_slice(&syncsafe(tag_len));
    out.extend_from_slice(b"PRIV");
    out.extend_from_slice(&syncsafe(frame_len));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(TIMESTAMP_OWNER);
    out.extend_from_slice(&ts.to_be_bytes());
    out
}

fn syncsafe(n: usize) -> [u8; 4] {
    [
        ((n >> 21) & 0x7F) as u8,
        ((n >> 14) & 0x7F) as u8,
        ((n >> 7) & 0x7F) as u8,
        (n & 0x7F) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_follow_the_header() {
        // 128 kbit/s at 48 kHz: 384 bytes; at 44.1 kHz with padding: 418 bytes.
        assert_eq!(mp3_frame_len(&[0xFF, 0xFB, 0x94, 0x00]), Some(384));
        assert_eq!(mp3_frame_len(&[0xFF, 0xFB, 0x92, 0x00]), Some(418));
        assert_eq!(mp3_frame_len(&[0xFF, 0xFB, 0x04, 0x00]), None);
        assert_eq!(mp3_frame_len(b"ID3\x04"), None);
    }

    #[test]
    fn the_timestamp_tag_is_a_priv_frame_on_the_90_khz_clock() {
        let tag = timestamp_tag(48_000);
        assert_eq!(&tag[..3], b"ID3");
        assert_eq!(tag.len(), 10 + 10 + TIMESTAMP_OWNER.len() + 8);
        assert_eq!(&tag[10..14], b"PRIV");
        assert_eq!(&tag[tag.len() - 8..], &90_000u64.to_be_bytes());
    }

    #[test]
    fn the_playlist_slides_and_ends() {
        let mut w = HlsWindow::new(3);
        assert!(w.playlist().is_none());
        for seq in 0..8 {
            w.push(Segment {
                seq,
                seconds: 1.992,
                data: Bytes::from_static(b"x"),
            });
        }
        let p = w.playlist().unwrap_or_default();
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:5\n"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"), "{p}");
        assert_eq!(p.matches("#EXTINF:1.992,").count(), 3, "{p}");
        assert!(!p.contains("ENDLIST"));
        assert!(w.segment(2).is_some() && w.segment(1).is_none());
        w.ended = true;
        assert!(
            w.playlist()
                .unwrap_or_default()
                .ends_with("#EXT-X-ENDLIST\n")
        );
    }
}
