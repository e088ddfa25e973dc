#!/usr/bin/env bash
# Builds the optimised `taksa` binary (what operators run, and what every performance figure is
# measured on) and runs it with the given arguments:
#   scripts/release.sh dev --reset            # a dev chain on the release build
#   scripts/release.sh --version              # just build, and say which binary
# The binary is $CARGO_TARGET_DIR/release/taksa (default ~/.cache/taksa/target/release/taksa);
# copy it anywhere: it needs no files beside it. The first release build compiles RocksDB's C++
# with optimisations: about 20 minutes on 2 cores; later builds take a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
taksa_release_build
exec "$CARGO_TARGET_DIR/release/taksa" "$@"
