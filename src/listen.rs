//! `booth listen URL`: a WHEP client in the terminal. It plays the room through cpal, or writes
//! it to a file (`.ogg`: the packets as received, concealed frames re-encoded; `.wav`: 16-bit
//! PCM). A 20 ms clock pulls frames from a jitter buffer, so the file's time is the listener's
//! time: a gap on the network is a concealed gap in the file, never a shift.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::audio::{DeviceError, open_output, start_playback};
use crate::codec::CodecError;
use crate::codec::ogg_opus::OggOpusWriter;
use crate::codec::opus::{EncoderSettings, MAX_PACKET, OpusEncoder};
use crate::dsp::DspError;
use crate::rtc::RtcError;
use crate::rtc::jitter::PlayoutDecoder;
use crate::rtc::peer::{ClientPeer, Mode};

/// What `booth listen` was asked to do.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// A listener link (`.../r/ROOM`), a WHEP URL (`.../whep/ROOM`), or a server and room.
    pub url: String,
    /// A participant's token: a speaker or the host hears their mix-minus.
    pub token: Option<String>,
    /// Write here instead of playing.
    pub out: Option<PathBuf>,
    /// Play on this output device (default: the default output).
    pub device: Option<String>,
    /// Stop after this long.
    pub seconds: Option<f64>,
}

/// The end of a session.
#[derive(Debug, Clone, Default)]
pub struct ListenSummary {
    /// Time from the request to media flowing.
    pub connect_ms: u64,
    /// Frames written or played.
    pub frames: u64,
    /// Packets received.
    pub packets: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Why it ended early, if it did.
    pub ended: Option<String>,
    /// Wall-clock time of the first frame written or played (Unix ms): sample `n` of the
    /// output was heard at this time + `n` / 48 kHz.
    pub started_unix_ms: Option<u64>,
}

/// Why `booth listen` failed.
///
/// Each message already says its cause in full, so no variant reports a `source()`: an error
/// printed with its chain (`{:#}`) would say the cause twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The link is not a URL at all.
    #[error("'{url}' is not a URL: {reason}")]
    NotAUrl {
        /// What was given.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The link is a URL that names no room.
    #[error("'{url}' names no room: pass a listener link like http://HOST:8080/r/ROOM")]
    NoRoom {
        /// What was given.
        url: String,
    },
    /// Playing was asked for, and the sound system has no default output.
    #[error("there is no output device: write a file with --out")]
    NoOutputDevice,
    /// The output device could not be listed, found, opened or started.
    #[error("{0}")]
    Device(DeviceError),
    /// The lane that steers the room to the output's clock could not be built.
    #[error("{0}")]
    OutputLane(DspError),
    /// The file's name asks for a format Booth does not write.
    #[error("'{}': write .ogg, .opus or .wav", path.display())]
    UnknownFileType {
        /// The file asked for.
        path: PathBuf,
    },
    /// The file could not be created, or its stream not started.
    #[error("cannot write '{}': {error}", path.display())]
    CannotWrite {
        /// The file asked for.
        path: PathBuf,
        /// What failed.
        error: FileError,
    },
    /// The server refused the session, or its media did not connect.
    #[error("{0}")]
    Connect(RtcError),
    /// The decoder for the room's stream could not start.
    #[error("{0}")]
    Decoder(CodecError),
    /// A frame could not be written to the file.
    #[error("writing: {0}")]
    Writing(FileError),
    /// The file could not be finished (its last page, or the WAV header's lengths).
    #[error("finishing the file: {0}")]
    Finishing(FileError),
}

/// What failed while writing the listener's file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Creating the file failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// The Ogg Opus stream failed (encoding, or the write under it).
    #[error("{0}")]
    Ogg(CodecError),
    /// The WAV writer failed.
    #[error("{0}")]
    Wav(hound::Error),
}

/// The WHEP endpoint for a link a user may paste.
///
/// # Errors
/// The URL names no room.
pub fn whep_url(url: &str) -> Result<String, ListenError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ListenError::NotAUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let segments: Vec<&str> = parsed
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    let room = match segments.as_slice() {
        [.., "whep", room] | [.., "r", room] | [.., "rooms", room] => *room,
        _ => {
            return Err(ListenError::NoRoom {
                url: url.to_owned(),
            });
        }
    };
    let mut base = parsed.clone();
    base.set_fragment(None);
    base.set_query(None);
    base.set_path(&format!("/whep/{room}"));
    Ok(base.to_string())
}

enum Sink {
    Ogg {
        writer: OggOpusWriter<BufWriter<File>>,
        encoder: OpusEncoder,
        packet: Vec<u8>,
    },
    Wav(hound::WavWriter<BufWriter<File>>),
    Play {
        /// The room into the output's ring, steered to its clock.
        lane: Box<crate::engine::OutputLane>,
        _playback: crate::audio::Playback,
    },
}

fn open_sink(opts: &ListenOptions) -> Result<Sink, ListenError> {
    match &opts.out {
        Some(path) => open_file(path),
        None => {
            let name = match &opts.device {
                Some(n) => n.clone(),
                None => crate::audio::list_devices()
                    .map_err(ListenError::Device)?
                    .into_iter()
                    .find(|d| d.is_default && d.direction == crate::audio::Direction::Output)
                    .map(|d| d.id)
                    .ok_or(ListenError::NoOutputDevice)?,
            };
            let (device, info) = open_output(&name).map_err(ListenError::Device)?;
            let (playback, producer) =
                start_playback(&device, info, 0.3).map_err(ListenError::Device)?;
            Ok(Sink::Play {
                lane: Box::new(
                    crate::engine::OutputLane::new(producer, 2).map_err(ListenError::OutputLane)?,
                ),
                _playback: playback,
            })
        }
    }
}

fn open_file(path: &Path) -> Result<Sink, ListenError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let fail = |error: FileError| ListenError::CannotWrite {
        path: path.to_owned(),
        error,
    };
    match ext.as_str() {
        "ogg" | "opus" => {
            let settings = EncoderSettings::music_stereo(128_000);
            let file = File::create(path).map_err(|e| fail(FileError::Io(e)))?;
            let mut writer = OggOpusWriter::with_comments(
                BufWriter::new(file),
                &settings,
                48_000,
                &[("ENCODER", "Booth listen")],
            )
            .map_err(|e| fail(FileError::Ogg(e)))?;
            writer.set_page_duration(Duration::from_millis(200));
            Ok(Sink::Ogg {
                writer,
                encoder: OpusEncoder::new(&settings).map_err(|e| fail(FileError::Ogg(e)))?,
                packet: vec![0; MAX_PACKET],
            })
        }
        "wav" => {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 48_000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let file = File::create(path).map_err(|e| fail(FileError::Io(e)))?;
            Ok(Sink::Wav(
                hound::WavWriter::new(BufWriter::new(file), spec)
                    .map_err(|e| fail(FileError::Wav(e)))?,
            ))
        }
        _ => Err(ListenError::UnknownFileType {
            path: path.to_owned(),
        }),
    }
}

impl Sink {
    fn put(&mut self, pcm: &[f32], received: Option<&[u8]>) -> Result<(), FileError> {
        match self {
            Self::Ogg {
                writer,
                encoder,
                packet,
            } => match received {
                Some(p) => writer.write_packet(p).map_err(FileError::Ogg),
                None => {
                    let n = encoder.encode_frame(pcm, packet).map_err(FileError::Ogg)?;
                    writer.write_packet(&packet[..n]).map_err(FileError::Ogg)
                }
            },
            Self::Wav(w) => {
                for s in pcm {
                    let v = (s.clamp(-1.0, 1.0) * 32_767.0).round() as i16;
                    w.write_sample(v).map_err(FileError::Wav)?;
                }
                Ok(())
            }
            Self::Play { lane, .. } => {
                lane.push(pcm);
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<(), FileError> {
        match self {
            Self::Ogg { writer, .. } => writer.finish().map(|_| ()).map_err(FileError::Ogg),
            Self::Wav(w) => w.finalize().map_err(FileError::Wav),
            Self::Play { .. } => Ok(()),
        }
    }
}

/// Listens until `seconds` pass, the room ends, or Ctrl-C.
///
/// # Errors
/// The link names no room, the server refuses, the media does not connect, or the file cannot
/// be written.
pub async fn run(opts: ListenOptions) -> Result<ListenSummary, ListenError> {
    let url = whep_url(&opts.url)?;
    let mut sink = open_sink(&opts)?;
    let asked = Instant::now();
    let mut peer = ClientPeer::connect(
        &url,
        opts.token.as_deref(),
        Mode::Listen,
        Duration::from_secs(10),
    )
    .await
    .map_err(ListenError::Connect)?;
    let mut summary = ListenSummary {
        connect_ms: u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX),
        ..ListenSummary::default()
    };
    let mut playout = PlayoutDecoder::new(2, 10).map_err(ListenError::Decoder)?;
    let max_frames = opts.seconds.map(|s| (s.max(0.0) * 50.0).round() as u64);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            frame = peer.incoming.recv() => match frame {
                Some(f) => {
                    summary.packets += 1;
                    playout.push(f.rtp_time, f.packet);
                }
                None => {
                    summary.ended = Some(peer.ended().unwrap_or_else(|| "the server hung up".into()));
                    break;
                }
            },
            _ = tick.tick() => {
                let played = playout.next_frame();
                if summary.started_unix_ms.is_none() {
                    summary.started_unix_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .and_then(|d| u64::try_from(d.as_millis()).ok());
                }
                sink.put(played.pcm, played.packet.as_deref()).map_err(ListenError::Writing)?;
                summary.frames += 1;
                if max_frames.is_some_and(|m| summary.frames >= m) {
                    break;
                }
            }
            _ = &mut ctrl_c => break,
        }
    }
    summary.concealed = playout.stats().concealed;
    peer.close().await;
    sink.finish().map_err(ListenError::Finishing)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_link_a_whep_url_and_an_api_room_all_lead_to_the_whep_endpoint() {
        for link in [
            "http://booth.example:8080/r/abc",
            "http://booth.example:8080/whep/abc?x=1#top",
            "http://booth.example:8080/api/rooms/abc/",
        ] {
            assert_eq!(
                whep_url(link).unwrap(),
                "http://booth.example:8080/whep/abc",
                "{link}"
            );
        }
    }

    #[test]
    fn a_bad_link_is_an_error_a_caller_can_match_with_the_message_a_user_reads() {
        let e = whep_url("booth.example/r/abc").unwrap_err();
        assert!(matches!(&e, ListenError::NotAUrl { url, .. } if url == "booth.example/r/abc"));
        assert!(
            e.to_string()
                .starts_with("'booth.example/r/abc' is not a URL: "),
            "{e}"
        );

        let e = whep_url("http://booth.example:8080/").unwrap_err();
        assert!(matches!(e, ListenError::NoRoom { .. }));
        assert_eq!(
            e.to_string(),
            "'http://booth.example:8080/' names no room: pass a listener link like \
             http://HOST:8080/r/ROOM"
        );
    }

    #[test]
    fn a_file_of_another_type_is_refused_before_anything_is_written() {
        let e = open_file(Path::new("room.mp3")).err().unwrap();
        assert!(matches!(e, ListenError::UnknownFileType { .. }));
        assert_eq!(e.to_string(), "'room.mp3': write .ogg, .opus or .wav");
    }
}
