#!/usr/bin/env bash
# Starts a local single-validator dev chain: `scripts/dev.sh [taksa dev options]`.
# Example: scripts/dev.sh --reset --rpc-addr 127.0.0.1:8545
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
taksa_build
exec "$CARGO_TARGET_DIR/debug/taksa" dev "$@"
