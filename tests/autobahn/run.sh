#!/usr/bin/env bash
# Runs the Autobahn WebSocket protocol cases (with kosoku, a Python 3 runner
# of the Autobahn case files, from PyPI) against `ws-host run` serving the
# raw echo example, and writes the summary to tests/autobahn/summary.md.
# Compression cases (12.*, 13.*) are left out: ws-host does not negotiate
# permessage-deflate. Not part of every CI run (it takes a few minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/autobahn-venv"
[ -x "$venv/bin/kosoku" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet kosoku; }

rustup target add wasm32-wasip2 >/dev/null
# Where the test suite builds the guests (tests/build.rs).
CARGO_TARGET_DIR="$target/guests" \
    cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml -p raw-echo
cargo build -p ws-host
out="$(mktemp -d)"
# Autobahn's limit cases send messages up to 16 MiB.
"$target/debug/ws-host" run "$target/guests/wasm32-wasip2/release/raw_echo.wasm" --port 0 \
    --max-payload $((64 << 20)) --memory-limit $((256 << 20)) >"$out/stdout" 2>"$out/stderr" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out/stdout" 2>/dev/null && break; sleep 0.1; done
address=$(sed -n 's/.*ws:\/\///p' "$out/stdout" | head -1)
echo "ws-host (raw echo) on $address"

set +e
"$venv/bin/kosoku" "$address" -x '12.*' -x '13.*' -p 2 -o "$out/report"
set -e
python3 tests/autobahn/summarize.py "$out/report" > tests/autobahn/summary.md
cat tests/autobahn/summary.md
