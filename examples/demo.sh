#!/usr/bin/env bash
# Sets up a fresh machine and starts the demo: the chat example handler on
# ws://127.0.0.1:8080 (PORT=... to change). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path examples/guests/Cargo.toml
exec cargo run -p ws-host -- run examples/guests/target/wasm32-wasip2/release/chat.wasm --port "${PORT:-8080}"
