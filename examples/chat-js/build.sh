#!/usr/bin/env bash
# Builds the JavaScript chat handler: `bash examples/chat-js/build.sh [out.wasm]`.
# Installs componentize-js from npm on first use (package-lock.json pins it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${CARGO_TARGET_DIR:-$here/../../target}"
out="${1:-$target/guests/chat-js.wasm}"
mkdir -p "$(dirname "$out")"
cd "$here"
[ -d node_modules/@bytecodealliance/componentize-js ] || npm ci --no-audit --no-fund --silent
node build.mjs "$out" >/dev/null
echo "$out"
