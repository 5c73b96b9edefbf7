# Shared by the scripts that run Booth on the test sound server's devices (benches/*_cpu.sh,
# benches/host_ab.sh, benches/soak.sh); sourced, not run, from the checkout's top. Sets `work`
# (a temporary directory, removed on exit) and `pids` (stopped on exit), starts the test sound
# server when none is set (PULSE_SERVER), and gives `cpu_ticks PID` (the CPU time a process has
# used, in `tck` ticks a second).

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work" 2>/dev/null || { sleep 1; rm -rf "$work"; }' EXIT

if [ -z "${PULSE_SERVER:-}" ]; then
    export SOUND_DIR="$work/sound"
    set --
    # shellcheck source=tests/sound-server.sh
    . tests/sound-server.sh
    # shellcheck disable=SC2206
    pids+=($BOOTH_SOUND_PIDS)
fi

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
