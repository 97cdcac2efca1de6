#!/usr/bin/env bash
# Where an IO worker's time goes under load: a sampling profile of the real
# server's IO worker thread, JIT frames named through V8's perf map.
#
#   bash bench/profile.sh [server flags...]     (default: --mode inline --io-threads 1)
#
# Starts `src/kvserver/cli.ts` (the `deno task serve` entry) with
# --perf-basic-prof, drives it with `kvclient bench` at 50 connections x
# pipeline 16 for 6 s, records the first IO worker's thread with `perf` for
# 3 s of that, and prints the hottest symbols and the split by kind of code
# (JIT = JavaScript, kernel, deno = V8 builtins/runtime and Deno's ops,
# libc = memmove and malloc). Needs `perf` (linux-tools) and permission to
# record (root, or kernel.perf_event_paranoid <= 1). Not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ $# -eq 0 ] && set -- --mode inline --io-threads 1
command -v perf >/dev/null || { echo "profile: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
DENO=${DENO:-deno}
PORT=${PORT:-7462}
OUT=${OUT:-/tmp/evkv-perf.data}
LOG=$(mktemp)
# V8 writes an isolate-*.log per thread next to the process: keep them out of the repo.
SCRATCH=$(mktemp -d)
(cd "$SCRATCH" && exec $DENO run --v8-flags=--perf-basic-prof --unstable-net --allow-net \
  --allow-read "$ROOT/src/kvserver/cli.ts" --port "$PORT" --persist off "$@") >"$LOG" 2>&1 &
for _ in $(seq 1 50); do grep -q "listening" "$LOG" && break; sleep 0.2; done
PID=$(grep -o "pid [0-9]*" "$LOG" | awk '{print $2}')
[ -n "$PID" ] || { echo "profile: the server did not start:" >&2; cat "$LOG" >&2; exit 1; }
trap 'kill -TERM "$PID" 2>/dev/null || true; sleep 1; rm -rf "$LOG" "$SCRATCH"' EXIT
$DENO run --allow-net --allow-read src/client/cli.ts bench --port "$PORT" \
  --connections 50 --pipeline 16 --duration 6 --threads 2 >/dev/null 2>&1 &
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
