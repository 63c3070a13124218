#!/usr/bin/env bash
# Sets up a fresh machine and starts the demo: the chat example handler on
# ws://127.0.0.1:8080 and its browser page on http://127.0.0.1:8080/?nick=ann
# (PORT=... to change). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml
echo "open http://127.0.0.1:${PORT:-8080}/?nick=ann in two tabs (another nick in the second)"
exec cargo run -p ws-host -- run examples/guests/target/wasm32-wasip2/release/chat.wasm \
    --static examples/chat-web --port "${PORT:-8080}"
