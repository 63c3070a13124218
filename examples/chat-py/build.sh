#!/usr/bin/env bash
# Builds the Python chat handler: `bash examples/chat-py/build.sh [out.wasm]`.
# Installs componentize-py from PyPI into a virtualenv under the cargo target
# folder on first use, then compiles app.py against the chat WIT world (the
# same world as the Rust chat) into one component (~18 MB: CPython inside).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
target="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-$target/guests/chat-py.wasm}"
venv="$target/componentize-py"
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
mkdir -p "$(dirname "$out")"
cd "$here"
"$venv/bin/componentize-py" -d wit -w chat componentize app -o "$out" >/dev/null
echo "$out"
