//! Channel layout conversions on interleaved frames.

/// Where each channel of a layout goes: (left weight, right weight).
///
/// Layouts follow the WAVE/SMPTE channel order for each count (what WAV, FLAC and Ogg give):
/// 3 = L R C, 4 = L R BL BR (quad), 5 = L R C BL BR, 6 = 5.1 (L R C LFE BL BR),
/// 7 = 6.1 (L R C LFE BC SL SR), 8 = 7.1 (L R C LFE BL BR SL SR). Centres reach both sides at
/// -3 dB, surrounds their own side at -3 dB, the LFE is dropped (ITU-R BS.775). Wider, unknown
/// layouts alternate left and right.
fn stereo_weights(channels: usize, ch: usize) -> (f32, f32) {
    const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const L: (f32, f32) = (1.0, 0.0);
    const R: (f32, f32) = (0.0, 1.0);
    const C: (f32, f32) = (H, H);
    const SL: (f32, f32) = (H, 0.0);
    const SR: (f32, f32) = (0.0, H);
    const BC: (f32, f32) = (0.5, 0.5);
    const LFE: (f32, f32) = (0.0, 0.0);
    let layout: &[(f32, f32)] = match channels {
        1 => &[C],
        2 => &[L, R],
        3 => &[L, R, C],
        4 => &[L, R, SL, SR],
        5 => &[L, R, C, SL, SR],
        6 => &[L, R, C, LFE, SL, SR],
        7 => &[L, R, C, LFE, BC, SL, SR],
        8 => &[L, R, C, LFE, SL, SR, SL, SR],
        _ => &[],
    };
    layout
        .get(ch)
        .copied()
        .unwrap_or(if ch.is_multiple_of(2) { L } else { R })
}

/// Downmixes interleaved frames of `channels` channels into stereo, writing `frames x 2` samples
/// into `out`; returns the frames written (limited by `out`).
///
/// Mono is copied to both sides; stereo passes through; wider layouts are folded down per
/// [`stereo_weights`], normalised so that a signal on every channel cannot sum louder than it was
/// (as ffmpeg's downmix does).
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
            // Up to 8 named channels; wider layouts fold their extra channels in generically.
            let mut weights = [(0.0f32, 0.0f32); 64];
            let n = channels.min(weights.len());
            let (mut sum_l, mut sum_r) = (0.0f32, 0.0f32);
            for (ch, w) in weights.iter_mut().enumerate().take(n) {
                *w = stereo_weights(channels, ch);
                sum_l += w.0;
                sum_r += w.1;
            }
            let norm = 1.0 / sum_l.max(sum_r).max(1.0);
            for (o, frame) in out
                .chunks_exact_mut(2)
                .zip(input.chunks_exact(channels))
                .take(frames)
            {
                let (mut left, mut right) = (0.0, 0.0);
                for (&x, &(wl, wr)) in frame.iter().zip(&weights[..n]) {
                    left += x * wl;
                    right += x * wr;
                }
                o[0] = left * norm;
                o[1] = right * norm;
            }
        }
    }
    frames
}

/// Brings interleaved frames of `in_channels` (any count) to `out_channels` (1 or 2): copied when
/// they match, otherwise folded by [`downmix_to_mono`] or [`downmix_to_stereo`]. Returns the
/// frames written (limited by `out`). The one place Booth converts channel layouts.
pub fn fold_channels(
    input: &[f32],
    in_channels: usize,
    out: &mut [f32],
    out_channels: usize,
) -> usize {
    if in_channels == 0 || out_channels == 0 {
        return 0;
    }
    if in_channels == out_channels {
        let frames = (input.len() / in_channels).min(out.len() / out_channels);
        out[..frames * out_channels].copy_from_slice(&input[..frames * in_channels]);
        return frames;
    }
    if out_channels == 1 {
        downmix_to_mono(input, in_channels, out)
    } else {
        downmix_to_stereo(input, in_channels, out)
    }
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
    // 5.1, 6.1 and 7.1 carry the LFE in slot 3.
    let lfe = (6..=8).contains(&channels).then_some(3);
    let used = (channels - usize::from(lfe.is_some())) as f32;
    for (o, frame) in out
        .iter_mut()
        .zip(input.chunks_exact(channels))
        .take(frames)
    {
        let sum: f32 = frame.iter().sum();
        *o = (sum - lfe.map_or(0.0, |i| frame[i])) / used;
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
    fn quad_keeps_rear_channels_on_their_side() {
        // BL only: a quad file has no centre, so slot 2 is the left surround.
        let input = [0.0, 0.0, 1.0, 0.0];
        let mut out = [0.0; 2];
        downmix_to_stereo(&input, 4, &mut out);
        assert!(out[0] > 0.3 && out[1] == 0.0, "{out:?}");
    }

    #[test]
    fn fold_copies_matching_layouts_and_downmixes_the_rest() {
        let mut out = [0.0; 4];
        assert_eq!(fold_channels(&[0.1, 0.2, 0.3, 0.4], 2, &mut out, 2), 2);
        assert_eq!(out, [0.1, 0.2, 0.3, 0.4]);
        let mut mono = [0.0; 1];
        // 5.1 to mono: the LFE (slot 3) stays out of the mean.
        assert_eq!(
            fold_channels(&[0.5, 0.5, 0.5, 9.0, 0.5, 0.5], 6, &mut mono, 1),
            1
        );
        assert!((mono[0] - 0.5).abs() < 1e-6, "{mono:?}");
    }

    #[test]
    fn stereo_to_mono_is_the_mean() {
        let mut out = [0.0; 2];
        assert_eq!(downmix_to_mono(&[1.0, 0.0, 0.5, 0.5], 2, &mut out), 2);
        assert_eq!(out, [0.5, 0.5]);
    }
}
