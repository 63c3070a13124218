#!/usr/bin/env bash
# The benchmarks at toy sizes (about a minute): every phase runs against its
# real servers and prints its table, and no fan-out loses a delivery. Keeps
# `tests/bench/run.sh` working; the figures of so short a run mean nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
BENCH_PHASES=echo,fanout,flood,idle,languages,cluster BENCH_SECONDS=1 BENCH_REPEATS=1 \
BENCH_CONNECTIONS=2 BENCH_PAYLOADS=20 BENCH_MEMBERS=10 BENCH_IDLE=100 \
BENCH_RATE_SECONDS=0.2 BENCH_RATE_REPEATS=1 BENCH_MODERATE=50 \
    bash tests/bench/run.sh | tee "$out"

fail() { echo "bench smoke run: $*" >&2; exit 1; }
for table in "## echo, closed loop: msgs/s" "## echo, closed loop: server CPU" "## echo, closed loop: time in the handler" \
    "## echo at a fixed rate" "## echo at moderate loads" "## fan-out:" "## one client flooding" \
    "idle connections (authenticated, then idle)" "## the chat example per language" "## fan-out across cluster nodes" \
    "swap time" "event latency"; do
    grep -qF -- "$table" "$out" || fail "no table \"$table\" in the output above"
done
# The fan-out tables' fifth column counts deliveries lost.
lost="$(awk -F'|' '/^## /{fanout = /^## fan-out/} fanout && /^\| [^-:]/ && $6 ~ /[0-9]/ && $6 + 0 > 0' "$out")"
[ -z "$lost" ] || fail "a fan-out lost deliveries: $lost"
echo "bench smoke run: every table printed, no fan-out lost a delivery"
