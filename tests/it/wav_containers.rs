//! WAV files whose samples sit in containers larger than their valid bits
//! (WAVE_FORMAT_EXTENSIBLE: 24 valid bits in 32-bit containers, as pro recorders write) read as
//! the signal sox wrote, and a header declaring absurdly many channels is refused by name.

use std::path::Path;
use std::process::Command;

use booth::audio::{AudioError, FileSource};

use crate::support::{have_tool, run, tempdir};

/// Everything a source yields, interleaved.
fn decode(path: &Path) -> Vec<f32> {
    let mut source = FileSource::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(block) = source.read().unwrap_or_else(|e| panic!("{e}")) {
        out.extend_from_slice(block);
    }
    out
}

/// What sox itself decodes a file to, as f32.
fn sox_decode(path: &Path) -> Vec<f32> {
    let out = run(Command::new("sox").arg(path).args([
        "-t",
        "raw",
        "-e",
        "floating-point",
        "-b",
        "32",
        "-",
    ]));
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A 1 kHz sine from sox at 48 kHz mono, as `bits`-bit signed integers in a
/// WAVE_FORMAT_EXTENSIBLE file.
fn sox_sine(dir: &Path, bits: u32) -> std::path::PathBuf {
    let path = dir.join(format!("sine-{bits}.wav"));
    run(Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "1", "-e", "signed-integer", "-b"])
        .arg(bits.to_string())
        .arg(&path)
        .args(["synth", "0.5", "sine", "1000", "vol", "0.7"]));
    path
}

/// The byte of wValidBitsPerSample in a canonical extensible header (fmt chunk at 12).
const VALID_BITS_AT: usize = 12 + 8 + 18;

#[test]
fn valid_bits_below_the_container_read_as_the_container() {
    if !have_tool("sox") {
        return;
    }
    let dir = tempdir();
    for (container, valid) in [(32u32, 24u16), (32, 20), (24, 20)] {
        let reference = sox_sine(dir.path(), container);
        let mut bytes = std::fs::read(&reference).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            &bytes[20..22],
            &[0xFE, 0xFF],
            "sox wrote WAVE_FORMAT_EXTENSIBLE"
        );
        assert_eq!(
            u32::from(u16::from_le_bytes([
                bytes[VALID_BITS_AT],
                bytes[VALID_BITS_AT + 1]
            ])),
            container
        );
        bytes[VALID_BITS_AT..VALID_BITS_AT + 2].copy_from_slice(&valid.to_le_bytes());
        let patched = dir.path().join(format!("valid-{valid}-in-{container}.wav"));
        std::fs::write(&patched, &bytes).unwrap_or_else(|e| panic!("{e}"));

        let want = sox_decode(&reference);
        let got = decode(&patched);
        assert_eq!(got.len(), want.len(), "{valid} in {container}: length");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{valid} in {container}: off by {worst}");
    }
}

#[test]
fn a_header_with_32767_channels_is_refused_by_name() {
    // 32,767 16-bit channels make a consistent header whose 4,096-frame block is 268 MB.
    let dir = tempdir();
    let path = dir.path().join("many.wav");
    let mut f = Vec::new();
    f.extend_from_slice(b"RIFF");
    f.extend_from_slice(&36u32.to_le_bytes());
    f.extend_from_slice(b"WAVEfmt ");
    f.extend_from_slice(&16u32.to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes());
    f.extend_from_slice(&32_767u16.to_le_bytes());
    f.extend_from_slice(&48_000u32.to_le_bytes());
    f.extend_from_slice(&(48_000u32 * 65_534).to_le_bytes());
    f.extend_from_slice(&65_534u16.to_le_bytes());
    f.extend_from_slice(&16u16.to_le_bytes());
    f.extend_from_slice(b"data");
    f.extend_from_slice(&65_534u32.to_le_bytes());
    f.extend(std::iter::repeat_n(0u8, 65_534));
    std::fs::write(&path, &f).unwrap_or_else(|e| panic!("{e}"));
    match FileSource::open(&path) {
        Err(
            e @ AudioError::TooManyChannels {
                channels: 32_767, ..
            },
        ) => {
            let message = e.to_string();
            assert!(
                message.contains("many.wav") && message.contains("32767"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}
