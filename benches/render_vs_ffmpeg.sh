#!/usr/bin/env bash
# The cost of rendering an hour-long episode, Booth against ffmpeg doing what podcasters run:
#   Booth:  render() (examples/render_episode.rs, release): decode the Ogg Opus program, gain to
#           -16 LUFS from the loudness measured while recording, true-peak limit, LAME 128 kbit/s
#           CBR, ID3 tag with chapters, JSON chapters. One pass.
#   ffmpeg: loudnorm in two passes (pass 1 measures, pass 2 applies the measured values with
#           linear=true) + libmp3lame at the same bitrate and the same LAME quality.
# Same input (an hour of the demo recordings' mix, as Booth's recorder writes it: Ogg Opus
# 128 kbit/s), RUNS runs each (default 3), alternating. Prints median CPU seconds (user+sys) of
# both, their ratio, and Booth's median wall seconds for the hour.
# Usage: benches/render_vs_ffmpeg.sh        (RUNS=5 SECONDS_OF_AUDIO=600 ... to vary)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=tests/lib/packages.sh
. tests/lib/packages.sh
ensure_packages time ffmpeg libmp3lame-dev
ensure_cargo

RUNS=${RUNS:-3}
SECONDS_OF_AUDIO=${SECONDS_OF_AUDIO:-3600}
# LAME's algorithm quality, the same on both sides (Booth's render uses MP3_SETTINGS.quality).
LAME_QUALITY=${LAME_QUALITY:-5}
target=${CARGO_TARGET_DIR:-target}
inputs=$target/bench-inputs
material=$inputs/render-material-48k-stereo.wav
program=$inputs/render-program-${SECONDS_OF_AUDIO}s.opus
report=$target/bench-render-vs-ffmpeg.txt

cargo build --release --example render_episode
bin=$target/release/examples/render_episode

mkdir -p "$inputs"
if [ ! -s "$material" ]; then
    # The demo's game and voice, mixed: 25 s of real material, repeated to the hour below.
    ffmpeg -nostdin -v error -y -i assets/demo/game.ogg -i assets/demo/voice.ogg -filter_complex \
        "[0:a]aresample=48000,volume=0.5[g];[1:a]aresample=48000,pan=stereo|c0=c0|c1=c0[v];[g][v]amix=inputs=2:normalize=0" \
        -ar 48000 -ac 2 -c:a pcm_s16le "$material"
fi
if [ ! -s "$program" ] || [ ! -s "$program.lufs" ]; then
    echo "Making $program (an hour of Opus encoding: a minute or two)"
    "$bin" program "$material" "$SECONDS_OF_AUDIO" "$program.part" >"$program.lufs"
    mv "$program.part" "$program"
fi
lufs=$(cat "$program.lufs")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_timed NAME COMMAND...: runs it once; appends "cpu wall" to $tmp/NAME.
run_timed() {
    local name=$1 u s e
    shift
    /usr/bin/time -f '%U %S %e' -o "$tmp/time" "$@" >"$tmp/$name.log" 2>&1 || {
        tail -n 20 "$tmp/$name.log" >&2
        exit 1
    }
    read -r u s e <"$tmp/time"
    awk -v u="$u" -v s="$s" -v e="$e" 'BEGIN { printf "%.2f %.2f\n", u + s, e }' >>"$tmp/$name"
    echo "  $name: $(tail -n 1 "$tmp/$name") (cpu s, wall s)" >&2
}

ffmpeg_two_pass() {
    local json
    json=$(ffmpeg -nostdin -hide_banner -nostats -i "$program" \
        -af loudnorm=I=-16:TP=-1:LRA=11:print_format=json -f null - 2>&1 | sed -n '/^{/,/^}/p')
    local v
    v() { printf '%s' "$json" | sed -n "s/.*\"$1\" : \"\\([^\"]*\\)\".*/\\1/p"; }
    ffmpeg -nostdin -v error -y -i "$program" -af \
        "loudnorm=I=-16:TP=-1:LRA=11:measured_I=$(v input_i):measured_TP=$(v input_tp):measured_LRA=$(v input_lra):measured_thresh=$(v input_thresh):offset=$(v target_offset):linear=true" \
        -ar 48000 -c:a libmp3lame -b:a 128k -compression_level "$LAME_QUALITY" "$tmp/ffmpeg.mp3"
}
export -f ffmpeg_two_pass
export program tmp LAME_QUALITY

for ((i = 1; i <= RUNS; i++)); do
    echo "round $i/$RUNS" >&2
    run_timed booth "$bin" render "$program" "$tmp" "$lufs"
    run_timed ffmpeg bash -c ffmpeg_two_pass
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
booth_cpu=$(cut -d' ' -f1 "$tmp/booth" | median)
booth_wall=$(cut -d' ' -f2 "$tmp/booth" | median)
ffmpeg_cpu=$(cut -d' ' -f1 "$tmp/ffmpeg" | median)
{
    echo "Rendering ${SECONDS_OF_AUDIO} s of program (Ogg Opus, measured at $lufs LUFS), LAME quality $LAME_QUALITY, 128 kbit/s, median of $RUNS:"
    echo "  booth render:              cpu $booth_cpu s, wall $booth_wall s"
    echo "  ffmpeg loudnorm x2 + lame: cpu $ffmpeg_cpu s"
    awk -v b="$booth_cpu" -v f="$ffmpeg_cpu" 'BEGIN { printf "  ffmpeg / booth CPU:        %.2fx\n", f / b }'
    ffmpeg -nostdin -hide_banner -nostats -i "$tmp/episode.mp3" -af ebur128=peak=true -f null - 2>&1 |
        sed -n '/Summary/,$p' | grep -E 'I:|Peak:' | sed 's/^ */  booth mp3 /'
} | tee "$report"
