//! The pump: who serves every stream's connection, and when. The engine's thread serves them
//! right before it pulls its inputs ([`pump_now`]); a thread of this module's own serves them
//! once a period only while nobody else does.
//!
//! Serving is the "device callback": it must never allocate (once buffers have grown), wait,
//! or log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use cpal::{
    Data, Error, InputCallbackInfo, InputStreamTimestamp, OutputCallbackInfo, SampleFormat,
};

use super::client::io_error;
use super::connection::{Connection, Drained};
use super::format::Samples;
use super::instant;
use super::stream::Flags;

/// A record stream's data callback, boxed so one thread can serve callbacks of any type.
pub(super) type DataCallback = Box<dyn FnMut(&Data, &InputCallbackInfo) + Send>;
/// A playback stream's data callback.
pub(super) type PlayCallback = Box<dyn FnMut(&mut Data, &OutputCallbackInfo) + Send>;
/// A stream's error callback.
pub(super) type ErrorCallback = Box<dyn FnMut(Error) + Send>;

/// Which way a stream's samples go, and what the pump keeps for that.
pub(super) enum Way {
    /// From the server to the callback.
    Record { data: DataCallback },
    /// From the callback to the server, as much as the server asked for.
    Play {
        data: PlayCallback,
        /// The message being sent (a descriptor and the samples, or a command): reused, so it
        /// grows to a request's worth and stays.
        outbox: Vec<u8>,
        /// How much of it the socket took so far.
        sent: usize,
    },
}

/// One stream, as the pump serves it.
pub(super) struct Pumped {
    pub(super) read: Connection,
    pub(super) way: Way,
    pub(super) error: ErrorCallback,
    /// Recording: samples waiting for the callback. Playing: the callback's buffer. Grows to
    /// the largest period's worth, then stays.
    pub(super) samples: Samples,
    pub(super) flags: Arc<Flags>,
}

/// Every stream, the pump thread, and when a caller last served the streams itself.
struct Pump {
    served: Mutex<Served>,
    /// Microseconds since `epoch` when [`pump_now`] last served the streams; 0 for never.
    driven_at: AtomicU64,
    epoch: Instant,
    thread: Mutex<Option<std::thread::Thread>>,
}

/// What serving needs: the streams and one read buffer for all of them.
struct Served {
    streams: Vec<Pumped>,
    read_buf: Vec<u8>,
}

impl Served {
    /// Reads each stream's connection and calls its callbacks; lets ended streams go. Returns
    /// the shortest period asked for, `None` with no streams.
    fn serve_all(&mut self) -> Option<Duration> {
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].serve(&mut self.read_buf) {
                i += 1;
            } else {
                let gone = self.streams.swap_remove(i);
                let flags = Arc::clone(&gone.flags);
                drop(gone);
                flags.done.store(true, Ordering::Release);
            }
        }
        self.streams.iter().map(|s| s.read.period).min()
    }
}

static PUMP: OnceLock<Pump> = OnceLock::new();

/// While a caller serves the streams through [`pump_now`] at least this often, the pump thread
/// stays asleep; when it stops, the thread takes over after this long.
const DRIVEN_GRACE: Duration = Duration::from_millis(100);

/// Calls within this long of the last one find nothing new and return at once (every lane of
/// the engine calls, once a block).
const DRIVEN_REPEAT: Duration = Duration::from_millis(1);

fn the_pump() -> &'static Pump {
    PUMP.get_or_init(|| Pump {
        served: Mutex::new(Served {
            streams: Vec::new(),
            read_buf: vec![0u8; 64 * 1024],
        }),
        driven_at: AtomicU64::new(0),
        epoch: Instant::now(),
        thread: Mutex::new(None),
    })
}

impl Pump {
    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// When a caller last served the streams, if that was within `within` of `now`.
    fn driven_within(&self, now: Instant, within: Duration) -> Option<Instant> {
        let at = self.driven_at.load(Ordering::Relaxed);
        if at == 0 {
            return None;
        }
        let at = self.epoch + Duration::from_micros(at);
        (now.saturating_duration_since(at) < within).then_some(at)
    }
}

/// Hands a stream to the pump: one thread serves every PulseAudio source, so two captures wake
/// once a period, not twice; or none does, while the engine serves them ([`pump_now`]).
pub(super) fn pump(stream: Pumped) -> Result<(), Error> {
    let pump = the_pump();
    pump.served
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .streams
        .push(stream);
    let mut thread = pump.thread.lock().unwrap_or_else(|e| e.into_inner());
    match thread.as_ref() {
        Some(t) => t.unpark(),
        None => {
            let handle = std::thread::Builder::new()
                .name("booth-pulse".to_owned())
                .spawn(run_pump)
                .map_err(io_error)?;
            *thread = Some(handle.thread().clone());
        }
    }
    Ok(())
}

/// Serves every PulseAudio stream now, on the caller's thread: reads what each server sent and
/// calls the streams' callbacks (which only copy into their rings). The engine calls it right
/// before it pulls its inputs, once a block: the samples are as fresh as they can be, and no
/// thread of its own wakes between the engine's blocks (the pump thread sleeps while this is
/// called at least every [`DRIVEN_GRACE`]).
///
/// Never waits: while the pump thread is serving (it took over from a caller that stopped), this
/// returns at once and the thread's serving stands for it. Allocation-free once the streams'
/// buffers have grown to a period's worth.
pub fn pump_now() {
    let Some(pump) = PUMP.get() else {
        return;
    };
    let now = Instant::now();
    if pump.driven_within(now, DRIVEN_REPEAT).is_some() {
        return;
    }
    let mut served = match pump.served.try_lock() {
        Ok(served) => served,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    served.serve_all();
    pump.driven_at.store(pump.micros(now), Ordering::Relaxed);
}

/// Wakes once a period (the shortest asked for), reads everything each server sent
/// meanwhile, and hands each stream's samples to its callback in one call, as a device with
/// that period would. The server sends as often as its source renders (every 5 ms on a busy
/// low-latency sink); waking for each packet would cost a context switch each, more than the
/// copying itself. With no streams it sleeps until one comes; while a caller serves the
/// streams ([`pump_now`]) it sleeps until that caller stops.
fn run_pump() {
    let pump = the_pump();
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if let Some(at) = pump.driven_within(now, DRIVEN_GRACE) {
            std::thread::sleep((at + DRIVEN_GRACE).saturating_duration_since(now));
            next = Instant::now();
            continue;
        }
        let period = pump
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .serve_all();
        let Some(period) = period else {
            // Unparked by the next stream (a wake-up for nothing only comes round again).
            std::thread::park();
            next = Instant::now();
            continue;
        };
        // Deadline-paced; after a stall (a suspended machine) start afresh from now.
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

impl Pumped {
    /// Reads what has come and hands it over (recording), or writes what the server asked for
    /// (playing); false once the stream has ended (closed by its owner, or by the server, which
    /// the error callback is told).
    fn serve(&mut self, read_buf: &mut [u8]) -> bool {
        if self.flags.closing.load(Ordering::Relaxed) {
            return false;
        }
        let drained = self.read.drain(read_buf);
        let recording = matches!(self.way, Way::Record { .. });
        let mut ended = self
            .read
            .take_messages(recording.then_some(&mut self.samples));
        if ended.is_none()
            && let Drained::Closed(why) = drained
        {
            ended = Some(why);
        }
        if ended.is_none() {
            ended = match &mut self.way {
                Way::Record { data } => {
                    hand_over(&mut self.samples, &self.read, data);
                    None
                }
                Way::Play { data, outbox, sent } => self
                    .read
                    .play(&self.flags.cork, &mut self.samples, data, outbox, sent)
                    .err(),
            };
        }
        match ended {
            Some(why) => {
                if !self.flags.closing.load(Ordering::Relaxed) {
                    (self.error)(why);
                }
                false
            }
            None => true,
        }
    }
}

/// Hands the whole frames in `samples` to a record stream's callback, in one call.
fn hand_over(samples: &mut Samples, read: &Connection, data: &mut DataCallback) {
    let whole = samples.len() - samples.len() % read.channels;
    if whole == 0 {
        return;
    }
    let now = read.start.elapsed();
    let info = InputCallbackInfo::new(InputStreamTimestamp {
        callback: instant(now),
        capture: instant(now.saturating_sub(read.latency)),
    });
    // SAFETY: cpal's only way to make `Data`; `whole` initialised samples of the format named
    // start at the pointer (a `Vec` of that very type, so aligned for it), and `samples` is
    // neither moved nor touched until the callback (which only reads through `Data`) returns.
    #[allow(unsafe_code)]
    let data_view = unsafe {
        match samples {
            Samples::I16(v) => Data::from_parts(v.as_mut_ptr().cast(), whole, SampleFormat::I16),
            Samples::F32(v) => Data::from_parts(v.as_mut_ptr().cast(), whole, SampleFormat::F32),
        }
    };
    data(&data_view, &info);
    samples.consume(whole);
}
