#!/usr/bin/env bash
# Sets up a fresh machine and starts the demo: the chat example handler on
# ws://127.0.0.1:8080 and its browser page on http://127.0.0.1:8080/?nick=ann
# (PORT=... to change; PORT=0 takes a free port, printed on the listening
# line). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
# Where the test suite builds the guests too (tests/build.rs), so either
# reuses the other's build; under CARGO_TARGET_DIR when that is set.
guests="${CARGO_TARGET_DIR:-$PWD/target}/guests"
CARGO_TARGET_DIR="$guests" cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml
port="${PORT:-8080}"
shown="$port"
[ "$port" = 0 ] && shown="<the port on the listening line below>"
echo "open http://127.0.0.1:$shown/?nick=ann in two tabs (another nick in the second)"
exec cargo run -p ws-host -- run "$guests/wasm32-wasip2/release/chat.wasm" \
    --static examples/chat-web --port "$port"
