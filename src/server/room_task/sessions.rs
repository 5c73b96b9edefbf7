//! A room's media sessions: WHIP publishers and WHEP listeners over WebRTC (str0m, on the
//! server's one UDP socket), and the host in the server's own process through local sessions
//! (channels, no WebRTC or codec). How a session's media travels is its [`Link`]; everything
//! WebRTC-only lives in [`RtcLink`].

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::media::{Mid, Pt};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Rtc};
use tokio::sync::mpsc;

use super::messages::{LocalMedia, SessionCreated};
use super::mix::STEREO_FRAME;
use super::{Refusal, admission};
use super::{RoomTask, message, send_all};
use crate::codec::opus::{FRAME_SAMPLES, OpusDecoder};
use crate::room::ParticipantId;
use crate::room::protocol::ServerMsg;
use crate::rtc::jitter::{JitterBuffer, Playout};
use crate::rtc::peer::InFrame;
use crate::rtc::sdp_ice_ufrag;
use crate::server::tokens;

/// Frames buffered before a publisher is heard, and the most kept.
const JITTER_TARGET: usize = 1;
const JITTER_MAX: usize = 10;

/// Which way a session's media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Publish,
    Listen,
}

/// A publisher or a listener.
pub(super) struct Session {
    pub id: String,
    pub kind: Kind,
    pub who: Option<ParticipantId>,
    /// The client address it counts against (none for the host in this process).
    pub client: Option<IpAddr>,
    /// Its peer panicked: closed without being touched again.
    pub poisoned: bool,
    pub link: Link,
    pub created: Instant,
    pub connected: bool,
    pub deadline: Instant,
    /// A publisher's voice this tick.
    pub pcm: Vec<f32>,
    /// The Opus packet behind `pcm` this tick, as received (none: concealed, or a local
    /// program, or nothing to play).
    pub packet: Option<std::sync::Arc<[u8]>>,
    /// Its voice is in this tick's mix.
    pub heard: bool,
}

impl Session {
    /// A session that has heard nothing yet.
    fn new(id: String, kind: Kind, who: Option<ParticipantId>, link: Link, now: Instant) -> Self {
        Self {
            id,
            kind,
            who,
            client: None,
            poisoned: false,
            link,
            created: now,
            connected: false,
            deadline: now,
            pcm: vec![0.0; STEREO_FRAME],
            packet: None,
            heard: false,
        }
    }

    /// A publisher's next 20 ms into `pcm`: decoded through the jitter buffer (concealed or
    /// rebuilt from FEC when a packet is missing), or taken from a local program. False when
    /// there is nothing to play this tick.
    pub fn next_voice(&mut self) -> bool {
        self.packet = None;
        match &mut self.link {
            Link::Local {
                end: LocalEnd::Program(program),
                ..
            } => program.pull(&mut self.pcm),
            Link::Local { .. } => false,
            Link::Rtc(link) => {
                let Some(decoder) = link.decoder.as_mut() else {
                    return false;
                };
                let decoded = match link.jitter.pop() {
                    Playout::Packet(p) => {
                        let d = decoder.decode(&p, &mut self.pcm);
                        self.packet = Some(p);
                        d
                    }
                    Playout::Lost { next: Some(p) } => decoder.decode_fec(&p, &mut self.pcm),
                    Playout::Lost { next: None } => decoder.decode_lost(&mut self.pcm),
                    Playout::Silence => return false,
                };
                decoded.is_ok_and(|frames| frames == FRAME_SAMPLES)
            }
        }
    }

    /// Sends this tick's packet to a connected listener: a WebRTC listener through its peer
    /// (false when the peer refused it), the host in this process through its channel (a host
    /// too busy to take it misses the frame, as on a network).
    pub fn send(&mut self, packet: &std::sync::Arc<[u8]>, rtp: u64, now: Instant) -> bool {
        match &mut self.link {
            Link::Rtc(link) => link.write(packet, rtp, now),
            Link::Local {
                end: LocalEnd::Hears(out),
                ..
            } => {
                let _ = out.try_send(InFrame {
                    rtp_time: rtp,
                    packet: std::sync::Arc::clone(packet),
                    at: now,
                });
                true
            }
            Link::Local { .. } => true,
        }
    }
}

/// How a session's media travels.
pub(super) enum Link {
    /// WebRTC: every browser, player, guest, and a host on another machine.
    Rtc(Box<RtcLink>),
    /// The host in the server's own process. `alive` is dropped with the session, which tells
    /// the host.
    Local {
        end: LocalEnd,
        alive: mpsc::Sender<()>,
    },
}

impl Link {
    pub fn rtc(&mut self) -> Option<&mut RtcLink> {
        match self {
            Self::Rtc(link) => Some(link),
            Self::Local { .. } => None,
        }
    }

    /// The ICE username fragment the session answered with (WebRTC only).
    pub fn ufrag(&self) -> Option<&str> {
        match self {
            Self::Rtc(link) => Some(&link.ufrag),
            Self::Local { .. } => None,
        }
    }
}

/// A WebRTC session's peer and what only WebRTC needs.
pub(super) struct RtcLink {
    pub rtc: Rtc,
    /// Ours (STUN requests are routed by it) and the peer's (a trickle must match it).
    pub ufrag: String,
    pub remote_ufrag: String,
    pub mid: Option<Mid>,
    /// The Opus payload type a listener negotiated.
    pub pt: Option<Pt>,
    /// The peer's address, once a STUN request from it passed the integrity check.
    pub remote: Option<SocketAddr>,
    /// Trickled candidates taken (at most `candidates_per_session`; more are ignored).
    pub candidates: usize,
    /// A publisher's decoder and jitter buffer.
    pub decoder: Option<OpusDecoder>,
    pub jitter: JitterBuffer,
}

impl RtcLink {
    pub(super) fn on_event(&mut self, event: RtcEvent, kind: Kind) {
        match event {
            RtcEvent::MediaAdded(m) => self.mid = Some(m.mid),
            RtcEvent::MediaData(data) if kind == Kind::Publish => {
                self.jitter.push(data.time.numer(), data.data);
            }
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.rtc.disconnect();
            }
            _ => {}
        }
    }

    pub(super) fn learn_payload_type(&mut self) {
        if self.pt.is_none()
            && let Some(mid) = self.mid
            && let Some(w) = self.rtc.writer(mid)
        {
            self.pt = w.payload_params().next().map(|p| p.pt());
        }
    }

    fn write(&mut self, packet: &std::sync::Arc<[u8]>, rtp: u64, now: Instant) -> bool {
        let (Some(mid), Some(pt)) = (self.mid, self.pt) else {
            return true;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return true;
        };
        let time = str0m::media::MediaTime::new(rtp, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        if writer
            .write(pt, now, time, std::sync::Arc::clone(packet))
            .is_err()
        {
            self.rtc.disconnect();
            return false;
        }
        true
    }
}

/// What a local session carries.
pub(super) enum LocalEnd {
    /// The host's program, in place of packets, jitter buffer and decoder.
    Program(ProgramIn),
    /// Where the host's mix-minus goes.
    Hears(mpsc::Sender<InFrame>),
}

/// A local publisher's program as the mix takes it: one 20 ms block per tick, with a block kept
/// in hand against the two clocks' scheduling (the engine's and this task's), never more than a
/// few.
pub(super) struct ProgramIn {
    pub ring: rtrb::Consumer<f32>,
    /// A block is in hand: the mix takes one per tick.
    pub flowing: bool,
}

impl ProgramIn {
    /// Blocks kept before the mix starts taking them, and after a block came late.
    const HAND: usize = 2;
    /// More than this queued (a tick came very late) and the oldest are dropped.
    const MOST: usize = 4;

    /// The next block into `pcm`; false when none is due (not started, or it came late).
    fn pull(&mut self, pcm: &mut [f32]) -> bool {
        let block = pcm.len();
        let queued = self.ring.slots() / block;
        if !self.flowing {
            if queued < Self::HAND {
                return false;
            }
            self.flowing = true;
        }
        if queued == 0 {
            // Late: wait for a block in hand again rather than stutter block by block.
            self.flowing = false;
            return false;
        }
        if queued > Self::MOST {
            let drop = (queued - Self::HAND) * block;
            if let Ok(chunk) = self.ring.read_chunk(drop) {
                chunk.commit_all();
            }
        }
        match self.ring.read_chunk(block) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                pcm[..a.len()].copy_from_slice(a);
                pcm[a.len()..].copy_from_slice(b);
                chunk.commit_all();
                true
            }
            Err(_) => false,
        }
    }
}

/// What an offer asks for, once checked.
struct Offer {
    parsed: SdpOffer,
    remote_ufrag: String,
    mid: String,
}

/// Checks an offer before anything is made for it: Opus audio, going the right way.
fn check_offer(kind: Kind, offer: &str) -> Result<Offer, Refusal> {
    let lower = offer.to_ascii_lowercase();
    if !lower.contains("m=audio") {
        return Err(Refusal::media("no_audio", "the offer has no audio section"));
    }
    if !lower.contains("opus/48000") {
        return Err(Refusal::media(
            "no_opus",
            "the offer does not offer Opus audio",
        ));
    }
    // str0m parses what anyone sends: a panic in its parser refuses the offer, not the room.
    let parsed = super::guard::isolated(|| SdpOffer::from_sdp_string(offer))
        .map_err(|why| Refusal::media("bad_sdp", format!("the offer cannot be read: {why}")))?
        .map_err(|e| Refusal::media("bad_sdp", format!("the offer is not valid SDP: {e}")))?;
    let Some((mid, direction)) = crate::rtc::sdp_audio_section(offer) else {
        return Err(Refusal::media(
            "no_audio",
            "the offer's audio section has no a=mid",
        ));
    };
    let usable = match kind {
        Kind::Publish => matches!(direction, "sendonly" | "sendrecv"),
        Kind::Listen => matches!(direction, "recvonly" | "sendrecv"),
    };
    if !usable {
        return Err(Refusal::media(
            "wrong_direction",
            match kind {
                Kind::Publish => "a WHIP offer must send audio (sendonly)",
                Kind::Listen => "a WHEP offer must receive audio (recvonly)",
            },
        ));
    }
    let remote_ufrag = sdp_ice_ufrag(offer).unwrap_or_default().to_owned();
    Ok(Offer {
        parsed,
        remote_ufrag,
        mid,
    })
}

impl RoomTask {
    /// A WebRTC session for `offer`, from `client`, within the room's and the address's caps.
    pub(super) fn new_session(
        &mut self,
        kind: Kind,
        who: Option<ParticipantId>,
        offer: &str,
        client: IpAddr,
    ) -> Result<SessionCreated, Refusal> {
        if self.room.is_ended() {
            return Err(Refusal::Ended);
        }
        let limits = &self.shared.limits;
        admission::room_admits(self.sessions.len(), self.pending, limits)?;
        let offer = check_offer(kind, offer)?;
        self.shared
            .address_sessions
            .admit(client, limits)
            .map_err(Refusal::SessionCap)?;
        let made = self.answer(kind, offer);
        let (link, answer) = match made {
            Ok(made) => made,
            Err(e) => {
                self.shared.address_sessions.release(client, true);
                return Err(e);
            }
        };
        let id = match tokens::random_id(16) {
            Ok(id) => id,
            Err(e) => {
                self.shared.address_sessions.release(client, true);
                return Err(Refusal::internal(e));
            }
        };
        self.shared.media.route(&link.ufrag, self.datagrams.clone());
        let now = Instant::now();
        let session = Session {
            client: Some(client),
            ..Session::new(id.clone(), kind, who, Link::Rtc(Box::new(link)), now)
        };
        let i = self.add_session(session);
        self.guarded(i, |task| task.drive(i));
        Ok(SessionCreated { id, answer })
    }

    /// The peer for a checked offer, with the server's certificate, and its SDP answer.
    fn answer(&self, kind: Kind, offer: Offer) -> Result<(RtcLink, String), Refusal> {
        let now = Instant::now();
        let mut rtc = self.shared.certificate.server_config().build(now);
        let candidate =
            Candidate::host(self.shared.media.advertised(), "udp").map_err(Refusal::internal)?;
        rtc.add_local_candidate(candidate);
        let answer = super::guard::isolated(|| rtc.sdp_api().accept_offer(offer.parsed))
            .map_err(|why| {
                Refusal::media("bad_sdp", format!("the offer cannot be answered: {why}"))
            })?
            .map_err(|e| Refusal::media("bad_sdp", format!("the offer cannot be answered: {e}")))?
            .to_sdp_string();
        let ufrag = sdp_ice_ufrag(&answer).unwrap_or_default().to_owned();
        let link = RtcLink {
            rtc,
            ufrag,
            remote_ufrag: offer.remote_ufrag,
            mid: Some(Mid::from(offer.mid.as_str())),
            pt: None,
            remote: None,
            candidates: 0,
            decoder: if kind == Kind::Publish {
                OpusDecoder::new(2).ok()
            } else {
                None
            },
            jitter: JitterBuffer::new(JITTER_TARGET, JITTER_MAX),
        };
        Ok((link, answer))
    }

    pub(super) fn publish(
        &mut self,
        token: Option<&str>,
        offer: &str,
        client: IpAddr,
    ) -> Result<SessionCreated, Refusal> {
        let who = self.identify(token)?;
        if !self.room.may_publish(who) {
            return Err(Refusal::NotOnStage);
        }
        // One voice per participant: a new session replaces the old one.
        self.close_where(|s| s.who == Some(who) && s.kind == Kind::Publish);
        self.new_session(Kind::Publish, Some(who), offer, client)
    }

    pub(super) fn listen(
        &mut self,
        token: Option<&str>,
        offer: &str,
        client: IpAddr,
    ) -> Result<SessionCreated, Refusal> {
        let who = match token {
            Some(t) => Some(self.identify(Some(t))?),
            None => None,
        };
        self.new_session(Kind::Listen, who, offer, client)
    }

    /// A session for the host in this process (see [`RoomMsg::Local`]): publishing its program,
    /// or hearing the room (a stage member's mix-minus) through it.
    pub(super) fn local(
        &mut self,
        token: &str,
        media: LocalMedia,
        alive: mpsc::Sender<()>,
    ) -> Result<(), Refusal> {
        if self.room.is_ended() {
            return Err(Refusal::Ended);
        }
        let who = self.identify(Some(token))?;
        let (kind, end) = match media {
            LocalMedia::Listen(out) => (Kind::Listen, LocalEnd::Hears(out)),
            LocalMedia::Publish(ring) => {
                if !self.room.may_publish(who) {
                    return Err(Refusal::NotOnStage);
                }
                self.close_where(|s| s.who == Some(who) && s.kind == Kind::Publish);
                let program = ProgramIn {
                    ring,
                    flowing: false,
                };
                (Kind::Publish, LocalEnd::Program(program))
            }
        };
        let id = tokens::random_id(16).map_err(Refusal::internal)?;
        let now = Instant::now();
        let link = Link::Local { end, alive };
        self.add_session(Session {
            // Nothing to connect: frames flow from the first tick.
            connected: true,
            // No timers of its own.
            deadline: now + Duration::from_secs(86_400),
            ..Session::new(id, kind, Some(who), link, now)
        });
        match kind {
            Kind::Publish => self.shared.metrics.publishers.fetch_add(1, Relaxed),
            Kind::Listen => self.shared.metrics.listeners.fetch_add(1, Relaxed),
        };
        if kind == Kind::Listen {
            self.announce_listening();
        }
        Ok(())
    }

    /// Trickled candidates (ICE-lite needs none): up to `candidates_per_session` are given to
    /// the peer, the rest are ignored, so a client may send as many as it likes.
    pub(super) fn trickle(&mut self, session: &str, fragment: &str) -> Result<(), Refusal> {
        let i = self.index.by_id(session).ok_or(Refusal::NoSuchSession)?;
        let most = self.shared.limits.candidates_per_session;
        let Some(link) = self.sessions[i].link.rtc() else {
            return Err(Refusal::media(
                "not_webrtc",
                "that session does not use WebRTC",
            ));
        };
        if let Some(ufrag) = sdp_ice_ufrag(fragment)
            && link.remote_ufrag != ufrag
        {
            return Err(Refusal::IceRestart);
        }
        let mut taken = Vec::new();
        for line in fragment.lines() {
            if link.candidates + taken.len() >= most {
                break;
            }
            let line = line.trim();
            if let Some(c) = line
                .strip_prefix("a=candidate:")
                .or_else(|| line.strip_prefix("candidate:"))
            {
                let c = Candidate::from_sdp_string(&format!("candidate:{c}")).map_err(|e| {
                    Refusal::media("bad_candidate", format!("cannot read candidate: {e}"))
                })?;
                taken.push(c);
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        link.candidates += taken.len();
        self.guarded(i, |task| {
            if let Some(link) = task.sessions[i].link.rtc() {
                for c in taken {
                    link.rtc.add_remote_candidate(c);
                }
            }
            task.drive(i);
        });
        Ok(())
    }

    pub(super) fn announce_listening(&mut self) {
        let n = self.listening();
        if n != self.listening_announced {
            self.listening_announced = n;
            let text = message(&ServerMsg::Audience { listening: n });
            let mut stale = Vec::new();
            for (id, m) in &self.members {
                send_all(*id, &m.conns, &text, &mut stale);
            }
            self.drop_stale(stale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: f32) -> Vec<f32> {
        vec![n; STEREO_FRAME]
    }

    #[test]
    fn a_local_program_starts_with_a_block_in_hand_and_recovers_from_late_and_piled_up_blocks() {
        let (mut tx, ring) = rtrb::RingBuffer::new(10 * STEREO_FRAME);
        let mut program = ProgramIn {
            ring,
            flowing: false,
        };
        let mut pcm = vec![0.0; STEREO_FRAME];
        // One block is not enough to start on.
        let _ = tx.push_partial_slice(&block(1.0));
        assert!(!program.pull(&mut pcm));
        // Two are: blocks come out whole and in order, one per tick.
        let _ = tx.push_partial_slice(&block(2.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 1.0));
        let _ = tx.push_partial_slice(&block(3.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 2.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 3.0));
        // A late block: nothing this tick, and two in hand again before the next.
        assert!(!program.pull(&mut pcm));
        let _ = tx.push_partial_slice(&block(4.0));
        assert!(!program.pull(&mut pcm));
        let _ = tx.push_partial_slice(&block(5.0));
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 4.0));
        // Blocks piled up behind a stalled tick: the oldest go, two stay in hand.
        for n in 6..=10 {
            let _ = tx.push_partial_slice(&block(n as f32));
        }
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 9.0), "{}", pcm[0]);
        assert!(program.pull(&mut pcm));
        assert!(pcm.iter().all(|&x| x == 10.0));
    }
}
