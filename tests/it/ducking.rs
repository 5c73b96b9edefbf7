//! The ducker on game pink noise keyed by spoken words: depth, timing, and no dips for clicks,
//! breathing or a muted voice.

use booth::dsp::{Ducker, DuckerParams, Key};

use crate::support::{Rng, db, have_tool, interleave, pink_noise, rms_of, speech, tempdir, to_db};

const MS: usize = 48;

/// Runs the ducker over `key` with stereo pink noise as the game, in ragged blocks. Returns the
/// game's gain change in dB per 1 ms window of *output* time, measured from the output samples
/// against the input samples they came from.
fn ducked_levels(params: DuckerParams, key: &[f32], muted: bool) -> Vec<f32> {
    let frames = key.len();
    let noise_l = pink_noise(frames, -20.0, 1);
    let noise_r = pink_noise(frames, -20.0, 2);
    let game = interleave(&noise_l, &noise_r);
    let mut ducker = Ducker::new(params, 1).unwrap();
    let lookahead = ducker.latency_frames();
    let mut out = game.clone();
    let mut gains = vec![0.0; 4096];
    let mut rng = Rng::new(3);
    let mut pos = 0;
    while pos < frames {
        let n = rng.range(1, 4096).min(frames - pos);
        ducker.process(
            &mut out[pos * 2..(pos + n) * 2],
            &[Key {
                samples: &key[pos..pos + n],
                muted,
            }],
            &mut gains[..n],
        );
        for (i, g) in gains[..n].iter().enumerate() {
            out[(pos + i) * 2] *= g;
            out[(pos + i) * 2 + 1] *= g;
        }
        pos += n;
    }
    // Output sample n is input sample n - lookahead with the gain applied.
    (lookahead..frames)
        .step_by(MS)
        .map(|start| {
            let end = (start + MS).min(frames);
            let o = &out[start * 2..end * 2];
            let i = &game[(start - lookahead) * 2..(end - lookahead) * 2];
            to_db(rms_of(o)) - to_db(rms_of(i))
        })
        .collect()
}

/// Speech segments of the key (1 ms windows above -40 dBFS, gaps under `bridge_ms` joined), as
/// (onset ms, end ms).
fn speech_segments(key: &[f32], bridge_ms: usize) -> Vec<(usize, usize)> {
    let active: Vec<bool> = key.chunks(MS).map(|w| to_db(rms_of(w)) > -40.0).collect();
    let mut segs: Vec<(usize, usize)> = Vec::new();
    for (ms, &a) in active.iter().enumerate() {
        if !a {
            continue;
        }
        match segs.last_mut() {
            Some(last) if ms - last.1 <= bridge_ms => last.1 = ms + 1,
            _ => segs.push((ms, ms + 1)),
        }
    }
    segs
}

/// The deepest the game went under 0 dB in `levels` (from [`ducked_levels`]), dB.
fn deepest_dip(levels: &[f32]) -> f32 {
    levels.iter().copied().fold(0.0, f32::min)
}

fn place(key: &mut [f32], at_ms: usize, words: &[f32]) {
    let at = at_ms * MS;
    key[at..at + words.len()].copy_from_slice(words);
}

#[test]
fn speech_ducks_the_game_by_the_depth_on_time_and_releases_on_time() {
    if !have_tool("espeak-ng") || !have_tool("sox") {
        return;
    }
    let dir = tempdir();
    let a = speech(
        dir.path(),
        "a",
        "Watch the left side, the boss is coming back",
    );
    let b = speech(dir.path(), "b", "Nice! That was a clean run");
    let mut key = vec![0.0f32; 12_000 * MS];
    place(&mut key, 1_000, &a);
    let b_at = 1_000 + a.len() / MS + 2_500;
    place(&mut key, b_at, &b);

    // The defaults, and a slower, deeper setting with more lookahead than attack.
    let slow = DuckerParams {
        depth_db: 18.0,
        attack_ms: 20.0,
        hold_ms: 200.0,
        release_ms: 600.0,
        lookahead_ms: 25.0,
    };
    for p in [DuckerParams::default(), slow] {
        let levels = ducked_levels(p, &key, false);
        let segments = speech_segments(&key, p.hold_ms as usize);
        assert!(segments.len() >= 2, "two phrases at least: {segments:?}");
        let mut released = 0;
        for (k, &(onset, end)) in segments.iter().enumerate() {
            // Output time = key time (the program comes out `lookahead` late, and so does the voice).
            // Full dip at the onset, within 1 dB of the depth.
            let at_onset = levels[onset];
            assert!(
                (at_onset + p.depth_db).abs() <= 1.0,
                "at the onset ({onset} ms) the game is {at_onset:.1} dB"
            );
            // Depth +-1 dB all through the speech.
            for (ms, &l) in levels.iter().enumerate().take(end).skip(onset) {
                assert!(
                    (l + p.depth_db).abs() <= 1.0,
                    "{ms} ms in speech: {l:.1} dB"
                );
            }
            // Back within 1 dB by hold + release + 50 ms after the speech ends (unless more speech
            // comes first).
            let back = end + (p.hold_ms + p.release_ms) as usize + 50;
            if segments.get(k + 1).is_none_or(|next| next.0 > back) {
                assert!(
                    levels[back] > -1.0,
                    "{} ms after the end: {:.1} dB",
                    back - end,
                    levels[back]
                );
                released += 1;
            }
            // And no dip long before the speech: it starts at most lookahead + attack early (after
            // a pause long enough for a full release).
            let quiet_before = k == 0 || segments[k - 1].1 + 800 < onset;
            let early = onset.saturating_sub((p.lookahead_ms + p.attack_ms) as usize + 5);
            if quiet_before {
                assert!(
                    levels[early] > -1.0,
                    "dip already {:.1} dB at {early} ms",
                    levels[early]
                );
            }
        }
        assert!(released >= 2, "both phrases end in a pause");
        // Between the phrases (2.5 s, longer than hold + release) the game comes all the way back.
        let gap_mid = (segments[0].1 + b_at) / 2 + 400;
        assert!(levels[gap_mid] > -0.5, "gap: {:.1} dB", levels[gap_mid]);

        // The gain glides, it never steps: the shortest ramp takes 2 ms, so no 1 ms window changes
        // by more than three quarters of the depth (window averaging blurs the exact half).
        let max_step = levels
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(
            max_step <= p.depth_db * 0.75,
            "largest 1 ms change {max_step:.2} dB"
        );
    }
}

#[test]
fn muted_speech_never_ducks() {
    if !have_tool("espeak-ng") || !have_tool("sox") {
        return;
    }
    let dir = tempdir();
    let a = speech(
        dir.path(),
        "m",
        "I am muted, nobody should hear or duck for this",
    );
    let mut key = vec![0.0f32; 5_000 * MS];
    place(&mut key, 500, &a);
    let levels = ducked_levels(DuckerParams::default(), &key, true);
    let deepest = deepest_dip(&levels);
    assert!(
        deepest > -0.1,
        "muted voice dipped the game {deepest:.2} dB"
    );
}

#[test]
fn a_hundred_key_clicks_do_not_duck() {
    // 5 ms clicks at -6 dBFS peak: bursts of white noise, as a mechanical keyboard or a mouse
    // button makes next to a microphone, at typing pace.
    let mut rng = Rng::new(11);
    let mut key = vec![0.0f32; 40_000 * MS];
    let mut at = 200 * MS;
    for _ in 0..100 {
        for s in &mut key[at..at + 5 * MS] {
            *s = db(-6.0) * rng.uniform();
        }
        at += rng.range(120, 380) * MS;
    }
    let levels = ducked_levels(DuckerParams::default(), &key, false);
    let deepest = deepest_dip(&levels);
    assert!(deepest > -1.0, "clicks dipped the game {deepest:.2} dB");
}

#[test]
fn breathing_does_not_duck() {
    // Breaths: high-passed noise with a slow swell, 0.8 s in, 1 s out, at -40 dBFS RMS.
    let mut rng = Rng::new(5);
    let frames = 10_000 * MS;
    let mut key = vec![0.0f32; frames];
    let mut hp = booth::dsp::Biquad::high_pass(1200.0, 0.707, 48_000);
    let breath = 1_800 * MS;
    for (i, s) in key.iter_mut().enumerate() {
        let t = (i % (breath + 700 * MS)) as f32 / breath as f32;
        let env = if t < 1.0 {
            (std::f32::consts::PI * t).sin()
        } else {
            0.0
        };
        *s = hp.process(rng.uniform()) * env;
    }
    let rms = rms_of(&key);
    let k = db(-40.0) / rms;
    key.iter_mut().for_each(|s| *s *= k);
    let levels = ducked_levels(DuckerParams::default(), &key, false);
    let deepest = deepest_dip(&levels);
    assert!(deepest > -1.0, "breathing dipped the game {deepest:.2} dB");
}

#[test]
fn the_voice_gate_quiets_hiss_between_phrases_but_never_clips_a_first_syllable() {
    use booth::dsp::{ProgramMix, ProgramSettings};
    if !have_tool("espeak-ng") || !have_tool("sox") {
        return;
    }
    let dir = tempdir();
    let words = speech(dir.path(), "g", "Go left now");
    // Room hiss at -50 dBFS all along (a fan, a noisy preamp), words from 2.5 s.
    let mut voice = vec![0.0f32; 6_000 * MS];
    let mut hp = booth::dsp::Biquad::high_pass(300.0, 0.707, 48_000);
    let mut rng = Rng::new(2);
    let hiss: Vec<f32> = (0..voice.len())
        .map(|_| hp.process(rng.uniform()))
        .collect();
    let k = db(-50.0) / rms_of(&hiss);
    for (v, h) in voice.iter_mut().zip(&hiss) {
        *v = h * k;
    }
    let start = 2_500;
    for (v, w) in voice[start * MS..].iter_mut().zip(&words) {
        *v += w;
    }
    let end = start + words.len() / MS;
    let run = |gate_db: f32| {
        let settings = ProgramSettings {
            voice_gate_db: gate_db,
            ..ProgramSettings::default()
        };
        let mut mix = ProgramMix::new(settings, 960).unwrap();
        let game = vec![0.0f32; voice.len() * 2];
        let mut out = vec![0.0f32; voice.len() * 2];
        mix.process(&game, &voice, &mut out);
        let latency = mix.latency_frames();
        // Left channel, moved back into the voice's own time.
        let l: Vec<f32> = out.iter().step_by(2).skip(latency).copied().collect();
        l
    };
    let open = run(0.0);
    let gated = run(12.0);
    let level = |x: &[f32], from_ms: usize, len_ms: usize| {
        to_db(rms_of(&x[from_ms * MS..(from_ms + len_ms) * MS]))
    };
    let onset = speech_segments(&voice[start * MS..], 300)[0].0 + start;
    // The first syllable passes whole: its first 20 ms within 1 dB of the ungated voice.
    let diff = level(&open, onset, 20) - level(&gated, onset, 20);
    assert!(diff.abs() < 1.0, "onset {diff:.2} dB down");
    // The words pass at full level.
    let diff = level(&open, onset, end - onset) - level(&gated, onset, end - onset);
    assert!(diff.abs() < 0.5, "words {diff:.2} dB down");
    // The hiss between phrases comes out 12 dB down (within 1 dB): before the words, once the
    // detector has learnt the floor, and after them, past the hold and release.
    for (from, len) in [(1_200, 1_000), (end + 600, 800)] {
        let diff = level(&open, from, len) - level(&gated, from, len);
        assert!(
            (diff - 12.0).abs() < 1.0,
            "hiss at {from} ms {diff:.2} dB down"
        );
    }
}
