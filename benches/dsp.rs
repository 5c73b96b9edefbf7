//! Throughput of each dsp stage, in samples per second (criterion's "elements"). A measurement
//! only: nothing here passes or fails on time.

use std::hint::black_box;

use booth::codec::{Application, EncoderSettings, OpusEncoder};
use booth::dsp::{
    Denoiser, Ducker, DuckerParams, Key, Limiter, LoudnessMeter, StreamResampler, VoiceActivity,
    mix_into,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

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
    resampling(&mut g);
    lane_resamplers(&mut g);
    let game = noise(FRAMES * 2, 2);
    let voice = noise(FRAMES, 3);
    let gains = ducking(&mut g, &game, &voice);
    voice_activity(&mut g, &voice);
    noise_suppression(&mut g, &voice);
    mixing(&mut g, &game, &voice, &gains);
    metering(&mut g, &game);
    g.finish();
    encoding(c, &game, &voice);
}

/// A file's resampler, and the engine's live lane.
fn resampling(g: &mut BenchmarkGroup<'_, WallTime>) {
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
}

/// The lane's resampler against rubato's.
fn lane_resamplers(g: &mut BenchmarkGroup<'_, WallTime>) {
    let mut block = vec![0.0; 960 * 2];
    // The lane's resampler alone, against rubato's asynchronous sinc resampler at comparable
    // settings (32 taps, 256 delays, linear interpolation, Blackman-Harris²):
    // 48 kHz stereo steered 100 ppm, 20 ms blocks, five per iteration.
    let device = noise(2_000 * 2, 5);
    let mut steered =
        booth::dsp::SteeredResampler::new(48_000, 2, 960, 1.01).unwrap_or_else(|e| panic!("{e}"));
    steered.set_relative(1.0001);
    g.bench_function("lane resampler: Booth's steered sinc, 48k stereo", |b| {
        b.iter(|| {
            for _ in 0..5 {
                let need = steered.input_frames_next();
                let _ = steered.process(black_box(&device[..need * 2]), &mut block);
            }
        });
    });
    let mut params =
        rubato::SincInterpolationParameters::new(32, rubato::WindowFunction::BlackmanHarris2);
    params.interpolation = rubato::SincInterpolationType::Linear;
    params.oversampling_factor = 256;
    let mut sinc =
        rubato::Async::<f32>::new_sinc(1.0, 1.01, &params, 960, 2, rubato::FixedAsync::Output)
            .unwrap_or_else(|e| panic!("{e}"));
    let _ = rubato::Adjustable::set_resample_ratio_relative(&mut sinc, 1.0001, true);
    g.bench_function("lane resampler: rubato's async sinc, 48k stereo", |b| {
        b.iter(|| {
            for _ in 0..5 {
                let need = rubato::Resampler::input_frames_next(&sinc);
                let input = rubato::audioadapter_buffers::direct::InterleavedSlice::new(
                    &device[..need * 2],
                    2,
                    need,
                )
                .unwrap_or_else(|e| panic!("{e}"));
                let mut output = rubato::audioadapter_buffers::direct::InterleavedSlice::new_mut(
                    &mut block[..],
                    2,
                    960,
                )
                .unwrap_or_else(|e| panic!("{e}"));
                let _ =
                    rubato::Resampler::process_into_buffer(&mut sinc, &input, &mut output, None);
            }
        });
    });
}

/// The ducker on 100 ms of game and voice; the gains it made, for the mixer.
fn ducking(g: &mut BenchmarkGroup<'_, WallTime>, game: &[f32], voice: &[f32]) -> Vec<f32> {
    let mut ducker = Ducker::new(DuckerParams::default(), 1).unwrap_or_else(|e| panic!("{e}"));
    let mut program = game.to_vec();
    let mut gains = vec![0.0; FRAMES];
    g.bench_function("ducker (voice activity + gain + lookahead)", |b| {
        b.iter(|| {
            program.copy_from_slice(game);
            ducker.process(
                &mut program,
                &[Key {
                    samples: black_box(voice),
                    muted: false,
                }],
                &mut gains,
            );
        });
    });

    gains
}

fn voice_activity(g: &mut BenchmarkGroup<'_, WallTime>, voice: &[f32]) {
    // The voice detector alone, on a voice and on the silence after it (a quiet mic, a key
    // with no guests): silence must cost next to nothing.
    let mut vad = VoiceActivity::new();
    g.bench_function("voice activity, voice", |b| {
        b.iter(|| {
            for block in black_box(&voice).chunks(24) {
                vad.push_block(block);
            }
        });
    });
    let silence = vec![0.0f32; FRAMES];
    let mut quiet = VoiceActivity::new();
    for block in voice.chunks(24) {
        quiet.push_block(block);
    }
    g.bench_function("voice activity, silence after a voice", |b| {
        b.iter(|| {
            for block in black_box(&silence).chunks(24) {
                quiet.push_block(block);
            }
        });
    });
}

fn noise_suppression(g: &mut BenchmarkGroup<'_, WallTime>, voice: &[f32]) {
    let silence = vec![0.0f32; FRAMES];
    // Noise suppression (nnnoiseless, 10 ms frames), on a voice and on the silence after it.
    let mut denoise = nnnoiseless::DenoiseState::new();
    let mut denoised = [0.0f32; nnnoiseless::DenoiseState::FRAME_SIZE];
    let loud: Vec<f32> = voice.iter().map(|v| v * 32_768.0).collect();
    g.bench_function("noise suppression, voice", |b| {
        b.iter(|| {
            for frame in black_box(&loud).chunks_exact(nnnoiseless::DenoiseState::FRAME_SIZE) {
                denoise.process_frame(&mut denoised, frame);
            }
        });
    });
    g.bench_function("noise suppression, silence after a voice", |b| {
        b.iter(|| {
            for frame in black_box(&silence).chunks_exact(nnnoiseless::DenoiseState::FRAME_SIZE) {
                denoise.process_frame(&mut denoised, frame);
            }
        });
    });

    // Booth's Denoiser around it: on the voice (awake: nnnoiseless and the watch for a voice),
    // and resting on a mic's steady floor (about -57 dBFS), once it has turned that down.
    let mut awake = Denoiser::new();
    let mut frame = vec![0.0f32; Denoiser::FRAME];
    g.bench_function("noise suppression (Denoiser), voice", |b| {
        b.iter(|| {
            for chunk in black_box(&voice).chunks_exact(Denoiser::FRAME) {
                frame.copy_from_slice(chunk);
                awake.process(&mut frame);
            }
        });
    });
    let floor: Vec<f32> = noise(FRAMES, 9).iter().map(|x| x * 0.01).collect();
    let mut resting = Denoiser::new();
    for _ in 0..100 {
        for chunk in floor.chunks_exact(Denoiser::FRAME) {
            frame.copy_from_slice(chunk);
            resting.process(&mut frame);
        }
    }
    assert!(resting.resting(), "the denoiser never rested on the floor");
    g.bench_function("noise suppression (Denoiser), resting on a floor", |b| {
        b.iter(|| {
            for chunk in black_box(&floor).chunks_exact(Denoiser::FRAME) {
                frame.copy_from_slice(chunk);
                resting.process(&mut frame);
            }
        });
    });
}

/// The mix and the limiter after it.
fn mixing(g: &mut BenchmarkGroup<'_, WallTime>, game: &[f32], voice: &[f32], gains: &[f32]) {
    let mut mixed = vec![0.0; FRAMES * 2];
    g.bench_function("mixer", |b| {
        b.iter(|| mix_into(black_box(game), gains, 1.0, voice, 1.0, &mut mixed));
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
}

fn metering(g: &mut BenchmarkGroup<'_, WallTime>, game: &[f32]) {
    // The program's meters as the engine uses them: 100 ms of audio in five 20 ms frames, the
    // momentary and short-term loudness read every block and integrated every second (every
    // 10th block), side by side with the `ebur128` crate (libebur128's port) in the histogram
    // mode a meter running for hours needs.
    let mut meters = LoudnessMeter::new();
    let mut block = 0u32;
    g.bench_function("meters (peak, RMS, EBU R128 M/S/I): Booth", |b| {
        b.iter(|| {
            for frame in game.chunks(960 * 2) {
                meters.process(black_box(frame));
            }
            block += 1;
            black_box((meters.momentary_lufs(), meters.short_term_lufs()));
            if block.is_multiple_of(10) {
                black_box(meters.integrated_lufs());
            }
        });
    });
    let mut ebu = ebur128::EbuR128::new(
        2,
        48_000,
        ebur128::Mode::M | ebur128::Mode::S | ebur128::Mode::I | ebur128::Mode::HISTOGRAM,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("meters (peak, RMS, EBU R128 M/S/I): ebur128", |b| {
        b.iter(|| {
            for frame in game.chunks(960 * 2) {
                // Booth's meter also takes the peak and RMS; so does this side.
                let peak = frame.iter().fold(0f32, |m, s| m.max(s.abs()));
                let sum: f32 = frame.iter().map(|s| s * s).sum();
                black_box((peak, sum));
                let _ = ebu.add_frames_f32(black_box(frame));
            }
            block += 1;
            black_box((ebu.loudness_momentary().ok(), ebu.loudness_shortterm().ok()));
            if block.is_multiple_of(10) {
                black_box(ebu.loudness_global().ok());
            }
        });
    });
}

fn encoding(c: &mut Criterion, game: &[f32], voice: &[f32]) {
    // The program's encoder, 20 ms stereo frames at 128 kbit/s, complexity 10: the general
    // audio application (with libopus's signal analysis) and the restricted low-delay one
    // (CELT only, no analysis, 4 ms less look-ahead).
    let mut g = c.benchmark_group("opus");
    g.throughput(Throughput::Elements((960 * 2) as u64));
    let program: Vec<f32> = game
        .iter()
        .zip(voice.iter().cycle().flat_map(|v| [*v, *v]))
        .map(|(g, v)| g * 0.5 + v * 0.5)
        .collect();
    let mut packet = vec![0u8; 4_000];
    for application in [Application::Music, Application::LowDelay] {
        let settings = EncoderSettings {
            application,
            ..EncoderSettings::music_stereo(128_000)
        };
        let mut enc = OpusEncoder::new(&settings).unwrap_or_else(|e| panic!("{e}"));
        let mut frames = program.chunks_exact(960 * 2).cycle();
        g.bench_function(format!("encode 20 ms stereo 128k, {application:?}"), |b| {
            b.iter(|| {
                let frame = frames.next().unwrap_or(&[]);
                enc.encode_frame(black_box(frame), &mut packet).unwrap_or(0)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
