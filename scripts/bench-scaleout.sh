#!/usr/bin/env bash
# Mailbox scale-out benchmark (BENCHMARKS.md "Mailbox scale-out"), one run:
# starts a private redis-server, three release `lnc mailbox --redis` instances
# and one in-memory `lnc mailbox`, then `lnc bench scaleout` against:
# the in-memory instance, one Redis instance (pairs on the same instance),
# two and three instances (writer and reader on different instances).
# Usage: scripts/bench-scaleout.sh [idle_pairs] [extra bench flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS="${1:-10000}"; shift || true
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
REDIS_BIN="${LNC_REDIS_SERVER:-/usr/bin/redis-server}"
[ -x "$REDIS_BIN" ] || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
cargo build --release -p lnc >/dev/null
BIN="${CARGO_TARGET_DIR:-target}/release/lnc"
BASE="${LNC_BENCH_PORT:-19440}"
RPORT=$((BASE + 9))
DIR=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
"$REDIS_BIN" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" >/dev/null &
REDIS=$!; PIDS+=("$REDIS")
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
wait_port "$RPORT"
COMMON=(--insecure --metrics-listen off --max-streams-per-ip 1000000 --max-connections-per-ip 100000 --queue-budget-per-ip-bytes 8589934592
  --stream-rate 1000000000 --stream-burst 1000000 --idle-timeout-secs 0 --log warn)
"$BIN" mailbox "${COMMON[@]}" --listen "127.0.0.1:$BASE" & PIDS+=($!)
for i in 1 2 3; do
  "$BIN" mailbox "${COMMON[@]}" --listen "127.0.0.1:$((BASE + i))" --redis "redis://127.0.0.1:$RPORT" & PIDS+=($!)
done
for i in 0 1 2 3; do wait_port $((BASE + i)); done
A="127.0.0.1:$((BASE + 1))"; B="127.0.0.1:$((BASE + 2))"; C="127.0.0.1:$((BASE + 3))"
R=(--redis "redis://127.0.0.1:$RPORT" --redis-pid "$REDIS")
"$BIN" --log warn bench scaleout --label memory --addr "127.0.0.1:$BASE" "$@"
"$BIN" --log warn bench scaleout --label "redis-1-same" --addr "$A" "${R[@]}" --idle-pairs "$PAIRS" "$@"
"$BIN" --log warn bench scaleout --label "redis-2-cross" --addr "$A,$B" "${R[@]}" "$@"
"$BIN" --log warn bench scaleout --label "redis-3-cross" --addr "$A,$B,$C" "${R[@]}" "$@"
