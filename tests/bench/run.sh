#!/usr/bin/env bash
# Runs the benchmarks that print figures: echo load (the WebAssembly echo
# handler against a bare tokio-tungstenite echo server, servers on cpu 0 and
# the load generator on cpu 1), then hot swap. `PROFILE=release` for the
# figures that count (the first release build of wasmtime takes ~10 min);
# the default dev profile optimises dependencies but not ws-host itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE:-dev}"
cargo build --profile "$profile" -p ws-host -p ws-host-tests --bins
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
export WS_HOST_BIN="$out/ws-host"
echo "profile: $profile"
SERVER_CPU=0 taskset -c 1 "$out/bench-load"
echo
"$out/bench-swap"
