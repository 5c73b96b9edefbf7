//! Recording the live program: a consumer of the engine's Opus frames that writes them, as they
//! are, into an Ogg Opus file. Pages go out at least every second, so a crash loses at most that;
//! the file is readable while it grows.
//!
//! The writer wakes five times a second and writes what has queued, rather than once a frame:
//! a file needs no frame sooner, and the engine's thread then hands frames over without waking
//! anyone (a wake-up per frame costs both threads a system call and a context switch).
//!
//! It never holds up the engine: when the writer falls behind, the engine drops frames for it
//! rather than wait.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::codec::frame::EncodedFrame;
use crate::codec::{CodecError, EncoderSettings, OggOpusWriter};
use crate::dsp::SAMPLE_RATE;

/// Frames the recorder may fall behind before the engine drops frames for it (2 s).
const QUEUE: usize = 100;

/// How often the writer takes what has queued: a tenth of what the queue holds.
const POLL: Duration = Duration::from_millis(200);

/// A recording in progress.
#[derive(Debug)]
pub struct Recorder {
    thread: Option<JoinHandle<Result<u64, CodecError>>>,
    path: PathBuf,
}

impl Recorder {
    /// Creates `path` and starts the writer thread; give the returned sender to the engine.
    /// `settings` must be the engine's encoder settings (they describe the packets).
    ///
    /// # Errors
    /// A name that does not end in `.ogg` or `.opus` (nothing is created: Ogg Opus in a file
    /// called `.wav` would play nowhere), the file cannot be created, or the header cannot be
    /// written.
    pub fn start(
        path: &Path,
        settings: &EncoderSettings,
    ) -> Result<(Self, SyncSender<EncodedFrame>), CodecError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("ogg" | "opus")) {
            return Err(CodecError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the live program is recorded as Ogg Opus: name the file .ogg or .opus",
            )));
        }
        let file = File::create(path)?;
        let writer = OggOpusWriter::with_comments(
            BufWriter::new(file),
            settings,
            SAMPLE_RATE,
            &[("ENCODER", "Booth live")],
        )?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("booth-recorder".into())
            .spawn(move || record(writer, &rx))
            .map_err(CodecError::Io)?;
        Ok((
            Self {
                thread: Some(thread),
                path: path.to_owned(),
            },
            tx,
        ))
    }

    /// The file being written.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the recording to end (after the engine and every sender are gone) and returns
    /// the frames written.
    ///
    /// # Errors
    /// A write failed (disk full, device gone).
    pub fn finish(mut self) -> Result<u64, CodecError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(CodecError::InvalidInput(
                "the recorder thread failed".into(),
            )),
            None => Ok(0),
        }
    }
}

fn record(
    mut writer: OggOpusWriter<BufWriter<File>>,
    frames: &Receiver<EncodedFrame>,
) -> Result<u64, CodecError> {
    let mut n = 0;
    loop {
        match frames.try_recv() {
            Ok(frame) => {
                writer.write_packet(&frame.packet)?;
                n += 1;
            }
            Err(TryRecvError::Empty) => std::thread::sleep(POLL),
            Err(TryRecvError::Disconnected) => break,
        }
    }
    writer.finish()?;
    Ok(n)
}
