//! The streaming resampler: clean, on pitch, and exactly as long as it should be.

use booth::dsp::StreamResampler;

use crate::support::{Rng, best_sine, channel};

fn resample_all(
    r: &mut StreamResampler,
    input: &[f32],
    in_ch: usize,
    blocks: &mut Rng,
) -> Vec<f32> {
    let mut out = Vec::new();
    let mut buf = vec![0.0; (r.output_frames_max(8192).max(r.flush_frames_max())) * 2];
    let mut pos = 0;
    while pos < input.len() {
        let n = blocks.range(1, 8192).min((input.len() - pos) / in_ch);
        let wrote = r
            .process_into(&input[pos..pos + n * in_ch], &mut buf)
            .unwrap();
        out.extend_from_slice(&buf[..wrote * 2]);
        pos += n * in_ch;
    }
    let wrote = r.finish_into(&mut buf).unwrap();
    out.extend_from_slice(&buf[..wrote * 2]);
    out
}

#[test]
fn a_1khz_sine_at_44k1_comes_out_at_1khz_with_90db_snr() {
    let rate = 44_100.0;
    let input: Vec<f32> = (0..44_100 * 3)
        .flat_map(|n| {
            let x = (0.5 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / rate).sin()) as f32;
            [x, x]
        })
        .collect();
    let mut r = StreamResampler::new(44_100, 2, 2).unwrap();
    let out = resample_all(&mut r, &input, 2, &mut Rng::new(7));
    assert_eq!(out.len() / 2, 48_000 * 3);
    // One second from the middle, away from the edges.
    let left = channel(&out, 0);
    let (f, snr) = best_sine(&left[48_000..96_000], 1000.0, 0.5, 48_000.0);
    eprintln!("1 kHz through 44.1 -> 48 kHz: {f:.5} Hz, SNR {snr:.1} dB");
    assert!((f - 1000.0).abs() < 0.1, "frequency {f} Hz");
    assert!(snr >= 90.0, "SNR {snr:.1} dB");
    let right = channel(&out, 1);
    let (_, snr_r) = best_sine(&right[48_000..96_000], 1000.0, 0.5, 48_000.0);
    assert!(snr_r >= 90.0, "right SNR {snr_r:.1} dB");
}

#[test]
fn ten_minutes_in_random_blocks_has_the_exact_length() {
    for (rate, ch) in [(44_100u32, 2usize), (22_050, 1)] {
        let frames = rate as usize * 600;
        let input = vec![0.25f32; frames * ch];
        let mut r = StreamResampler::new(rate, ch, 2).unwrap();
        let out = resample_all(&mut r, &input, ch, &mut Rng::new(u64::from(rate)));
        let want = frames as u64 * 48_000 / u64::from(rate);
        assert_eq!(out.len() as u64 / 2, want, "rate {rate}");
        // A constant stays constant through the middle (no dropped or doubled chunks).
        let mid = &out[out.len() / 2..out.len() / 2 + 48_000];
        assert!(mid.iter().all(|&x| (x - 0.25).abs() < 1e-3));
    }
}
