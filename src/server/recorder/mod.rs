//! Recording a room: the program and each stage member's own track, written to Ogg Opus by a
//! writer thread of their own, and the repair of a recording a crash left unfinished.
//!
//! The room's task hands each 20 ms tick to [`Recorder::tick`], which only copies it into a
//! bounded queue (10 s of ticks); the writer thread (`writer`) does every write, ends an Ogg
//! page at least every second and syncs every open file at least every [`SYNC_EVERY`], so a
//! crash loses a few seconds at most. A failed write (disk full, permissions) or a disk that
//! cannot keep up stops the recording, says why once ([`RecorderEvent::Failed`]), and leaves
//! every file finished or repaired; the room goes on.
//!
//! Tracks are on the program's timeline from its first sample: the ticks before a member was
//! heard and every tick they are silent hold a 20 ms packet of silence, so a DAW lines every
//! file up at zero (DAWs ignore a starting granule position). A speaker's packets are kept as
//! received, after one packet of silence that the pre-skip (960) trims again: the room mixes
//! exactly what they decode to, untrimmed, so that is where they sit in the program (a
//! pre-skip of the sender's encoder delay, 312, would put them 6.5 ms early). A host's PCM is
//! encoded here with the program's settings, with that encoder's lookahead as pre-skip, as the
//! program itself is.
//!
//! Never here: blocking the room's task (a full queue is an error, not a wait), a panic on IO,
//! or anything of the room's state beyond what a tick carries.

mod writer;

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::codec::opus::EncoderSettings;
use crate::codec::{CodecError, ogg_opus};

pub use ogg_opus::Repaired;

/// Ticks the queue holds: 10 s. A disk that falls that far behind fails the recording.
pub const QUEUE_TICKS: usize = 500;
/// The longest time written data waits before `sync_data`.
pub const SYNC_EVERY: Duration = Duration::from_secs(4);
/// The program's file in a recording's directory.
pub const PROGRAM_FILE: &str = "program.ogg";

/// Why recording stopped or could not start. Each says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The file system is full (or the quota is used up).
    #[error(
        "the disk is full: writing {path} failed, so recording stopped; free some space, then \
         start recording again"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The server may not write there.
    #[error(
        "no permission to write {path} ({reason}): recording stopped; give the server write \
         access to its data directory"
    )]
    NotPermitted {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// Another write error.
    #[error("writing {path} failed ({reason}): recording stopped")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The writer fell [`QUEUE_TICKS`] ticks behind: the disk is too slow.
    #[error(
        "the disk cannot keep up: 10 s of recording waited to be written, so recording stopped"
    )]
    Behind,
    /// The recording already stopped; see the error reported then.
    #[error("recording has stopped")]
    Stopped,
    /// The Opus encoder refused (a bug or bad settings, not the disk).
    #[error("the recording's Opus encoder failed: {0}")]
    Codec(String),
    /// A tick that is not 20 ms of 48 kHz stereo (a bug in the caller).
    #[error("{0}")]
    InvalidTick(String),
    /// The writer thread ended without saying why.
    #[error("the recording's writer thread stopped unexpectedly")]
    WriterGone,
    /// A file cannot be made whole again.
    #[error("cannot repair {path}: {reason}")]
    Repair {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl RecordError {
    /// What an IO error writing `path` means for a recording.
    #[must_use]
    pub fn io(path: &Path, e: &io::Error) -> Self {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        let path = path.to_path_buf();
        let reason = e.to_string();
        match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Self::DiskFull { path },
            _ if matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT)) => Self::DiskFull { path },
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                Self::NotPermitted { path, reason }
            }
            _ => Self::Write { path, reason },
        }
    }

    fn codec(path: &Path, e: &CodecError) -> Self {
        match e {
            CodecError::Io(io) => Self::io(path, io),
            other => Self::Codec(other.to_string()),
        }
    }
}

/// A stage member's voice in one tick.
#[derive(Debug, Clone, Copy)]
pub enum VoiceIn<'a> {
    /// Their 20 ms Opus packet as received.
    Packet(&'a [u8]),
    /// 20 ms of 48 kHz stereo interleaved PCM (a host in the server's own process).
    Pcm(&'a [f32]),
    /// On stage, not heard this tick.
    Silent,
}

/// What the writer thread reports, on the writer thread.
#[derive(Debug, Clone)]
pub enum RecorderEvent {
    /// Recording stopped early (reported once): tell the moderators. The files are finished
    /// (or repaired) up to where it stopped.
    Failed(RecordError),
    /// Every file is finished and synced.
    Finished(Result<Recorded, RecordError>),
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The program's Ogg Opus file.
    pub program: PathBuf,
    /// Its size.
    pub program_bytes: u64,
    /// The audio kept, ms (20 ms per tick written).
    pub duration_ms: u64,
    /// The program's integrated loudness (EBU R128), LUFS; `None` when it was silent.
    pub loudness_lufs: Option<f64>,
    /// Each stage member heard: their name and track file, in the order they were first heard.
    pub tracks: Vec<(String, PathBuf)>,
    /// Why it stopped before it was finished (already reported by
    /// [`RecorderEvent::Failed`]); `None` when it ran to the end.
    pub stopped_by: Option<RecordError>,
}

/// One tick, copied for the writer.
struct Tick {
    program: Vec<u8>,
    pcm: Vec<f32>,
    voices: Vec<(u64, String, Voice)>,
}

enum Voice {
    Packet(Vec<u8>),
    Pcm(Vec<f32>),
    Silent,
}

/// A recording in progress: the handle the room's task keeps. Dropping it finishes the
/// recording as [`finish`](Self::finish) does.
pub struct Recorder {
    queue: SyncSender<Tick>,
    /// Set by either side when recording stops early.
    stopped: Arc<AtomicBool>,
    thread: JoinHandle<Result<Recorded, RecordError>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// 20 ms of 48 kHz stereo.
const TICK_PCM: usize = 960 * 2;

impl Recorder {
    /// Opens `dir/program.ogg` (creating `dir`) on a new writer thread, for packets encoded
    /// with `program`. Events go to `on_event`, called on the writer thread; it must not block.
    ///
    /// # Errors
    /// The directory or file cannot be made ([`RecordError::NotPermitted`],
    /// [`RecordError::DiskFull`], ...), or the settings are refused.
    pub fn start(
        dir: PathBuf,
        program: &EncoderSettings,
        on_event: Box<dyn Fn(RecorderEvent) + Send>,
    ) -> Result<Self, RecordError> {
        let (queue, ticks) = mpsc::sync_channel(QUEUE_TICKS);
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let stopped = Arc::new(AtomicBool::new(false));
        let settings = program.clone();
        let flag = Arc::clone(&stopped);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let w = match writer::Writer::open(dir, settings, flag, on_event) {
                    Ok(w) => {
                        let _ = opened_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                w.run(&ticks)
            })
            .map_err(|e| RecordError::Write {
                path: PathBuf::from(PROGRAM_FILE),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        opened.recv().map_err(|_| RecordError::WriterGone)??;
        Ok(Self {
            queue,
            stopped,
            thread,
        })
    }

    /// One 20 ms tick: the program's Opus packet and its (limited, 48 kHz stereo interleaved)
    /// PCM, and each stage member's voice this tick: `(member id, name, voice)`. Never blocks:
    /// copies into the bounded queue.
    ///
    /// # Errors
    /// [`RecordError::Stopped`] once recording stopped (the reason went to `on_event`),
    /// [`RecordError::Behind`] when the queue is full (this stops the recording too), and
    /// [`RecordError::InvalidTick`] for PCM that is not 20 ms of stereo (the tick is dropped).
    pub fn tick(
        &mut self,
        program: &[u8],
        pcm: &[f32],
        voices: &[(u64, &str, VoiceIn<'_>)],
    ) -> Result<(), RecordError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RecordError::Stopped);
        }
        let bad = |what: &str, n: usize| {
            Err(RecordError::InvalidTick(format!(
                "{what} holds {n} samples; a tick is {TICK_PCM} (20 ms of 48 kHz stereo)"
            )))
        };
        if !pcm.is_empty() && pcm.len() != TICK_PCM {
            return bad("the program's PCM", pcm.len());
        }
        let mut copied = Vec::with_capacity(voices.len());
        for &(id, name, voice) in voices {
            let voice = match voice {
                VoiceIn::Packet(p) if !p.is_empty() => Voice::Packet(p.to_vec()),
                VoiceIn::Pcm(s) if s.len() == TICK_PCM => Voice::Pcm(s.to_vec()),
                VoiceIn::Pcm(s) => return bad(&format!("{name}'s PCM"), s.len()),
                VoiceIn::Packet(_) | VoiceIn::Silent => Voice::Silent,
            };
            copied.push((id, name.to_owned(), voice));
        }
        let tick = Tick {
            program: program.to_vec(),
            pcm: pcm.to_vec(),
            voices: copied,
        };
        match self.queue.try_send(tick) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stopped.store(true, Ordering::Release);
                Err(RecordError::Behind)
            }
            Err(TrySendError::Disconnected(_)) => Err(RecordError::Stopped),
        }
    }

    /// Ends the recording: the writer drains the queue, finishes every file (last page with
    /// end-of-stream and the right granule position), syncs, and reports
    /// [`RecorderEvent::Finished`]. Returns at once.
    pub fn finish(self) {
        drop(self.queue);
    }

    /// As [`finish`](Self::finish), waiting for the writer: for shutdown (SIGTERM, Ctrl-C).
    ///
    /// # Errors
    /// When the recording could not be finished at all, [`RecordError::WriterGone`] if the
    /// writer thread died.
    pub fn finish_and_wait(self) -> Result<Recorded, RecordError> {
        drop(self.queue);
        self.thread.join().map_err(|_| RecordError::WriterGone)?
    }
}

/// Repairs an Ogg Opus recording a crash left unfinished: keeps it up to its last whole page,
/// marks that page end-of-stream, truncates the rest and syncs. A finished file is left as it
/// is (bytes after its end, if any, are cut).
///
/// # Errors
/// [`RecordError::Repair`] when the file cannot be opened or holds nothing to keep.
pub fn repair_file(path: &Path) -> Result<Repaired, RecordError> {
    let fail = |reason: String| RecordError::Repair {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let repaired = ogg_opus::repair(&mut file).map_err(|e| fail(e.to_string()))?;
    file.set_len(repaired.length)
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(e.to_string()))?;
    Ok(repaired)
}
