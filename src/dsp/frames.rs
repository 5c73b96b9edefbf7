//! Channel layout conversions on interleaved frames.

/// Downmixes interleaved frames of `channels` channels into stereo, writing `frames x 2` samples
/// into `out`; returns the frames written (limited by `out`).
///
/// Mono is copied to both sides; stereo passes through. Wider layouts follow the WAVE/SMPTE
/// channel order (FL, FR, FC, LFE, then surround pairs): the centre goes to both sides at -3 dB,
/// the LFE is dropped, and each surround pair joins its side at -3 dB, normalised so a signal on
/// every channel cannot sum louder than it was.
pub fn downmix_to_stereo(input: &[f32], channels: usize, out: &mut [f32]) -> usize {
    if channels == 0 {
        return 0;
    }
    let frames = (input.len() / channels).min(out.len() / 2);
    match channels {
        1 => {
            for (o, &s) in out.chunks_exact_mut(2).zip(input).take(frames) {
                o[0] = s;
                o[1] = s;
            }
        }
        2 => out[..frames * 2].copy_from_slice(&input[..frames * 2]),
        _ => {
            const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;
            let surround_pairs = channels.saturating_sub(4) / 2;
            let centre = if channels >= 3 { MINUS_3DB } else { 0.0 };
            let norm = 1.0 / (1.0 + centre + MINUS_3DB * surround_pairs as f32);
            for (o, frame) in out
                .chunks_exact_mut(2)
                .zip(input.chunks_exact(channels))
                .take(frames)
            {
                let mut left = frame[0];
                let mut right = frame[1];
                if channels >= 3 {
                    left += centre * frame[2];
                    right += centre * frame[2];
                }
                for pair in frame[4.min(channels)..].chunks_exact(2) {
                    left += MINUS_3DB * pair[0];
                    right += MINUS_3DB * pair[1];
                }
                o[0] = left * norm;
                o[1] = right * norm;
            }
        }
    }
    frames
}

/// Downmixes interleaved frames of `channels` channels to mono (the mean of all channels but an
/// LFE), writing into `out`; returns the frames written.
pub fn downmix_to_mono(input: &[f32], channels: usize, out: &mut [f32]) -> usize {
    if channels == 0 {
        return 0;
    }
    let frames = (input.len() / channels).min(out.len());
    if channels == 1 {
        out[..frames].copy_from_slice(&input[..frames]);
        return frames;
    }
    let skip_lfe = channels >= 4;
    let used = if skip_lfe { channels - 1 } else { channels } as f32;
    for (o, frame) in out
        .iter_mut()
        .zip(input.chunks_exact(channels))
        .take(frames)
    {
        let sum: f32 = frame.iter().sum();
        *o = (sum - if skip_lfe { frame[3] } else { 0.0 }) / used;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_goes_to_both_sides() {
        let mut out = [0.0; 6];
        assert_eq!(downmix_to_stereo(&[0.1, 0.2, 0.3], 1, &mut out), 3);
        assert_eq!(out, [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]);
    }

    #[test]
    fn five_one_keeps_sides_apart_and_drops_lfe() {
        // FL only, then LFE only.
        let input = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let mut out = [0.0; 4];
        assert_eq!(downmix_to_stereo(&input, 6, &mut out), 2);
        assert!(out[0] > 0.3 && out[1] == 0.0, "{out:?}");
        assert_eq!(&out[2..], &[0.0, 0.0]);
    }

    #[test]
    fn stereo_to_mono_is_the_mean() {
        let mut out = [0.0; 2];
        assert_eq!(downmix_to_mono(&[1.0, 0.0, 0.5, 0.5], 2, &mut out), 2);
        assert_eq!(out, [0.5, 0.5]);
    }
}
