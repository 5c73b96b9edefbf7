#!/usr/bin/env bash
# CPU of the overlay beside the engine, in one run: `booth host --headless` (the engine alone,
# live in a room on this machine) and `booth` (the overlay window, live the same way) under
# Xvfb with Mesa's software OpenGL, on the test sound server's devices, while a tone plays into
# the game and words into the mic (so the meters move). Rounds alternate; medians are printed.
#
#   benches/overlay_cpu.sh [SECONDS=60] [ROUNDS=3]
# Needs a release build (cargo build --release) and the test tools (tests/run installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-60}
rounds=${2:-3}
booth=${CARGO_TARGET_DIR:-target}/release/booth
[ -x "$booth" ] || { echo "build first: cargo build --release" >&2; exit 1; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

if [ -z "${PULSE_SERVER:-}" ]; then
    export SOUND_DIR="$work/sound"
    set --
    # shellcheck source=tests/sound-server.sh
    . tests/sound-server.sh
    # shellcheck disable=SC2206
    pids+=($BOOTH_SOUND_PIDS)
fi
if [ -z "${DISPLAY:-}" ]; then
    n=120
    while [ -e "/tmp/.X11-unix/X$n" ]; do n=$((n + 1)); done
    Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
    pids+=($!)
    export DISPLAY=":$n"
    sleep 1
fi
export LIBGL_ALWAYS_SOFTWARE=1

sox -n -r 48000 -c 2 -b 16 "$work/tone.wav" synth 3600 sine 440 vol 0.3
espeak-ng -s 150 -w "$work/words.wav" "Welcome back to the raid review. Tonight we look at the new boss fight, and what it does to the game."
paplay --device=game "$work/tone.wav" &
pids+=($!)
( while true; do paplay --device=mic_feed "$work/words.wav"; sleep 1; done ) &
pids+=($!)

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure NAME COMMAND...: starts it, lets it settle 5 s, returns CPU % of one core over $secs.
measure() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    sleep 5
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; return 1; }
    local t0 c0 t1 c1
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "$pid")
    sleep "$secs"
    c1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v c="$((c1 - c0))" -v t="$tck" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", 100 * c / t / (b - a) }'
}

cat >"$work/settings.toml" <<TOML
bind = "127.0.0.1:0"
game_device = "game.monitor"
mic_device = "mic"
name = "Bench"
TOML

engine=()
overlay=()
for r in $(seq "$rounds"); do
    e=$(measure engine "$booth" host --headless --game-device game.monitor --mic-device mic \
        --bind 127.0.0.1:0 --data "$work/data")
    o=$(measure overlay "$booth" --settings "$work/settings.toml" --data "$work/data" --go-live)
    echo "round $r: engine alone ${e}%  overlay (engine + window) ${o}%"
    engine+=("$e")
    overlay+=("$o")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
me=$(median "${engine[@]}")
mo=$(median "${overlay[@]}")
echo "median over $rounds rounds of ${secs} s: engine alone ${me}%, overlay ${mo}%, the window's share $(awk -v a="$mo" -v b="$me" 'BEGIN { printf "%.2f", a - b }')% of one core"
