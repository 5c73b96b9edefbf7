#!/usr/bin/env bash
# CPU of two builds of `booth host --headless` side by side, both running at once on the same
# PulseAudio devices (the test sound server's game.monitor and mic, a tone in the game and
# words in the mic), so that both see the same machine: on shared machines a build measured
# a minute after another can read 15% either way, while two running together move together.
#
#   benches/host_ab.sh OTHER_BOOTH [SECONDS=30] [ROUNDS=4] [MODE=record|live|heard|monitor]
#
# OTHER_BOOTH is another build's binary (say, `git worktree add /tmp/base HEAD~3` and a
# release build there); it is compared with this checkout's release build. `record` records
# the program (--offline --record: the Opus encode is in); `live` goes live in a room of its
# own server with nobody listening; `heard` the same with one `booth listen` of the same build
# in each room (its own CPU is not counted: the room encodes the program and sends it over
# WebRTC, and hears the listener's reports); `monitor` records as `record` does and plays the
# room's voices on the headset (--monitor-device phones: Booth's PulseAudio output, fed through
# the engine's output lane). Prints each round and the medians, as % of one core, and
# the median ratio (this build / the other).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
other=${1:?usage: benches/host_ab.sh OTHER_BOOTH [SECONDS] [ROUNDS] [record|live|heard|monitor]}
secs=${2:-30}
rounds=${3:-4}
mode=${4:-record}
[ -x "$other" ] || { echo "not a program: $other" >&2; exit 1; }
# shellcheck source=benches/cpu_common.sh
. benches/cpu_common.sh

# start NAME BINARY: starts a host, prints its PID.
start() {
    local extra
    if [ "$mode" = live ] || [ "$mode" = heard ]; then
        extra=(--bind 127.0.0.1:0 --data "$work/data-$1")
    else
        extra=(--offline --record "$work/$1.ogg")
    fi
    if [ "$mode" = monitor ]; then
        extra+=(--monitor-device phones)
    fi
    "$2" host --headless --game-device game.monitor --mic-device mic "${extra[@]}" \
        >"$work/$1.out" 2>"$work/$1.err" &
    echo $!
}

percent() { awk -v c="$1" -v t="$tck" -v s="$2" 'BEGIN { printf "%.2f\n", 100 * c / t / s }'; }

ours=()
theirs=()
ratios=()
for r in $(seq "$rounds"); do
    # Alternate which starts first.
    if [ $((r % 2)) = 1 ]; then
        a=$(start this "$booth")
        b=$(start other "$other")
    else
        b=$(start other "$other")
        a=$(start this "$booth")
    fi
    pids+=("$a" "$b")
    sleep 5
    for p in "$a" "$b"; do
        kill -0 "$p" 2>/dev/null || { cat "$work"/*.err >&2; exit 1; }
    done
    listeners=()
    if [ "$mode" = heard ]; then
        for name in this other; do
            bin=$booth
            [ "$name" = other ] && bin=$other
            link=$(sed -n 's/^listen: //p' "$work/$name.out" | head -1)
            [ -n "$link" ] || { echo "$name: no listener link" >&2; exit 1; }
            "$bin" listen "$link" --out "$work/$name-heard.ogg" >/dev/null 2>&1 &
            listeners+=($!)
            pids+=($!)
        done
        sleep 3
    fi
    a0=$(cpu_ticks "$a")
    b0=$(cpu_ticks "$b")
    t0=$(date +%s.%N)
    sleep "$secs"
    a1=$(cpu_ticks "$a")
    b1=$(cpu_ticks "$b")
    t1=$(date +%s.%N)
    kill "$a" "$b" "${listeners[@]}" 2>/dev/null || true
    wait "$a" "$b" "${listeners[@]}" 2>/dev/null || true
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    x=$(percent $((a1 - a0)) "$took")
    y=$(percent $((b1 - b0)) "$took")
    q=$(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f\n", x / y }')
    echo "round $r: this build ${x}%  other ${y}%  ratio ${q}"
    ours+=("$x")
    theirs+=("$y")
    ratios+=("$q")
done
echo "median over $rounds rounds of ${secs} s ($mode): this build $(median "${ours[@]}")%, other $(median "${theirs[@]}")% of one core, ratio $(median "${ratios[@]}")"
