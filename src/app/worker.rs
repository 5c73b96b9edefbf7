//! The host worker: a thread that owns the [`HostSession`] (engine, devices, room) for the
//! overlay, so nothing the window does waits on a device or the network. The window sends
//! [`Request`]s and drains [`Report`]s; meters are read straight from the engine's atomics.
//!
//! The worker wakes the window (`wake`) when it has a report, and when the meters have moved
//! enough to change what is drawn, at most 30 times a second: the window does not poll.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::{Command, Input, MeterReadout, Meters};
use crate::host::{HostOptions, HostSession, HostStatus, InputChoice, Missing, RoomTarget};

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
    /// A room action, as JSON (`{"type": "approve", "target": 7}`).
    Act(serde_json::Value),
    /// An invitation link for `co_host` or `speaker`.
    Invite(String),
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
    pub fn start(opts: HostOptions, wake: Box<dyn Fn() + Send>) -> Result<Self, std::io::Error> {
        let (req_tx, req_rx) = mpsc::channel();
        let (rep_tx, rep_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("booth-host".into())
            .spawn(move || run(&opts, &req_rx, &rep_tx, &*wake))?;
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

/// A meter reading as drawn: 1 dB steps.
fn drawn(m: &Meters) -> [i32; 5] {
    let q = |v: f32| {
        if v.is_finite() {
            v.max(-90.0) as i32
        } else {
            -90
        }
    };
    [
        q(m.program_peak_dbfs),
        q(m.game_peak_dbfs),
        q(m.mic_peak_dbfs),
        q(m.duck_reduction_db),
        q(m.program_short_term_lufs),
    ]
}

fn run(
    opts: &HostOptions,
    requests: &Receiver<Request>,
    reports: &Sender<Report>,
    wake: &dyn Fn(),
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
    let mut last_drawn = drawn(&meters.read());
    let mut last_wake = Instant::now();
    loop {
        loop {
            match requests.try_recv() {
                Ok(request) => handle(&mut session, request, &send),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = session.finish();
                    return;
                }
            }
        }
        let mut ended = false;
        let running = session.tick(frame, &mut |s| {
            ended |= matches!(&s, HostStatus::Room(v) if v["type"] == "ended")
                || matches!(&s, HostStatus::Room(v) if v["type"] == "error"
                    && matches!(v["code"].as_str(), Some("removed" | "unauthorized" | "room_ended")));
            // Once-a-second meter reports are for the terminal; the window reads the atomics.
            if !matches!(s, HostStatus::Meters(_)) {
                send(Report::Status(s));
            }
        });
        if ended && session.live().is_some() {
            session.leave_room();
            send(Report::Left);
        }
        if !running {
            send(Report::Failed("the engine stopped".into()));
            return;
        }
        let now = drawn(&meters.read());
        if now != last_drawn && last_wake.elapsed() >= frame {
            last_drawn = now;
            last_wake = Instant::now();
            wake();
        }
    }
}

fn handle(session: &mut HostSession, request: Request, send: &dyn Fn(Report)) {
    match request {
        Request::GoLive(target) => match session.go_live(&target) {
            Ok(room) => send(Report::Status(HostStatus::Live(room))),
            Err(e) => send(Report::LiveFailed(e.to_string())),
        },
        Request::EndRoom => {
            if let Some(live) = session.live() {
                live.act(serde_json::json!({"type": "end"}));
                // The `end` goes out before the connection is closed.
                std::thread::sleep(Duration::from_millis(200));
            }
            session.leave_room();
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
            Some(live) => live.invite(&role),
            None => send(Report::Problem("not live: go live first".into())),
        },
    }
}
