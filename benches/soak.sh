#!/usr/bin/env bash
# `booth host --headless` on live devices for a long run (an hour unless told): a steady 440 Hz
# tone plays into the test sound server's game sink, the host captures its monitor and the
# (silent) mic through Booth's PulseAudio streams and records the program. Every minute it
# prints the host's memory (RSS) and CPU over that minute; at the end, the host's own summary
# (frames, underruns) and examples/tone_check.rs on the recording: whether the tone came
# through whole (no sample dropped or repeated: no step in its phase, no window it no longer
# fits) from the first seconds to the last.
#
#   benches/soak.sh [MINUTES=60]
#
# Needs a release build (cargo build --release --bin booth --example tone_check) and the test
# tools (tests/run installs them). The sound server's devices share one clock, so this shows the
# path holding up for hours (the pump, the lanes, the encoder and the recorder), not a drift
# between two clocks: that is simulated in the engine's tests (60 minutes at 48,000 against
# 48,010 Hz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes=${1:-60}
target=${CARGO_TARGET_DIR:-target}/release
booth=$target/booth
check=$target/examples/tone_check
for b in "$booth" "$check"; do
    [ -x "$b" ] || { echo "build first: cargo build --release --bin booth --example tone_check" >&2; exit 1; }
done
# shellcheck source=benches/sound_common.sh
. benches/sound_common.sh

seconds=$((minutes * 60))
sox -n -r 48000 -c 2 -b 16 "$work/tone.wav" synth $((seconds + 120)) sine 440 vol 0.3
paplay --device=game "$work/tone.wav" &
pids+=($!)
sleep 1
"$booth" host --headless --offline --game-device game.monitor --mic-device mic \
    --record "$work/soak.ogg" --seconds "$seconds" >"$work/host.out" 2>"$work/host.err" &
host=$!
pids+=("$host")
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$host/status" 2>/dev/null || echo 0; }
echo "minute  RSS (KiB)  CPU (% of one core)"
last=$(cpu_ticks "$host")
for m in $(seq "$minutes"); do
    sleep 60
    kill -0 "$host" 2>/dev/null || break
    now=$(cpu_ticks "$host")
    printf '%6d  %9s  %.2f\n' "$m" "$(rss)" "$(awk -v c="$((now - last))" -v t="$tck" 'BEGIN { print 100 * c / t / 60 }')"
    last=$now
done
wait "$host" || { echo "booth host failed:" >&2; cat "$work/host.err" >&2; exit 1; }
grep -E "short:|lost|Overloaded|behind" "$work/host.err" || echo "host: no short pull, lost device or overload reported"
cat "$work/host.out"
"$check" "$work/soak.ogg" 440 2
