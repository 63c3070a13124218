#!/usr/bin/env bash
# Instructions per echo of a release server, counted by valgrind's callgrind:
# the server runs under callgrind twice, once for N and once for 3N echoes
# from Node.js clients (tests/node/echo-client.mjs), and the difference
# divided by 2N is what one echo costs, start-up excluded. One connection
# counts each echo's own wake-ups; a hundred count echoes taken in batches,
# as under load (the server under callgrind is the slow side).
# Usage: bash tests/bench/callgrind.sh [wasm|native] [N] [PAYLOAD_BYTES] [CONNECTIONS] [REQUEST]
# (default: wasm 5000 20 1 echo). REQUEST is what each round trip sends
# (see echo-client.mjs): echo or echoBytes, or, to the wasm server only,
# echoF64 and echoRecord (the fixture handler: a number, a record), say
# (the chat) or blast (the fixture sends 100 `blob`s of PAYLOAD_BYTES:
# the count is per blast, a hundredth of it per outgoing event).
# CACHE=1 counts last-level data misses (reads and writes) per echo instead,
# with callgrind's cache model set to this machine's CPU (32 KiB first-level
# data cache, its 1 MiB second level as the last).
# Counts move with how batches form: comparing two builds wants their runs
# taken in turns and N of 4000 or more (a single pair of 2000 echoes over 100
# connections moves ~0.3k instructions between runs of the same build).
# Needs valgrind and the release build of tests/bench/run.sh. The profiles
# stay in $out for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/../.."
server="${1:-wasm}"
count="${2:-5000}"
size="${3:-20}"
connections="${4:-1}"
request="${5:-echo}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
usage="usage: $0 [wasm|native] [echoes] [payload bytes] [connections] [echo|echoBytes|echoF64|echoRecord|say|blast]"
case "$request" in
    echo | echoBytes) guest=echo ;;
    echoF64 | echoRecord | blast) guest=fixture ;;
    say) guest=chat ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
case "$server" in
    # --no-cache: both runs compile, so start-up cancels out (a cache filled
    # by the first run would make the second one cheaper, and the echo look so).
    wasm) command=("$target/release/ws-host" run "$target/guests/wasm32-wasip2/release/$guest.wasm" --port 0 --no-cache) ;;
    native) command=("$target/release/bench-load" --serve native) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
[ "$server" = wasm ] || [ "$guest" = echo ] || { echo "the native server answers echo and echoBytes only" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -x "${command[0]}" ] || { echo "${command[0]} is missing: run PROFILE=release bash tests/bench/run.sh first" >&2; exit 1; }
out="${TMPDIR:-/tmp}/ws-host-callgrind"
if [ "${CACHE:-0}" = 1 ]; then
    model=(--cache-sim=yes --D1=32768,8,64 --LL=1048576,8,64)
    # Events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw.
    counted="last-level data misses" fields="8 9"
else
    model=()
    counted="instructions" fields="1"
fi
mkdir -p "$out"

# Prints the address the server logged to $1 once it listens; nothing if it
# did not within two minutes (valgrind starts slowly).
address_in() {
    local addr=""
    for _ in $(seq 600); do
        addr=$(grep -o 'ws://[0-9.:]*' "$1" | head -1 || true)
        [ -n "$addr" ] && break
        sleep 0.2
    done
    echo "$addr"
}

# Prints the $counted of the server until it had answered $1 echoes.
total() {
    local profile="$out/$server.$1" log="$out/$server.$1.stdout"
    rm -f "$profile" "$profile".*
    valgrind --tool=callgrind "${model[@]}" --callgrind-out-file="$profile" "${command[@]}" >"$log" 2>"$out/$server.$1.stderr" &
    local pid=$!
    local addr
    addr=$(address_in "$log")
    [ -n "$addr" ] || { echo "the $server server did not start: see $out/$server.$1.stderr" >&2; kill -9 $pid; exit 1; }
    node tests/node/echo-client.mjs "$addr/" "$1" "$size" "$connections" "$request" >/dev/null
    # Dump the counts while it runs: the native server has no SIGINT handler.
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    # The totals line follows each count with its share in brackets: dropped.
    callgrind_annotate "$profile".1 2>/dev/null |
        awk -v fields="$fields" '/PROGRAM TOTALS/ {
            gsub(/\([^)]*\)/, ""); gsub(",", "")
            n = split(fields, f, " "); total = 0
            for (i = 1; i <= n; i++) total += $f[i]
            print total
        }'
}

few=$(total "$count")
many=$(total $((count * 3)))
echo "$server: $(( (many - few) / (count * 2) )) $counted per $request of $size B over $connections connection(s) ($few for $count, $many for $((count * 3)))"
