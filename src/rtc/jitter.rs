//! The jitter buffer in front of each decoder: Opus packets in by RTP time, one 20 ms frame out
//! per tick, in order. It waits for `target` frames before it starts, conceals a missing packet
//! (with the next packet's in-band FEC when that one is already here), drops what arrives too late,
//! and sheds frames when the sender runs fast so the delay stays bounded. Pure: no clocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::CodecError;
use crate::codec::opus::{FRAME_SAMPLES, OpusDecoder};

const FRAME: u64 = FRAME_SAMPLES as u64;

/// What to play for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet for this frame.
    Packet(Arc<[u8]>),
    /// The packet is missing: conceal it, from the next packet's FEC when given.
    Lost {
        /// The next packet, whose in-band FEC may carry this frame.
        next: Option<Arc<[u8]>>,
    },
    /// Nothing to play (not started, or the sender went quiet): silence.
    Silence,
}

/// Counters a session reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets that came after their frame was played.
    pub late: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Frames dropped to keep the delay bounded.
    pub shed: u64,
    /// Packets received twice.
    pub duplicate: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct JitterBuffer {
    frames: BTreeMap<u64, Arc<[u8]>>,
    next: Option<u64>,
    target: usize,
    max: usize,
    misses: u32,
    deep_ticks: u32,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer that starts after `target` frames and never holds more than `max`.
    #[must_use]
    pub fn new(target: usize, max: usize) -> Self {
        let target = target.max(1);
        Self {
            frames: BTreeMap::new(),
            next: None,
            target,
            max: max.max(target + 2),
            misses: 0,
            deep_ticks: 0,
            stats: JitterStats::default(),
        }
    }

    /// Adds the packet with RTP time `ts` (48 kHz samples, extended to 64 bits).
    pub fn push(&mut self, ts: u64, packet: Arc<[u8]>) {
        if let Some(next) = self.next
            && ts < next
        {
            self.stats.late += 1;
            return;
        }
        if self.frames.insert(ts, packet).is_some() {
            self.stats.duplicate += 1;
        }
        // A sender pushing faster than anyone pops must not grow the buffer: the oldest frame
        // goes, as it would at the next pop.
        if self.frames.len() > self.max {
            self.frames.pop_first();
            self.stats.shed += 1;
        }
    }

    /// The most frames it ever holds.
    #[must_use]
    pub fn max_depth(&self) -> usize {
        self.max
    }

    /// Frames waiting.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Nothing waiting and not playing (never started, or the sender went quiet and the
    /// buffer gave up on it): every pop is silence until the next push, so a caller need not
    /// tick until then.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.next.is_none() && self.frames.is_empty()
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The frame to play now.
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            if self.frames.len() < self.target {
                return Playout::Silence;
            }
            let first = self.frames.keys().next().copied();
            self.next = first;
            return self.pop();
        };
        if self.frames.len() > self.max {
            self.skip_to_newest(self.target);
            return self.pop();
        }
        // A sender a little faster than our clock: shed one frame after a second too deep.
        if self.frames.len() > self.target + 2 {
            self.deep_ticks += 1;
            if self.deep_ticks >= 50 {
                self.deep_ticks = 0;
                if let Some((&ts, _)) = self.frames.first_key_value() {
                    self.frames.remove(&ts);
                    self.stats.shed += 1;
                    self.next = Some(ts.saturating_add(FRAME));
                    return self.pop();
                }
            }
        } else {
            self.deep_ticks = 0;
        }
        if let Some(packet) = self.frames.remove(&next) {
            self.misses = 0;
            self.next = Some(next.saturating_add(FRAME));
            // Anything older than what we play now is late by definition.
            while let Some((&ts, _)) = self.frames.first_key_value() {
                if ts >= next {
                    break;
                }
                self.frames.remove(&ts);
                self.stats.late += 1;
            }
            return Playout::Packet(packet);
        }
        match self.frames.first_key_value() {
            None => {
                // Nothing here: hold our place for a moment (the packet may be late, or the sender
                // slower than us), conceal, and start over after 100 ms of nothing.
                self.misses += 1;
                if self.misses > 5 {
                    self.next = None;
                    self.misses = 0;
                    return Playout::Silence;
                }
                self.stats.concealed += 1;
                Playout::Lost { next: None }
            }
            Some((&ts, packet)) => {
                let fec = (ts == next.saturating_add(FRAME)).then(|| Arc::clone(packet));
                self.next = Some(next.saturating_add(FRAME));
                if ts > next.saturating_add(10 * FRAME) {
                    // A jump (the sender restarted its clock): follow it.
                    self.next = Some(ts);
                    return self.pop();
                }
                self.stats.concealed += 1;
                Playout::Lost { next: fec }
            }
        }
    }

    fn skip_to_newest(&mut self, keep: usize) {
        while self.frames.len() > keep {
            if let Some((&ts, _)) = self.frames.first_key_value() {
                self.frames.remove(&ts);
                self.stats.shed += 1;
            }
        }
        self.next = self.frames.keys().next().copied();
    }
}

/// A jitter buffer and the decoder behind it: packets in, one 20 ms stereo frame out per call,
/// concealed (FEC or PLC) where a packet is missing, silence before the start. What
/// `booth listen`, the host hearing its room, and the latency benchmark all play out with.
#[derive(Debug)]
pub struct PlayoutDecoder {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    pcm: Vec<f32>,
}

/// One frame played out.
#[derive(Debug)]
pub struct Played<'a> {
    /// 48 kHz stereo interleaved, one 20 ms frame.
    pub pcm: &'a [f32],
    /// The packet it was decoded from, when it arrived (not concealed, not silence).
    pub packet: Option<Arc<[u8]>>,
    /// Nothing to play yet (or the sender went quiet): `pcm` is silence.
    pub silent: bool,
}

impl PlayoutDecoder {
    /// A jitter buffer of `target`..`max` frames before a stereo Opus decoder.
    ///
    /// # Errors
    /// The decoder cannot be made.
    pub fn new(target: usize, max: usize) -> Result<Self, CodecError> {
        Ok(Self {
            jitter: JitterBuffer::new(target, max),
            decoder: OpusDecoder::new(2)?,
            pcm: vec![0.0; FRAME_SAMPLES * 2],
        })
    }

    /// Nothing to play until the next packet (see [`JitterBuffer::is_idle`]).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.jitter.is_idle()
    }

    /// Adds a received packet with RTP time `ts`.
    pub fn push(&mut self, ts: u64, packet: Arc<[u8]>) {
        self.jitter.push(ts, packet);
    }

    /// The jitter buffer's counters.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// The next 20 ms frame.
    pub fn next_frame(&mut self) -> Played<'_> {
        let (decoded, packet) = match self.jitter.pop() {
            Playout::Packet(p) => (self.decoder.decode(&p, &mut self.pcm), Some(p)),
            Playout::Lost { next: Some(p) } => (self.decoder.decode_fec(&p, &mut self.pcm), None),
            Playout::Lost { next: None } => (self.decoder.decode_lost(&mut self.pcm), None),
            Playout::Silence => {
                self.pcm.fill(0.0);
                return Played {
                    pcm: &self.pcm,
                    packet: None,
                    silent: true,
                };
            }
        };
        if decoded.is_err() {
            self.pcm.fill(0.0);
        }
        Played {
            pcm: &self.pcm,
            packet,
            silent: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(n: u8) -> Arc<[u8]> {
        Arc::from(vec![n])
    }

    fn played(p: &Playout) -> Option<u8> {
        match p {
            Playout::Packet(b) => Some(b[0]),
            _ => None,
        }
    }

    #[test]
    fn waits_for_target_then_plays_in_order() {
        let mut jb = JitterBuffer::new(2, 8);
        jb.push(FRAME, pkt(1));
        assert_eq!(jb.pop(), Playout::Silence);
        jb.push(0, pkt(0));
        assert_eq!(played(&jb.pop()), Some(0));
        assert_eq!(played(&jb.pop()), Some(1));
    }

    #[test]
    fn conceals_a_gap_with_fec_and_drops_late_packets() {
        let mut jb = JitterBuffer::new(1, 8);
        jb.push(0, pkt(0));
        jb.push(2 * FRAME, pkt(2));
        assert_eq!(played(&jb.pop()), Some(0));
        assert_eq!(jb.pop(), Playout::Lost { next: Some(pkt(2)) });
        jb.push(FRAME, pkt(1));
        assert_eq!(played(&jb.pop()), Some(2));
        assert_eq!(jb.stats().late, 1);
    }

    #[test]
    fn idle_before_the_first_packet_and_after_the_sender_went_quiet_only() {
        let mut jb = JitterBuffer::new(2, 8);
        assert!(jb.is_idle());
        jb.push(0, pkt(0));
        assert!(!jb.is_idle(), "a packet waits");
        jb.push(FRAME, pkt(1));
        assert_eq!(played(&jb.pop()), Some(0));
        assert_eq!(played(&jb.pop()), Some(1));
        // Playing, with nothing waiting: a late packet may still come, so not idle while the
        // buffer conceals (five frames), and idle once it has given up on the sender.
        for _ in 0..5 {
            assert!(!jb.is_idle());
            assert_eq!(jb.pop(), Playout::Lost { next: None });
        }
        assert!(!jb.is_idle());
        assert_eq!(jb.pop(), Playout::Silence);
        assert!(jb.is_idle());
        // And it starts again from the next packet.
        jb.push(10 * FRAME, pkt(10));
        assert!(!jb.is_idle());
    }

    #[test]
    fn stays_bounded_when_the_sender_runs_fast() {
        let mut jb = JitterBuffer::new(2, 6);
        let mut ts = 0;
        for tick in 0..2_000u64 {
            jb.push(ts, pkt(0));
            ts += FRAME;
            if tick % 100 == 0 {
                jb.push(ts, pkt(0));
                ts += FRAME;
            }
            jb.pop();
            assert!(jb.depth() <= 6, "depth {}", jb.depth());
        }
        assert!(jb.stats().shed > 0);
    }

    /// The jitter_buffer fuzz target's invariant: pushes without pops never grow the buffer
    /// past its maximum.
    #[test]
    fn a_flood_of_pushes_never_grows_past_the_maximum() {
        let mut jb = JitterBuffer::new(3, 8);
        for n in 0..1_000u64 {
            jb.push(n * 960, pkt(1));
            assert!(jb.depth() <= jb.max_depth(), "depth {}", jb.depth());
        }
        assert_eq!(jb.stats().shed, 1_000 - 8);
    }

    /// Found by the jitter_buffer fuzz target: timestamps at the top of the 64-bit range
    /// overflowed the next expected timestamp.
    #[test]
    fn timestamps_at_the_end_of_the_range_play_without_overflow() {
        let mut jb = JitterBuffer::new(1, 4);
        jb.push(u64::MAX - 10, pkt(1));
        jb.push(u64::MAX, pkt(2));
        for _ in 0..10 {
            let _ = jb.pop();
        }
    }
}
