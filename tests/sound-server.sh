#!/bin/sh
# A private, headless PulseAudio with virtual devices, for Booth's audio tests: no sound card, no
# D-Bus, no system-wide config, works as root. It installs nothing. Debian 12 packages:
#   apt-get install -y --no-install-recommends pulseaudio pulseaudio-utils libasound2-plugins sox
# (pulseaudio: the server; pulseaudio-utils: pactl/pacat/paplay; libasound2-plugins: the ALSA
#  `pulse` plugin for cpal's ALSA host; sox: the tones the tests play.)
#
# Usage:  . tests/sound-server.sh          start (source it: it exports what clients need)
#         sh tests/sound-server.sh stop     stop (run it, do not source it: dash's '.' drops
#                                           arguments). Use the same SOUND_DIR as at start.
# A sourcing shell must not hand this script an argument list that starts with `stop`
# (bash's `. file` with no arguments keeps the caller's "$@"): clear it first with `set --`.
#
# Devices:
#   sink   game      "desktop/game audio" output; its monitor, source game.monitor, is game audio
#   sink   mic_feed  the tests play "microphone" audio here
#   sink   phones    the host's headphones: where Booth plays the room (capture phones.monitor)
#   source mic       the virtual microphone (a remap of mic_feed.monitor, so not a monitor itself)
#   ALSA PCMs game_capture, mic_capture, game_playback (asoundrc below) for cpal's ALSA host
# Defaults: sink game, source mic.
#
# Exported: XDG_RUNTIME_DIR, XDG_CONFIG_HOME, PULSE_SERVER, PULSE_COOKIE, and BOOTH_SOUND_PIDS
# (the PulseAudio daemon and the keep-alive players, space-separated, for a caller that stops
# processes by PID, as tests/run does). SOUND_DIR (default $TMPDIR/booth-sound) holds it all.
SOUND_DIR=${SOUND_DIR:-${TMPDIR:-/tmp}/booth-sound}
export XDG_RUNTIME_DIR="$SOUND_DIR/run"          # pulse pid file + runtime dir
export XDG_CONFIG_HOME="$SOUND_DIR/config"       # alsa-lib reads $XDG_CONFIG_HOME/alsa/asoundrc
export PULSE_SERVER="unix:$SOUND_DIR/pulse.sock" # libpulse clients, ALSA pulse plugin, cpal pulseaudio host
export PULSE_COOKIE="$SOUND_DIR/cookie"          # cpal's pure-Rust pulseaudio host needs a 256-byte cookie

if [ "${1:-}" = stop ]; then
    for f in "$SOUND_DIR"/keep-*.pid; do
        if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null; rm -f "$f"; fi
    done
    pulseaudio --kill 2>/dev/null   # uses $XDG_RUNTIME_DIR/pulse/pid
    return 0 2>/dev/null || exit 0
fi

for tool in pulseaudio pactl pacat; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "sound-server.sh: $tool is missing; install: pulseaudio pulseaudio-utils libasound2-plugins sox" >&2
        return 1 2>/dev/null || exit 1
    fi
done

mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/alsa" || { return 1 2>/dev/null || exit 1; }
chmod 700 "$XDG_RUNTIME_DIR"
[ -s "$PULSE_COOKIE" ] || head -c 256 /dev/urandom > "$PULSE_COOKIE"

cat > "$XDG_CONFIG_HOME/alsa/asoundrc" <<'EOF'
pcm.game_capture {
    type pulse
    device "game.monitor"
    hint { show on; description "Game audio (monitor of sink game)" }
}
pcm.mic_capture {
    type pulse
    device "mic"
    hint { show on; description "Virtual microphone (source mic)" }
}
pcm.game_playback {
    type pulse
    device "game"
    hint { show on; description "Playback into sink game" }
}
EOF

cat > "$SOUND_DIR/test.pa" <<EOF
load-module module-native-protocol-unix socket=$SOUND_DIR/pulse.sock auth-anonymous=1
load-module module-null-sink sink_name=game rate=48000 sink_properties=device.description=Game
load-module module-null-sink sink_name=mic_feed rate=48000 sink_properties=device.description=MicFeed
load-module module-null-sink sink_name=phones rate=48000 sink_properties=device.description=Phones
load-module module-remap-source master=mic_feed.monitor source_name=mic source_properties=device.description=Mic
set-default-sink game
set-default-source mic
EOF

# A server left over from an earlier run in the same SOUND_DIR would keep the old socket busy.
pulseaudio --kill 2>/dev/null || true
rm -f "$SOUND_DIR/pulse.sock"
# -n: skip default.pa (no hardware detection, no D-Bus modules); never exit when idle
pulseaudio --daemonize=yes -n -F "$SOUND_DIR/test.pa" --exit-idle-time=-1 --disallow-exit \
    --log-target="file:$SOUND_DIR/pulse.log" || { cat "$SOUND_DIR/pulse.log" >&2; return 1 2>/dev/null || exit 1; }

i=0
until pactl info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "pulseaudio did not answer" >&2; cat "$SOUND_DIR/pulse.log" >&2; return 1 2>/dev/null || exit 1; fi
    sleep 0.1
done
BOOTH_SOUND_PIDS=$(cat "$XDG_RUNTIME_DIR/pulse/pid" 2>/dev/null || true)

# Keep-alive: an idle null sink runs at ~2 s latency, which delays the first monitor
# data by up to ~2 s when a new stream starts. A silent low-latency stream keeps them at 5 ms.
for s in game mic_feed phones; do
    pacat --device=$s --latency-msec=20 --rate=48000 --channels=2 --format=s16le \
        --client-name=keepalive-$s < /dev/zero > /dev/null 2>&1 &
    echo $! > "$SOUND_DIR/keep-$s.pid"
    BOOTH_SOUND_PIDS="$BOOTH_SOUND_PIDS $!"
done
export BOOTH_SOUND_PIDS
i=0
until [ "$(pactl list short sink-inputs | grep -c .)" -ge 3 ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
# A fresh null sink has already scheduled a ~2 s render block; suspend/resume restarts its clock
# so the new 5 ms latency applies now (otherwise monitors deliver nothing for ~2 s after start).
for s in game mic_feed phones; do pactl suspend-sink $s 1; pactl suspend-sink $s 0; done

pactl list short sinks
pactl list short sources
