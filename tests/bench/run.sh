#!/usr/bin/env bash
# Runs the benchmarks that print figures: echo load (the WebAssembly echo
# handler against a bare tokio-tungstenite echo server, servers on cpu 0 and
# the load generator on cpu 1), then hot swap. Dev profile (dependencies
# optimised, ws-host's own code not): compare rows with each other.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p ws-host -p ws-host-tests --bins
target="${CARGO_TARGET_DIR:-$PWD/target}"
export WS_HOST_BIN="$target/debug/ws-host"
SERVER_CPU=0 taskset -c 1 "$target/debug/bench-load"
echo
"$target/debug/bench-swap"
