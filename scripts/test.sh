#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy lints (as errors) and the whole test suite (unit,
# property, golden-bytes, simulation, RPC and end-to-end tests that start the real binary on free
# loopback ports, and the web explorer in headless Chromium). Long simulations are opt-in:
#   cargo test -p taksa-consensus --test it sim_slow -- --ignored --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo build --workspace --all-targets (with clippy lints, -D warnings)"
taksa_build
echo "== browser test setup (chromium, node, playwright-core)"
taksa_browser_setup
echo "== cargo test --workspace (every test binary runs even when one fails)"
cargo test --workspace --no-fail-fast
