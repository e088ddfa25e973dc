#!/usr/bin/env bash
# Installs what building Taksa needs and is missing: clang and libclang-dev (RocksDB's Rust
# bindings are generated at build time). Sourced by dev.sh, test.sh and testnet scripts.
set -euo pipefail

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (needed to build RocksDB's bindings)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null; }; then
    echo "setup: could not install ${need_apt[*]}; run: sudo apt-get install -y clang libclang-dev" >&2
    exit 1
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing. Install Rust (1.89 or newer) with rustup: https://rustup.rs, then re-run." >&2
  exit 1
fi
# One shared build folder outside the checkout, so repeated runs (and CI on the same machine)
# build incrementally. A first build compiles RocksDB's C++ and takes 15-20 minutes on 2 cores.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/taksa/target}"
mkdir -p "$CARGO_TARGET_DIR"
if [ ! -d "$CARGO_TARGET_DIR/debug/build" ]; then
  echo "setup: first build: compiling RocksDB, libp2p and jsonrpsee takes 15-20 minutes on 2 cores" >&2
fi

# The one build every script shares: the whole workspace with its tests, with clippy's lints (as
# errors) run by clippy-driver wrapping rustc for the workspace's own crates. Building the same
# way everywhere matters: any other selection of crates or flags gives RocksDB's build script
# another fingerprint, and RocksDB's C++ compiles again.
taksa_build() {
  local driver
  if driver=$(command -v clippy-driver); then
    export RUSTC_WORKSPACE_WRAPPER="$driver"
    export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
  else
    echo "setup: clippy-driver not found (rustup component add clippy): building without lints" >&2
  fi
  cargo build --workspace --all-targets "$@"
}

# The release binary, built one way only (the same package and flags every time, so RocksDB's
# optimised C++ compiles once): scripts/release.sh and scripts/bench-report.sh use it.
taksa_release_build() {
  if [ ! -x "$CARGO_TARGET_DIR/release/taksa" ]; then
    echo "setup: first release build: compiling RocksDB with optimisations takes about 20 minutes on 2 cores" >&2
  fi
  cargo build --release -p taksa-node --bin taksa
}

# What the browser test of the web explorer needs (test.sh calls this; dev.sh does not): Debian's
# Chromium, Node.js with npm, and playwright-core from node/tests/browser/package-lock.json.
# Playwright drives /usr/bin/chromium; it never downloads a browser of its own.
taksa_browser_setup() {
  local root need=()
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]} (for the explorer's browser test)" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null; }; then
      echo "setup: could not install ${need[*]}; run: sudo apt-get install -y chromium nodejs npm" >&2
      return 1
    fi
  fi
  if [ ! -d "$root/node/tests/browser/node_modules/playwright-core" ]; then
    echo "setup: installing playwright-core for the browser test (npm ci in node/tests/browser)" >&2
    (cd "$root/node/tests/browser" && npm ci --no-audit --no-fund --loglevel=error) || {
      echo "setup: npm ci failed in node/tests/browser; run it by hand to see why" >&2
      return 1
    }
  fi
}

# What the exporter's tests need (test.sh calls this; dev.sh does not): Debian's PostgreSQL
# server. The tests start their own server on a free port in a temporary folder, as the package's
# `postgres` user when they run as root; the package's own cluster is not used.
taksa_postgres_setup() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    echo "setup: installing postgresql (for the exporter's tests)" >&2
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null; }; then
      echo "setup: could not install postgresql; run: sudo apt-get install -y postgresql" >&2
      return 1
    fi
  fi
}
