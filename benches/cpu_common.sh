# Shared by the CPU comparison scripts (benches/*_cpu.sh); sourced, not run, from the checkout's
# top with `secs` set. Sets `booth` (the release build), and, through benches/sound_common.sh,
# `work` (a temporary directory, removed on exit) and `pids` (stopped on exit), with the test
# sound server started when none is set; plays a 440 Hz tone into the game and words into the
# mic, so meters and ducking move.

booth=${CARGO_TARGET_DIR:-target}/release/booth
[ -x "$booth" ] || { echo "build first: cargo build --release" >&2; exit 1; }
# shellcheck source=benches/sound_common.sh
. benches/sound_common.sh

sox -n -r 48000 -c 2 -b 16 "$work/tone.wav" synth 3600 sine 440 vol 0.3
espeak-ng -s 150 -w "$work/words.wav" "Welcome back to the raid review. Tonight we look at the new boss fight, and what it does to the game."
paplay --device=game "$work/tone.wav" &
pids+=($!)
# MIC_PAUSE_S (1 unless set) is the pause after each time the words play: 20, say, for a host who
# mostly listens to the room.
( while true; do paplay --device=mic_feed "$work/words.wav"; sleep "${MIC_PAUSE_S:-1}"; done ) &
pids+=($!)
# MIC_FLOOR_DB=-50 (say) adds a real microphone's noise floor under the words: pink noise
# peaking at that level (its RMS about 12 dB lower), all the time. Without it the mic is digital
# silence between words, where the denoiser rests, so its cost shows only while words play.
if [ -n "${MIC_FLOOR_DB:-}" ]; then
    sox -n -r 48000 -c 1 -b 16 "$work/floor.wav" synth 60 pinknoise norm "$MIC_FLOOR_DB"
    ( while true; do paplay --device=mic_feed "$work/floor.wav"; done ) &
    pids+=($!)
fi

# measure NAME COMMAND...: starts it, lets it settle 5 s, prints CPU % of one core over $secs.
# With LISTEN=1 a `booth listen` joins the room the command prints ("listen: LINK") and stays
# while it is measured (its own CPU is not counted).
measure() {
    local name=$1
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    local pid=$!
    sleep 5
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; return 1; }
    local listener=
    if [ -n "${LISTEN:-}" ]; then
        local link
        link=$(sed -n 's/^listen: //p' "$work/$name.out" | head -1)
        [ -n "$link" ] || { echo "$name: no listener link" >&2; return 1; }
        "$booth" listen "$link" --out "$work/$name-heard.ogg" >/dev/null 2>&1 &
        listener=$!
        sleep 3
    fi
    local t0 c0 t1 c1
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "$pid")
    sleep "$secs"
    c1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    if [ -n "$listener" ]; then
        kill "$listener" 2>/dev/null || true
        wait "$listener" 2>/dev/null || true
    fi
    awk -v c="$((c1 - c0))" -v t="$tck" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", 100 * c / t / (b - a) }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
