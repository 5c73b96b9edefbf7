#!/usr/bin/env bash
# CPU of `booth host --headless` with both PulseAudio devices live (the test sound server's
# game.monitor and mic, a tone in the game and words in the mic), in one run, side by side:
#   booth   Booth's own PulseAudio record streams (what `booth host` uses), recording the
#           program (--record: the engine's Opus encode is in)
#   no-ns   the same with noise suppression off (--no-noise-suppression): its cost
#   cpal    cpal 0.18's PulseAudio streams (BOOTH_CPAL_PULSE_STREAMS=1), for comparison
#   live    live in a room of its own server (in-process), nobody listening: nothing is encoded
#   heard   the same with one listener (`booth listen`, not counted): the room encodes the
#           program once and sends it over WebRTC
#   monitor recording, and hearing the room on an output (--monitor-device phones: Booth's
#           own PulseAudio playback stream, served with the captures)
#   mon-cpal the same on cpal's PulseAudio output stream (BOOTH_CPAL_PULSE_STREAMS=output)
#   opus    libopus alone, the yardstick the goal is set against ("libopus at complexity 10
#           alone is about 1%"): the program's encoder (stereo, 128 kbit/s, complexity 10) on
#           the tone and words mixed, one 20 ms frame at a time on the wall clock, as the
#           engine runs it (examples/opus_paced.rs); each column is also given as a multiple
#           of it, which carries from machine to machine better than a percentage does
# Rounds alternate; medians are printed, as % of one core, then each mode's median over
# libopus alone's, and the median of the per-round multiples (steadier on a noisy machine).
#
#   benches/host_cpu.sh [SECONDS=60] [ROUNDS=3]
# Needs a release build (cargo build --release --bin booth --example opus_paced) and the test
# tools (tests/run installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-60}
rounds=${2:-3}
# shellcheck source=benches/cpu_common.sh
. benches/cpu_common.sh
paced=${CARGO_TARGET_DIR:-target}/release/examples/opus_paced
[ -x "$paced" ] || { echo "build first: cargo build --release --example opus_paced" >&2; exit 1; }
# The program as the encoder gets it: the words over the tone, ducked.
sox -m "|sox $work/words.wav -r 48000 -c 2 -p" \
    "|sox -n -r 48000 -c 2 -p synth 10 sine 440 vol 0.075" -b 16 "$work/program.wav"

devices=(--game-device game.monitor --mic-device mic)
ours=()
plain=()
theirs=()
live=()
heard=()
monitor=()
moncpal=()
alone=()
for r in $(seq "$rounds"); do
    b=$(measure booth "$booth" host --headless --offline "${devices[@]}" --record "$work/b.ogg")
    n=$(measure no-ns "$booth" host --headless --offline "${devices[@]}" --record "$work/n.ogg" \
        --no-noise-suppression)
    c=$(BOOTH_CPAL_PULSE_STREAMS=1 measure cpal "$booth" host --headless --offline "${devices[@]}" \
        --record "$work/c.ogg")
    l=$(measure live "$booth" host --headless "${devices[@]}" --bind 127.0.0.1:0 \
        --data "$work/data")
    h=$(LISTEN=1 measure heard "$booth" host --headless "${devices[@]}" --bind 127.0.0.1:0 \
        --data "$work/data")
    m=$(measure monitor "$booth" host --headless --offline "${devices[@]}" --record "$work/m.ogg" \
        --monitor-device phones)
    o=$(BOOTH_CPAL_PULSE_STREAMS=output measure mon-cpal "$booth" host --headless --offline \
        "${devices[@]}" --record "$work/mc.ogg" --monitor-device phones)
    a=$(measure opus "$paced" "$work/program.wav")
    echo "round $r: booth ${b}%  no-ns ${n}%  cpal ${c}%  live ${l}%  heard ${h}%  monitor ${m}%  mon-cpal ${o}%  opus ${a}%"
    ours+=("$b")
    plain+=("$n")
    theirs+=("$c")
    live+=("$l")
    heard+=("$h")
    monitor+=("$m")
    moncpal+=("$o")
    alone+=("$a")
done
mb=$(median "${ours[@]}")
mn=$(median "${plain[@]}")
mc=$(median "${theirs[@]}")
ml=$(median "${live[@]}")
mh=$(median "${heard[@]}")
mm=$(median "${monitor[@]}")
mmc=$(median "${moncpal[@]}")
ma=$(median "${alone[@]}")
x() { awk -v a="$1" -v b="$ma" 'BEGIN { printf "%.1fx", a / b }'; }
# The same, round by round: libopus alone moves with the machine (15% between rounds here), and a
# mode measured in the same round moved with it, so the median of the per-round ratios is the
# steadier figure.
rx() {
    local name=$1 i ratios=()
    local -n col=$name
    for i in "${!col[@]}"; do
        ratios+=("$(awk -v a="${col[$i]}" -v b="${alone[$i]}" 'BEGIN { printf "%.3f", a / b }')")
    done
    awk -v m="$(median "${ratios[@]}")" 'BEGIN { printf "%.2fx", m }'
}
echo "median over $rounds rounds of ${secs} s: booth ${mb}% (${mn}% without noise suppression), cpal ${mc}% ($(awk -v a="$mc" -v b="$mb" 'BEGIN { printf "%.1f", a / b }')x), live in a room ${ml}% (${mh}% with a listener), hearing the room on an output ${mm}% (${mmc}% on cpal's output stream) of one core"
echo "against libopus alone (${ma}%): booth $(x "$mb") ($(x "$mn") without noise suppression), live $(x "$ml") ($(x "$mh") with a listener), hearing the room $(x "$mm")"
echo "median of the per-round multiples of libopus alone: booth $(rx ours) ($(rx plain) without noise suppression), live $(rx live) ($(rx heard) with a listener), hearing the room $(rx monitor)"
