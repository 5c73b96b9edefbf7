#!/usr/bin/env bash
# Regenerates the demo recordings in this folder with sox and espeak-ng:
#   game.ogg   25 s, 44.1 kHz stereo Ogg Vorbis: a looping synth track (pad left, arpeggio right,
#              bass and kick centre, a little pink noise), peaks near -6 dBFS.
#   voice.ogg  25 s, 22.05 kHz mono Ogg Vorbis: a host talking over the game, with 2-4 s pauses so
#              the ducking is easy to hear; peaks near -3 dBFS.
# Usage: assets/demo/make-demo.sh
# Sourced (by benches/compare-ffmpeg.sh) it only defines make_game and make_voice.
set -euo pipefail

# Intermediate files are 32-bit float so partial mixes never clip before the final gain.
F32=(-e floating-point -b 32)
# -R: repeatable noise and plucks, so regenerating gives the same files.
export SOX_OPTS="-R"

# make_game SECONDS OUT [RATE]: the synth track, any length, as a 16-bit WAV.
make_game() {
    local seconds=$1 out=$2 rate=${3:-44100} tmp
    tmp=$(mktemp -d)
    # Am F C G, 2 s per chord at 120 bpm: bass, pad, 8-step arpeggio.
    local chords=(
        "A2 A3 C4 E4 A4 C5 E5 A5"
        "F2 F3 A3 C4 F4 A4 C5 F5"
        "C3 G3 C4 E4 C5 E5 G5 C6"
        "G2 G3 B3 D4 G4 B4 D5 G5"
    )
    local pads=() arps=() basses=() i=0 chord
    for chord in "${chords[@]}"; do
        local n
        read -r -a n <<<"$chord"
        # Three voices (one per input channel) summed to one.
        sox -r "$rate" -c 3 -n -c 1 "${F32[@]}" "$tmp/pad$i.wav" \
            synth 2 triangle "${n[1]}" triangle "${n[2]}" triangle "${n[3]}" \
            remix - tremolo 4 20 fade q 0.15 2 0.4
        sox -n -r "$rate" -c 1 "${F32[@]}" "$tmp/bass$i.wav" \
            synth 2 sine "${n[0]}" fade q 0.02 2 0.3
        local step j=0
        for step in 4 5 6 7 6 5 4 5; do
            sox -n -r "$rate" -c 1 "${F32[@]}" "$tmp/arp$i-$j.wav" \
                synth 0.25 pluck "${n[$step]}" fade q 0.005 0.25 0.05
            arps+=("$tmp/arp$i-$j.wav")
            j=$((j + 1))
        done
        pads+=("$tmp/pad$i.wav")
        basses+=("$tmp/bass$i.wav")
        i=$((i + 1))
    done
    sox "${pads[@]}" "$tmp/pad.wav"
    sox "${arps[@]}" "$tmp/arp.wav"
    sox "${basses[@]}" "$tmp/bassline.wav"
    # Kick on every beat: a fast falling sine.
    sox -n -r "$rate" -c 1 "${F32[@]}" "$tmp/kick1.wav" synth 0.3 sine 150/45 fade q 0.002 0.3 0.25 pad 0 0.2
    sox "$tmp/kick1.wav" "$tmp/kick.wav" repeat 15
    sox -m -v 0.35 "$tmp/bassline.wav" -v 0.5 "$tmp/kick.wav" "$tmp/centre.wav"

    # One 8 s loop in stereo: pad mostly left, arpeggio mostly right, bass and kick centre.
    sox -M "$tmp/pad.wav" "$tmp/arp.wav" "$tmp/centre.wav" "$tmp/loop.wav" \
        remix 1v0.5,2v0.2,3v0.5 1v0.2,2v0.5,3v0.5
    local repeats
    repeats=$(awk -v s="$seconds" 'BEGIN { r = int(s / 8); print (r * 8 >= s) ? r - 1 : r }')
    sox "$tmp/loop.wav" "$tmp/music.wav" repeat "$repeats" trim 0 "$seconds"
    sox -n -r "$rate" -c 2 "${F32[@]}" "$tmp/noise.wav" synth "$seconds" pinknoise pinknoise vol 0.03
    sox -m -v 1 "$tmp/music.wav" -v 1 "$tmp/noise.wav" -e signed-integer -b 16 "$out" \
        fade q 0.5 "$seconds" 1.5 gain -n -6
    rm -rf "$tmp"
}

# make_voice SECONDS OUT [RATE]: a 16-bit mono WAV of sentences with pauses, repeated to fill SECONDS (whole sentences
# only, then silence), peaks at -3 dBFS.
make_voice() {
    local seconds=$1 out=$2 rate=${3:-22050} tmp
    tmp=$(mktemp -d)
    local lines=(
        "Welcome to the room, everyone. Tonight we reach the second act."
        "This boss fight is brutal. Watch the left side, he teleports!"
        "The lighting in this cave is gorgeous."
        "Chat wants to know the frame rate. Steady sixty, no stutter."
    )
    local pauses=(3 2.5 3 2 3.5)
    local i
    for i in "${!lines[@]}"; do
        espeak-ng -v en-us -s 165 -w "$tmp/line$i.wav" "${lines[$i]}"
    done
    sox -n -r 22050 -c 1 "$tmp/lead.wav" trim 0 1
    local parts=("$tmp/lead.wav") total=1 k=0 next_len pause fits
    while :; do
        i=$((k % ${#lines[@]}))
        pause=${pauses[$((k % ${#pauses[@]}))]}
        next_len=$(soxi -D "$tmp/line$i.wav")
        ((k == 0)) && pause=0
        fits=$(awk -v t="$total" -v p="$pause" -v l="$next_len" -v s="$seconds" \
            'BEGIN { print (t + p + l <= s - 0.5) ? 1 : 0 }')
        ((fits)) || break
        if ((k > 0)); then
            sox -n -r 22050 -c 1 "$tmp/pause$k.wav" trim 0 "$pause"
            parts+=("$tmp/pause$k.wav")
        fi
        parts+=("$tmp/line$i.wav")
        total=$(awk -v t="$total" -v p="$pause" -v l="$next_len" 'BEGIN { print t + p + l }')
        k=$((k + 1))
    done
    sox -n -r 22050 -c 1 "$tmp/tail.wav" trim 0 "$seconds"
    parts+=("$tmp/tail.wav")
    sox "${parts[@]}" "${F32[@]}" "$tmp/voice.wav" trim 0 "$seconds"
    sox "$tmp/voice.wav" -r "$rate" -e signed-integer -b 16 "$out" rate -v gain -n -3
    rm -rf "$tmp"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cd "$(dirname "${BASH_SOURCE[0]}")"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    make_game 25 "$work/game.wav"
    make_voice 25 "$work/voice.wav"
    # Vorbis quality 0 (~64 kbps stereo) keeps the files small; plenty for a demo.
    sox "$work/game.wav" -C 0 game.ogg
    sox "$work/voice.wav" -C 0 voice.ogg
    for f in game.ogg voice.ogg; do
        printf '%s: %s s, %s bytes\n' "$f" "$(soxi -D "$f")" "$(stat -c %s "$f")"
    done
fi
