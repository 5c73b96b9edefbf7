//! The host worker: a thread that owns the [`HostSession`] (engine, devices, room) for the
//! overlay, so nothing the window does waits on a device or the network. The window sends
//! [`Request`]s and drains [`Report`]s; meters are read straight from the engine's atomics.
//!
//! The worker wakes the window (`wake`) when something it shows has changed: a report, the set
//! of people speaking, the game's ducking by a dB, and, while the meters are on screen, the
//! meters by a dB. At most 30 times a second; the window does not poll.
//!
//! The worker never draws and holds no GUI types; it reports what happened and leaves what to
//! show to the model.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::room_view::Speaking;
use crate::engine::{Command, Feed as Input, MeterReadout, Meters};
use crate::host::{HostOptions, HostSession, HostStatus, InputChoice, Missing, RoomTarget};
use crate::live::RoomNews;
use crate::room::protocol::ServerMsg;
use crate::room::{Action, Event, Role};

/// What the window asks for.
#[derive(Debug)]
pub enum Request {
    /// Go live in a room.
    GoLive(Box<RoomTarget>),
    /// End the room for everyone (the host's `end`), then leave it.
    EndRoom,
    /// A control for the engine.
    Engine(Command),
    /// Use another input.
    SwitchInput(Input, InputChoice),
    /// Play the room's voices on this output (`None`: nowhere).
    Monitor(Option<String>),
    /// A room action.
    Act(Action),
    /// An invitation link for a co-host or a speaker.
    Invite(Role),
}

/// What the worker tells the window.
#[derive(Debug)]
pub enum Report {
    /// The engine runs; its meters.
    Started(Arc<MeterReadout>),
    /// The engine could not start.
    Failed(String),
    /// Something the host session reported.
    Status(HostStatus),
    /// Going live failed.
    LiveFailed(String),
    /// The room was left (ended, or the connection given up).
    Left,
    /// An input now plays from this device.
    Switched(Input, String),
    /// A request could not be done.
    Problem(String),
}

/// The running worker. Dropping it stops the engine, leaves the room and joins the thread.
#[derive(Debug)]
pub struct HostWorker {
    requests: Option<Sender<Request>>,
    reports: Receiver<Report>,
    thread: Option<JoinHandle<()>>,
}

impl HostWorker {
    /// Starts the engine on `opts` (missing devices are waited for, not refused); `wake` is
    /// called from the worker thread whenever the window has something new to draw.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        opts: HostOptions,
        wake: Box<dyn Fn() + Send>,
        meters_on_screen: Arc<AtomicBool>,
    ) -> Result<Self, std::io::Error> {
        let (req_tx, req_rx) = mpsc::channel();
        let (rep_tx, rep_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("booth-host".into())
            .spawn(move || run(&opts, &req_rx, &rep_tx, &*wake, &meters_on_screen))?;
        Ok(Self {
            requests: Some(req_tx),
            reports: rep_rx,
            thread: Some(thread),
        })
    }

    /// Sends a request; false if the worker has stopped.
    pub fn send(&self, request: Request) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|r| r.send(request).is_ok())
    }

    /// The next report, if any.
    pub fn try_report(&self) -> Option<Report> {
        self.reports.try_recv().ok()
    }
}

impl Drop for HostWorker {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The meters as drawn: 1 dB steps; with the meters off screen, only the game's ducking as the
/// status row shows it.
fn drawn(m: &Meters, meters_on_screen: bool) -> [i32; 5] {
    let q = |v: f32| {
        let floor = crate::dsp::METER_FLOOR_DB;
        (if v.is_finite() { v.max(floor) } else { floor }) as i32
    };
    let duck = super::model::duck_readout(m.duck_reduction_db).unwrap_or(0);
    if !meters_on_screen {
        return [duck, 0, 0, 0, 0];
    }
    [
        duck,
        q(m.program_peak_dbfs),
        q(m.game_peak_dbfs),
        q(m.mic_peak_dbfs),
        q(m.program_short_term_lufs),
    ]
}

fn run(
    opts: &HostOptions,
    requests: &Receiver<Request>,
    reports: &Sender<Report>,
    wake: &dyn Fn(),
    meters_on_screen: &AtomicBool,
) {
    let send = |r: Report| {
        let _ = reports.send(r);
        wake();
    };
    let mut session = match HostSession::start(opts, Missing::Wait, &mut |s| {
        send(Report::Status(s));
    }) {
        Ok(s) => s,
        Err(e) => {
            send(Report::Failed(e.to_string()));
            return;
        }
    };
    let meters = session.meters();
    send(Report::Started(Arc::clone(&meters)));
    let frame = Duration::from_millis(33);
    let on_screen = || meters_on_screen.load(Ordering::Relaxed);
    let mut last_drawn = drawn(&meters.read(), on_screen());
    let mut speaking = Speaking::default();
    let mut last_speaking = Vec::new();
    let mut last_wake = Instant::now();
    // Reports queue up; the window is woken for them at most once a frame.
    let post = |r: Report| {
        let _ = reports.send(r);
    };
    let (mut carried, mut recorded) = (false, false);
    loop {
        let Some(handled) = take_requests(&mut session, requests, &post, &mut recorded) else {
            let _ = session.finish();
            return;
        };
        let mut pending = carried || handled;
        let mut ended = false;
        let running = session.tick(frame, &mut |s| {
            if let HostStatus::Room(news) = &s {
                ended |= news.ends_the_channel();
                recorded |= tells_of_an_episode(news);
                // Levels come five times a second; only a change of who speaks is drawn.
                if let RoomNews::Said(ServerMsg::Event(Event::Levels { levels })) = news {
                    speaking.update(levels, Instant::now());
                    post(Report::Status(s));
                    return;
                }
            }
            // Once-a-second meter reports are for the terminal; the window reads the atomics.
            if !matches!(s, HostStatus::Meters(_)) {
                post(Report::Status(s));
                pending = true;
            }
        });
        if ended && session.live().is_some() {
            leave(&mut session, &mut recorded);
            post(Report::Left);
            pending = true;
        }
        if !running {
            send(Report::Failed("the engine stopped".into()));
            return;
        }
        // Who speaks changes with the levels, and when a hold runs out.
        let who = speaking.ids(Instant::now());
        if who != last_speaking {
            last_speaking = who;
            pending = true;
        }
        let now = drawn(&meters.read(), on_screen());
        if now != last_drawn {
            last_drawn = now;
            pending = true;
        }
        // Too soon after the last frame: the change is drawn on the next round.
        carried = pending && last_wake.elapsed() < frame;
        if pending && !carried {
            last_wake = Instant::now();
            wake();
        }
    }
}

/// Handles the requests waiting: whether there were any; `None` once the window has gone.
fn take_requests(
    session: &mut HostSession,
    requests: &Receiver<Request>,
    post: &dyn Fn(Report),
    recorded: &mut bool,
) -> Option<bool> {
    let mut any = false;
    loop {
        match requests.try_recv() {
            Ok(request) => {
                handle(session, request, post, recorded);
                any = true;
            }
            Err(mpsc::TryRecvError::Empty) => return Some(any),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
}

/// Whether the room says it records into an episode.
fn tells_of_an_episode(news: &RoomNews) -> bool {
    match news {
        RoomNews::Said(ServerMsg::Episode(_)) => true,
        RoomNews::Said(ServerMsg::Welcome { room, .. }) => room.episode.is_some(),
        _ => false,
    }
}

/// Leaves the room; an in-process server stays up when the room recorded an episode
/// (`recorded`, from its creation or its messages), which is rendered there and which its
/// host may still change from the overlay.
fn leave(session: &mut HostSession, recorded: &mut bool) {
    if std::mem::take(recorded) {
        session.leave_room_keeping_server();
    } else {
        session.leave_room();
    }
}

fn handle(session: &mut HostSession, request: Request, send: &dyn Fn(Report), recorded: &mut bool) {
    match request {
        Request::GoLive(target) => match session.go_live(&target) {
            Ok(room) => {
                *recorded = room.episode.is_some();
                send(Report::Status(HostStatus::Live(room)));
            }
            Err(e) => send(Report::LiveFailed(e.to_string())),
        },
        Request::EndRoom => {
            if let Some(live) = session.live() {
                live.act(Action::End);
                // The `end` goes out before the connection is closed.
                std::thread::sleep(Duration::from_millis(200));
            }
            leave(session, recorded);
            send(Report::Left);
        }
        Request::Engine(command) => {
            let _ = session.engine().send(command);
        }
        Request::SwitchInput(which, choice) => match session.switch_input(which, &choice) {
            Ok(name) => send(Report::Switched(which, name)),
            Err(e) => send(Report::Problem(e.to_string())),
        },
        Request::Monitor(name) => {
            if let Err(e) = session.set_monitor(name.as_deref()) {
                send(Report::Problem(e.to_string()));
            }
        }
        Request::Act(action) => match session.live() {
            Some(live) => live.act(action),
            None => send(Report::Problem("not live: go live first".into())),
        },
        Request::Invite(role) => match session.live() {
            Some(live) => live.invite(role),
            None => send(Report::Problem("not live: go live first".into())),
        },
    }
}
