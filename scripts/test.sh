#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy lints (as errors) and the whole test suite (unit,
# property, golden-bytes, simulation, RPC and end-to-end tests that start the real binary on free
# loopback ports, and the web explorer in headless Chromium). Long simulations are opt-in:
#   cargo test -p taksa-consensus --test it sim_slow -- --ignored --nocapture
# Then every decoder a peer or a client reaches is fuzzed for 15 s (scripts/fuzz.sh; its slow mode,
# an hour in all, is TAKSA_FUZZ_SLOW=1 scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
# The fuzz targets are a workspace of their own (built by scripts/fuzz.sh below).
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

echo "== cargo build --workspace --all-targets (with clippy lints, -D warnings)"
taksa_build
echo "== browser test setup (chromium, node, playwright-core)"
taksa_browser_setup
echo "== PostgreSQL for the exporter's tests"
taksa_postgres_setup
echo "== deploy/: the compose file, Prometheus and Grafana files checked without a container engine"
python3 deploy/check.py >/dev/null || python3 deploy/check.py
echo "== cargo test --workspace (every test binary runs even when one fails)"
test_log="$(mktemp)"
sdk_log="$(mktemp)"
tn="$(mktemp -d)"
bin="$CARGO_TARGET_DIR/debug/taksa"
trap '"$bin" testnet --dir "$tn/net" down >/dev/null 2>&1 || true; rm -rf "$test_log" "$sdk_log" "$tn"' EXIT
cargo test --workspace --no-fail-fast 2>&1 | tee "$test_log"

# The TypeScript SDK's tests (node's test runner): the test vectors, receipts, and a real
# `taksa dev` of this build (transfers, history, subscriptions resumed across a restart).
echo "== TypeScript SDK (sdk/typescript): npm ci, then npm test against this build's taksa"
node_major="$(node -p 'process.versions.node.split(".").map(Number).slice(0, 2).join(" ")' 2>/dev/null || echo "0 0")"
read -r major minor <<<"$node_major"
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "test: the TypeScript SDK needs Node.js 20.19 or newer (its @noble and @scure packages); this is $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
(
  cd sdk/typescript
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  TAKSA_BIN="$bin" npm test
) 2>&1 | tee "$sdk_log"

# The local testnet as a user starts it, from the README: up, demo, down.
echo "== taksa testnet up, demo, down (scripts/testnet.sh, in a temporary folder)"
TAKSA_SKIP_BUILD=1 bash scripts/testnet.sh --dir "$tn/net" up
TAKSA_SKIP_BUILD=1 bash scripts/testnet.sh --dir "$tn/net" demo
TAKSA_SKIP_BUILD=1 bash scripts/testnet.sh --dir "$tn/net" down --delete

# The throughput report in its small mode (debug build, about a minute): checks that every step
# of it still works, not how fast the node is (the figures come from the release build).
echo "== throughput report, small mode (scripts/bench-report.sh --small)"
bash scripts/bench-report.sh --small

# Its own nightly build in ~/.cache/taksa/fuzz-target (about 3-4 minutes the first time, on 2
# cores), then 15 s per target: about 2 minutes. Fails on any crash or allocation past the limits.
echo "== fuzz: every decoder a peer or a client reaches, 15 s each (scripts/fuzz.sh)"
bash scripts/fuzz.sh 15

# The fuzz run prints last; the suite's totals close the output, as one line
# (cargo's test binaries and the SDK's node tests together).
sdk_pass="$(awk '/^# pass / { print $3 }' "$sdk_log" | tail -1)"
sdk_fail="$(awk '/^# fail / { print $3 }' "$sdk_log" | tail -1)"
awk -v sp="${sdk_pass:-0}" -v sf="${sdk_fail:-0}" '/^test result:/ { p += $4; f += $6; i += $8 }
  END { printf "tests: %d passed, %d failed, %d ignored\n", p + sp, f + sf, i }' "$test_log"
