//! One input of the live engine: a lock-free ring filled by a device (or a paced file) on its own
//! clock, drained every 20 ms on the program clock through an adjustable resampler.
//!
//! Two clocks never agree: a "48 kHz" microphone may deliver 48,010 frames a second. The lane
//! keeps its ring near a target fill by steering the resampling ratio with a slow PI controller on
//! the (smoothed) fill ([`FillSteering`]), so it never drops or repeats a block, and its latency
//! stays bounded for hours. Corrections are tiny (hundreds of ppm) and ramped by the resampler, so
//! they are inaudible.
//!
//! Runs on the engine thread: no allocation after construction, no locks, no blocking.

use rtrb::Consumer;

use crate::dsp::{DspError, FillSteering, SteeredResampler, fold_channels};

/// How one pull went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PullReport {
    /// Input frames the ring lacked (filled with silence).
    pub missing_frames: usize,
    /// Frames in the ring after the pull.
    pub fill_frames: usize,
}

/// Running totals of a lane, for meters and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LaneStats {
    /// Pulls that found the ring short (an underrun: the device stalled or is gone).
    pub underruns: u64,
    /// The current ratio correction (1.0 = none).
    pub correction: f64,
    /// The smoothed ring fill, frames.
    pub smoothed_fill: f64,
}

/// A ring-fed, drift-steered stream into 48 kHz.
pub struct Lane {
    ring: Consumer<f32>,
    rate: u32,
    /// Channels of the resampler (1 or 2).
    in_channels: usize,
    /// Channels in the ring (the device's own count).
    ring_channels: usize,
    /// A wide device's frames before folding.
    raw: Vec<f32>,
    out_channels: usize,
    resampler: SteeredResampler,
    input: Vec<f32>,
    staged: Vec<f32>,
    /// Keeps the ring's fill at its target.
    steering: FillSteering,
    /// Frames kept in hand beyond one pull (see [`Lane::with_headroom`]).
    headroom: usize,
    /// The source sends nothing between phrases (see [`Lane::with_rests`]).
    rests: bool,
    /// Silence owed to the next pulls, ahead of the ring (start-up alignment).
    pad: usize,
    /// Frames a short pull stood silence in for that the device still owes: when they come,
    /// late, they are passed over (see `Lane::pass_over_stale`).
    stale: usize,
    /// Pulls since the last short one: what is still owed after a while never comes.
    since_short: u32,
    /// What is stale came from a stall (a pull short by more than a quarter): passing it over.
    stalled: bool,
    /// While a lane with headroom measures: the fill as it would be with room for every pull.
    virtual_fill: f64,
    /// While a lane with headroom measures: the fill after the last pull.
    last_fill: usize,
    underruns: u64,
    frames_out: usize,
    primed: bool,
    /// While a lane with headroom measures: pulls so far, and the sum of the fills measured.
    settling: u32,
    settle_sum: f64,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("rate", &self.rate)
            .field("in_channels", &self.in_channels)
            .field("correction", &self.steering.correction())
            .finish_non_exhaustive()
    }
}

impl Lane {
    /// A lane reading `in_channels` (any count up to 64: wider devices are folded to stereo or
    /// mono on the engine thread, never in the callback) interleaved at `rate` from `ring`, producing
    /// `frames_out` frames of `out_channels` per pull, keeping about `target_latency_s` seconds
    /// queued.
    ///
    /// # Errors
    /// A rate or layout the resampler cannot take.
    pub fn new(
        ring: Consumer<f32>,
        rate: u32,
        in_channels: usize,
        out_channels: usize,
        frames_out: usize,
        target_latency_s: f64,
    ) -> Result<Self, DspError> {
        if !(8_000..=192_000).contains(&rate) {
            return Err(DspError::UnsupportedRate(rate));
        }
        if !(1..=2).contains(&out_channels) {
            return Err(DspError::UnsupportedChannels(out_channels, "1 or 2"));
        }
        if !(1..=64).contains(&in_channels) {
            return Err(DspError::UnsupportedChannels(in_channels, "1 to 64"));
        }
        let ring_channels = in_channels;
        // The resampler works on what the output needs: mono stays mono, wide folds to stereo.
        let in_channels = if out_channels == 1 || ring_channels == 1 {
            1
        } else {
            2
        };
        let resampler = SteeredResampler::new(
            rate,
            in_channels,
            frames_out,
            1.0 + 2.0 * FillSteering::MAX_CORRECTION,
        )?;
        let max_in = resampler.input_frames_max();
        let target_fill = (target_latency_s * f64::from(rate)).max(1.0);
        Ok(Self {
            ring,
            rate,
            in_channels,
            out_channels,
            input: vec![0.0; max_in * in_channels],
            raw: if ring_channels == in_channels {
                Vec::new()
            } else {
                vec![0.0; max_in * ring_channels]
            },
            ring_channels,
            staged: vec![0.0; frames_out * in_channels],
            resampler,
            steering: FillSteering::new(rate, frames_out, target_fill, 0.0),
            headroom: 0,
            rests: false,
            pad: 0,
            stale: 0,
            since_short: 0,
            stalled: false,
            virtual_fill: 0.0,
            last_fill: 0,
            underruns: 0,
            frames_out,
            primed: false,
            settling: 0,
            settle_sum: 0.0,
        })
    }

    /// Keeps `frames` in the ring beyond what one pull takes: a device that delivers a period
    /// at a time, on its own thread, may land a period just after a pull (its phase against
    /// the engine's drifts with the clocks), and the next pull must still find a whole block.
    /// With headroom the lane measures for 0.6 s before it starts (see `measure`) and then
    /// holds the fill there; a period later still than that raises it, up to twice the
    /// headroom. Sources in step with the engine (paced files) need none.
    #[must_use]
    pub fn with_headroom(mut self, frames: usize) -> Self {
        self.headroom = frames;
        self
    }

    /// The source rests between phrases and sends nothing then (the room's voices: a packet
    /// only while someone speaks, written in 20 ms blocks from the network's thread). A pull
    /// that cannot be whole ends a phrase: the lane gives silence and the steering stands still
    /// until the source sends again. Then, before it plays the new phrase, it pads with
    /// silence (or passes over what piled up in a stall) so that the fill sits at the headroom
    /// after the pull: the phrase starts that much later and is heard whole, however the
    /// source's blocks fall against the pulls. (Steered back from wherever the phrase began
    /// instead, a block landing a moment after a pull would leave that pull short.) It needs
    /// a headroom of a block and a little more.
    #[must_use]
    pub fn with_rests(mut self) -> Self {
        self.rests = true;
        self
    }

    /// Input rate.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Totals so far.
    #[must_use]
    pub fn stats(&self) -> LaneStats {
        LaneStats {
            underruns: self.underruns,
            correction: self.steering.correction(),
            smoothed_fill: self.steering.smoothed(),
        }
    }

    /// Whether enough has arrived to start (the ring reached its target once). Before that the
    /// lane gives silence, so a starting device does not cause a burst of underruns.
    #[must_use]
    pub fn is_primed(&self) -> bool {
        self.primed
    }

    /// Produces one block of `frames_out` frames (interleaved, `out_channels`) into `out`.
    pub fn pull(&mut self, out: &mut [f32]) -> PullReport {
        let ch = self.in_channels;
        let available = self.ring.slots() / self.ring_channels;
        if self.rests && !self.primed {
            if available == 0 {
                out[..self.frames_out * self.out_channels].fill(0.0);
                return PullReport::default();
            }
            self.resume(available);
        } else if !self.primed {
            if self.headroom > 0 {
                return self.measure(out, available);
            }
            if (available as f64) < self.steering.target() {
                out[..self.frames_out * self.out_channels].fill(0.0);
                return PullReport {
                    missing_frames: 0,
                    fill_frames: available,
                };
            }
            self.primed = true;
        }
        let need = self.resampler.input_frames_next();
        self.pass_over_stale(available, need);
        // Silence the start-up alignment owes comes before what the ring holds.
        let pad = self.pad.min(need);
        self.pad -= pad;
        self.input[..pad * ch].fill(0.0);
        let got = self.read_ring(pad, need - pad);
        self.input[(pad + got) * ch..need * ch].fill(0.0);
        let missing = need - pad - got;
        if missing > 0 {
            self.came_up_short(missing, need);
        }

        // The buffers are sized from the resampler, so this cannot fail; silence if it did.
        if self
            .resampler
            .process(&self.input[..need * ch], &mut self.staged)
            .is_err()
        {
            self.staged.fill(0.0);
        }
        fold_channels(&self.staged, ch, out, self.out_channels);

        let fill = self.ring.slots() / self.ring_channels + self.pad;
        if self.primed
            && let Some(relative) = self.steering.update(fill)
        {
            self.resampler.set_relative(relative);
        }
        PullReport {
            missing_frames: missing,
            fill_frames: fill,
        }
    }

    /// A pull of `need` frames found `missing` of them absent.
    fn came_up_short(&mut self, missing: usize, need: usize) {
        self.underruns += 1;
        if self.rests {
            // The phrase ended (or the source stalled): rest until it sends again.
            self.primed = false;
            return;
        }
        self.since_short = 0;
        // What the source owes still comes, a little later, so the fill now sits higher by
        // what was missing: keep it there, and a millisecond more, rather than steer it back
        // down into the next late period.
        let lift = missing as f64 + f64::from(self.rate) / 1000.0;
        if self.headroom > 0 {
            // A device lane's headroom grows to at most twice what it started with.
            let most = 2.0 * self.headroom as f64;
            let kept = (self.steering.lift(lift, most).round() as usize).min(missing);
            // Beyond that the silence stood in for a stall (a busy sound server, a machine
            // that froze): it is heard as the gap it was, and what the device delivers for it,
            // in a burst once it runs again, is passed over. Kept, it would sit in the ring as
            // latency (the game behind the voice) that the steering could only drain slowly,
            // bending the pitch while it did.
            self.stale += missing - kept;
            // A few frames short is jitter, or a clock the steering has not caught up with
            // yet: what comes late for those is kept too.
            self.stalled |= missing - kept > need / 4;
        } else {
            // A source in step with the engine (a paced file) keeps all that comes late, up to
            // two pulls above where it settled: a busy machine that holds the source's thread
            // (or the engine's, which then pulls twice in a row) past its lead once should not
            // leave the next pull short as well.
            let most = self.steering.settled() + 2.0 * need as f64;
            self.steering.lift(lift, most);
        }
    }

    /// A resting source sent again, `available` frames so far: pads ahead of them, or passes
    /// over the oldest, so that the fill sits at the headroom after this pull.
    fn resume(&mut self, available: usize) {
        let need = self.resampler.input_frames_next();
        let want = self.headroom + need;
        if available < want {
            self.pad = want - available;
        } else {
            let drop = (available - want) * self.ring_channels;
            if let Ok(chunk) = self.ring.read_chunk(drop) {
                chunk.commit_all();
            }
        }
        // Where the fill sits after a pull depends on where the blocks land against the
        // pulls (a moment before: the headroom; a moment after: a block less), which differs
        // phrase to phrase: measure it again, and hold that.
        self.steering.measure_again();
        self.primed = true;
    }

    /// Passes over what arrives for silence already heard after a stall: at most what is
    /// stale, and only what the ring holds beyond its target and this pull.
    /// Half a second after the last short pull what is still owed is forgotten (the device, or
    /// its server, dropped it).
    fn pass_over_stale(&mut self, available: usize, need: usize) {
        /// Pulls after the last short one that a stall's burst may take to come.
        const WAIT: u32 = 25;
        if self.stale == 0 {
            return;
        }
        self.since_short += 1;
        if self.stalled {
            let expected = self.steering.target().round() as usize + need;
            let surplus = (available + self.pad).saturating_sub(expected);
            let skip = surplus.min(self.stale).min(available);
            if skip > 0
                && let Ok(chunk) = self.ring.read_chunk(skip * self.ring_channels)
            {
                chunk.commit_all();
                self.stale -= skip;
            }
        }
        if self.stale == 0 || self.since_short > WAIT {
            self.stale = 0;
            self.stalled = false;
        }
    }

    /// Pops up to `frames` from the ring into the resampler's input at frame `at`, folding a
    /// wide device; returns the frames it got.
    fn read_ring(&mut self, at: usize, frames: usize) -> usize {
        let ch = self.in_channels;
        let ring_ch = self.ring_channels;
        let take = frames.min(self.ring.slots() / ring_ch);
        if ring_ch == ch {
            let dst = &mut self.input[at * ch..(at + take) * ch];
            let (got, _) = self.ring.pop_partial_slice(dst);
            got.len() / ch
        } else {
            let raw = &mut self.raw[..take * ring_ch];
            let (got, _) = self.ring.pop_partial_slice(raw);
            let got = got.len() / ring_ch;
            fold_channels(
                &self.raw[..got * ring_ch],
                ring_ch,
                &mut self.input[at * ch..(at + got) * ch],
                ch,
            );
            got
        }
    }

    /// Before a lane with headroom starts: gives silence while it drains the ring as pulls
    /// would, and learns where the fill sits between the device's periods. Then it pads or drops
    /// what nobody has heard yet so that the fill sits at the headroom from the first pull:
    /// waiting for a fill would overshoot by up to a period, and aiming at whatever the start
    /// happened to give would leave a period landing just after a pull short.
    fn measure(&mut self, out: &mut [f32], available: usize) -> PullReport {
        /// Pulls ignored while the device starts (its first deliveries may come in a burst).
        const WARM_UP: u32 = 5;
        /// Pulls measured after that: half a second.
        const MEASURED: u32 = 25;
        out[..self.frames_out * self.out_channels].fill(0.0);
        if self.settling == 0 && available == 0 {
            return PullReport::default();
        }
        let need = self.resampler.input_frames_next();
        let arrived = available.saturating_sub(self.last_fill);
        // Where the fill would be with room for every pull, short ones included.
        self.virtual_fill = if self.settling == 0 {
            available as f64 - need as f64
        } else {
            self.virtual_fill + arrived as f64 - need as f64
        };
        let take = need.min(available) * self.ring_channels;
        if let Ok(chunk) = self.ring.read_chunk(take) {
            chunk.commit_all();
        }
        self.last_fill = self.ring.slots() / self.ring_channels;
        self.settling += 1;
        if self.settling > WARM_UP {
            self.settle_sum += self.virtual_fill;
        }
        if self.settling == WARM_UP + MEASURED {
            let mean = self.settle_sum / f64::from(MEASURED);
            let target = self.headroom as f64;
            // Real fill follows the virtual one at a fixed offset: move it to where the mean
            // lands on the target.
            let shift = (self.virtual_fill + target - mean - self.last_fill as f64).round();
            if shift >= 0.0 {
                self.pad = shift as usize;
            } else {
                let drop = ((-shift) as usize).min(self.last_fill) * self.ring_channels;
                if let Ok(chunk) = self.ring.read_chunk(drop) {
                    chunk.commit_all();
                }
            }
            self.steering.settled_at(target);
            self.primed = true;
        }
        PullReport {
            missing_frames: 0,
            fill_frames: self.ring.slots() / self.ring_channels + self.pad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose clock runs at `actual` Hz pretends to be `nominal` Hz: it pushes a
    /// continuous 1 kHz sine (at its own clock) into the ring in 10 ms device periods, while the
    /// lane is pulled every 20 ms of program time. Returns (max fill, min fill after start,
    /// underruns, overruns, largest output second difference).
    fn simulate(nominal: u32, actual: f64, minutes: f64) -> (usize, usize, u64, u64, f32) {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(nominal as usize); // 1 s
        let mut lane = Lane::new(cons, nominal, 1, 1, 960, 0.03).unwrap();
        let ticks = (minutes * 60.0 * 50.0) as usize;
        let mut phase = 0.0f64;
        let step = 2.0 * std::f64::consts::PI * 1000.0 * (f64::from(nominal) / actual)
            / f64::from(nominal);
        // Per 20 ms of program time the device delivers actual * 0.02 frames, in two periods.
        let mut owed = 0.0f64;
        let mut period = vec![0.0f32; 2048];
        let mut out = vec![0.0f32; 960];
        let (mut max_fill, mut min_fill) = (0usize, usize::MAX);
        let mut overruns = 0u64;
        let mut prev = [0.0f32; 2];
        let mut started = false;
        let mut worst = 0.0f32;
        for tick in 0..ticks {
            for _ in 0..2 {
                owed += actual * 0.01;
                let n = owed.floor() as usize;
                owed -= n as f64;
                for s in &mut period[..n] {
                    // The signal is a 1 kHz tone by the program clock once resampled.
                    *s = (0.5 * phase.sin()) as f32;
                    phase += step;
                }
                let (_, rest) = prod.push_partial_slice(&period[..n]);
                overruns += rest.len() as u64;
            }
            let report = lane.pull(&mut out);
            if lane.is_primed() {
                max_fill = max_fill.max(report.fill_frames);
                if tick > 50 * 60 {
                    min_fill = min_fill.min(report.fill_frames);
                }
                for &x in &out {
                    if started {
                        worst = worst.max((x - 2.0 * prev[1] + prev[0]).abs());
                    }
                    prev = [prev[1], x];
                }
                started = tick > 10;
            }
        }
        (max_fill, min_fill, lane.stats().underruns, overruns, worst)
    }

    /// Numbers in 0..=1, the same from the same `seed` (xorshift).
    fn uniform(mut seed: u32) -> impl FnMut() -> f64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            f64::from(seed) / f64::from(u32::MAX)
        }
    }

    /// How a simulated device went, once started (from 2 s in, or after its stall).
    #[derive(Debug)]
    struct DeviceRun {
        underruns: u64,
        low: usize,
        high: usize,
        /// The largest ratio correction, either way.
        bend: f64,
    }

    /// A device on its own thread: 10 ms periods of 480 frames at `actual` Hz, each landing
    /// up to 1.5 ms either side of an engine pull (the worst phase), pulled every 20 ms for
    /// `minutes`, into a lane with `headroom`.
    fn jittery_device(actual: f64, headroom: usize, minutes: f64) -> DeviceRun {
        device(actual, headroom, minutes, 0, 0.0, 0)
    }

    /// As `jittery_device`, with one period in every `late_every` (0: none) landing 7 ms later
    /// still (a busy machine's scheduler), and nothing at all for `stall` seconds 5 s in, after
    /// which every period owed lands at once (a sound server that froze and caught up). `lead`
    /// frames come with the first period (a paced file's start).
    fn device(
        actual: f64,
        headroom: usize,
        minutes: f64,
        late_every: u32,
        stall: f64,
        lead: usize,
    ) -> DeviceRun {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000);
        let mut lane = Lane::new(cons, 48_000, 1, 1, 960, 0.02)
            .unwrap()
            .with_headroom(headroom);
        let mut out = vec![0.0f32; 960];
        let period = [0.1f32; 480];
        let mut random = uniform(0x2545_f491_u32);
        let mut jitter = move || (random() - 0.5) * 0.003;
        let frozen = 5.0..5.0 + stall;
        let from = if stall > 0.0 { frozen.end + 0.05 } else { 2.0 };
        let mut next_period = 0.0f64;
        let mut landing = next_period + jitter();
        let mut periods = 0u32;
        let _ = prod.push_partial_slice(&vec![0.1f32; lead]);
        let mut run = DeviceRun {
            underruns: 0,
            low: usize::MAX,
            high: 0,
            bend: 0.0,
        };
        for tick in 0..(minutes * 60.0 * 50.0) as usize {
            let pull_at = tick as f64 * 0.02;
            while landing <= pull_at && !frozen.contains(&pull_at) {
                let _ = prod.push_partial_slice(&period);
                next_period += 480.0 / actual;
                landing = next_period + jitter();
                periods += 1;
                if late_every > 0 && periods.is_multiple_of(late_every) {
                    landing += 0.007;
                }
            }
            let report = lane.pull(&mut out);
            if lane.is_primed() && pull_at > from {
                run.low = run.low.min(report.fill_frames);
                run.high = run.high.max(report.fill_frames);
                run.bend = run.bend.max((lane.stats().correction - 1.0).abs());
            }
        }
        run.underruns = lane.stats().underruns;
        run
    }

    #[test]
    fn a_device_period_landing_at_a_pull_never_leaves_it_short() {
        // Without headroom the same device underruns until the fill has risen by what came
        // late: the case is a real one.
        let underruns = jittery_device(48_000.0, 0, 1.0).underruns;
        assert!(underruns > 0, "{underruns}");
        for actual in [48_000.0, 48_010.0, 47_990.0] {
            let DeviceRun {
                underruns,
                low,
                high,
                ..
            } = jittery_device(actual, 576, 10.0);
            eprintln!("{actual} Hz: fill {low}..{high}");
            assert_eq!(underruns, 0, "{actual} Hz");
            // The headroom, and not a period more: latency stays bounded.
            assert!(
                low >= 48 && high <= 576 + 480 + 48,
                "{actual} Hz: {low}..{high}"
            );
        }
    }

    /// A paced file is such a source without headroom (the engine's own clock, its periods as
    /// close to the pulls as the worst case above): the lead it gives at its start keeps every
    /// pull whole, for as long as it plays, at a bounded latency.
    #[test]
    fn a_paced_files_lead_keeps_every_pull_whole() {
        let lead = crate::engine::paced::lead_frames(48_000);
        let run = device(48_000.0, 0, 10.0, 0, 0.0, lead);
        eprintln!("fill {}..{}", run.low, run.high);
        assert_eq!(run.underruns, 0);
        // Never emptied, and no more held than the lead and a pull's two periods.
        assert!(run.low > 0 && run.high <= lead + 2 * 480, "{run:?}");
    }

    /// How the room's voices went through a lane (see `room_voices`).
    #[derive(Debug)]
    struct Phrases {
        phrases: u32,
        /// Pulls that came up short while the phrase was still being sent.
        cut: u32,
        /// The most in the ring after a pull, frames.
        high: usize,
        /// Frames sent, and frames that came out (loud).
        sent: usize,
        heard: usize,
        /// The largest ratio correction, either way.
        bend: f64,
    }

    /// The room's voices as the network's thread writes them: a 20 ms block of 960 frames at
    /// a time, landing up to 1.5 ms either side of an engine pull (the worst phase; one block
    /// in 97 lands 7 ms later still), and only while someone speaks: phrases of 0.3 to 6 s
    /// with pauses of 0.1 to 2 s, for `minutes`.
    fn room_voices(headroom: usize, rests: bool, minutes: f64) -> Phrases {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000);
        let lane = Lane::new(cons, 48_000, 1, 1, 960, 0.02)
            .unwrap()
            .with_headroom(headroom);
        let mut lane = if rests { lane.with_rests() } else { lane };
        let mut out = vec![0.0f32; 960];
        let block = [0.1f32; 960];
        let mut random = uniform(0x9e37_79b9);
        let mut run = Phrases {
            phrases: 0,
            cut: 0,
            high: 0,
            sent: 0,
            heard: 0,
            bend: 0.0,
        };
        // Blocks still to send of the phrase being sent (0: a pause), and when the next one
        // lands (a phrase's blocks keep the clock of its first).
        let mut left = 0u32;
        let mut next = 0.5f64;
        let mut landing = next;
        let mut blocks = 0u32;
        for tick in 0..(minutes * 60.0 * 50.0) as usize {
            let pull_at = tick as f64 * 0.02;
            while landing <= pull_at {
                if left == 0 {
                    left = 15 + (random() * 285.0) as u32;
                    run.phrases += 1;
                }
                let _ = prod.push_partial_slice(&block);
                run.sent += block.len();
                left -= 1;
                blocks += 1;
                next += 0.02;
                if left == 0 {
                    next += 0.1 + random() * 1.9;
                }
                landing = next + (random() - 0.5) * 0.003;
                if blocks.is_multiple_of(97) {
                    landing += 0.007;
                }
            }
            let report = lane.pull(&mut out);
            if report.missing_frames > 0 && left > 0 {
                run.cut += 1;
            }
            run.high = run.high.max(report.fill_frames);
            run.heard += out.iter().filter(|&&x| x > 0.05).count();
            run.bend = run.bend.max((lane.stats().correction - 1.0).abs());
        }
        run
    }

    /// The room's voices come in 20 ms blocks on the network's thread and stop between
    /// phrases. Every phrase is heard whole, whatever the phase of its blocks against the
    /// pulls, at a bounded latency.
    #[test]
    fn the_rooms_voices_are_heard_whole_phrase_after_phrase() {
        // With no headroom and no rests, phrases lose 20 ms now and then.
        let plain = room_voices(0, false, 10.0);
        assert!(plain.cut > 10, "{plain:?}");
        // With a device's headroom but no rests, the same.
        let device = room_voices(960 + 96, false, 10.0);
        assert!(device.cut > 10, "{device:?}");
        let run = room_voices(960 + 96, true, 10.0);
        eprintln!("plain {plain:?}\ndevice {device:?}\nwith rests {run:?}");
        assert_eq!(run.cut, 0, "{run:?}");
        assert!(run.phrases > 100, "{run:?}");
        // Nothing lost: what was sent came out, within the resampler's edges.
        let edges = run.phrases as usize * 96;
        assert!(
            run.heard + edges >= run.sent && run.heard <= run.sent + edges,
            "{run:?}"
        );
        // Never more in hand than the headroom and the block that just came.
        assert!(run.high <= 960 + 96 + 960 + 48, "{run:?}");
        // And the pitch holds. Without rests the steering works through the pauses on an
        // empty ring, bends the pitch towards the controller's limit (0.5%), and the voices
        // drift ahead of the program.
        assert!(plain.bend > 0.004, "{plain:?}");
        assert!(run.bend < 0.001, "{run:?}");
    }

    /// The room's voices when the host's network thread is held 150 ms mid-phrase, then
    /// writes the seven frames it owes at once (its 20 ms clock catches up): a gap, and then
    /// the voice as late as before the stall, not 150 ms later for the rest of the phrase.
    #[test]
    fn a_held_network_thread_costs_the_rooms_voices_a_gap_not_latency() {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000);
        let headroom = 960 + 96;
        let mut lane = Lane::new(cons, 48_000, 1, 1, 960, 0.02)
            .unwrap()
            .with_headroom(headroom)
            .with_rests();
        let mut out = vec![0.0f32; 960];
        let block = [0.1f32; 960];
        let (mut before, mut after, mut short) = (0, 0, 0);
        // A frame 5 ms before each pull; none from 3 s to 3.15 s, then those owed at once.
        for tick in 0..500 {
            let held = (150..157).contains(&tick);
            if tick == 157 {
                for _ in 0..7 {
                    let _ = prod.push_partial_slice(&block);
                }
            }
            if !held {
                let _ = prod.push_partial_slice(&block);
            }
            let report = lane.pull(&mut out);
            if report.missing_frames > 0 {
                short += 1;
            }
            match tick {
                100..150 => before = before.max(report.fill_frames),
                160.. => after = after.max(report.fill_frames),
                _ => {}
            }
        }
        assert_eq!(short, 1, "short pulls");
        // (a frame of steering either way)
        assert!(
            before <= headroom && after <= before + 48,
            "{before} then {after}"
        );
    }

    /// A paced file on a busy machine: its 10 ms periods on the engine's clock with its lead,
    /// up to 1.5 ms either side of a pull, but one period in `every` held back `late_by`
    /// seconds (its thread not scheduled; the ones after it come on time, with it). Pulled
    /// every 20 ms for `minutes`; returns the short pulls and the most in the ring after one.
    fn held_back_file(late_by: f64, every: u32, minutes: f64) -> (u64, usize) {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000);
        let mut lane = Lane::new(cons, 48_000, 1, 1, 960, 0.02).unwrap();
        let mut out = vec![0.0f32; 960];
        let period = [0.1f32; 480];
        let mut random = uniform(0x1234_5678_u32);
        let mut jitter = move || (random() - 0.5) * 0.003;
        let _ = prod.push_partial_slice(&vec![0.1f32; crate::engine::paced::lead_frames(48_000)]);
        let mut n = 0u32;
        let mut held_until = 0.0f64;
        let mut high = 0;
        for tick in 0..(minutes * 60.0 * 50.0) as usize {
            let pull_at = tick as f64 * 0.02;
            loop {
                let due = f64::from(n) * 0.01;
                if n > 0 && n.is_multiple_of(every) && held_until < due {
                    held_until = due + late_by;
                }
                if due + jitter() > pull_at || held_until > pull_at {
                    break;
                }
                let _ = prod.push_partial_slice(&period);
                n += 1;
            }
            let report = lane.pull(&mut out);
            if tick > 100 {
                high = high.max(report.fill_frames);
            }
        }
        (lane.stats().underruns, high)
    }

    #[test]
    fn a_paced_file_held_back_past_its_lead_keeps_more_in_hand() {
        // Held 30 ms (past its 22 ms lead) every 5 s for 10 minutes: the first leaves a pull
        // short, and the fill stays higher by what came late; at most one more does.
        let (underruns, high) = held_back_file(0.03, 500, 10.0);
        eprintln!("held back 30 ms every 5 s: {underruns} short, fill up to {high}");
        assert!(underruns <= 2, "{underruns} short pulls");
        // What it keeps is bounded: where it settled, two pulls more, a pull's periods.
        let lead = crate::engine::paced::lead_frames(48_000);
        assert!(high <= lead + 2 * 960 + 960, "{high}");
    }

    #[test]
    fn a_device_late_now_and_then_is_short_once_at_most() {
        for actual in [48_000.0, 48_010.0, 47_990.0] {
            let DeviceRun {
                underruns,
                low,
                high,
                ..
            } = device(actual, 576, 10.0, 997, 0.0, 0);
            eprintln!("{actual} Hz, late now and then: {underruns} short, fill {low}..{high}");
            // The first late period may find the lane short; it then keeps that much more in
            // hand, and no later one does (without that: 10 short pulls at 48,010 Hz).
            assert!(underruns <= 1, "{actual} Hz: {underruns} short pulls");
            assert!(high <= 2 * 576 + 480 + 48, "{actual} Hz: {low}..{high}");
        }
    }

    #[test]
    fn a_stalled_device_costs_a_gap_not_the_pitch_or_the_latency() {
        // Drift alone: the clocks here are 200 ppm apart, and the steering finds that.
        let calm = device(48_010.0, 576, 0.5, 0, 0.0, 0).bend;
        assert!(calm < 5e-4, "{calm}");
        for stall in [0.03, 0.15, 0.5] {
            let run = device(48_010.0, 576, 0.5, 0, stall, 0);
            eprintln!("{stall} s stall: {run:?} (without one: bent {calm:.5})");
            // Back where the headroom (lifted by the stall, to at most twice) keeps it, at once:
            // what the device sent for the gap is not queued up as latency.
            assert!(run.high <= 2 * 576 + 480 + 48, "{stall} s stall: {run:?}");
            // So the steering has nothing to drain, and the pitch stays put.
            assert!(run.bend < calm + 1e-4, "{stall} s stall: {run:?}");
        }
    }

    #[test]
    fn a_six_channel_device_folds_to_stereo() {
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000 * 6);
        let mut lane = Lane::new(cons, 48_000, 6, 2, 960, 0.03).unwrap();
        // Front left only, for a second.
        let frame = [0.5f32, 0.0, 0.0, 0.0, 0.0, 0.0];
        for _ in 0..48_000 {
            let _ = prod.push_partial_slice(&frame);
        }
        let mut out = vec![0.0f32; 1_920];
        for _ in 0..20 {
            lane.pull(&mut out);
        }
        assert!(out.chunks(2).all(|f| f[1].abs() < 1e-4), "leaked right");
        assert!(out.chunks(2).all(|f| f[0] > 0.1), "{:?}", &out[..8]);
    }

    #[test]
    fn a_lane_keeps_the_highs_of_the_game() {
        // 16 kHz at 0.5 through a 48 kHz stereo lane steered off nominal: the level holds
        // (the lane's filter is flat to 20 kHz).
        let (mut prod, cons) = rtrb::RingBuffer::<f32>::new(48_000 * 2);
        let mut lane = Lane::new(cons, 48_000, 2, 2, 960, 0.02).unwrap();
        lane.resampler.set_relative(1.003);
        let mut out = vec![0.0f32; 1_920];
        let mut peak = 0.0f32;
        let (mut energy, mut samples) = (0.0f64, 0usize);
        let mut n = 0u64;
        for pull in 0..50 {
            while prod.slots() >= 2 && n < 48_000 * 2 {
                let v = (0.5 * (2.0 * std::f64::consts::PI * 16_000.0 * n as f64 / 48_000.0).sin())
                    as f32;
                let _ = prod.push(v);
                let _ = prod.push(v);
                n += 1;
                if n.is_multiple_of(960) {
                    break;
                }
            }
            lane.pull(&mut out);
            if pull > 5 {
                peak = out.iter().fold(peak, |p, x| p.max(x.abs()));
                energy += out.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
                samples += out.len();
            }
        }
        let db = 20.0 * (peak / 0.5).log10();
        assert!(db.abs() < 0.1, "16 kHz peaked at {db:.2} dB");
        // And it is the sine, not something else as loud: its RMS is the sine's (0.5 / sqrt 2).
        let rms = (energy / samples as f64).sqrt();
        let rms_db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
        assert!(
            rms_db.abs() < 0.1,
            "16 kHz came out at an RMS of {rms_db:.2} dB"
        );
    }

    #[test]
    fn matched_clocks_hold_steady() {
        let (max_fill, min_fill, underruns, overruns, worst) = simulate(48_000, 48_000.0, 2.0);
        assert_eq!((underruns, overruns), (0, 0));
        assert!(
            max_fill < 48 * 60 && min_fill > 48 * 5,
            "{min_fill}..{max_fill}"
        );
        // A 1 kHz sine at 0.5 has a second difference of at most 0.5 (2 pi 1000/48000)^2 = 0.0086.
        assert!(worst < 0.0095, "discontinuity: {worst}");
    }

    #[test]
    fn drifting_clocks_for_an_hour_never_drop_or_repeat() {
        for actual in [48_010.0, 47_990.0] {
            let (max_fill, min_fill, underruns, overruns, worst) = simulate(48_000, actual, 60.0);
            eprintln!("{actual} Hz: fill {min_fill}..{max_fill} frames, worst {worst}");
            assert_eq!((underruns, overruns), (0, 0), "{actual} Hz");
            assert!(
                max_fill < 48 * 60 && min_fill > 48 * 5,
                "{actual} Hz: {min_fill}..{max_fill}"
            );
            assert!(worst < 0.0095, "{actual} Hz: discontinuity {worst}");
        }
    }
}
