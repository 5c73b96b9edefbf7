//! The limiter's ceiling holds, whatever goes in.

use booth::dsp::{Limiter, ProgramMix, ProgramSettings};

use crate::support::{Rng, db, pink_noise};

#[test]
fn six_db_over_full_scale_bursts_never_exceed_the_ceiling() {
    let mut rng = Rng::new(9);
    let mut lim = Limiter::new(-1.0).unwrap();
    let ceiling = db(-1.0);
    let noise = pink_noise(48_000 * 20, -6.0, 4);
    let noise_peak = noise.iter().fold(0f32, |m, x| m.max(x.abs()));
    // Seconds alternate: quiet noise, then a burst at +6 dB over full scale (peaky pink noise
    // or a sine), then quiet again.
    let mut signal = Vec::with_capacity(noise.len() * 2);
    for (i, &n) in noise.iter().enumerate() {
        let second = i / 48_000;
        let x = match second % 4 {
            1 => n * db(6.0) / noise_peak,
            3 => db(6.0) * (i as f32 * 0.05).sin(),
            _ => n * 0.1,
        };
        signal.push(x);
        signal.push(-x * 0.8);
    }
    assert!(signal.iter().any(|x| x.abs() >= db(6.0) * 0.99));
    let mut pos = 0;
    while pos < signal.len() / 2 {
        let n = rng.range(1, 2000).min(signal.len() / 2 - pos);
        lim.process(&mut signal[pos * 2..(pos + n) * 2]);
        pos += n;
    }
    let peak = signal.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(peak <= ceiling, "peak {peak} over ceiling {ceiling}");
    // The sine bursts come out at the ceiling, not far below it (the limiter limits, it does
    // not just turn everything down).
    let burst = &signal[(3 * 48_000 + 24_000) * 2..(3 * 48_000 + 26_000) * 2];
    let burst_peak = burst.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(burst_peak > ceiling * 0.97, "burst peak {burst_peak}");
}

#[test]
fn the_program_chain_never_exceeds_its_ceiling() {
    let settings = ProgramSettings {
        game_gain_db: 12.0,
        voice_gain_db: 12.0,
        ceiling_db: -2.0,
        ..ProgramSettings::default()
    };
    let mut mix = ProgramMix::new(settings, 960).unwrap();
    let game: Vec<f32> = pink_noise(48_000 * 5, -3.0, 8)
        .iter()
        .flat_map(|&x| [x, x])
        .collect();
    let voice = pink_noise(48_000 * 5, -3.0, 9);
    let mut out = vec![0.0; game.len()];
    mix.process(&game, &voice, &mut out);
    let peak = out.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(peak <= db(-2.0), "peak {peak}");
    assert!(
        peak > db(-2.5),
        "peak {peak}: the hot mix should reach the ceiling"
    );
}
