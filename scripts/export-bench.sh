#!/usr/bin/env bash
# Rows per second of `taksa export postgres` (issue 13): fills a dev chain with transfers
# (`taksa bench`), then times the exporter writing the whole chain into a fresh PostgreSQL
# (Debian's server, started here on a free loopback port in a temporary folder) and prints the
# figure, with the exporter's own progress lines.
#
#   scripts/export-bench.sh            release build, 200,000 transfers (a few minutes)
#   scripts/export-bench.sh --small    debug build, 5,000 transfers (checks that it works)
#
# Everything runs on 127.0.0.1; every process it starts is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ "${1:-}" = "--small" ]; then
  taksa_build >/dev/null
  BIN="$CARGO_TARGET_DIR/debug/taksa" TXS=5000 ACCOUNTS=100
else
  taksa_release_build
  BIN="$CARGO_TARGET_DIR/release/taksa" TXS=200000 ACCOUNTS=1000
fi
taksa_postgres_setup
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
say() { echo "export-bench: $*" >&2; }

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PG_BIN/initdb" ] || PG_BIN="$(dirname "$(command -v initdb)")"
# PostgreSQL refuses to run as root: run it as the package's `postgres` user then.
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  chown postgres: "$WORK"
fi
say "PostgreSQL: initdb in $WORK/pg"
(cd "$WORK" && "${AS_PG[@]}" "$PG_BIN/initdb" -U postgres --auth=trust --no-sync -E UTF8 --locale=C -D "$WORK/pg" >/dev/null)
PG_PORT="$(free_port)"
(cd "$WORK" && exec "${AS_PG[@]}" "$PG_BIN/postgres" -D "$WORK/pg" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
  -c "unix_socket_directories=$WORK" >"$WORK/postgres.log" 2>&1) &
PIDS+=("$!")
DB="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
for _ in $(seq 1 100); do psql -q "$DB" -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
psql -q "$DB" -c 'SELECT 1' >/dev/null || { say "PostgreSQL did not start:"; tail "$WORK/postgres.log" >&2; exit 1; }

RPC_PORT="$(free_port)"
RPC="http://127.0.0.1:$RPC_PORT"
mkdir -p "$WORK/dev"
"$BIN" dev --data-dir "$WORK/dev" --reset --rpc-addr "127.0.0.1:$RPC_PORT" >"$WORK/dev.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do curl -sf -m 1 "$RPC/ready" >/dev/null && break; sleep 0.2; done
say "filling the dev chain: $TXS transfers from $ACCOUNTS accounts (taksa bench)"
"$BIN" bench --rpc "$RPC" --accounts "$ACCOUNTS" --txs "$TXS" --concurrency 8 --batch 256 >&2
HEIGHT="$(curl -s -X POST -H 'Content-Type: application/json' \
  --data '{"jsonrpc":"2.0","id":1,"method":"chain_getInfo","params":[]}' "$RPC" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["finalizedHeight"])')"

say "exporting heights 0..$HEIGHT into PostgreSQL (taksa export postgres --stop-at-height $HEIGHT)"
START="$(date +%s.%N)"
"$BIN" export postgres --rpc "$RPC" --database "$DB" --stop-at-height "$HEIGHT" >&2
END="$(date +%s.%N)"
read -r BLOCKS TRANSFERS < <(psql -At -F ' ' "$DB" -c \
  'SELECT (SELECT count(*) FROM taksa.blocks), (SELECT count(*) FROM taksa.transfers)')
python3 - "$BLOCKS" "$TRANSFERS" "$START" "$END" <<'PY'
import sys
blocks, transfers, start, end = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = end - start
print(f"exported {blocks:,} blocks and {transfers:,} transfers in {s:.2f} s: "
      f"{(blocks + transfers) / s:,.0f} rows/s ({transfers / s:,.0f} transfers/s), start-up included")
PY
