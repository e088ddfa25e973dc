#!/usr/bin/env bash
# Throughput report (issue 11): runs each figure on this machine and prints it as
# measured / anchor / ratio / target, then writes every figure to a JSON file.
#
#   scripts/bench-report.sh             the full run on the release build (about 10 minutes after
#                                       the build; the first release build takes ~20 minutes)
#   scripts/bench-report.sh --small     a quick run on the debug build, for CI: checks that the
#                                       report still works, not how fast the node is
#   TAKSA_BENCH_REPORT_OUT=FILE         where the JSON goes (default:
#                                       ~/.cache/taksa/target/bench-report[-small].json)
#
# Figures so far: the machine's ed25519 batch-verify rate on all cores (the ceiling), the dev
# chain's finalized transfers/s (submitted with tx_submitBatch, and one per tx_submit call)
# against it and against Hardhat's automine (an anchor measured by hand, see
# docs/performance.md), the submit-to-final latency of `taksa dev --instant` at light load (the
# mode that answers Hardhat's automine), the dev chain's idle memory and its bytes on disk per
# finalized transfer (after a clean stop; `taksa db-stats` breaks it down by column family), four
# validators on this machine (taksa testnet, 250 ms blocks): finalized transfers/s at full
# load and submit-to-final latency at half of it, a wiped validator's sync, the restart of a
# chain of 10^6 blocks (written by `taksa bench-chain`, about 3 minutes), and balance reads
# against redis-benchmark at 10^6 accounts (scripts/reads-bench.sh, when wrk and Redis are
# installed).
# Everything runs on 127.0.0.1 on free ports; every process it starts is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

SMALL=0
[ "${1:-}" = "--small" ] && SMALL=1
if [ "$SMALL" = 1 ]; then
  taksa_build >/dev/null
  BIN="$CARGO_TARGET_DIR/debug/taksa"
  ACCOUNTS=40 TXS=400 CONC=8 LIGHT_TXS=20 VERIFY_S=1 BUILD=debug
  B_ACCOUNTS=40 B_TXS=2000 B_CONC=4 B_BATCH=64
  T_ACCOUNTS=40 T_TXS=2000 T_HALF_S=2
  R_BLOCKS=2000 READ_ACCOUNTS=0
else
  taksa_release_build
  BIN="$CARGO_TARGET_DIR/release/taksa"
  ACCOUNTS=640 TXS=38400 CONC=64 LIGHT_TXS=200 VERIFY_S=5 BUILD=release
  B_ACCOUNTS=1000 B_TXS=200000 B_CONC=8 B_BATCH=256
  T_ACCOUNTS=1000 T_TXS=120000 T_HALF_S=8
  R_BLOCKS=1000000 READ_ACCOUNTS=1000000
fi
# Hardhat 2.29 automine on this machine (issue 11): 825 finalized transfers/s with 2,000
# transfers from 200 senders over 32 workers; p50 36 ms at light load.
HARDHAT_TPS=825
HARDHAT_P50_MS=36
# The four-validator network's block time: a genesis choice (the checkout's genesis.json has
# 1000 ms; blocks hold at most 10,000 transfers, so 1 s blocks cap a network at 10,000 tx/s).
TN_BLOCK_MS=250

if [ "$SMALL" = 1 ]; then
  OUT="${TAKSA_BENCH_REPORT_OUT:-$CARGO_TARGET_DIR/bench-report-small.json}"
else
  OUT="${TAKSA_BENCH_REPORT_OUT:-$CARGO_TARGET_DIR/bench-report.json}"
fi
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
# shellcheck disable=SC2016 # expanded on exit
BENCH_BEFORE_EXIT='[ ! -d "$WORK/testnet" ] || "$BIN" testnet --dir "$WORK/testnet" down >/dev/null 2>&1'
say() { echo "bench-report: $*" >&2; }

# Starts a dev chain on a free port; sets DEV_PID and RPC.
start_dev() {
  local dir="$1"; shift
  local port; port="$(free_port)"
  RPC="http://127.0.0.1:$port"
  "$BIN" dev --data-dir "$dir" --reset --rpc-addr "127.0.0.1:$port" "$@" >"$dir.log" 2>&1 &
  DEV_PID=$!
  PIDS+=("$DEV_PID")
  for _ in $(seq 1 100); do
    if curl -s -m 1 -X POST -H 'Content-Type: application/json' \
        --data '{"jsonrpc":"2.0","id":1,"method":"node_health","params":[]}' "$RPC" | grep -q '"ok"'; then
      return 0
    fi
    sleep 0.2
  done
  say "the dev chain did not answer on $RPC; its log:"; tail -20 "$dir.log" >&2; exit 1
}
stop_dev() { kill "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

say "[1/10] ed25519 verification rate of this machine ($BUILD build, $VERIFY_S s each way)"
"$BIN" bench-verify --seconds "$VERIFY_S" --json-out "$WORK/verify.json" >&2
VERIFY_RATE="$(jget "$WORK/verify.json" batchSignaturesPerSecond)"

say "[2/10] dev chain at full load, one transfer per call: $ACCOUNTS accounts, $TXS transfers, concurrency $CONC"
start_dev "$WORK/dev"
sleep 2
IDLE_RSS_KIB="$(rss_kib "$DEV_PID")"
"$BIN" bench --rpc "$RPC" --accounts "$ACCOUNTS" --txs "$TXS" --concurrency "$CONC" --json-out "$WORK/load.json" >&2
FINAL_TPS="$(jget "$WORK/load.json" finalizedPerSecond)"
FINALIZED_TOTAL="$(curl -s -X POST -H 'Content-Type: application/json' \
  --data '{"jsonrpc":"2.0","id":1,"method":"explorer_getStats","params":[]}' "$RPC" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["totalTxs"])')"
stop_dev
DISK_BYTES="$(du -sb "$WORK/dev" | cut -f1)"
"$BIN" db-stats --data-dir "$WORK/dev" --json-out "$WORK/disk.json" >&2

say "[3/10] dev chain at full load, tx_submitBatch: $B_ACCOUNTS accounts, $B_TXS transfers, $B_CONC lanes of $B_BATCH per call"
start_dev "$WORK/batched"
"$BIN" bench --rpc "$RPC" --accounts "$B_ACCOUNTS" --txs "$B_TXS" --concurrency "$B_CONC" --batch "$B_BATCH" \
  --json-out "$WORK/batched.json" >&2
BATCH_TPS="$(jget "$WORK/batched.json" finalizedPerSecond)"
stop_dev

say "[4/10] dev chain --instant at light load: $LIGHT_TXS transfers at 20 per second"
start_dev "$WORK/light" --instant
"$BIN" bench --rpc "$RPC" --accounts 10 --txs "$LIGHT_TXS" --concurrency 4 --rate 20 --json-out "$WORK/light.json" >&2
LIGHT_P50="$(jget "$WORK/light.json" p50Ms)"
stop_dev

say "[5/10] four validators on this machine ($BUILD build, $TN_BLOCK_MS ms blocks), tx_submitBatch to one of them: $T_ACCOUNTS accounts, $T_TXS transfers"
"$BIN" testnet --dir "$WORK/testnet" up --block-time-ms "$TN_BLOCK_MS" --rpc-port "$(free_port)" \
  --p2p-port "$(free_port)" --log warn >&2
ready_rpc() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rpcUrl"])' "$WORK/testnet/node$1/ready.json"; }
TN_RPC="$(ready_rpc 0)"
"$BIN" bench --rpc "$TN_RPC" --accounts "$T_ACCOUNTS" --txs "$T_TXS" --concurrency 8 --batch 256 \
  --json-out "$WORK/tn-full.json" >&2
TN_TPS="$(jget "$WORK/tn-full.json" finalizedPerSecond)"
TN_RATE="$(python3 -c 'import sys; print(max(int(float(sys.argv[1]) / 2), 10))' "$TN_TPS")"
TN_HALF_TXS="$((TN_RATE * T_HALF_S))"

say "[6/10] four validators at half that load: $TN_HALF_TXS transfers at $TN_RATE per second"
"$BIN" bench --rpc "$TN_RPC" --accounts "$T_ACCOUNTS" --txs "$TN_HALF_TXS" --concurrency 8 --batch 64 \
  --rate "$TN_RATE" --json-out "$WORK/tn-half.json" >&2

rpc_call() { # URL METHOD FIELD: one field of a parameterless call's result
  curl -s -m 5 -X POST -H 'Content-Type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":[]}" "$1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"][sys.argv[1]])' "$3" 2>/dev/null || echo 0
}
SYNC_TARGET="$(rpc_call "$TN_RPC" chain_getInfo finalizedHeight)"
SYNC_TXS="$(rpc_call "$TN_RPC" explorer_getStats totalTxs)"
say "[7/10] sync: validator 3 wiped and restarted, catching up $SYNC_TARGET blocks ($SYNC_TXS transfers) from the other three"
"$BIN" testnet --dir "$WORK/testnet" wipe 3 >&2
SYNC_START="$(date +%s.%N)"
"$BIN" testnet --dir "$WORK/testnet" restart 3 >&2
SYNC_RPC="$(ready_rpc 3)"
for _ in $(seq 1 3000); do
  [ "$(rpc_call "$SYNC_RPC" chain_getInfo finalizedHeight)" -ge "$SYNC_TARGET" ] && break
  sleep 0.1
done
SYNC_S="$(python3 -c 'import sys,time; print(time.time() - float(sys.argv[1]))' "$SYNC_START")"
SYNC_HEIGHT="$(rpc_call "$SYNC_RPC" chain_getInfo finalizedHeight)"
[ "$SYNC_HEIGHT" -ge "$SYNC_TARGET" ] || { say "validator 3 did not catch up (height $SYNC_HEIGHT of $SYNC_TARGET)"; exit 1; }
say "caught up $SYNC_TARGET blocks in $SYNC_S s (from the restart: start-up and peer discovery included)"
"$BIN" testnet --dir "$WORK/testnet" down >&2

say "[8/10] restart: a dev chain of $R_BLOCKS blocks (taksa bench-chain), then the time from start to /ready, three times"
"$BIN" bench-chain --data-dir "$WORK/long" --blocks "$R_BLOCKS" >&2
python3 - "$BIN" "$WORK/long" "$WORK/restart.json" <<'PY' >&2
import json, signal, socket, statistics, subprocess, sys, time, urllib.request
binary, data_dir, out = sys.argv[1:]
times = []
for run in range(3):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    log = open(f"{data_dir}.restart-{run}.log", "w")
    started = time.monotonic()
    node = subprocess.Popen([binary, "dev", "--data-dir", data_dir, "--rpc-addr", f"127.0.0.1:{port}"],
                            stdout=log, stderr=log)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except Exception:
                if node.poll() is not None or time.monotonic() - started > 120:
                    sys.exit(f"bench-report: the restarted dev chain did not become ready; see {log.name}")
                time.sleep(0.005)
        times.append(time.monotonic() - started)
        print(f"bench-report: restart {run + 1}: ready in {times[-1]:.3f} s")
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(60)
json.dump({"seconds": times, "medianSeconds": statistics.median(times)}, open(out, "w"), indent=2)
PY

READS_JSON=""
if [ "$SMALL" = 1 ]; then
  say "[9/10] balance reads vs redis-benchmark: skipped in --small (scripts/reads-bench.sh runs on the release build)"
elif command -v wrk >/dev/null && command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null; then
  say "[9/10] balance reads vs redis-benchmark at $READ_ACCOUNTS accounts (scripts/reads-bench.sh)"
  TAKSA_READS_JSON_OUT="$WORK/reads.json" scripts/reads-bench.sh "$READ_ACCOUNTS" >&2
  READS_JSON="$WORK/reads.json"
else
  say "[9/10] balance reads vs redis-benchmark: skipped, wrk or redis is missing (apt-get install redis-server redis-tools wrk)"
fi

say "[10/10] report"
python3 - "$OUT" "$BUILD" "$VERIFY_RATE" "$BATCH_TPS" "$HARDHAT_TPS" "$LIGHT_P50" "$HARDHAT_P50_MS" \
  "$IDLE_RSS_KIB" "$DISK_BYTES" "$FINALIZED_TOTAL" "$WORK/verify.json" "$WORK/load.json" "$WORK/light.json" \
  "$FINAL_TPS" "$WORK/batched.json" "$WORK/tn-full.json" "$WORK/tn-half.json" "$TN_BLOCK_MS" "$SYNC_TXS" "$SYNC_TARGET" "$SYNC_S" \
  "$WORK/disk.json" "$WORK/restart.json" "$R_BLOCKS" "$READS_JSON" <<'PY'
import json, sys
(out, build, verify, tps, hh_tps, p50, hh_p50, rss_kib, disk, finalized, vj, lj, li, per_call, bj, tf, th, block_ms,
 sync_txs, sync_blocks, sync_s, dj, rj, r_blocks, reads_json) = sys.argv[1:]
restart = json.load(open(rj))
restart_s, r_blocks = float(restart["medianSeconds"]), int(r_blocks)
reads = json.load(open(reads_json)) if reads_json else None
sync_rate = int(sync_txs) / max(float(sync_s), 1e-3)
tn_full, tn_half, block_ms = json.load(open(tf)), json.load(open(th)), float(block_ms)
tn_tps, half_p50, half_p99 = float(tn_full["finalizedPerSecond"]), float(tn_half["p50Ms"]), float(tn_half["p99Ms"])
verify, tps, hh_tps, p50, hh_p50, per_call = float(verify), float(tps), float(hh_tps), float(p50), float(hh_p50), float(per_call)
rss_mb, disk, finalized = int(rss_kib) / 1024, int(disk), max(int(finalized), 1)
rows = [
    # name, measured, unit, anchor, anchor name, ratio, target, met
    ("dev chain finalized tx/s (tx_submitBatch) vs batch-verify rate", tps, "tx/s", verify, "sig/s", tps / verify, ">= 0.25", tps / verify >= 0.25),
    ("dev chain finalized tx/s (tx_submitBatch) vs Hardhat automine", tps, "tx/s", hh_tps, "tx/s", tps / hh_tps, ">= 50", tps / hh_tps >= 50),
    ("dev chain finalized tx/s (one tx_submit per call) vs Hardhat", per_call, "tx/s", hh_tps, "tx/s", per_call / hh_tps, "-", True),
    ("dev chain --instant p50 submit-to-final at light load", p50, "ms", hh_p50, "ms (Hardhat)", p50 / hh_p50, "<= 1", p50 <= hh_p50),
    ("dev chain idle RSS", rss_mb, "MB", 150, "MB target", rss_mb / 150, "<= 1", rss_mb <= 150),
    ("four validators finalized tx/s (tx_submitBatch to one)", tn_tps, "tx/s", 10000, "tx/s target", tn_tps / 10000, ">= 1", tn_tps >= 10000),
    ("four validators p50 submit-to-final at half load vs block time", half_p50, "ms", block_ms, "ms block", half_p50 / block_ms, "<= 1", half_p50 <= block_ms),
    ("four validators p99 submit-to-final at half load vs 2 blocks", half_p99, "ms", 2 * block_ms, "ms", half_p99 / (2 * block_ms), "<= 1", half_p99 <= 2 * block_ms),
    ("sync from genesis: transfers imported per second", sync_rate, "tx/s", 30000, "tx/s target", sync_rate / 30000, ">= 1", sync_rate >= 30000),
    ("bytes on disk per finalized transfer (after a clean stop)", disk / finalized, "B", 250, "B target", disk / finalized / 250, "<= 1", disk / finalized <= 250),
    (f"restart to /ready, chain of {r_blocks:,} blocks (median of 3)", restart_s * 1000, "ms", 2000, "ms target", restart_s / 2, "<= 1", restart_s < 2),
]
if reads:
    n = reads["accounts"]
    rows += [
        (f"balance reads/s, {n:,} accounts, chain at {reads['chainTransfersPerSecond']:,} tx/s, vs redis GET", reads["readsPerSecond"], "/s", reads["redisGetsPerSecond"], "/s", reads["ratio"], ">= 0.75", reads["ratio"] >= 0.75),
        ("balance reads p99 (same run)", reads["p99Ms"], "ms", 2, "ms target", reads["p99Ms"] / 2, "< 1", reads["p99Ms"] < 2),
        ("balance reads per core-second of the node (less the chain's load) vs redis-server's", reads["readsPerServerCoreSecond"], "/s", reads["redisGetsPerServerCoreSecond"], "/s",
         reads["readsPerServerCoreSecond"] / reads["redisGetsPerServerCoreSecond"], "-", True),
    ]
print(f"\nTaksa throughput report ({build} build)")
print(f"{'figure':<62} {'measured':>14} {'anchor':>20} {'ratio':>8}  target  met")
for name, m, unit, a, aunit, r, target, met in rows:
    print(f"{name:<62} {m:>9.1f} {unit:<4} {a:>11.1f} {aunit:<8} {r:>8.3f}  {target:<7} {'yes' if met else 'NO'}")
doc = {
    "build": build,
    "figures": [
        {"name": n, "measured": m, "unit": u, "anchor": a, "anchorUnit": au, "ratio": r, "target": t, "met": bool(ok)}
        for n, m, u, a, au, r, t, ok in rows
    ],
    "verify": json.load(open(vj)), "fullLoadPerCall": json.load(open(lj)), "fullLoadBatched": json.load(open(bj)),
    "lightLoad": json.load(open(li)),
    "fourValidators": {"blockTimeMs": block_ms, "fullLoad": tn_full, "halfLoad": tn_half},
    "sync": {"blocks": int(sync_blocks), "transfers": int(sync_txs), "seconds": float(sync_s), "transfersPerSecond": sync_rate},
    "disk": json.load(open(dj)),
    "restart": {"blocks": r_blocks, **restart},
    "reads": reads,
    "notMeasured": [] if reads else ["balance reads vs redis-benchmark (skipped: --small, or wrk/redis missing)"],
}
json.dump(doc, open(out, "w"), indent=2)
print(f"\nJSON: {out}")
PY
