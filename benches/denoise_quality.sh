#!/usr/bin/env bash
# How the voice sounds with noise suppression resting while the host is not speaking, against
# the denoiser running on every frame: each clip (words from espeak-ng with pauses, over a pink
# noise floor at a few levels) goes through both (examples/denoise_ab.rs: Booth's own
# `Denoiser`, after the mic's high-pass), and each result is scored with ViSQOL v3 in its speech
# mode (MOS-LQO, 1 to 5) against the clean words, and the resting one against the one that never
# rests (5.0: the same to ViSQOL). ViSQOL is built once into target/visqol (see
# benches/visqol_common.sh).
#
#   benches/denoise_quality.sh [FLOOR_DB...]    (default: -60 -50 -35, the floor's peak in dBFS)
#
# The floor is the same noise every run (sox -R), so runs compare. Prints, for each clip and
# floor, the share of frames the denoiser rested, its time per 10 ms frame each way, and the
# scores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet --example denoise_ab
ab=${CARGO_TARGET_DIR:-target}/release/examples/denoise_ab
# shellcheck source=benches/visqol_common.sh
. benches/visqol_common.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
floors=("$@")
[ ${#floors[@]} -gt 0 ] || floors=(-60 -50 -35)
# say NAME TEXT [ESPEAK OPTIONS...]
say() {
    local name=$1 text=$2
    shift 2
    espeak-ng "$@" -w "$work/raw.wav" "$text"
    sox "$work/raw.wav" -r 48000 -c 1 -b 16 "$work/$name.wav"
}
gap() { sox -n -r 48000 -c 1 -b 16 "$work/gap$1.wav" trim 0 "$1"; }
say s0 "Welcome back to the raid review. Tonight we look at the new boss fight, and what it \
does to the game." -s 150
say s1 "Fine. So, she said the shield was far too strong." -s 140
say s2 "Hold on, hold on. Three enemies on the left side, behind the wall." -v en-us -s 170
say s3 "Honestly, the soundtrack is the best thing in this game." -v en+f3 -s 160
gap 0.35
gap 1.5
gap 6
# talking: a host in a conversation (pauses of a third of a second to a second and a half);
# listening: a host who speaks now and then, and mostly hears the room.
sox "$work/s1.wav" "$work/gap1.5.wav" "$work/s2.wav" "$work/gap0.35.wav" "$work/s3.wav" \
    "$work/gap1.5.wav" "$work/s1.wav" "$work/gap1.5.wav" "$work/talking.wav"
sox "$work/s0.wav" "$work/gap6.wav" "$work/s2.wav" "$work/gap6.wav" "$work/s3.wav" \
    "$work/gap6.wav" "$work/listening.wav"

printf '%-9s %6s  %-7s %-20s %-20s %s\n' clip floor rested "always (MOS, us)" "resting (MOS, us)" \
    "resting vs always"
for clip in talking listening; do
    seconds=$(soxi -D "$work/$clip.wav")
    for db in "${floors[@]}"; do
        sox -R -n -r 48000 -c 1 -b 16 "$work/floor.wav" synth "$seconds" pinknoise norm "$db"
        sox -m -v 1 "$work/$clip.wav" -v 1 "$work/floor.wav" -b 16 "$work/noisy.wav"
        a=$("$ab" "$work/noisy.wav" always "$work/always.wav")
        r=$("$ab" "$work/noisy.wav" rest "$work/rest.wav")
        us() { sed -n 's/.*, \([0-9.]*\) us a frame/\1/p' <<<"$1"; }
        rested=$(sed -n 's/.*rested [0-9]* (\([0-9]*%\)).*/\1/p' <<<"$r")
        printf '%-9s %6s  %-7s %-6s %-13s %-6s %-13s %s\n' "$clip" "$db" "$rested" \
            "$("$visqol" --speech "$work/$clip.wav" "$work/always.wav")" "$(us "$a")" \
            "$("$visqol" --speech "$work/$clip.wav" "$work/rest.wav")" "$(us "$r")" \
            "$("$visqol" --speech "$work/always.wav" "$work/rest.wav")"
    done
done
