#!/usr/bin/env bash
# CPU cost of `booth mix` next to ffmpeg doing the same job (resample to 48 kHz, duck the game under
# the voice, mix, limit) on the same 5-minute inputs.
#   A) DSP alone, 16-bit WAV out      B) the whole job, Ogg Opus 128 kbps out
# Each command runs RUNS times (default 5); the table shows the median user+sys CPU seconds,
# ffmpeg/booth, and how many times faster than real time each is (300 s / CPU s).
# Usage: benches/compare-ffmpeg.sh        (RUNS=9 benches/compare-ffmpeg.sh)
#        BOOTH_BIN=path/to/booth benches/compare-ffmpeg.sh   measures that binary, builds nothing
# Writes the table to target/bench-compare-ffmpeg.txt too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# shellcheck source=tests/lib/packages.sh
. tests/lib/packages.sh
# shellcheck source=assets/demo/make-demo.sh
. assets/demo/make-demo.sh

RUNS=${RUNS:-5}
SECONDS_OF_AUDIO=300
inputs=target/bench-inputs
game=$inputs/game-300s-44k1-stereo.wav
voice=$inputs/voice-300s-48k-mono.wav
report=target/bench-compare-ffmpeg.txt

ensure_packages time sox espeak-ng ffmpeg
ensure_cargo

# --- inputs (made once, then reused) -----------------------------------------------------------
mkdir -p "$inputs"
if [ ! -s "$game" ]; then
    echo "Making $game"
    make_game "$SECONDS_OF_AUDIO" "$game.part.wav" 44100
    mv "$game.part.wav" "$game"
fi
if [ ! -s "$voice" ]; then
    echo "Making $voice"
    make_voice "$SECONDS_OF_AUDIO" "$voice.part.wav" 48000
    mv "$voice.part.wav" "$voice"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- booth -------------------------------------------------------------------------------------
booth=${BOOTH_BIN:-$root/target/release/booth}
booth_problem=""
if [ -z "${BOOTH_BIN:-}" ] && ! cargo build --release; then
    booth_problem="cargo build --release failed"
elif ! "$booth" mix --help >/dev/null 2>&1; then
    booth_problem="$booth has no working 'mix' command yet"
fi
[ -z "$booth_problem" ] || echo "booth half skipped: $booth_problem" >&2

# --- measuring ---------------------------------------------------------------------------------
# measure NAME COMMAND...: runs the command RUNS times; prints the median CPU (user+sys) seconds,
# or "failed" (with the command's last lines of output on stderr).
measure() {
    local name=$1
    shift
    local i cpus=() u s e
    for ((i = 1; i <= RUNS; i++)); do
        if ! /usr/bin/time -f '%U %S %e' -o "$tmp/time" "$@" >"$tmp/$name.log" 2>&1; then
            echo "$name failed: $*" >&2
            tail -n 15 "$tmp/$name.log" >&2
            echo failed
            return 0
        fi
        read -r u s e <"$tmp/time"
        cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')")
        echo "  $name run $i/$RUNS: cpu ${cpus[-1]} s (user $u, sys $s, wall $e)" >&2
    done
    printf '%s\n' "${cpus[@]}" | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

graph="[0:a]aresample=48000[g];[1:a]aresample=48000,pan=stereo|c0=c0|c1=c0,asplit=2[v1][v2];"
graph+="[g][v1]sidechaincompress=threshold=0.02:ratio=4:attack=10:release=400:makeup=1[d];"
# The graph the issue names: resample, sidechain-duck, mix. Booth does more on top (voice
# activity, lookahead, a limiter and EBU R128 metering), so this comparison leans ffmpeg's way.
graph+="[d][v2]amix=inputs=2:normalize=0"
ffmpeg_mix=(ffmpeg -nostdin -hide_banner -y -i "$game" -i "$voice" -filter_complex "$graph")

declare -A cpu
for case in A B; do
    if [ "$case" = A ]; then
        booth_out=$tmp/booth.wav ffmpeg_out=(-c:a pcm_s16le "$tmp/ffmpeg.wav")
    else
        booth_out=$tmp/booth.ogg ffmpeg_out=(-c:a libopus -b:a 128k -compression_level 10 "$tmp/ffmpeg.ogg")
    fi
    echo "Case $case: ffmpeg" >&2
    cpu[ffmpeg$case]=$(measure "ffmpeg-$case" "${ffmpeg_mix[@]}" "${ffmpeg_out[@]}")
    if [ -z "$booth_problem" ]; then
        echo "Case $case: booth" >&2
        cpu[booth$case]=$(measure "booth-$case" "$booth" mix --game "$game" --mic "$voice" \
            --out "$booth_out" --bitrate 128)
    else
        cpu[booth$case]="n/a"
    fi
done

# --- report ------------------------------------------------------------------------------------
is_number() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
ratio() { if is_number "$1" && is_number "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; else echo "-"; fi; }
xrt() { if is_number "$1"; then awk -v c="$1" -v s="$SECONDS_OF_AUDIO" 'BEGIN { if (c > 0) printf "%.0fx", s / c; else print "inf" }'; else echo "-"; fi; }

{
    echo "booth mix vs ffmpeg, ${SECONDS_OF_AUDIO} s of audio (44.1 kHz stereo game + 48 kHz mono voice), median of $RUNS runs"
    echo "date:   $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
    echo "ffmpeg: $(ffmpeg -hide_banner -version | head -n1)"
    echo "booth:  $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')${booth_problem:+ ($booth_problem)}"
    echo
    printf '%-26s %10s %10s %14s %9s %9s\n' "case" "booth cpu" "ffmpeg cpu" "ffmpeg/booth" "booth RT" "ffmpeg RT"
    for case in A B; do
        case $case in A) label="A  DSP, WAV out" ;; B) label="B  DSP + Opus 128k" ;; esac
        printf '%-26s %10s %10s %14s %9s %9s\n' "$label" "${cpu[booth$case]}" "${cpu[ffmpeg$case]}" \
            "$(ratio "${cpu[ffmpeg$case]}" "${cpu[booth$case]}")" \
            "$(xrt "${cpu[booth$case]}")" "$(xrt "${cpu[ffmpeg$case]}")"
    done
    echo
    echo "cpu = user+sys seconds; RT = times faster than real time (audio seconds / cpu seconds)."
} | tee "$report"

for case in A B; do
    is_number "${cpu[ffmpeg$case]}" || exit 1
    is_number "${cpu[booth$case]}" || exit 1
done
