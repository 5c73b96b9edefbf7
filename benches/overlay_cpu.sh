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
# shellcheck source=benches/cpu_common.sh
. benches/cpu_common.sh
if [ -z "${DISPLAY:-}" ]; then
    n=120
    while [ -e "/tmp/.X11-unix/X$n" ]; do n=$((n + 1)); done
    Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
    pids+=($!)
    export DISPLAY=":$n"
    sleep 1
fi
export LIBGL_ALWAYS_SOFTWARE=1

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
me=$(median "${engine[@]}")
mo=$(median "${overlay[@]}")
echo "median over $rounds rounds of ${secs} s: engine alone ${me}%, overlay ${mo}%, the window's share $(awk -v a="$mo" -v b="$me" 'BEGIN { printf "%.2f", a - b }')% of one core"
