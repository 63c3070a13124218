#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs (the
# wasm32-wasip2 target, Debian's redis-server for the cluster tests,
# Chromium, the npm packages of the compatibility suite), checks
# formatting, lints and doc links, runs the Rust tests (which build the guest
# components), the Node compatibility suite against the real binary, and the
# benchmarks at toy sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup target add wasm32-wasip2
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The cluster tests start their own redis-server on a free port.
apt_install() { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
command -v redis-server >/dev/null || apt_install redis-server

step "format"
cargo fmt --all -- --check
for crate in examples/guests tests/guests guest-sdk tests/fuzz; do
    cargo fmt --all --manifest-path "$crate/Cargo.toml" -- --check
done

step "Rust tests (build the guests, then test over real sockets)"
cargo test --workspace

step "lints"
cargo clippy --workspace --all-targets -- -D warnings
# Broken or private doc links fail too, in the docs of private items as well.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet --document-private-items
for guests in examples/guests tests/guests; do
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/guests" \
        cargo clippy --release --target wasm32-wasip2 --manifest-path "$guests/Cargo.toml" -- -D warnings
done
# cargo-fuzz builds the fuzz targets on nightly only (tests/fuzz/run.sh): checked
# here, so that a change of the host's API cannot leave them broken unseen. Their
# own workspace keeps no lockfile: it starts from the host's, whose versions build
# with this toolchain.
cp Cargo.lock tests/fuzz/Cargo.lock
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz-check" \
    cargo clippy --manifest-path tests/fuzz/Cargo.toml --bins --quiet -- -D warnings

step "Node suites: compatibility (npm ws + @ezez/utils), TypeScript types, the browser demo in Chromium (started by examples/demo.sh)"
if ! command -v chromium >/dev/null; then
    # Debian's Chromium drives the browser demo test (playwright-core cannot download one here).
    apt_install chromium
fi
cargo build -p ws-host
target="${CARGO_TARGET_DIR:-$PWD/target}"
guests="$target/guests/wasm32-wasip2/release"
(cd tests/node && npm ci --no-audit --no-fund)
WS_HOST_BIN="$target/debug/ws-host" \
GUEST_CHAT="$guests/chat.wasm" GUEST_CHAT_PY="$target/guests/chat-py.wasm" GUEST_CHAT_JS="$target/guests/chat-js.wasm" GUEST_ECHO="$guests/echo.wasm" GUEST_FIXTURE="$guests/fixture.wasm" \
CHROMIUM="$(command -v chromium)" ARTIFACTS_DIR="$target/test-artifacts" \
    node --test tests/node/

step "benchmarks at toy sizes (every table printed, no fan-out loss; the figures mean nothing)"
bash tests/bench/smoke.sh
