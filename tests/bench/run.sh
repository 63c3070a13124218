#!/usr/bin/env bash
# Runs the benchmarks that print figures: the load matrix (ws-host with the
# WebAssembly handlers against a native-handler ws-host, Node.js ws +
# @ezez/utils, a bare tokio-tungstenite echo and, in the echo phase, the
# floor, an echo that only unmasks and writes back; servers on cpu 0, the load
# generator on cpu 1), then hot swap. `PROFILE=release` for the figures that
# count (the first release build of wasmtime takes ~10 min); the default dev
# profile optimises dependencies but not ws-host itself. Knobs for the load
# matrix are listed in tests/bench/load/main.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${PROFILE:-dev}"
[ -d tests/node/node_modules ] || (cd tests/node && npm ci --no-audit --no-fund)
cargo build --profile "$profile" -p ws-host -p ws-host-tests --bins
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/$([ "$profile" = dev ] && echo debug || echo "$profile")"
export WS_HOST_BIN="$out/ws-host"
# Ten thousand idle connections need as many descriptors on each side.
ulimit -n "$(ulimit -Hn)"
echo "profile: $profile, $(nproc) cores, $(uname -sr)"
SERVER_CPU=0 taskset -c 1 "$out/bench-load"
echo
"$out/bench-swap"
