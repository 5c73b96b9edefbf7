#!/usr/bin/env bash
# Runs every fuzz target for MINUTES each (default 0.25, i.e. 15 s; fractions allowed) and
# prints each target's executions. Exits non-zero when a target finds a crash, a hang (over
# 10 s for one input) or runaway memory (over 2 GiB); the input is left in fuzz/artifacts/.
#
# Runs with nightly's AddressSanitizer when a nightly toolchain is installed, otherwise on the
# stable toolchain without a sanitizer. FUZZ_SANITIZER=none forces the latter.
# Builds into target/fuzz (ignored by git). Inputs libFuzzer finds go to target/fuzz/corpus/;
# the committed seeds in fuzz/corpus/ are only read. FUZZ_DEV=1 builds the quick dev profile
# (fuzz/Cargo.toml) instead of the release one.
set -euo pipefail

minutes="${1:-0.25}"
here="$(cd "$(dirname "$0")" && pwd)"
target_dir="$here/../target/fuzz"
seconds="$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')"

toolchain=()
sanitizer=(--sanitizer none)
if [ "${FUZZ_DEV:-}" = "1" ]; then
    sanitizer+=(--dev)
fi
if [ "${FUZZ_SANITIZER:-}" != "none" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
    sanitizer=(--sanitizer address "${sanitizer[@]:2}")
fi

cd "$here"
unset CARGO_TARGET_DIR
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}" --target-dir "$target_dir"

failed=()
summary=()
for target in $(cargo fuzz list); do
    work="$target_dir/corpus/$target"
    mkdir -p "$work" "corpus/$target" "artifacts/$target"
    log="$target_dir/$target.log"
    echo "== $target: ${seconds}s ${sanitizer[*]}"
    if cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" --target-dir "$target_dir" \
        "$target" "$work" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -n 40 "$log"
    fi
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    summary+=("$(printf '%-18s %-6s %12s execs in %ss' "$target" "$status" "$execs" "$seconds")")
done

printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
