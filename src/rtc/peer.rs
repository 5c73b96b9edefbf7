//! A client peer: one str0m session on its own UDP socket, driven by a tokio task. It publishes
//! Opus frames (WHIP) or receives them (WHEP). Used by `booth host` and `booth listen`.
//!
//! It never blocks its caller: frames come and go through channels, and a packet the socket
//! cannot take is dropped, as the network would drop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::signal::{self, Negotiated};
use super::{RtcError, local_ip_towards, rtc_config};
use crate::codec::frame::EncodedFrame;

/// Which way the media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WHIP: we send.
    Publish,
    /// WHEP: we receive.
    Listen,
}

/// One Opus frame received.
#[derive(Debug, Clone)]
pub struct InFrame {
    /// RTP time in 48 kHz samples, extended to 64 bits.
    pub rtp_time: u64,
    /// The Opus packet.
    pub packet: Arc<[u8]>,
    /// When it arrived.
    pub at: Instant,
}

/// A connected client peer. Drop or [`ClientPeer::close`] to hang up.
#[derive(Debug)]
pub struct ClientPeer {
    /// Frames to send (publishing).
    pub frames: mpsc::Sender<EncodedFrame>,
    /// Frames received (listening).
    pub incoming: mpsc::Receiver<InFrame>,
    /// The session resource on the server.
    pub location: String,
    stop: Option<oneshot::Sender<()>>,
    ended: watch::Receiver<Option<String>>,
    task: Option<JoinHandle<()>>,
    token: Option<String>,
    http: reqwest::Client,
}

impl ClientPeer {
    /// Opens a session with the WHIP/WHEP endpoint `url` and waits until media flows (ICE and
    /// DTLS up), for at most `connect_timeout`.
    ///
    /// # Errors
    /// The server refuses or cannot be reached, the answer is unusable, or the connection does
    /// not come up.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
        mode: Mode,
        connect_timeout: Duration,
    ) -> Result<Self, RtcError> {
        let server_ip = resolve(url).await?;
        let local_ip = local_ip_towards(server_ip);
        let socket = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = rtc_config().build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| RtcError::Stack(str0m::RtcError::Ice(e)))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let direction = match mode {
            Mode::Publish => Direction::SendOnly,
            Mode::Listen => Direction::RecvOnly,
        };
        let mid = change.add_media(MediaKind::Audio, direction, None, None, None);
        let Some((offer, pending)) = change.apply() else {
            return Err(RtcError::NoAudio("nothing to offer".into()));
        };
        let http = signal::http_client();
        let Negotiated { location, answer } =
            signal::post_offer(&http, url, token, &offer.to_sdp_string()).await?;
        let answer =
            SdpAnswer::from_sdp_string(&answer).map_err(|e| RtcError::BadSdp(e.to_string()))?;
        rtc.sdp_api().accept_answer(pending, answer)?;

        let (frames_tx, frames_rx) = mpsc::channel(64);
        let (incoming_tx, incoming_rx) = mpsc::channel(256);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = watch::channel(None);
        let (up_tx, up_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let driver = Driver {
                rtc,
                socket,
                local,
                mid,
                frames: frames_rx,
                incoming: incoming_tx,
                up: Some(up_tx),
            };
            let outcome = driver.run(stop_rx).await;
            let message = match outcome {
                Ok(()) => "closed".to_owned(),
                Err(e) => e.to_string(),
            };
            let _ = ended_tx.send(Some(message));
        });
        let mut peer = Self {
            frames: frames_tx,
            incoming: incoming_rx,
            location,
            stop: Some(stop_tx),
            ended: ended_rx,
            task: Some(task),
            token: token.map(str::to_owned),
            http,
        };
        match tokio::time::timeout(connect_timeout, up_rx).await {
            Ok(Ok(())) => Ok(peer),
            _ => {
                peer.close().await;
                Err(RtcError::ConnectTimeout(connect_timeout.as_secs()))
            }
        }
    }

    /// Why the session ended, once it has (the server hung up, the network went away).
    #[must_use]
    pub fn ended(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// Waits until the session ends by itself, and says why.
    pub async fn wait_ended(&mut self) -> String {
        loop {
            if let Some(reason) = self.ended.borrow().clone() {
                return reason;
            }
            if self.ended.changed().await.is_err() {
                return "closed".into();
            }
        }
    }

    /// Hangs up: stops the media and DELETEs the session on the server.
    pub async fn close(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
            signal::hang_up(&self.http, &self.location, self.token.as_deref()).await;
        }
    }
}

impl Drop for ClientPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn resolve(url: &str) -> Result<std::net::IpAddr, RtcError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| RtcError::Unreachable {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    let host = parsed.host_str().unwrap_or("localhost").to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| RtcError::Unreachable {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| RtcError::Unreachable {
            url: url.to_owned(),
            message: format!("{host} has no address"),
        })
}

struct Driver {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    frames: mpsc::Receiver<EncodedFrame>,
    incoming: mpsc::Sender<InFrame>,
    up: Option<oneshot::Sender<()>>,
}

impl Driver {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), RtcError> {
        let mut buf = vec![0u8; 2048];
        let mut connected = false;
        loop {
            let timeout = self.drain(&mut connected)?;
            let Some(timeout) = timeout else {
                return Ok(());
            };
            tokio::select! {
                _ = &mut stop => {
                    if self.rtc.close().is_ok() {
                        let _ = self.drain(&mut connected);
                    }
                    self.rtc.disconnect();
                    return Ok(());
                }
                frame = self.frames.recv() => {
                    let Some(frame) = frame else { return Ok(()) };
                    if connected {
                        self.write(frame)?;
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    let (n, source) = received?;
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: self.local, contents },
                    );
                    self.rtc.handle_input(input)?;
                }
                () = tokio::time::sleep_until(timeout.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now()))?;
                }
            }
        }
    }

    fn write(&mut self, frame: EncodedFrame) -> Result<(), RtcError> {
        let Some(writer) = self.rtc.writer(self.mid) else {
            return Ok(());
        };
        let Some(pt) = writer.payload_params().next().map(|p| p.pt()) else {
            return Ok(());
        };
        writer.write(
            pt,
            Instant::now(),
            MediaTime::new(frame.pts, Frequency::FORTY_EIGHT_KHZ),
            frame.packet,
        )?;
        Ok(())
    }

    /// Runs the session's outputs to its next deadline; `None` once it has ended.
    fn drain(&mut self, connected: &mut bool) -> Result<Option<Instant>, RtcError> {
        loop {
            if !self.rtc.is_alive() {
                return Ok(None);
            }
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(Some(t)),
                Output::Transmit(t) => {
                    // A full socket buffer drops the packet, as the network would.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(event) => match event {
                    Event::Connected => {
                        *connected = true;
                        if let Some(up) = self.up.take() {
                            let _ = up.send(());
                        }
                    }
                    Event::Closed => {
                        return Err(RtcError::Lost("the server ended the session".into()));
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err(RtcError::Lost("the server stopped answering".into()));
                    }
                    Event::MediaData(data) => {
                        let _ = self.incoming.try_send(InFrame {
                            rtp_time: data.time.numer(),
                            packet: data.data,
                            at: Instant::now(),
                        });
                    }
                    _ => {}
                },
            }
        }
    }
}
