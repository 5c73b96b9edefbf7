//! The overlay's state and everything a user can do in it, apart from how it is drawn: no GUI
//! types here. The views call these methods; tests call them too, or click the views.
//!
//! The model owns the [`HostWorker`] (engine, devices, room), the [`RoomView`] built from the
//! room's messages, and the [`Settings`], which it saves (debounced) whenever they change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::episode::EpisodePanel;
use super::forwards::ForwardPanel;
use super::room_view::{RoomNotice, RoomView};
use super::settings::Settings;
use super::worker::{HostWorker, Report, Request};
use crate::audio::{DeviceInfo, DeviceSelector, Direction};
use crate::dsp::ProgramSettings;
use crate::engine::{Command, EngineEvent, Feed as Input, MeterReadout, Meters};
use crate::host::{HostOptions, HostStatus, InputChoice, RoomTarget};
use crate::live::{LiveRoom, RoomNews};
use crate::room::protocol::ServerMsg;
use crate::room::{Action, ParticipantId, Role};

/// Where the overlay is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The engine is starting.
    Starting,
    /// The engine runs; not live.
    Ready,
    /// Going live (starting the server, creating the room, connecting the media).
    GoingLive,
    /// Live in this room.
    Live(LiveRoom),
    /// The engine could not run (the message says why).
    Broken(String),
}

/// How serious a notice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// For information.
    Info,
    /// Something failed; the rest goes on.
    Problem,
}

/// A message shown in the window until dismissed (or, for information, for a while).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// What happened and what to do.
    pub text: String,
    /// How serious.
    pub level: Level,
    /// When.
    pub at: Instant,
}

/// The game's ducking as the status row shows it: in 3 dB steps, so that it reads at a glance
/// and does not redraw the window for every dB of a fade. `None` when the game is not ducked.
#[must_use]
pub fn duck_readout(reduction_db: f32) -> Option<i32> {
    let steps = (reduction_db / 3.0).round();
    (reduction_db.is_finite() && steps >= 1.0).then(|| steps as i32 * 3)
}

/// How long an information notice stays.
const INFO_SHOWN: Duration = Duration::from_secs(8);

/// What a global hotkey does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotkeyAction {
    /// Mute or unmute the mic.
    ToggleMute,
    /// Push-to-talk key pressed (true) or released (false).
    PushToTalk(bool),
    /// Mark a moment.
    MarkMoment,
    /// Clicks go through the window, or not.
    ToggleClickThrough,
}

/// An input's state, for its row in the audio panel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputStatus {
    /// The device it plays from.
    pub device: Option<String>,
    /// Why it is not playing.
    pub lost: Option<String>,
}

/// Sound devices, for the pickers.
#[derive(Clone, Debug, Default)]
pub struct DeviceLists {
    /// Game audio candidates: monitors (loopback) first.
    pub game: Vec<DeviceInfo>,
    /// Microphones (inputs that are not monitors).
    pub mic: Vec<DeviceInfo>,
    /// Outputs, for the room's voices.
    pub outputs: Vec<DeviceInfo>,
}

/// What the overlay was started with besides its settings.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Where the settings live; `None` keeps them in memory only.
    pub settings_path: Option<PathBuf>,
    /// Play these files as the game and the mic (demos, tests) instead of devices.
    pub files: Option<(PathBuf, PathBuf)>,
    /// A remote room server (`--server`), over the settings' one.
    pub server: Option<String>,
    /// Where an in-process room server keeps its recordings.
    pub data_dir: PathBuf,
    /// UDP ports for an in-process server's media.
    pub udp_ports: (u16, u16),
    /// Go live at once.
    pub go_live: bool,
}

/// The overlay.
pub struct Overlay {
    /// What the user set (saved).
    pub settings: Settings,
    saved: Settings,
    save_due: Option<Instant>,
    launch: Launch,
    wake: Arc<dyn Fn() + Send + Sync>,
    worker: Option<HostWorker>,
    meters: Option<Arc<MeterReadout>>,
    /// Where the overlay is.
    pub phase: Phase,
    /// The room as last heard.
    pub room: RoomView,
    /// The mic is muted.
    pub muted: bool,
    /// The push-to-talk key is down.
    pub ptt_held: bool,
    /// Messages for the user.
    pub notices: Vec<Notice>,
    /// Devices for the pickers.
    pub devices: DeviceLists,
    /// Invitation links by role.
    pub invites: BTreeMap<Role, String>,
    /// The game input.
    pub game_input: InputStatus,
    /// The mic input.
    pub mic_input: InputStatus,
    /// The engine's settings as it last confirmed them.
    pub applied: Option<ProgramSettings>,
    /// Clicks pass through the window.
    pub click_through: bool,
    /// The hotkeys were edited (the window registers them again).
    pub hotkeys_changed: bool,
    /// The episode the last room became, once it has ended (until the next room).
    pub episode: Option<EpisodePanel>,
    /// While live: the room's WHIP forwards.
    pub forwards: Option<ForwardPanel>,
    /// The user ended the room (the off-air notice says so).
    ending: bool,
    /// The meters are on screen (the worker wakes the window for them only then).
    meters_on_screen: Arc<AtomicBool>,
    /// The lookahead the running engine was built with (it changes on the next start).
    engine_lookahead_ms: f32,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("phase", &self.phase)
            .field("muted", &self.muted)
            .finish_non_exhaustive()
    }
}

impl Overlay {
    /// Loads the settings (a bad file is a notice, and the defaults), lists the devices and
    /// starts the engine. `wake` asks the window to draw (from any thread).
    #[must_use]
    pub fn new(launch: Launch, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        let mut notices = Vec::new();
        let settings = match &launch.settings_path {
            Some(path) => Settings::load(path).unwrap_or_else(|e| {
                notices.push(Notice {
                    text: e.to_string(),
                    level: Level::Problem,
                    at: Instant::now(),
                });
                Settings::default()
            }),
            None => Settings::default(),
        };
        let mut overlay = Self {
            saved: settings.clone(),
            click_through: settings.click_through,
            hotkeys_changed: false,
            settings,
            save_due: None,
            launch,
            wake,
            worker: None,
            meters: None,
            phase: Phase::Starting,
            room: RoomView::default(),
            muted: false,
            ptt_held: false,
            notices,
            devices: DeviceLists::default(),
            invites: BTreeMap::new(),
            game_input: InputStatus::default(),
            mic_input: InputStatus::default(),
            applied: None,
            engine_lookahead_ms: 0.0,
            meters_on_screen: Arc::new(AtomicBool::new(false)),
            ending: false,
            episode: None,
            forwards: None,
        };
        overlay.refresh_devices();
        overlay.start_engine();
        overlay
    }

    fn host_options(&self) -> HostOptions {
        let s = &self.settings;
        let device = |name: &str, default: DeviceSelector| {
            InputChoice::Device(if name.is_empty() {
                default
            } else {
                DeviceSelector::Named(name.to_owned())
            })
        };
        let (game, mic) = match &self.launch.files {
            Some((g, m)) => (InputChoice::File(g.clone()), InputChoice::File(m.clone())),
            None => (
                device(&s.game_device, DeviceSelector::DefaultGameMonitor),
                device(&s.mic_device, DeviceSelector::DefaultMic),
            ),
        };
        HostOptions {
            game,
            mic,
            remote: None,
            monitor_device: (!s.monitor_device.is_empty()).then(|| s.monitor_device.clone()),
            record: None,
            seconds: None,
            settings: s.program(self.muted),
            noise_suppression: s.noise_suppression,
            bitrate_kbps: 128,
            room: None,
            whip: None,
        }
    }

    /// (Re)starts the engine with the current settings; leaves any room.
    pub fn start_engine(&mut self) {
        self.worker = None;
        self.meters = None;
        self.room = RoomView::default();
        self.game_input = InputStatus::default();
        self.mic_input = InputStatus::default();
        self.engine_lookahead_ms = self.settings.duck_lookahead_ms;
        let wake = Arc::clone(&self.wake);
        match HostWorker::start(
            self.host_options(),
            Box::new(move || wake()),
            Arc::clone(&self.meters_on_screen),
        ) {
            Ok(w) => {
                self.worker = Some(w);
                self.phase = Phase::Starting;
                if self.settings.push_to_talk {
                    self.send_ptt();
                }
            }
            Err(e) => self.phase = Phase::Broken(format!("cannot start the audio engine: {e}")),
        }
    }

    /// Lists the sound devices again.
    pub fn refresh_devices(&mut self) {
        match crate::audio::list_devices() {
            Ok(list) => {
                let mut game: Vec<DeviceInfo> = list
                    .iter()
                    .filter(|d| d.direction == Direction::Input)
                    .cloned()
                    .collect();
                game.sort_by_key(|d| !d.is_monitor);
                self.devices = DeviceLists {
                    mic: list
                        .iter()
                        .filter(|d| d.direction == Direction::Input && !d.is_monitor)
                        .cloned()
                        .collect(),
                    outputs: list
                        .iter()
                        .filter(|d| d.direction == Direction::Output)
                        .cloned()
                        .collect(),
                    game,
                };
            }
            Err(e) => self.problem(format!("cannot list the sound devices: {e}")),
        }
    }

    /// Meter readings now (all silent before the engine runs).
    #[must_use]
    pub fn meters(&self) -> Option<Meters> {
        self.meters.as_ref().map(|m| m.read())
    }

    /// Says whether the meters are drawn now, so that their movement redraws the window only
    /// then.
    pub fn set_meters_on_screen(&self, shown: bool) {
        self.meters_on_screen.store(shown, Ordering::Relaxed);
    }

    /// Whether the program is live.
    #[must_use]
    pub fn live_room(&self) -> Option<&LiveRoom> {
        match &self.phase {
            Phase::Live(room) => Some(room),
            _ => None,
        }
    }

    /// Time since the room started.
    #[must_use]
    pub fn live_for(&self, now: Instant) -> Option<Duration> {
        self.live_room()?;
        Some(now.saturating_duration_since(self.room.started?))
    }

    /// Whether the voice goes out now (not muted; with push-to-talk, the key is down).
    #[must_use]
    pub fn mic_open(&self) -> bool {
        !self.muted && (!self.settings.push_to_talk || self.ptt_held)
    }

    fn send(&mut self, request: Request) {
        let sent = self.worker.as_ref().is_some_and(|w| w.send(request));
        if !sent {
            self.problem("the audio engine is not running".into());
        }
    }

    fn problem(&mut self, text: String) {
        self.notices.push(Notice {
            text,
            level: Level::Problem,
            at: Instant::now(),
        });
    }

    fn info(&mut self, text: String) {
        self.notices.push(Notice {
            text,
            level: Level::Info,
            at: Instant::now(),
        });
    }

    /// Dismisses a notice.
    pub fn dismiss(&mut self, index: usize) {
        if index < self.notices.len() {
            self.notices.remove(index);
        }
    }

    /// Goes live with the title and game in the settings.
    pub fn go_live(&mut self) {
        if !matches!(self.phase, Phase::Ready) {
            return;
        }
        let s = &self.settings;
        let server = self
            .launch
            .server
            .clone()
            .or_else(|| (!s.server.trim().is_empty()).then(|| s.server.trim().to_owned()));
        let bind = match s.bind.parse() {
            Ok(b) => b,
            Err(_) => {
                self.problem(format!(
                    "'{}' is not an address to listen on (like 0.0.0.0:8080)",
                    s.bind
                ));
                return;
            }
        };
        let icecast = s.icecast.trim().to_owned();
        if let Err(e) = crate::server::live::icecast::IcecastTarget::parse(&icecast)
            && !icecast.is_empty()
        {
            self.problem(format!(
                "{e}; or clear the Icecast field in the room's settings"
            ));
            return;
        }
        let title = if s.title.trim().is_empty() {
            "Live room".to_owned()
        } else {
            s.title.trim().to_owned()
        };
        let target = RoomTarget {
            server,
            bind,
            udp_ports: self.launch.udp_ports,
            data_dir: self.launch.data_dir.clone(),
            title,
            game: s.game.trim().to_owned(),
            room: None,
            token: None,
            room_key: None,
            record: s.record_episode,
            icecast: (!icecast.is_empty()).then_some(icecast),
        };
        self.invites.clear();
        self.room = RoomView::default();
        self.episode = None;
        self.phase = Phase::GoingLive;
        self.send(Request::GoLive(Box::new(target)));
    }

    /// Ends the room for everyone.
    pub fn end_room(&mut self) {
        if self.live_room().is_some() {
            self.ending = true;
            self.send(Request::EndRoom);
        }
    }

    /// Mutes or unmutes the mic.
    pub fn toggle_mute(&mut self) {
        self.muted = !self.muted;
        self.apply_program();
        if self.live_room().is_some() {
            let action = if self.muted {
                Action::MuteSelf
            } else {
                Action::Unmute
            };
            self.send(Request::Act(action));
        }
    }

    /// Turns push-to-talk on or off.
    pub fn set_push_to_talk(&mut self, on: bool) {
        self.settings.push_to_talk = on;
        self.ptt_held = false;
        self.send_ptt();
        self.changed();
    }

    fn send_ptt(&mut self) {
        let (enabled, held) = (self.settings.push_to_talk, self.ptt_held);
        self.send(Request::Engine(Command::PushToTalk { enabled, held }));
    }

    /// Does what a global hotkey asks.
    pub fn hotkey(&mut self, action: HotkeyAction) {
        match action {
            HotkeyAction::ToggleMute => self.toggle_mute(),
            HotkeyAction::PushToTalk(held) => {
                if self.settings.push_to_talk && self.ptt_held != held {
                    self.ptt_held = held;
                    self.send_ptt();
                }
            }
            HotkeyAction::MarkMoment => self.mark_moment(),
            HotkeyAction::ToggleClickThrough => {
                self.click_through = !self.click_through;
                self.settings.click_through = self.click_through;
                self.changed();
            }
        }
    }

    /// Sends gains, ducking and mute to the engine (after a slider moved).
    pub fn apply_program(&mut self) {
        self.settings.clamp();
        let program = self.settings.program(self.muted);
        self.send(Request::Engine(Command::Settings(program)));
        self.changed();
    }

    /// The lookahead has changed since the engine started (it applies on a restart).
    #[must_use]
    pub fn lookahead_pending(&self) -> bool {
        (self.settings.duck_lookahead_ms - self.engine_lookahead_ms).abs() > 0.01
    }

    /// Noise suppression on or off.
    pub fn set_noise_suppression(&mut self, on: bool) {
        self.settings.noise_suppression = on;
        self.send(Request::Engine(Command::NoiseSuppression(on)));
        self.changed();
    }

    /// Picks a device for the game or the mic (`""`: the default).
    pub fn pick_input(&mut self, which: Input, name: &str) {
        let (slot, default) = match which {
            Input::Game => (
                &mut self.settings.game_device,
                DeviceSelector::DefaultGameMonitor,
            ),
            _ => (&mut self.settings.mic_device, DeviceSelector::DefaultMic),
        };
        name.clone_into(slot);
        let selector = if name.is_empty() {
            default
        } else {
            DeviceSelector::Named(name.to_owned())
        };
        self.send(Request::SwitchInput(which, InputChoice::Device(selector)));
        self.changed();
    }

    /// Picks where the room's voices play (`""`: nowhere).
    pub fn pick_monitor(&mut self, name: &str) {
        name.clone_into(&mut self.settings.monitor_device);
        self.send(Request::Monitor(
            (!name.is_empty()).then(|| name.to_owned()),
        ));
        self.changed();
    }

    fn act(&mut self, action: Action) {
        if self.live_room().is_some() {
            self.send(Request::Act(action));
        }
    }

    /// Brings a raised hand on stage.
    pub fn approve(&mut self, id: u64) {
        self.act(Action::Approve {
            target: ParticipantId(id),
        });
    }

    /// Lowers a raised hand.
    pub fn deny(&mut self, id: u64) {
        self.act(Action::Deny {
            target: ParticipantId(id),
        });
    }

    /// Mutes someone on stage.
    pub fn mute_member(&mut self, id: u64) {
        self.act(Action::Mute {
            target: ParticipantId(id),
        });
    }

    /// Moves someone from the stage to the audience.
    pub fn move_to_audience(&mut self, id: u64) {
        self.act(Action::MoveToAudience {
            target: ParticipantId(id),
        });
    }

    /// Removes someone from the room.
    pub fn remove(&mut self, id: u64) {
        self.act(Action::Remove {
            target: ParticipantId(id),
        });
    }

    /// Makes a speaker a co-host, or a co-host a speaker again.
    pub fn toggle_co_host(&mut self, id: u64) {
        let is_co = self
            .room
            .stage
            .iter()
            .any(|m| m.id == id && m.role == Role::CoHost);
        let target = ParticipantId(id);
        self.act(if is_co {
            Action::UnmakeCoHost { target }
        } else {
            Action::MakeCoHost { target }
        });
    }

    /// Recording on or off.
    pub fn toggle_recording(&mut self) {
        self.act(if self.room.recording {
            Action::StopRecording
        } else {
            Action::StartRecording
        });
    }

    /// Marks a moment (a chapter in the episode).
    pub fn mark_moment(&mut self) {
        if self.live_room().is_some() {
            self.act(Action::MarkMoment { label: None });
            self.info("moment marked".into());
        }
    }

    /// Asks for an invitation link for a co-host or a speaker.
    pub fn invite(&mut self, role: Role) {
        if self.live_room().is_some() {
            self.send(Request::Invite(role));
        }
    }

    /// Remembers that the settings changed; they are saved a moment later.
    pub fn changed(&mut self) {
        if self.settings != self.saved {
            self.save_due = Some(Instant::now() + Duration::from_millis(500));
        }
    }

    /// Saves the settings now if they changed.
    pub fn save_now(&mut self) {
        self.save_due = None;
        if self.settings == self.saved {
            return;
        }
        if let Some(path) = self.launch.settings_path.clone() {
            match self.settings.save(&path) {
                Ok(()) => self.saved = self.settings.clone(),
                Err(e) => self.problem(e.to_string()),
            }
        }
    }

    /// Takes in what the worker reported, saves due settings, expires old notices. Call once
    /// per frame.
    pub fn logic(&mut self, now: Instant) {
        let mut reports = Vec::new();
        if let Some(w) = &self.worker {
            while let Some(r) = w.try_report() {
                reports.push(r);
            }
        }
        for r in reports {
            self.take(r, now);
        }
        if let Some(episode) = &mut self.episode {
            episode.poll();
        }
        if self.live_room().is_none() {
            self.forwards = None;
        }
        if let Some(forwards) = &mut self.forwards {
            forwards.poll();
        }
        if self.save_due.is_some_and(|t| now >= t) {
            self.save_now();
        }
        self.room.expire(now);
        self.notices.retain(|n| {
            n.level == Level::Problem || now.saturating_duration_since(n.at) < INFO_SHOWN
        });
    }

    /// When the window should next draw if nothing else happens (the clock, expiring notices).
    #[must_use]
    pub fn next_change(&self) -> Option<Duration> {
        if self.save_due.is_some() || matches!(self.phase, Phase::Starting | Phase::GoingLive) {
            return Some(Duration::from_millis(100));
        }
        if self.live_room().is_some() || self.notices.iter().any(|n| n.level == Level::Info) {
            return Some(Duration::from_secs(1));
        }
        None
    }

    fn take(&mut self, report: Report, now: Instant) {
        match report {
            Report::Started(meters) => {
                self.meters = Some(meters);
                self.phase = Phase::Ready;
                if self.launch.go_live {
                    self.launch.go_live = false;
                    self.go_live();
                }
            }
            Report::Failed(why) => self.phase = Phase::Broken(why),
            Report::LiveFailed(why) => {
                self.phase = Phase::Ready;
                self.problem(format!("could not go live: {why}"));
            }
            Report::Left => {
                if self.live_room().is_some() {
                    self.watch_episode();
                    self.phase = Phase::Ready;
                    let why = if std::mem::take(&mut self.ending) {
                        "you ended the room".to_owned()
                    } else {
                        self.room
                            .ended
                            .clone()
                            .unwrap_or_else(|| "the room has ended".into())
                    };
                    self.info(format!("off air: {why}"));
                }
            }
            Report::Switched(which, name) => {
                let slot = self.input_mut(which);
                slot.device = Some(name);
                slot.lost = None;
            }
            Report::Problem(why) => self.problem(why),
            Report::Status(status) => self.take_status(status, now),
        }
    }

    /// The room that just ended recorded an episode: the panel follows it on the room's server.
    fn watch_episode(&mut self) {
        let Some(live) = self.live_room() else {
            return;
        };
        let Some(episode) = self.room.episode.as_ref().or(live.episode.as_ref()) else {
            return;
        };
        let panel = EpisodePanel::watch(&live.server, &live.token, episode, Arc::clone(&self.wake));
        self.episode = Some(panel);
    }

    fn input_mut(&mut self, which: Input) -> &mut InputStatus {
        match which {
            Input::Game => &mut self.game_input,
            _ => &mut self.mic_input,
        }
    }

    /// An input plays from `name` now (opened, back, or moved to a new default).
    fn input_on(&mut self, which: Input, name: String) {
        let slot = self.input_mut(which);
        slot.device = Some(name);
        slot.lost = None;
    }

    fn take_status(&mut self, status: HostStatus, now: Instant) {
        match status {
            HostStatus::Live(room) => {
                // The in-process server takes another port when the usual one is busy: say so,
                // since links made for the usual port will not reach this room.
                let wanted = self
                    .settings
                    .bind
                    .parse::<std::net::SocketAddr>()
                    .map_or(0, |a| a.port());
                if room.embedded && wanted != 0 && !room.server.ends_with(&format!(":{wanted}")) {
                    let used = room.server.rsplit(':').next().unwrap_or("another");
                    self.info(format!(
                        "Port {wanted} is in use by another program, so this room runs on port {used}."
                    ));
                }
                self.forwards = Some(ForwardPanel::watch(
                    &room.server,
                    &room.token,
                    &room.room,
                    Arc::clone(&self.wake),
                ));
                self.phase = Phase::Live(room);
                self.room.started = Some(now);
            }
            HostStatus::Lost(which, why) => {
                let what = input_name(which);
                self.problem(format!(
                    "The {what} is gone ({why}). Booth goes on without it and picks it up when it is back; or pick another in Audio."
                ));
                let slot = self.input_mut(which);
                slot.lost = Some(why);
            }
            HostStatus::Opened(which, source) => self.input_on(which, source.name),
            HostStatus::Back(which, name) => {
                let what = input_name(which);
                self.info(format!("The {what} is back: {name}"));
                self.input_on(which, name);
            }
            HostStatus::MonitorLost(why) => self.problem(format!(
                "Where you hear the room is gone: {why}. Booth plays the room there again when it is back; or pick another in Audio."
            )),
            HostStatus::MonitorBack(name) => {
                self.info(format!("You hear the room on {name} again."));
            }
            HostStatus::Followed(which, name) => {
                let what = input_name(which);
                self.info(format!("The {what} follows the new default: {name}"));
                self.input_on(which, name);
            }
            HostStatus::Engine(EngineEvent::SettingsApplied(s)) => self.applied = Some(s),
            HostStatus::Engine(EngineEvent::SettingsRefused(why)) => {
                self.problem(format!("the engine refused the settings: {why}"));
            }
            HostStatus::Engine(_) | HostStatus::Meters(_) | HostStatus::Publishing(_) => {}
            HostStatus::WhipLost(why) => {
                self.problem(format!("The WHIP endpoint's session ended: {why}"));
            }
            HostStatus::RoomLost(why) => {
                self.problem(format!(
                    "The connection to the room dropped ({why}). Your audio still runs; go live again to start a new room."
                ));
                if self.live_room().is_some() {
                    self.phase = Phase::Ready;
                }
            }
            HostStatus::Room(news) => {
                // The host's name on stage, once the room has welcomed us.
                let name = self.settings.name.trim().to_owned();
                if let RoomNews::Said(ServerMsg::Welcome { you, .. }) = &news
                    && !name.is_empty()
                    && you.name != name
                {
                    self.send(Request::Act(Action::SetName { name }));
                }
                self.heard(&news, now);
            }
        }
    }

    fn heard(&mut self, news: &RoomNews, now: Instant) {
        match self.room.apply(news, now) {
            RoomNotice::Nothing => {}
            RoomNotice::Refused(why) => self.problem(format!("The room says: {why}")),
            RoomNotice::RecordingFailed(why) => self.problem(format!(
                "Recording failed ({why}). The room goes on unrecorded: free disk space or fix the data folder's permissions, then press Record to record again."
            )),
            RoomNotice::InviteLink { role, link } => {
                self.invites.insert(role, link);
            }
        }
    }
}

/// What the user calls an input.
fn input_name(which: Input) -> &'static str {
    match which {
        Input::Game => "game audio",
        Input::Mic => "microphone",
        Input::Remote => "room's voices",
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        self.save_now();
    }
}
