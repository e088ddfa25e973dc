#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy lints (as errors) and the whole test suite (unit,
# property, golden-bytes, simulation, RPC and end-to-end tests that start the real binary on free
# loopback ports). Long simulations are opt-in:
#   cargo test -p taksa-consensus --test it sim_slow -- --ignored --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

# Lints run inside the test build: clippy-driver wraps rustc for the workspace's own crates
# only (what `cargo clippy` does in check mode), with -D warnings. `cargo clippy` itself would
# need a second, check-mode build of RocksDB's C++ (another 15 minutes on a fresh machine).
if clippy_driver=$(command -v clippy-driver); then
  echo "== cargo test --workspace (with clippy lints, -D warnings)"
  export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
  export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  cargo build --workspace --all-targets
else
  echo "== clippy-driver not found (rustup component add clippy): running the tests without lints" >&2
  echo "== cargo test --workspace"
fi
cargo test --workspace
