#!/usr/bin/env bash
# How the live program's Opus tuning sounds against the music tuning, side by side: each clip
# goes through both (examples/opus_ab.rs: Booth's own encoder settings, encoded and decoded
# again) and is scored against the original with ViSQOL v3 in its audio mode (MOS-LQO, 1 to 5;
# a clip scored against itself reads about 4.73). ViSQOL is the audio_samples_qoe crate's, built
# once into target/visqol (a few minutes the first time).
#
#   benches/opus_quality.sh [AUDIO_FILE...]
#
# The clips: the demo's game music, its voice, the two mixed as a program, and words from
# espeak-ng; any files named are added (anything sox reads: bring real music). Prints, for
# 128 and 64 kbit/s, each tuning's score and encode time a frame, and the difference.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet --example opus_ab
ab=${CARGO_TARGET_DIR:-target}/release/examples/opus_ab

# shellcheck source=benches/visqol_common.sh
. benches/visqol_common.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clip() { sox "$1" -r 48000 -c 2 -b 16 "$work/$2.wav"; }
clip assets/demo/game.ogg game
clip assets/demo/voice.ogg voice
sox -m -v 0.5 "$work/game.wav" -v 0.9 "$work/voice.wav" -b 16 "$work/program.wav"
espeak-ng -s 150 -w "$work/words-raw.wav" \
    "Welcome back to the raid review. Tonight we look at the new boss fight."
clip "$work/words-raw.wav" words
clips=(game voice program words)
i=0
for f in "$@"; do
    i=$((i + 1))
    clip "$f" "file$i"
    clips+=("file$i")
done

printf '%-9s %6s  %-22s %-22s %s\n' clip kbit/s "music (MOS, us/frame)" \
    "program (MOS, us/frame)" "program - music"
for c in "${clips[@]}"; do
    for kbps in 128 64; do
        row=()
        for tuning in music program; do
            out=$("$ab" "$work/$c.wav" "$tuning" "$kbps" "$work/$c-$tuning.wav")
            us=$(sed -n 's/.*encode \([0-9]*\) us.*/\1/p' <<<"$out")
            row+=("$("$visqol" "$work/$c.wav" "$work/$c-$tuning.wav")" "$us")
        done
        printf '%-9s %6s  %-6s %-15s %-6s %-15s %+.4f\n' "$c" "$kbps" "${row[0]}" "${row[1]}" \
            "${row[2]}" "${row[3]}" "$(awk -v a="${row[0]}" -v b="${row[2]}" 'BEGIN { print b - a }')"
    done
done
