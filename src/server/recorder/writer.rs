//! The writer thread: takes ticks off the queue and writes the program and every track, one
//! packet per tick each, syncing every few seconds; on a failure it stops, reports once, and
//! leaves every file finished or repaired.
//!
//! Never here: a panic on IO, or waiting on anyone but the queue.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use super::{
    PROGRAM_FILE, RecordError, Recorded, RecorderEvent, SYNC_EVERY, Tick, Voice, repair_file,
};
use crate::codec::ogg_opus::OggOpusWriter;
use crate::codec::opus::{EncoderSettings, FRAME_SAMPLES, MAX_PACKET, OpusEncoder, SAMPLE_RATE};
use crate::dsp::LoudnessMeter;

/// A received packet track starts with this much silence (one packet), trimmed again as its
/// pre-skip: the room mixes what a speaker's packets decode to, untrimmed, so a track whose
/// packets decode untrimmed at the program's timeline lines up with it to the sample; pre-skip
/// 0 would too, but players call it implausible.
const TRACK_LEAD: u16 = FRAME_SAMPLES as u16;

/// A speaker's packets keep their own bitrate; this only sets the encoder that makes their
/// track's silence and end padding.
const VOICE_BITRATE: u32 = 32_000;

/// One Ogg Opus file being written; `None` inside once finished or abandoned.
struct Stream {
    path: PathBuf,
    ogg: Option<OggOpusWriter<BufWriter<File>>>,
}

impl Stream {
    /// Creates the file and writes its headers; `pre_skip` `None` means the encoder's own.
    fn create(
        path: PathBuf,
        settings: &EncoderSettings,
        pre_skip: Option<u16>,
        comments: &[(&str, &str)],
    ) -> Result<Self, RecordError> {
        let file = File::create(&path).map_err(|e| RecordError::io(&path, &e))?;
        let out = BufWriter::new(file);
        let ogg = match pre_skip {
            Some(p) => OggOpusWriter::with_pre_skip(out, settings, p, SAMPLE_RATE, comments),
            None => OggOpusWriter::with_comments(out, settings, SAMPLE_RATE, comments),
        }
        .map_err(|e| RecordError::codec(&path, &e))?;
        Ok(Self {
            path,
            ogg: Some(ogg),
        })
    }

    fn packet(&mut self, packet: &[u8]) -> Result<(), RecordError> {
        match self.ogg.as_mut() {
            Some(ogg) => ogg
                .write_packet(packet)
                .map_err(|e| RecordError::codec(&self.path, &e)),
            None => Ok(()),
        }
    }

    fn pcm(&mut self, pcm: &[f32]) -> Result<(), RecordError> {
        match self.ogg.as_mut() {
            Some(ogg) => ogg
                .write(pcm)
                .map_err(|e| RecordError::codec(&self.path, &e)),
            None => Ok(()),
        }
    }

    /// Makes what the pages so far hold durable.
    fn sync(&self) -> Result<(), RecordError> {
        match &self.ogg {
            Some(ogg) => ogg
                .get_ref()
                .get_ref()
                .sync_data()
                .map_err(|e| RecordError::io(&self.path, &e)),
            None => Ok(()),
        }
    }

    /// Writes the last page (end-of-stream, exact end) and syncs.
    fn finish(&mut self) -> Result<(), RecordError> {
        let Some(ogg) = self.ogg.take() else {
            return Ok(());
        };
        let out = ogg
            .finish()
            .map_err(|e| RecordError::codec(&self.path, &e))?;
        let file = out
            .into_inner()
            .map_err(|e| RecordError::io(&self.path, e.error()))?;
        file.sync_data()
            .map_err(|e| RecordError::io(&self.path, &e))
    }
}

/// A stage member's track.
struct Track {
    id: u64,
    name: String,
    stream: Stream,
    /// 20 ms of silence, encoded once for this track's channel count.
    silence: Vec<u8>,
    /// Has its packet for the tick being written.
    written: bool,
}

pub(super) struct Writer {
    dir: PathBuf,
    settings: EncoderSettings,
    program: Stream,
    program_silence: Vec<u8>,
    tracks: Vec<Track>,
    meter: LoudnessMeter,
    /// Ticks written: every stream holds this many packets.
    ticks: u64,
    stopped: Arc<AtomicBool>,
    failure: Option<RecordError>,
    /// The program's audio kept after a failure, from its repair.
    kept_ms: Option<u64>,
    on_event: Box<dyn Fn(RecorderEvent) + Send>,
    last_sync: Instant,
}

fn silence_packet(settings: &EncoderSettings) -> Result<Vec<u8>, RecordError> {
    let codec = |e: crate::codec::CodecError| RecordError::Codec(e.to_string());
    let mut enc = OpusEncoder::new(settings).map_err(codec)?;
    let mut packet = vec![0; MAX_PACKET];
    let zeros = vec![0.0; FRAME_SAMPLES * usize::from(settings.channels)];
    let n = enc.encode_frame(&zeros, &mut packet).map_err(codec)?;
    packet.truncate(n);
    Ok(packet)
}

/// A file name's part made of a member's name: lowercase ASCII letters and digits, words
/// joined by `-`, at most 40 characters.
fn slug(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
        if s.len() >= 40 {
            break;
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "speaker".into()
    } else {
        s.into()
    }
}

impl Writer {
    pub(super) fn open(
        dir: PathBuf,
        settings: EncoderSettings,
        stopped: Arc<AtomicBool>,
        on_event: Box<dyn Fn(RecorderEvent) + Send>,
    ) -> Result<Self, RecordError> {
        std::fs::create_dir_all(&dir).map_err(|e| RecordError::io(&dir, &e))?;
        let program = Stream::create(
            dir.join(PROGRAM_FILE),
            &settings,
            None,
            &[("ENCODER", "Booth room")],
        )?;
        Ok(Self {
            dir,
            program_silence: silence_packet(&settings)?,
            settings,
            program,
            tracks: Vec::new(),
            meter: LoudnessMeter::new(),
            ticks: 0,
            stopped,
            failure: None,
            kept_ms: None,
            on_event,
            last_sync: Instant::now(),
        })
    }

    /// Writes ticks until the queue's sender is gone, then finishes every file.
    pub(super) fn run(mut self, queue: &Receiver<Tick>) -> Result<Recorded, RecordError> {
        loop {
            match queue.recv_timeout(SYNC_EVERY) {
                Ok(tick) => self.tick(&tick),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.failure.is_none()
                && self.last_sync.elapsed() >= SYNC_EVERY
                && let Err(e) = self.sync()
            {
                self.fail(e);
            }
        }
        let result = self.end();
        (self.on_event)(RecorderEvent::Finished(result.clone()));
        result
    }

    fn tick(&mut self, tick: &Tick) {
        if self.failure.is_some() {
            return;
        }
        if self.stopped.load(Ordering::Acquire) {
            // The room's side found the queue full.
            self.fail(RecordError::Behind);
            return;
        }
        match self.write(tick) {
            Ok(()) => self.ticks += 1,
            Err(e) => self.fail(e),
        }
    }

    fn write(&mut self, tick: &Tick) -> Result<(), RecordError> {
        let packet = if tick.program.is_empty() {
            &self.program_silence
        } else {
            &tick.program
        };
        self.program.packet(packet)?;
        if !tick.pcm.is_empty() {
            self.meter.process(&tick.pcm);
        }
        for t in &mut self.tracks {
            t.written = false;
        }
        for (id, name, voice) in &tick.voices {
            self.voice(*id, name, voice)?;
        }
        // Members not in this tick (off stage now) stay on the timeline with silence.
        for t in self.tracks.iter_mut().filter(|t| !t.written) {
            t.stream.packet(&t.silence)?;
        }
        Ok(())
    }

    fn voice(&mut self, id: u64, name: &str, voice: &Voice) -> Result<(), RecordError> {
        let i = match self.tracks.iter().position(|t| t.id == id) {
            Some(i) => i,
            // A member never heard gets no track.
            None if matches!(voice, Voice::Silent) => return Ok(()),
            None => self.open_track(id, name, voice)?,
        };
        let t = &mut self.tracks[i];
        if std::mem::replace(&mut t.written, true) {
            return Ok(());
        }
        match voice {
            Voice::Packet(p) => t.stream.packet(p),
            Voice::Pcm(pcm) => t.stream.pcm(pcm),
            Voice::Silent => t.stream.packet(&t.silence),
        }
    }

    /// Opens a member's track and fills it with silence up to now. Returns its index.
    fn open_track(&mut self, id: u64, name: &str, voice: &Voice) -> Result<usize, RecordError> {
        let (settings, pre_skip) = match voice {
            Voice::Packet(p) => {
                // The TOC byte's stereo bit (RFC 6716 3.1).
                let channels = if p.first().is_some_and(|toc| toc & 0x04 != 0) {
                    2
                } else {
                    1
                };
                let settings = EncoderSettings {
                    channels,
                    ..EncoderSettings::voice_mono(VOICE_BITRATE)
                };
                (settings, Some(TRACK_LEAD))
            }
            Voice::Pcm(_) | Voice::Silent => (self.settings.clone(), None),
        };
        let path = self.dir.join(format!("track-{id}-{}.ogg", slug(name)));
        let comments = [("ARTIST", name), ("ENCODER", "Booth room")];
        let mut stream = Stream::create(path, &settings, pre_skip, &comments)?;
        let silence = silence_packet(&settings)?;
        let lead = u64::from(pre_skip.is_some());
        for _ in 0..self.ticks + lead {
            stream.packet(&silence)?;
        }
        self.tracks.push(Track {
            id,
            name: name.to_owned(),
            stream,
            silence,
            written: false,
        });
        Ok(self.tracks.len() - 1)
    }

    fn streams(&mut self) -> impl Iterator<Item = &mut Stream> {
        std::iter::once(&mut self.program).chain(self.tracks.iter_mut().map(|t| &mut t.stream))
    }

    fn sync(&mut self) -> Result<(), RecordError> {
        self.last_sync = Instant::now();
        self.streams().try_for_each(|s| s.sync())
    }

    /// Stops recording: reports why (once), then finishes what can be finished and repairs
    /// the rest, so every file plays up to where it stopped.
    fn fail(&mut self, e: RecordError) {
        if self.failure.is_some() {
            return;
        }
        self.stopped.store(true, Ordering::Release);
        self.failure = Some(e.clone());
        (self.on_event)(RecorderEvent::Failed(e));
        let mut kept = Vec::new();
        for s in self.streams() {
            // A full disk may refuse the last page too: repair then cuts what was half written.
            let _ = s.finish();
            s.ogg = None;
            kept.push(repair_file(&s.path).map(|r| r.duration_ms));
        }
        self.kept_ms = kept.first().and_then(|r| r.as_ref().ok().copied());
    }

    fn end(&mut self) -> Result<Recorded, RecordError> {
        if self.failure.is_none() {
            let finished = self.streams().try_for_each(Stream::finish);
            if let Err(e) = finished {
                self.fail(e);
            }
        }
        let program = self.program.path.clone();
        if self.failure.is_some() && self.kept_ms.is_none() {
            return Err(RecordError::Repair {
                path: program,
                reason: "nothing of it could be kept".into(),
            });
        }
        let program_bytes = std::fs::metadata(&program)
            .map_err(|e| RecordError::io(&program, &e))?
            .len();
        let lufs = f64::from(self.meter.integrated_lufs());
        Ok(Recorded {
            program,
            program_bytes,
            duration_ms: self.kept_ms.unwrap_or(self.ticks * 20),
            loudness_lufs: lufs.is_finite().then_some(lufs),
            tracks: (self.tracks.iter())
                .map(|t| (t.name.clone(), t.stream.path.clone()))
                .collect(),
            stopped_by: self.failure.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn names_become_safe_file_name_parts() {
        assert_eq!(slug("Ana María"), "ana-mar-a");
        assert_eq!(slug("  ../../etc "), "etc");
        assert_eq!(slug("日本"), "speaker");
        assert_eq!(slug(&"x".repeat(100)).len(), 40);
    }
}
