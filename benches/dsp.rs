//! Throughput of each dsp stage, in samples per second (criterion's "elements").

use std::hint::black_box;

use booth::dsp::{Ducker, DuckerParams, Key, Limiter, Meters, StreamResampler, mix_into};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FRAMES: usize = 4_800; // 100 ms blocks

fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 0.5
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("dsp");
    // Stereo samples (frames x 2) per second, on 100 ms blocks.
    g.throughput(Throughput::Elements((FRAMES * 2) as u64));

    let input_44k = noise(4_410 * 2, 1);
    let mut rs = StreamResampler::new(44_100, 2, 2).unwrap_or_else(|e| panic!("{e}"));
    let mut out = vec![0.0; rs.output_frames_max(4_410) * 2];
    g.bench_function("resampler 44.1k->48k stereo", |b| {
        b.iter(|| {
            rs.process_into(black_box(&input_44k), &mut out)
                .unwrap_or(0)
        });
    });

    // The engine's live lane on a 48 kHz stereo device: the drift-steered resampler, pulled in
    // 20 ms blocks (five per 100 ms, to count the same samples as the other stages).
    let (mut feed, ring) = rtrb::RingBuffer::<f32>::new(48_000 * 2);
    let mut lane =
        booth::engine::Lane::new(ring, 48_000, 2, 2, 960, 0.02).unwrap_or_else(|e| panic!("{e}"));
    let device = noise(960 * 2, 4);
    let mut block = vec![0.0; 960 * 2];
    g.bench_function("live lane 48k stereo (drift-steered resampler)", |b| {
        b.iter(|| {
            for _ in 0..5 {
                let _ = feed.push_partial_slice(&device);
                lane.pull(black_box(&mut block));
            }
        });
    });

    let game = noise(FRAMES * 2, 2);
    let voice = noise(FRAMES, 3);
    let mut ducker = Ducker::new(DuckerParams::default(), 1).unwrap_or_else(|e| panic!("{e}"));
    let mut program = game.clone();
    let mut gains = vec![0.0; FRAMES];
    g.bench_function("ducker (voice activity + gain + lookahead)", |b| {
        b.iter(|| {
            program.copy_from_slice(&game);
            ducker.process(
                &mut program,
                &[Key {
                    samples: black_box(&voice),
                    muted: false,
                }],
                &mut gains,
            );
        });
    });

    let mut mixed = vec![0.0; FRAMES * 2];
    g.bench_function("mixer", |b| {
        b.iter(|| mix_into(black_box(&game), &gains, 1.0, &voice, 1.0, &mut mixed));
    });

    let mut limiter = Limiter::new(-1.0).unwrap_or_else(|e| panic!("{e}"));
    let hot: Vec<f32> = game.iter().map(|x| x * 4.0).collect();
    let mut buf = hot.clone();
    g.bench_function("limiter", |b| {
        b.iter(|| {
            buf.copy_from_slice(&hot);
            limiter.process(black_box(&mut buf));
        });
    });

    let mut meters = Meters::new().unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("meters (peak, RMS, EBU R128 M/S/I)", |b| {
        b.iter(|| meters.process(black_box(&game)));
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
