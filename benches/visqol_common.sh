# Shared by the quality comparison scripts (benches/*_quality.sh); sourced, not run, from the
# checkout's top. Checks for the tools the clips are made with, builds ViSQOL v3 (the
# audio_samples_qoe crate, pinned) once into target/visqol (a few minutes the first time) and
# sets `visqol` to it:
#   "$visqol" REFERENCE.wav DEGRADED.wav          MOS-LQO in audio mode (48 kHz, music)
#   "$visqol" --speech REFERENCE.wav DEGRADED.wav MOS-LQO in speech mode (16 kHz, voices)
# The clips are made with these (tests/run installs them).
for tool in sox espeak-ng; do
    command -v "$tool" >/dev/null || { echo "needs $tool (tests/run installs it)" >&2; exit 1; }
done
scorer=${CARGO_TARGET_DIR:-$PWD/target}/visqol
mkdir -p "$scorer/src"
cat >"$scorer/Cargo.toml" <<'TOML'
[package]
name = "visqol-score"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
audio_samples_qoe = "=0.1.3"
audio_samples_io = { version = "=0.3.3", features = ["wav"] }

[workspace]
TOML
cat >"$scorer/src/main.rs" <<'RUST'
//! visqol-score [--speech] REFERENCE.wav DEGRADED.wav: prints ViSQOL's MOS-LQO (audio mode, or
//! speech mode).
use audio_samples_qoe::{AudioSamplesQoE, VisqolOptions};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, reference, degraded) = match args.as_slice() {
        [r, d] => (VisqolOptions::audio(), r, d),
        [mode, r, d] if mode == "--speech" => (VisqolOptions::speech(), r, d),
        _ => return Err("usage: visqol-score [--speech] REFERENCE.wav DEGRADED.wav".into()),
    };
    let read = |p: &str| audio_samples_io::read::<_, f32>(p).map_err(|e| format!("{p}: {e}"));
    let mos = read(reference)?
        .visqol_with_options(&read(degraded)?, &options)
        .map_err(|e| e.to_string())?;
    println!("{mos:.4}");
    Ok(())
}
RUST
(cd "$scorer" && cargo build --release --quiet)
visqol=$scorer/target/release/visqol-score
