#!/usr/bin/env bash
# Where an IO worker's time goes on the RESP direct path: like profile.sh,
# but driven by memtier_benchmark against the RESP port (50 connections x
# pipeline 16, SET:GET 1:10, 100 B values, 100k keys).
#
#   bash bench/profile_resp.sh [server flags...]  (default: --mode inline --io-threads 1)
#
# Needs `perf` and memtier_benchmark ($MEMTIER, the PATH, or the peers build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ $# -eq 0 ] && set -- --mode inline --io-threads 1
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
MEMTIER=${MEMTIER:-$(command -v memtier_benchmark || /work/shared/peers/build-memtier.sh 2>/dev/null | tail -1)}
DENO=${DENO:-deno}
PORT=${PORT:-7463}
RPORT=${RPORT:-6463}
OUT=${OUT:-/tmp/evkv-resp-perf.data}
LOG=$(mktemp)
SCRATCH=$(mktemp -d)
(cd "$SCRATCH" && exec $DENO run --v8-flags=--perf-basic-prof --unstable-net --allow-net \
  --allow-read "$ROOT/src/kvserver/cli.ts" --port "$PORT" --resp-port "$RPORT" "$@") >"$LOG" 2>&1 &
for _ in $(seq 1 50); do grep -q "listening" "$LOG" && break; sleep 0.2; done
PID=$(grep -o "pid [0-9]*" "$LOG" | awk '{print $2}')
[ -n "$PID" ] || { echo "profile: the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
trap 'kill -TERM "$PID" 2>/dev/null || true; sleep 1; rm -rf "$LOG" "$SCRATCH"' EXIT
MT=(-s 127.0.0.1 -p "$RPORT" --protocol=redis --key-prefix=memtier-k- --key-minimum=1
  --key-maximum=100000 --data-size=100 --hide-histogram)
"$MEMTIER" "${MT[@]}" -t 1 -c 10 --pipeline=32 --ratio=1:0 --key-pattern=P:P --requests=10000 >/dev/null 2>&1
"$MEMTIER" "${MT[@]}" -t 1 -c 50 --pipeline=16 --ratio=1:10 --test-time=6 >/dev/null 2>&1 &
BENCH=$!
sleep 1.5
TID=$(for t in /proc/"$PID"/task/*; do echo "$(basename "$t") $(cat "$t"/comm)"; done |
  awk '$2 == "worker-1" {print $1; exit}')
perf record -F 2000 -g -t "$TID" -o "$OUT" -- sleep 3 >/dev/null 2>&1
wait "$BENCH" || true
echo "== by kind of code"
perf report -i "$OUT" --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -6
echo "== hottest symbols"
perf report -i "$OUT" --no-children -g none --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' |
  head -"${TOP:-25}"
echo "(full report: perf report -i $OUT)"
