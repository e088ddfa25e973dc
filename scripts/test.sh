#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and the whole test suite (unit, property,
# simulation, RPC and end-to-end tests that start the real binary on free loopback ports).
# Long simulations are opt-in: TAKSA_SIM_SEEDS=10000 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
