#!/usr/bin/env bash
# What accounts cost a node: memory per account and start-up time.
#
#   scripts/accounts-bench.sh [ACCOUNTS]        (default 1000000)
#
# Starts a fresh dev chain in a temporary folder on a free loopback port, creates ACCOUNTS
# accounts with `taksa bench --new-recipients` (every transfer goes to a new address), then
# restarts the node and prints its resident memory per account and how long it took to open its
# data and answer again. Figures come from /proc and the clock; nothing is assumed.
# TAKSA_SKIP_BUILD=1 uses the binary already built; TAKSA_ACCOUNTS_SENDERS sets how many bench
# senders share the work (default ACCOUNTS / 250, so each stays under the pool's per-sender cap).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if [ "${TAKSA_SKIP_BUILD:-0}" != 1 ]; then
  taksa_build
fi
set +e

ACCOUNTS=${1:-1000000}
SENDERS=${TAKSA_ACCOUNTS_SENDERS:-$(( ACCOUNTS / 250 > 0 ? ACCOUNTS / 250 : 1 ))}
BIN="$CARGO_TARGET_DIR/debug/taksa"
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
PID=""

cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

start_node() {
  "$BIN" dev --data-dir "$DIR/data" --rpc-addr "127.0.0.1:$PORT" --block-time-ms 200 >>"$DIR/node.log" 2>&1 &
  PID=$!
}

# Seconds until /health answers.
wait_ready() {
  local t0 t1
  t0=$(date +%s.%N)
  for _ in $(seq 1 6000); do
    if curl -sf "$URL/health" >/dev/null 2>&1; then
      t1=$(date +%s.%N)
      python3 -c "print(round($t1 - $t0, 3))"
      return 0
    fi
    if ! kill -0 "$PID" 2>/dev/null; then
      echo "accounts-bench: the node stopped; its log:" >&2
      tail -20 "$DIR/node.log" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "accounts-bench: the node did not answer within 300 s" >&2
  return 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }

accounts_now() {
  curl -s -X POST -H 'Content-Type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"explorer_getStats","params":[]}' "$URL" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["totalAccounts"])'
}

stop_node() {
  kill -TERM "$PID"
  wait "$PID"
  PID=""
}

echo "accounts-bench: $ACCOUNTS new accounts from $SENDERS senders, data in $DIR"
start_node
wait_ready >/dev/null || exit 1
sleep 2
RSS_EMPTY=$(rss_kib)
BASE_ACCOUNTS=$(accounts_now)

"$BIN" bench --rpc "$URL" --accounts "$SENDERS" --txs "$ACCOUNTS" --concurrency 64 --new-recipients \
  --finality-timeout-s 600 || { echo "accounts-bench: the bench failed" >&2; exit 1; }
FULL_ACCOUNTS=$(accounts_now)
RSS_FULL_RUNNING=$(rss_kib)
stop_node

# A restart reads every account back: this is the start-up a node with that many accounts pays.
start_node
STARTUP_S=$(wait_ready) || exit 1
sleep 2
RSS_RESTARTED=$(rss_kib)
DISK=$(du -sb "$DIR/data" | cut -f1)

NEW=$(( FULL_ACCOUNTS - BASE_ACCOUNTS ))
python3 - "$NEW" "$FULL_ACCOUNTS" "$RSS_EMPTY" "$RSS_FULL_RUNNING" "$RSS_RESTARTED" "$STARTUP_S" "$DISK" <<'EOF'
import sys
new, total, empty, running, restarted, startup, disk = sys.argv[1:]
new, total = int(new), int(total)
empty, running, restarted, disk = int(empty) * 1024, int(running) * 1024, int(restarted) * 1024, int(disk)
print(f"accounts created:                 {new:,} (the node holds {total:,})")
print(f"resident memory, empty node:      {empty / 2**20:,.1f} MiB")
print(f"resident memory, after the bench: {running / 2**20:,.1f} MiB (pool, caches and allocator slack included)")
print(f"resident memory, after restart:   {restarted / 2**20:,.1f} MiB")
print(f"memory per account:               {(restarted - empty) / max(new, 1):,.0f} bytes (restarted minus empty, per new account)")
print(f"start-up with {total:,} accounts:    {float(startup):.2f} s (process start to /health answering)")
print(f"data folder:                      {disk / 2**20:,.1f} MiB ({disk / max(total, 1):,.0f} bytes per account, blocks included)")
EOF
