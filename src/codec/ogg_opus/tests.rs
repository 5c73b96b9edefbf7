//! The Ogg Opus writer and reader, each checked against the other and against RFC 7845's
//! rules for pages; damaged input must be an error, never a panic.

use std::io::{Cursor, Read, Seek};
use std::time::Duration;

use ::opus as lib;
use ogg::PacketReader;

use super::page::{FLAG_BOS, FLAG_EOS, NO_GRANULE, PageView, PageWriter, crc_update, parse_page};
use super::writer::opus_tags;
use super::*;
use crate::codec::CodecError;
use crate::codec::opus::EncoderSettings;

const TAU: f32 = std::f32::consts::TAU;

/// A 1 kHz sine at amplitude 0.5: on both channels, on the left only, or mono.
fn sine(frames: usize, channels: usize, left_only: bool) -> Vec<f32> {
    (0..frames)
        .flat_map(|n| {
            let x = 0.5 * (TAU * 1000.0 * n as f32 / 48_000.0).sin();
            let r = if left_only { 0.0 } else { x };
            [x, r].into_iter().take(channels)
        })
        .collect()
}

fn writer(channels: u8) -> OggOpusWriter<Vec<u8>> {
    let settings = EncoderSettings {
        channels,
        ..EncoderSettings::music_stereo(128_000)
    };
    OggOpusWriter::new(Vec::new(), &settings, 44_100).unwrap()
}

fn encode(pcm: &[f32], channels: u8, page: Option<Duration>) -> Vec<u8> {
    let mut w = writer(channels);
    if let Some(d) = page {
        w.set_page_duration(d);
    }
    // Ragged blocks, as a capture callback would deliver them.
    for chunk in pcm.chunks(777 * usize::from(channels)) {
        w.write(chunk).unwrap();
    }
    assert_eq!(
        w.frames_written(),
        (pcm.len() / usize::from(channels)) as u64
    );
    w.finish().unwrap()
}

fn decode_all<R: Read + Seek>(r: &mut OggOpusReader<R>) -> Result<Vec<f32>, CodecError> {
    let mut out = Vec::new();
    while let Some(b) = r.read()? {
        out.extend_from_slice(b);
    }
    Ok(out)
}

fn decode(bytes: Vec<u8>) -> (Vec<f32>, Option<u64>) {
    let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
    let total = r.total_frames();
    let out = decode_all(&mut r).unwrap();
    assert!(!r.truncated());
    (out, total)
}

fn channel(x: &[f32], channels: usize, c: usize) -> Vec<f32> {
    x.iter().skip(c).step_by(channels).copied().collect()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn db(ratio: f32) -> f32 {
    20.0 * ratio.max(1e-12).log10()
}

/// Least-squares fit of a 1 kHz sinusoid: (amplitude, phase in radians, residual rms).
fn fit_1khz(x: &[f32], first_sample: usize) -> (f32, f32, f32) {
    let w = |n: usize| TAU * 1000.0 * (n + first_sample) as f32 / 48_000.0;
    let (mut s, mut c) = (0.0f32, 0.0f32);
    for (n, &v) in x.iter().enumerate() {
        s += v * w(n).sin();
        c += v * w(n).cos();
    }
    let (a, b) = (2.0 * s / x.len() as f32, 2.0 * c / x.len() as f32);
    let resid: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(n, &v)| v - a * w(n).sin() - b * w(n).cos())
        .collect();
    (a.hypot(b), b.atan2(a), rms(&resid))
}

/// Every page of `bytes`, checked whole and with a valid checksum, with its offset.
fn pages(bytes: &[u8]) -> Vec<(usize, PageView)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let page = parse_page(&bytes[at..]).unwrap();
        out.push((at, page));
        at += page.len;
    }
    out
}

/// The length of the page at `at`, from its header and lacing alone.
fn page_len(bytes: &[u8], at: usize) -> usize {
    let segments = usize::from(bytes[at + 26]);
    let lacing = &bytes[at + PAGE_HEADER..at + PAGE_HEADER + segments];
    PAGE_HEADER + segments + lacing.iter().map(|&l| usize::from(l)).sum::<usize>()
}

/// Recomputes the checksum of the page at `at` after an edit.
fn refresh_crc(bytes: &mut [u8], at: usize) {
    let len = page_len(bytes, at);
    let page = &mut bytes[at..at + len];
    page[22..26].fill(0);
    let crc = crc_update(0, page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
}

/// Sets a page's granule position and fixes its checksum.
fn set_granule(bytes: &mut [u8], at: usize, granule: u64) {
    bytes[at + 6..at + 14].copy_from_slice(&granule.to_le_bytes());
    refresh_crc(bytes, at);
}

#[test]
fn round_trip_has_exactly_the_input_length() {
    for frames in [0, 1, 311, 312, 960, 961, 12_345, 48_000] {
        let pcm = sine(frames, 2, false);
        let (out, total) = decode(encode(&pcm, 2, None));
        assert_eq!(out.len(), pcm.len(), "{frames} frames");
        assert_eq!(total, Some(frames as u64), "{frames} frames");
    }
}

#[test]
fn round_trip_keeps_frequency_level_and_timing() {
    let pcm = sine(48_000, 2, false);
    let (out, _) = decode(encode(&pcm, 2, None));
    for c in 0..2 {
        // Past the first 20 ms, where the encoder is still settling.
        let x = &channel(&out, 2, c)[960..];
        let (amp, phase, resid) = fit_1khz(x, 960);
        assert!(db(amp / 0.5).abs() < 1.0, "ch {c}: level {amp}");
        assert!(db(rms(x) / (0.5 / 2f32.sqrt())).abs() < 1.0, "ch {c}: rms");
        assert!(db(resid / amp) < -30.0, "ch {c}: not a clean 1 kHz tone");
        // In phase with the input to within a tenth of a sample: pre-skip is exact.
        let samples_off = phase / (TAU * 1000.0 / 48_000.0);
        assert!(
            samples_off.abs() < 0.1,
            "ch {c}: {samples_off} samples late"
        );
    }
}

#[test]
fn a_left_only_tone_stays_left() {
    let pcm = sine(48_000, 2, true);
    let (out, _) = decode(encode(&pcm, 2, None));
    let (l, r) = (channel(&out, 2, 0), channel(&out, 2, 1));
    let (lr, rr) = (rms(&l[960..]), rms(&r[960..]));
    assert!(db(lr / (0.5 / 2f32.sqrt())).abs() < 1.0, "left {lr}");
    assert!(db(lr / rr) > 30.0, "right only {:.1} dB down", db(lr / rr));
}

#[test]
fn mono_round_trip() {
    let pcm = sine(20_000, 1, false);
    let bytes = encode(&pcm, 1, None);
    let (out, total) = decode(bytes.clone());
    assert_eq!(out.len(), pcm.len());
    assert_eq!(total, Some(20_000));
    assert_eq!(
        OggOpusReader::new(Cursor::new(bytes)).unwrap().channels(),
        1
    );
    let (amp, _, resid) = fit_1khz(&out[960..], 960);
    assert!(db(amp / 0.5).abs() < 1.0 && db(resid / amp) < -30.0);
}

#[test]
fn pages_follow_rfc_7845_and_come_at_least_every_second() {
    let frames = 48_000 * 5 + 123;
    let bytes = encode(&sine(frames, 2, false), 2, None);
    let all = pages(&bytes);
    let (head, tags, audio) = (&all[0].1, &all[1].1, &all[2..]);
    assert_eq!(head.flags, FLAG_BOS);
    assert_eq!(head.granule, 0);
    assert_eq!(&bytes[all[0].0 + 28..all[0].0 + 36], OPUS_HEAD);
    assert_eq!(bytes[all[0].0 + 26], 1, "OpusHead alone on its page");
    assert_eq!((tags.flags, tags.granule), (0, 0));
    assert_eq!(&bytes[all[1].0 + 28..all[1].0 + 36], OPUS_TAGS);
    assert!(audio.len() >= 6, "{} audio pages for 5 s", audio.len());
    let mut last = 0;
    for (i, (_, p)) in all.iter().enumerate() {
        assert_eq!(p.sequence, i as u32);
        assert_eq!(p.serial, head.serial);
        assert!(p.granule >= last, "granule goes back at page {i}");
        assert!(p.granule - last <= 48_000, "page {i} spans over 1 s");
        last = p.granule;
    }
    let (_, end) = audio[audio.len() - 1];
    assert_eq!(end.flags, FLAG_EOS);
    assert_eq!(end.granule, 312 + frames as u64);
    assert!(audio[..audio.len() - 1].iter().all(|(_, p)| p.flags == 0));

    let short = encode(&sine(48_000, 2, false), 2, Some(Duration::from_millis(200)));
    let n = pages(&short).len() - 2;
    assert!(n >= 5, "{n} audio pages for 1 s at 200 ms");
}

#[test]
fn comments_go_into_opus_tags() {
    let settings = EncoderSettings::music_stereo(96_000);
    let w = OggOpusWriter::with_comments(
        Vec::new(),
        &settings,
        48_000,
        &[("TITLE", "Launch night"), ("ARTIST", "Booth")],
    )
    .unwrap();
    let bytes = w.finish().unwrap();
    let tags_page = pages(&bytes)[1].0;
    let tags = &bytes[tags_page + 28..];
    let vendor_len = u32::from_le_bytes(tags[8..12].try_into().unwrap()) as usize;
    let vendor = std::str::from_utf8(&tags[12..12 + vendor_len]).unwrap();
    assert!(
        vendor.starts_with("Booth ") && vendor.contains("libopus"),
        "{vendor}"
    );
    let rest = &tags[12 + vendor_len..];
    assert_eq!(u32::from_le_bytes(rest[..4].try_into().unwrap()), 2);
    assert_eq!(&rest[8..26], b"TITLE=Launch night");
    assert!(OggOpusWriter::with_comments(Vec::new(), &settings, 48_000, &[("A=B", "x")]).is_err());
}

#[test]
fn flush_page_puts_every_whole_frame_out() {
    let mut w = writer(2);
    let pcm = sine(48_000, 2, false);
    w.write(&pcm[..10_000 * 2]).unwrap();
    w.flush_page().unwrap();
    // 10 whole frames are out; the 400 samples of the 11th wait for more.
    let mut r = OggOpusReader::new(Cursor::new(w.get_ref().clone())).unwrap();
    let so_far = decode_all(&mut r).unwrap();
    assert!(r.truncated());
    assert_eq!(so_far.len(), (10 * 960 - 312) * 2);
    w.flush_page().unwrap(); // nothing new: no empty page
    w.write(&pcm[10_000 * 2..]).unwrap();
    let (out, total) = decode(w.finish().unwrap());
    assert_eq!(out.len(), pcm.len());
    assert_eq!(total, Some(48_000));
}

#[test]
fn a_recording_cut_short_plays_up_to_its_last_whole_page() {
    let bytes = encode(&sine(48_000 * 5, 2, false), 2, None);
    let all = pages(&bytes);
    // Cut inside the fourth audio page: three whole seconds survive.
    let (cut_at, _) = all[2 + 3];
    let cut = bytes[..cut_at + 100].to_vec();
    let mut r = OggOpusReader::new(Cursor::new(cut)).unwrap();
    let total = r.total_frames();
    let out = decode_all(&mut r).unwrap();
    assert!(r.truncated());
    assert_eq!(out.len(), (3 * 48_000 - 312) * 2);
    assert_eq!(total, Some(3 * 48_000 - 312));
}

#[test]
fn a_stream_starting_at_a_later_granule_plays_whole() {
    // As if cut from a live stream: every audio page's granule position moved on.
    let frames = 100_000;
    let mut bytes = encode(&sine(frames, 2, false), 2, None);
    for (at, p) in pages(&bytes).into_iter().skip(2) {
        set_granule(&mut bytes, at, p.granule + 480_000);
    }
    let (out, total) = decode(bytes);
    assert_eq!(out.len(), frames * 2);
    assert_eq!(total, Some(frames as u64));
}

#[test]
fn end_trimming_may_reach_back_over_several_packets() {
    let frames = 30_000;
    let mut bytes = encode(&sine(frames, 2, false), 2, None);
    let (at, last) = *pages(&bytes).last().unwrap();
    set_granule(&mut bytes, at, last.granule - 2_500);
    let (out, total) = decode(bytes);
    assert_eq!(out.len(), (frames - 2_500) * 2);
    assert_eq!(total, Some(frames as u64 - 2_500));
}

#[test]
fn output_gain_is_applied() {
    let mut bytes = encode(&sine(9_600, 1, false), 1, None);
    let (plain, _) = decode(bytes.clone());
    // -6 dB in Q7.8, patched into OpusHead.
    let gain = (-6i16 * 256).to_le_bytes();
    bytes[28 + 16..28 + 18].copy_from_slice(&gain);
    refresh_crc(&mut bytes, 0);
    let (quiet, _) = decode(bytes);
    let change = db(rms(&quiet[960..]) / rms(&plain[960..]));
    assert!((change + 6.0).abs() < 0.01, "{change} dB");
}

/// An Ogg page holding one packet, as another muxer would write it.
fn one_page(packet: &[u8], flags_eos: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pw = PageWriter::new(7);
    pw.push(&mut out, packet, 0).unwrap();
    pw.write_page(&mut out, flags_eos).unwrap();
    out
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let open = |b: Vec<u8>| OggOpusReader::new(Cursor::new(b));
    assert!(matches!(open(Vec::new()), Err(CodecError::NotOggOpus(_))));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..10_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    assert!(matches!(open(noise), Err(CodecError::NotOggOpus(_))));
    let vorbis = one_page(b"\x01vorbis\0\0\0\0\x02\x44\xac\0\0", false);
    assert!(!is_ogg_opus(&vorbis));
    match open(vorbis) {
        Err(CodecError::NotOggOpus(m)) => assert!(m.contains("Vorbis"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut six = OPUS_HEAD.to_vec();
    six.extend_from_slice(&[1, 6, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 2]);
    assert!(matches!(
        open(one_page(&six, false)),
        Err(CodecError::UnsupportedLayout {
            channels: 6,
            family: 2
        })
    ));
    let good = encode(&sine(48_000, 2, false), 2, None);
    assert!(is_ogg_opus(&good[..64]));
    assert!(!is_ogg_opus(b"RIFF\0\0\0\0WAVEfmt "));
    // Cut inside the headers.
    for cut in [3, 4, 27, 40, 60, 100] {
        assert!(open(good[..cut].to_vec()).is_err(), "cut at {cut}");
    }
    // A damaged audio page is reported, with where.
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    match open(damaged).and_then(|mut r| decode_all(&mut r)) {
        Err(CodecError::Corrupt(m)) => assert!(m.contains("checksum"), "{m}"),
        other => panic!("damage went unnoticed: {other:?}"),
    }
    // A page lost whole: the audio after it would play early, so it is reported.
    let long = encode(&sine(48_000 * 3, 2, false), 2, None);
    let (at, lost) = pages(&long)[3];
    let mut holed = long[..at].to_vec();
    holed.extend_from_slice(&long[at + lost.len..]);
    let mut r = open(holed).unwrap();
    match decode_all(&mut r) {
        Err(CodecError::Corrupt(m)) => {
            assert!(m.contains("1000 ms of audio are missing"), "{m}")
        }
        other => panic!("a lost page went unnoticed: {other:?}"),
    }
}

/// Cut everywhere and damaged everywhere: errors are fine, panics are not.
#[test]
fn no_input_makes_the_reader_panic() {
    let good = encode(&sine(4_800, 2, false), 2, Some(Duration::from_millis(40)));
    let play = |bytes: Vec<u8>| {
        if let Ok(mut r) = OggOpusReader::new(Cursor::new(bytes)) {
            let _ = r.total_frames();
            let _ = decode_all(&mut r);
        }
    };
    for cut in 0..good.len() {
        play(good[..cut].to_vec());
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3_000 {
        let mut bad = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bad.len() as u64) as usize;
            bad[at] = next() as u8;
        }
        // Damage that keeps checksums valid reaches the Opus and header parsers too.
        for (at, _) in pages(&good) {
            let whole = bad.len() > at + PAGE_HEADER
                && bad[at..].starts_with(CAPTURE)
                && at + page_len(&bad, at) <= bad.len();
            if whole && next() % 2 == 0 {
                refresh_crc(&mut bad, at);
            }
        }
        play(bad);
    }
}

#[test]
fn surround_files_decode_in_wave_order() {
    // 5.1 in Vorbis order (FL C FR RL RR LFE), coupled as libopus's surround layout does:
    // streams FL+FR, RL+RR, C, LFE.
    let mapping = [0u8, 4, 1, 2, 3, 5];
    let mut enc = lib::MSEncoder::new(48_000, 4, 2, &mapping, lib::Application::Audio).unwrap();
    let mut head = OPUS_HEAD.to_vec();
    head.extend_from_slice(&[1, 6, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 1, 4, 2]);
    head.extend_from_slice(&mapping);
    let mut bytes = Vec::new();
    let mut pw = PageWriter::new(9);
    pw.push(&mut bytes, &head, 0).unwrap();
    pw.write_page(&mut bytes, false).unwrap();
    pw.push(&mut bytes, &opus_tags(&[]).unwrap(), 0).unwrap();
    pw.write_page(&mut bytes, false).unwrap();
    // A tone on the centre only (Vorbis channel 1).
    let frames = 960 * 25;
    let mut pcm = vec![0.0f32; frames * 6];
    for n in 0..frames {
        pcm[n * 6 + 1] = 0.5 * (TAU * 1000.0 * n as f32 / 48_000.0).sin();
    }
    let mut packet = vec![0u8; 8_000];
    for (i, f) in pcm.chunks(960 * 6).enumerate() {
        let len = enc.encode_float(f, &mut packet).unwrap();
        pw.push(&mut bytes, &packet[..len], (i as u64 + 1) * 960)
            .unwrap();
    }
    pw.write_page(&mut bytes, true).unwrap();

    let mut r = OggOpusReader::new(Cursor::new(bytes)).unwrap();
    assert_eq!(r.channels(), 6);
    let out = decode_all(&mut r).unwrap();
    assert_eq!(out.len(), (frames - 312) * 6);
    let levels: Vec<f32> = (0..6).map(|c| rms(&channel(&out, 6, c)[960..])).collect();
    // WAVE order: FL FR FC LFE BL BR. The centre is slot 2.
    assert!(
        db(levels[2] / (0.5 / 2f32.sqrt())).abs() < 1.0,
        "{levels:?}"
    );
    for c in [0, 1, 3, 4, 5] {
        assert!(db(levels[c] / levels[2]) < -30.0, "{levels:?}");
    }
}

#[test]
fn long_packets_continue_across_pages() {
    let mut bytes = Vec::new();
    let mut pw = PageWriter::new(1);
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    pw.push(&mut bytes, &[1, 2, 3], 5).unwrap();
    pw.push(&mut bytes, &big, 10).unwrap();
    pw.push(&mut bytes, &[0; 255 * 3], 11).unwrap();
    pw.write_page(&mut bytes, true).unwrap();
    let all = pages(&bytes);
    assert!(all.len() >= 4);
    // Pages that end nothing carry no granule position.
    assert!(all.iter().any(|(_, p)| p.granule == NO_GRANULE));
    let mut r = PacketReader::new(Cursor::new(bytes));
    let lens: Vec<usize> = std::iter::from_fn(|| r.read_packet().unwrap())
        .map(|p| p.data.len())
        .collect();
    assert_eq!(lens, [3, 200_000, 765]);
}

#[test]
fn crc_matches_the_ogg_reference() {
    // The ogg crate checks every page it reads with its own CRC.
    let bytes = encode(&sine(4_800, 2, false), 2, None);
    let mut r = PacketReader::new(Cursor::new(bytes));
    let mut n = 0;
    while r.read_packet().unwrap().is_some() {
        n += 1;
    }
    assert!(n > 3);
}
