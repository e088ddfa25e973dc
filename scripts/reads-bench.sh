#!/usr/bin/env bash
# Balance reads over JSON-RPC HTTP against Redis GETs on this machine (issue 11):
#
#   scripts/reads-bench.sh [ACCOUNTS]   (default 1000000)
#
# Starts a release dev chain in a temporary folder, creates ACCOUNTS accounts through
# `taksa bench --new-recipients`, then, while the chain runs at half of its batched load
# (`taksa bench --rate`), reads random balances (`account_getBalance` over those accounts) with
# wrk over 32 connections, and runs `redis-benchmark -t get -c 32` against a Redis server it
# starts on a free port. Prints reads/s, p99 and the ratio to Redis (and writes them as JSON to
# $TAKSA_READS_JSON_OUT when set; scripts/bench-report.sh uses it). Needs redis-server,
# redis-benchmark and wrk (Debian: apt-get install redis-server redis-tools wrk).
# Everything runs on 127.0.0.1; every process it starts is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
for tool in redis-server redis-benchmark wrk; do
  command -v "$tool" >/dev/null || { echo "reads-bench: $tool is missing: apt-get install redis-server redis-tools wrk" >&2; exit 1; }
done
taksa_release_build
BIN="$CARGO_TARGET_DIR/release/taksa"
ACCOUNTS=${1:-1000000}
LOAD_RATE=${TAKSA_READS_LOAD_RATE:-20000}
SECONDS_READ=${TAKSA_READS_SECONDS:-10}
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
say() { echo "reads-bench: $*" >&2; }
rpc() { curl -s -m 10 -X POST -H 'Content-Type: application/json' --data "$2" "$1"; }

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
"$BIN" dev --data-dir "$WORK/dev" --rpc-addr "127.0.0.1:$PORT" >"$WORK/dev.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
for _ in $(seq 1 100); do curl -sf "$URL/health" >/dev/null 2>&1 && break; sleep 0.2; done

say "[1/4] creating $ACCOUNTS accounts"
"$BIN" bench --rpc "$URL" --accounts $(( ACCOUNTS / 250 > 0 ? ACCOUNTS / 250 : 1 )) --txs "$ACCOUNTS" \
  --concurrency 8 --batch 256 --new-recipients --finality-timeout-s 900 >&2
TOTAL=$(rpc "$URL" '{"jsonrpc":"2.0","id":1,"method":"explorer_getStats","params":[]}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["totalAccounts"])')
say "the node holds $TOTAL accounts"

say "[2/4] collecting addresses to read from the latest blocks"
python3 - "$URL" "$WORK/addresses" <<'PY'
import json, sys, urllib.request
url, out = sys.argv[1:]
def call(method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["result"]
height = call("chain_getInfo", [])["finalizedHeight"]
seen = set()
while height > 0 and len(seen) < 20000:
    for tx in call("chain_getBlock", [height])["txs"]:
        seen.add(tx["to"])
    height -= 1
open(out, "w").write("\n".join(sorted(seen)) + "\n")
print(f"reads-bench: {len(seen)} addresses", file=sys.stderr)
PY
cat >"$WORK/reads.lua" <<'LUA'
local addrs = {}
for line in io.lines(os.getenv("TAKSA_READS_ADDRESSES")) do addrs[#addrs + 1] = line end
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local a = addrs[math.random(#addrs)]
  return wrk.format(nil, "/", nil, '{"jsonrpc":"2.0","id":1,"method":"account_getBalance","params":["' .. a .. '"]}')
end
LUA
FIRST=$(head -1 "$WORK/addresses")
rpc "$URL" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"account_getBalance\",\"params\":[\"$FIRST\"]}" | grep -q '"result"' \
  || { say "account_getBalance does not answer a balance for $FIRST"; exit 1; }

say "[3/4] balance reads with wrk (32 connections, ${SECONDS_READ} s) while the chain takes $LOAD_RATE transfers/s"
LOAD_TXS=$(( LOAD_RATE * (SECONDS_READ + 20) ))
"$BIN" bench --rpc "$URL" --accounts 1000 --txs "$LOAD_TXS" --concurrency 8 --batch 256 --rate "$LOAD_RATE" \
  >"$WORK/load.log" 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
for _ in $(seq 1 600); do grep -q "pre-signed" "$WORK/load.log" && break; sleep 0.1; done
sleep 2
total_txs() {
  rpc "$URL" '{"jsonrpc":"2.0","id":1,"method":"explorer_getStats","params":[]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["totalTxs"])'
}
# What the chain's load alone costs, to set the reads' share of the two cores against Redis's.
NODE_CPU0=$(cpu_seconds "$NODE_PID"); GEN_CPU0=$(cpu_seconds "$LOAD_PID"); T0=$(date +%s.%N)
sleep 5
NODE_CPU1=$(cpu_seconds "$NODE_PID"); GEN_CPU1=$(cpu_seconds "$LOAD_PID"); T1=$(date +%s.%N)
TXS_BEFORE=$(total_txs)
READ_START=$(date +%s.%N)
TAKSA_READS_ADDRESSES="$WORK/addresses" CPU_OUT="$WORK/wrk.cpu" \
  cpu_of wrk -t 2 -c 32 -d "${SECONDS_READ}s" --latency -s "$WORK/reads.lua" "$URL" | tee "$WORK/wrk.txt" >&2
NODE_CPU2=$(cpu_seconds "$NODE_PID"); GEN_CPU2=$(cpu_seconds "$LOAD_PID"); T2=$(date +%s.%N)
cores() { python3 -c 'import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) / (float(sys.argv[4]) - float(sys.argv[3])), 3))' "$@"; }
LOAD_NODE_CORES=$(cores "$NODE_CPU0" "$NODE_CPU1" "$T0" "$T1")
LOAD_GEN_CORES=$(cores "$GEN_CPU0" "$GEN_CPU1" "$T0" "$T1")
READS_NODE_CORES=$(cores "$NODE_CPU1" "$NODE_CPU2" "$READ_START" "$T2")
READS_GEN_CORES=$(cores "$GEN_CPU1" "$GEN_CPU2" "$READ_START" "$T2")
WRK_CORES=$(python3 -c 'import sys; print(round(float(open(sys.argv[1]).read()) / float(sys.argv[2]), 3))' "$WORK/wrk.cpu" "$SECONDS_READ")
say "cores used, chain load alone (5 s): node $LOAD_NODE_CORES, load generator $LOAD_GEN_CORES"
say "cores used during the reads: node $READS_NODE_CORES, wrk $WRK_CORES, load generator $READS_GEN_CORES"
LOAD_RATE_SEEN=$(python3 -c 'import sys,time; print(round((int(sys.argv[2]) - int(sys.argv[1])) / (time.time() - float(sys.argv[3]))))' \
  "$TXS_BEFORE" "$(total_txs)" "$READ_START")
# The load must still be running when the reads end: a load that stopped early (it once did, on
# a nonce-gap answer) would measure reads on an idle chain.
if ! kill -0 "$LOAD_PID" 2>/dev/null; then
  say "the chain load stopped before the reads ended; its log:"; tail -5 "$WORK/load.log" >&2; exit 1
fi
kill "$LOAD_PID" 2>/dev/null || true
say "the chain finalized $LOAD_RATE_SEEN transfers/s during the reads ($LOAD_RATE offered)"

say "[4/4] redis-benchmark -t get -c 32"
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REDIS_CPU0=$(cpu_seconds "$REDIS_PID"); R0=$(date +%s.%N)
# -q redraws its progress line with carriage returns: keep the final figure only.
CPU_OUT="$WORK/redis-benchmark.cpu" cpu_of redis-benchmark -p "$RPORT" -t get -c 32 -n 1000000 -q \
  | tr '\r' '\n' | grep 'requests per second' | tee "$WORK/redis.txt" >&2
REDIS_CPU1=$(cpu_seconds "$REDIS_PID"); R1=$(date +%s.%N)
REDIS_CORES=$(cores "$REDIS_CPU0" "$REDIS_CPU1" "$R0" "$R1")
REDIS_BENCH_CORES=$(python3 -c 'import sys; print(round(float(open(sys.argv[1]).read()) / (float(sys.argv[3]) - float(sys.argv[2])), 3))' "$WORK/redis-benchmark.cpu" "$R0" "$R1")
say "cores used during redis-benchmark: redis-server $REDIS_CORES, redis-benchmark $REDIS_BENCH_CORES"

python3 - "$WORK/wrk.txt" "$WORK/redis.txt" "$TOTAL" "${TAKSA_READS_JSON_OUT:-}" "$LOAD_RATE_SEEN" \
  "$LOAD_NODE_CORES" "$READS_NODE_CORES" "$REDIS_CORES" "$WRK_CORES" "$REDIS_BENCH_CORES" <<'PY'
import json, re, sys
wrk, redis, total, out = open(sys.argv[1]).read(), open(sys.argv[2]).read(), int(sys.argv[3]), sys.argv[4]
load = int(sys.argv[5])
load_node_cores, reads_node_cores, redis_cores, wrk_cores, redis_bench_cores = map(float, sys.argv[6:11])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
def ms(v, unit): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", wrk).groups())
p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", wrk).groups())
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
redis_rps = float(re.search(r"GET: ([\d.]+) requests per second", redis).group(1))
print(f"\nbalance reads over JSON-RPC HTTP ({total:,} accounts, chain finalizing {load:,} tx/s): {rps:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms"
      + (f", {non2xx.group(1)} non-2xx" if non2xx else ""))
print(f"redis-benchmark -t get -c 32 on this machine: {redis_rps:,.0f}/s")
print(f"ratio: {rps / redis_rps:.3f} (target >= 0.75), p99 target < 2 ms")
# Per core of the server's own time: the node's cores during the reads less what the chain's
# load alone took, against redis-server's cores.
reads_cores = max(reads_node_cores - load_node_cores, 0.001)
per_core, redis_per_core = rps / reads_cores, redis_rps / max(redis_cores, 0.001)
print(f"cores: the node {reads_node_cores:.2f} during the reads, of which the chain's load alone {load_node_cores:.2f}; wrk {wrk_cores:.2f}; "
      f"redis-server {redis_cores:.2f}, redis-benchmark {redis_bench_cores:.2f}")
print(f"reads per core-second of the server: node {per_core:,.0f}, redis-server {redis_per_core:,.0f} ({per_core / redis_per_core:.2f})")
if out:
    json.dump({"accounts": total, "chainTransfersPerSecond": load, "readsPerSecond": rps, "p50Ms": p50, "p99Ms": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
               "redisGetsPerSecond": redis_rps, "ratio": rps / redis_rps,
               "cores": {"nodeChainLoadAlone": load_node_cores, "nodeDuringReads": reads_node_cores, "wrk": wrk_cores,
                         "redisServer": redis_cores, "redisBenchmark": redis_bench_cores},
               "readsPerServerCoreSecond": per_core, "redisGetsPerServerCoreSecond": redis_per_core}, open(out, "w"), indent=2)
PY
