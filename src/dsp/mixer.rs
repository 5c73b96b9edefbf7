//! The program mix: game x duck gain x game gain + voice x voice gain, in stereo.

/// Mixes one block into `out` (stereo interleaved): `game` is stereo, `voice` mono (it sits in the
/// centre), `duck` holds the ducker's gain per frame. Works on the shortest of the inputs.
pub fn mix_into(
    game: &[f32],
    duck: &[f32],
    game_gain: f32,
    voice: &[f32],
    voice_gain: f32,
    out: &mut [f32],
) {
    for (((o, g), &d), &v) in out
        .chunks_exact_mut(2)
        .zip(game.chunks_exact(2))
        .zip(duck)
        .zip(voice)
    {
        let gg = d * game_gain;
        let vv = v * voice_gain;
        o[0] = g[0] * gg + vv;
        o[1] = g[1] * gg + vv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_ducked_game_and_centred_voice() {
        let mut out = [0.0; 4];
        mix_into(
            &[1.0, 0.5, 1.0, 0.0],
            &[0.5, 1.0],
            1.0,
            &[0.25, 0.0],
            2.0,
            &mut out,
        );
        assert_eq!(out, [1.0, 0.75, 1.0, 0.0]);
    }
}
