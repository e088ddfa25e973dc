#!/usr/bin/env bash
# A local multi-node Taksa testnet on 127.0.0.1: builds taksa (the one build scripts/dev.sh
# shares), then runs `taksa testnet ARGS` (`taksa testnet --help` explains each command):
#
#   scripts/testnet.sh up [--validators N] [--full M] [--block-time-ms MS]
#   scripts/testnet.sh status | demo | kill I | restart I | wipe I | logs I [-f] | down [--delete]
#
# TAKSA_RELEASE=1 builds and runs the release binary; TAKSA_SKIP_BUILD=1 runs the existing build.
# The folder is TAKSA_TESTNET_DIR or --dir (default ~/.taksa/testnet). The keys are the published
# testnet mnemonic's: never use them for real money.
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."
source scripts/setup.sh
if [ "${TAKSA_RELEASE:-0}" = 1 ]; then
  [ "${TAKSA_SKIP_BUILD:-0}" = 1 ] || taksa_release_build >&2
  bin="$CARGO_TARGET_DIR/release/taksa"
else
  [ "${TAKSA_SKIP_BUILD:-0}" = 1 ] || taksa_build >&2
  bin="$CARGO_TARGET_DIR/debug/taksa"
fi
[ -x "$bin" ] || { echo "testnet: no taksa binary at $bin: run without TAKSA_SKIP_BUILD=1" >&2; exit 1; }
cd "$caller"
exec "$bin" testnet "$@"
