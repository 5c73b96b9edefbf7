//! A room's episode while it records: the episode's row, the writer thread ([`Recorder`]) the
//! room's task hands each tick to, and what becomes the episode's chapters and people.
//!
//! The room's task never writes a file: it copies each tick's program packet, its PCM (for the
//! loudness measured while recording) and each stage voice into the recorder's bounded queue.
//! Stopping a recording pauses it (the episode's timeline skips the pause); starting it again
//! resumes the same episode. When the room ends, the recorder finishes its files, and the
//! episode is rendered and published on a thread of its own (`server::episodes`).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::RoomMsg;
use super::sessions::{Kind, Link};
use crate::codec::opus::EncoderSettings;
use crate::episodes::store::{NewEpisode, Store};
use crate::episodes::{Chapter, Person};
use crate::room::protocol::EpisodeRef;
use crate::room::protocol::ServerMsg;
use crate::room::{ParticipantId, Role};
use crate::server::episodes::{self as published, Urls};
use crate::server::recorder::{Recorder, RecorderEvent, VoiceIn};

/// A tick's length, ms.
const TICK_MS: u64 = 20;

/// What a room records into.
pub(super) struct EpisodeRecording {
    /// The episode's number.
    pub id: i64,
    recorder: Option<Recorder>,
    /// Ticks are being recorded (false: paused by a moderator).
    pub on: bool,
    /// Ticks recorded: the program's timeline.
    ticks: u64,
    chapters: Vec<Chapter>,
    people: Vec<(ParticipantId, Person)>,
    store: Arc<Store>,
    /// Whether the recorder has failed (a new start then makes a new episode).
    failed: bool,
}

/// What starting a recording needs of the room.
pub(super) struct Start<'a> {
    pub store: &'a Arc<Store>,
    pub room: &'a str,
    pub title: &'a str,
    pub game: &'a str,
    pub host_key: String,
    pub program: &'a EncoderSettings,
    /// The room task's inbox, where the recorder's failure is reported.
    pub inbox: mpsc::Sender<RoomMsg>,
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    #[error("{0}")]
    Store(#[from] crate::episodes::store::StoreError),
    #[error("{0}")]
    Recorder(#[from] crate::server::recorder::RecordError),
}

impl EpisodeRecording {
    /// A new episode, recording from now.
    pub fn start(s: Start<'_>) -> Result<Self, StartError> {
        let started_ms = published::now_ms();
        let episode = s.store.create(&NewEpisode {
            room: s.room.to_owned(),
            title: s.title.to_owned(),
            game: Some(s.game.to_owned()).filter(|g| !g.is_empty()),
            started_ms,
            host_key: s.host_key,
        })?;
        let id = episode.id;
        let dir = s.store.episode_dir(id);
        let inbox = s.inbox;
        let store = Arc::clone(s.store);
        let on_event = Box::new(move |event: RecorderEvent| match event {
            RecorderEvent::Failed(why) => {
                let _ = inbox.try_send(RoomMsg::RecordingFailed {
                    episode: id,
                    why: why.to_string(),
                });
            }
            RecorderEvent::Finished(result) => {
                published::recorded(&store, id, result);
            }
        });
        let recorder = match Recorder::start(dir, s.program, on_event) {
            Ok(r) => r,
            Err(e) => {
                let why = e.to_string();
                let _ = s.store.modify(id, |ep| {
                    ep.status = crate::episodes::Status::Failed;
                    ep.error = Some(why);
                });
                return Err(e.into());
            }
        };
        let start = Chapter {
            start_ms: 0,
            title: "Start".into(),
        };
        let _ = s.store.modify(id, |e| e.chapters = vec![start.clone()]);
        Ok(Self {
            id,
            recorder: Some(recorder),
            on: true,
            ticks: 0,
            chapters: vec![start],
            people: Vec::new(),
            store: Arc::clone(s.store),
            failed: false,
        })
    }

    /// The episode as clients see it.
    pub fn reference(&self, urls: &Urls) -> EpisodeRef {
        EpisodeRef {
            id: self.id,
            page: urls.page(self.id),
            feed: urls.feed(),
        }
    }

    /// Whether a start should resume this episode (false: it failed; a new one is needed).
    pub fn can_resume(&self) -> bool {
        !self.failed && self.recorder.is_some()
    }

    /// Whether ticks go to the recorder now.
    pub fn recording(&self) -> bool {
        self.on && self.recorder.is_some()
    }

    /// One tick: the program and the voices on stage. Err: the recorder failed (its queue is
    /// full or its writer stopped); the caller turns recording off.
    pub fn tick(
        &mut self,
        program: &[u8],
        pcm: &[f32],
        voices: &[(u64, &str, VoiceIn<'_>)],
    ) -> Result<(), String> {
        let Some(r) = self.recorder.as_mut().filter(|_| self.on) else {
            return Ok(());
        };
        self.ticks += 1;
        r.tick(program, pcm, voices).map_err(|e| e.to_string())
    }

    /// Someone spoke on stage: they are among the episode's people.
    pub fn heard(&mut self, who: ParticipantId, name: &str, role: Option<Role>) {
        let role = match role {
            Some(Role::Host) => "host",
            Some(Role::CoHost) => "co_host",
            _ => "speaker",
        };
        match self.people.iter_mut().find(|(id, _)| *id == who) {
            Some((_, p)) => p.name = name.to_owned(),
            None => self.people.push((
                who,
                Person {
                    name: name.to_owned(),
                    role: role.to_owned(),
                },
            )),
        }
    }

    /// Whether `who` is already among the people (so the room's task looks names up once).
    pub fn knows(&self, who: ParticipantId) -> bool {
        self.people.iter().any(|(id, _)| *id == who)
    }

    /// A moment marked: a chapter at the program's time now (none while paused).
    pub fn moment(&mut self, label: &str) {
        if !self.recording() {
            return;
        }
        let chapter = Chapter {
            start_ms: self.ticks * TICK_MS,
            title: label.to_owned(),
        };
        self.chapters.push(chapter);
        let chapters = self.chapters.clone();
        let _ = self.store.modify(self.id, |e| e.chapters = chapters);
    }

    /// The recorder failed: it is dropped (its writer already stopped), and the episode says why.
    pub fn failed(&mut self, why: &str) {
        self.failed = true;
        self.on = false;
        let people = self.people();
        let _ = self.store.modify(self.id, |e| {
            e.error = Some(format!("recording stopped: {why}"));
            e.people = people;
        });
        if let Some(r) = self.recorder.take() {
            r.finish();
        }
    }

    /// The room ended: the files are finished, then the episode is rendered and published, in
    /// the background.
    pub fn finish(&mut self) {
        self.keep_people();
        if let Some(r) = self.recorder.take() {
            r.finish();
        }
    }

    /// The server stops: returns once every file is finished, and, when `render`, once the
    /// episode is published too (else it is rendered at the next start).
    pub fn finish_now(&mut self, render: bool) {
        self.keep_people();
        if let Some(r) = self.recorder.take() {
            let result = r.finish_and_wait();
            published::recorded_at_shutdown(&self.store, self.id, result);
            if render {
                published::render(&self.store, self.id);
            }
        }
    }

    fn keep_people(&self) {
        let people = self.people();
        let _ = self.store.modify(self.id, |e| e.people = people);
    }

    fn people(&self) -> Vec<Person> {
        self.people.iter().map(|(_, p)| p.clone()).collect()
    }
}

impl super::RoomTask {
    /// A moderator started or stopped the recording: the first start makes the episode, a stop
    /// pauses it, a start after a failure makes a new one.
    pub(super) fn set_recording(&mut self, on: bool) {
        match self.episode.as_mut() {
            Some(e) if e.can_resume() => e.on = on,
            _ if on => self.start_episode(),
            _ => {}
        }
    }

    fn start_episode(&mut self) {
        let snapshot = self.room.snapshot(std::time::Instant::now());
        let started = EpisodeRecording::start(Start {
            store: &self.shared.episodes,
            room: &self.id,
            title: &snapshot.title,
            game: &snapshot.game,
            host_key: self.host_key.clone(),
            program: self.mix.settings(),
            inbox: self.inbox.clone(),
        });
        match started {
            Ok(e) => {
                let reference = e.reference(&self.shared.urls);
                self.episode = Some(e);
                self.tell_moderators(&ServerMsg::Episode(reference));
            }
            Err(e) => {
                tracing::error!("room {}: cannot record: {e}", self.id);
                self.stop_recording_because(&format!("recording could not start: {e}"));
            }
        }
    }

    /// Hands this tick to the recorder: the program, and each stage voice as received.
    pub(super) fn record_tick(&mut self) {
        let Some(episode) = self.episode.as_mut().filter(|e| e.recording()) else {
            return;
        };
        let Some(program) = self.mix.program() else {
            return;
        };
        let mut voices: Vec<(u64, &str, VoiceIn<'_>)> = Vec::new();
        for s in self.sessions.iter().filter(|s| s.kind == Kind::Publish) {
            let Some(who) = s.who else { continue };
            let name = self.members.get(&who).map_or("", |m| m.name.as_str());
            if s.heard && !episode.knows(who) {
                episode.heard(who, name, self.room.role(who));
            }
            let voice = match (&s.packet, &s.link) {
                _ if !s.heard => VoiceIn::Silent,
                (Some(p), _) => VoiceIn::Packet(p),
                (None, Link::Local { .. }) => VoiceIn::Pcm(&s.pcm),
                (None, _) => VoiceIn::Silent,
            };
            voices.push((who.0, name, voice));
        }
        if let Err(why) = episode.tick(program, self.mix.program_pcm(), &voices) {
            let id = episode.id;
            self.recording_failed(id, &why);
        }
    }

    /// The recorder failed: recording is off, the moderators hear why, the room goes on.
    pub(super) fn recording_failed(&mut self, episode: i64, why: &str) {
        let Some(e) = self
            .episode
            .as_mut()
            .filter(|e| e.id == episode && e.can_resume())
        else {
            return;
        };
        tracing::error!("room {}: recording stopped: {why}", self.id);
        e.failed(why);
        self.stop_recording_because(&format!("recording stopped: {why}"));
    }

    /// The moderators hear why first, then everyone that recording is off.
    fn stop_recording_because(&mut self, why: &str) {
        self.tell_moderators(&ServerMsg::error("recording_failed", why, None));
        let _ = self.room.handle(
            crate::room::Input::RecordingStopped,
            std::time::Instant::now(),
        );
        self.pump();
    }

    fn tell_moderators(&mut self, msg: &ServerMsg) {
        let text = super::message(msg);
        let mut stale = Vec::new();
        for (id, m) in &self.members {
            if matches!(self.room.role(*id), Some(Role::Host | Role::CoHost)) {
                super::send_all(*id, &m.conns, &text, &mut stale);
            }
        }
        self.drop_stale(stale);
    }

    /// The room ended: the episode's files are finished, then it is rendered and published.
    pub(super) fn finish_episode(&mut self) {
        if let Some(mut e) = self.episode.take() {
            e.finish();
        }
    }

    /// The server stops: the files are finished (on a blocking thread), and the episode
    /// rendered when `render`, before the answer.
    pub(super) fn shutdown(&mut self, render: bool, reply: tokio::sync::oneshot::Sender<()>) {
        let episode = self.episode.take();
        // Endless HTTP streams end now, or the HTTP server would wait on them for ever.
        self.live.end();
        self.live_feed = None;
        tokio::task::spawn_blocking(move || {
            if let Some(mut e) = episode {
                e.finish_now(render);
            }
            let _ = reply.send(());
        });
    }
}
