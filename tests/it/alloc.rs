//! The dsp chain allocates nothing once running: a counting global allocator watches 10 s of
//! audio go through resampler, ducker, mixer, limiter and meters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use booth::dsp::{ProgramMix, ProgramSettings, StreamResampler};

use crate::support::{Rng, pink_noise};

struct Counting;

thread_local! {
    pub(crate) static COUNTING: Cell<bool> = const { Cell::new(false) };
    pub(crate) static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // try_with: thread-locals may be gone while a thread shuts down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: defers to the system allocator; only counts calls on the measuring thread.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn ten_seconds_through_the_dsp_chain_allocate_nothing() {
    const MAX: usize = 2048;
    // A 44.1 kHz stereo game, a 16 kHz mono voice: both need resampling.
    let game_in: Vec<f32> = pink_noise(44_100 * 12, -12.0, 1)
        .iter()
        .flat_map(|&x| [x, -x])
        .collect();
    let voice_in: Vec<f32> = pink_noise(16_000 * 12, -12.0, 2)
        .iter()
        .enumerate()
        .map(|(i, &x)| if (i / 16_000) % 2 == 0 { x } else { 0.0 })
        .collect();
    let mut game_rs = StreamResampler::new(44_100, 2, 2).unwrap();
    let mut voice_rs = StreamResampler::new(16_000, 1, 1).unwrap();
    let mut mix = ProgramMix::new(ProgramSettings::default(), MAX * 2).unwrap();
    let mut game = vec![0.0; game_rs.output_frames_max(MAX) * 2];
    let mut voice = vec![0.0; voice_rs.output_frames_max(MAX)];
    let mut out = vec![0.0; (game.len() / 2).max(voice.len()) * 2];
    let mut rng = Rng::new(1);

    let mut run = |seconds: f64, counting: bool| {
        let (mut g, mut v) = (0usize, 0usize);
        COUNTING.with(|c| c.set(counting));
        while (g as f64) < seconds * 44_100.0 {
            // Any block size; the voice block covers the same time span.
            let n = rng.range(1, MAX);
            let vn = (n * 16_000 / 44_100).max(1);
            let gw = game_rs
                .process_into(&game_in[g * 2..(g + n) * 2], &mut game)
                .unwrap_or(0);
            let vw = voice_rs
                .process_into(&voice_in[v..v + vn], &mut voice)
                .unwrap_or(0);
            let frames = gw.max(vw);
            mix.process(&game[..gw * 2], &voice[..vw], &mut out[..frames * 2]);
            let r = mix.meters().read();
            assert!(r.peak_dbfs <= 0.0);
            g += n;
            v += vn;
        }
        COUNTING.with(|c| c.set(false));
    };
    run(1.0, false); // warm-up
    COUNT.with(|c| c.set(0));
    run(10.0, true);
    let allocations = COUNT.with(Cell::get);
    assert_eq!(
        allocations, 0,
        "the dsp chain allocated {allocations} times in 10 s"
    );
}

/// One tick of a room's mix the way the room's task drives it: three voices (one of them
/// missing now and then), a listener off stage and two stage members hearing their mix-minus.
fn mix_tick(mix: &mut booth::server::room_task::ServerMix, voices: &[Vec<f32>], tick: usize) {
    use booth::room::ParticipantId as Id;
    mix.begin();
    for (n, pcm) in voices.iter().enumerate() {
        let who = Id(n as u64 + 1);
        mix.publisher(who);
        if !(n == 2 && tick.is_multiple_of(7)) {
            mix.voice(who, pcm, 0.5);
        }
    }
    mix.listener(None, true);
    mix.listener(Some(Id(2)), true);
    mix.listener(Some(Id(3)), false);
    mix.encode(tick.is_multiple_of(2)).unwrap();
    assert!(mix.program().is_some() && mix.packet_for(Some(Id(2))).is_some());
}

#[test]
fn the_rooms_mix_allocates_nothing_per_tick() {
    let voices: Vec<Vec<f32>> = (0..3)
        .map(|n| {
            pink_noise(960, -20.0, 10 + n)
                .iter()
                .flat_map(|&x| [x, x])
                .collect()
        })
        .collect();
    let mut mix = booth::server::room_task::ServerMix::new().unwrap();
    // The first ticks make each stage member's chain and buffers.
    for tick in 0..5 {
        mix_tick(&mut mix, &voices, tick);
    }
    let mut levels = Vec::with_capacity(8);
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    for tick in 5..505 {
        mix_tick(&mut mix, &voices, tick);
        if tick.is_multiple_of(5) {
            mix.take_levels(&mut levels);
        }
    }
    COUNTING.with(|on| on.set(false));
    let allocations = COUNT.with(Cell::get);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 500 ticks (10 s)"
    );
}
