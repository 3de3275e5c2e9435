#!/usr/bin/env bash
# Mailbox relay benchmark (BENCHMARKS.md "Mailbox relay"): starts a release
# `lnc mailbox --insecure` as its own process, then `lnc bench mailbox` against
# it (idle memory with gRPC readers, latency and relay rate vs a raw WebSocket
# echo server, all in one run).
# Usage: scripts/bench-mailbox.sh [idle_pairs] [extra bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS="${1:-10000}"; shift || true
# 2 gRPC readers per pair plus ~3,000 WebSocket sockets for the active runs.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -p lnc >/dev/null
BIN="${CARGO_TARGET_DIR:-target}/release/lnc"
PORT="${LNC_BENCH_PORT:-18443}"
# Limits raised so the load generator (one IP) is not refused, and the
# per-stream rate limit lifted to measure the relay itself.
"$BIN" mailbox --insecure --listen "127.0.0.1:$PORT" --metrics-listen off \
  --max-streams-per-ip 1000000 --max-connections-per-ip 100000 --queue-budget-per-ip-bytes 8589934592 \
  --stream-rate 1000000000 --stream-burst 1000000 --idle-timeout-secs 0 \
  --log warn &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
"$BIN" --log warn bench mailbox --addr "127.0.0.1:$PORT" --server-pid "$SERVER" \
  --idle-pairs "$PAIRS" "$@"
kill -TERM $SERVER
set +e; wait $SERVER; rc=$?
echo "mailbox exited with $rc after SIGTERM"
