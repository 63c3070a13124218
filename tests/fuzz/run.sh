#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s) and prints the
# executions and crashes of each. Not part of every CI run: it builds
# wasmtime with coverage instrumentation on nightly, which takes a while.
# Crashes land in tests/fuzz/artifacts/<target>/; each becomes a regression
# test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The versions the host is tested with (this workspace keeps no lockfile).
[ -f tests/fuzz/Cargo.lock ] || cp Cargo.lock tests/fuzz/Cargo.lock
# The bridge target reads the fixture handler the tests build.
cargo test -p ws-host-tests --test bridge --no-run >/dev/null
export FIXTURE_WASM="${CARGO_TARGET_DIR:-$PWD/target}/guests/wasm32-wasip2/release/fixture.wasm"
failed=0
for target in codec bridge; do
    log="$(mktemp)"
    set +e
    cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    # No artifacts folder when the target never ran (a build that failed).
    crashes=$( (find "tests/fuzz/artifacts/$target" -type f 2>/dev/null || true) | wc -l)
    printf '%-8s %12s executions, %s crash file(s), exit %s\n' "$target" "$execs" "$crashes" "$status"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        failed=1
    fi
    rm -f "$log"
done
exit "$failed"
