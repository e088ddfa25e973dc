#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer, AddressSanitizer) of every decoder a peer or a
# client reaches: transaction, block, vote, certificate, consensus message, sync request and
# response, RPC parameters (fuzz/fuzz_targets/). Every target runs in turn; the script fails if
# any of them panics, finds a value that does not re-encode to its bytes, takes over 10 s on one
# input, or allocates past the limits below, and prints the command that replays the input.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]    # default 20 s per target (scripts/test.sh runs 15)
#   TAKSA_FUZZ_SLOW=1 scripts/fuzz.sh       # slow mode: one hour in total, shared by the targets
#   TAKSA_FUZZ_TARGETS="tx block" scripts/fuzz.sh 60    # only these targets
#
# Needs cargo-fuzz (installed when missing) and the nightly toolchain, or else the stable one
# with RUSTC_BOOTSTRAP=1 for this build alone.
# Builds into ~/.cache/taksa/fuzz-target, never the main build folder; the first build takes
# about 3-4 minutes on 2 cores, later ones are incremental. Each target's corpus grows in
# ~/.cache/taksa/fuzz-corpus/<target>, so every run starts where the last one stopped; the seeds
# (valid encodings written by fuzz/src/bin/seeds.rs) are rewritten on every run. A failing input
# is saved in fuzz/artifacts/<target>/; the logs of the last run are in ~/.cache/taksa/fuzz-logs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The main build's settings (scripts/setup.sh) must not reach this build: its target folder, or
# stable clippy-driver wrapping nightly's rustc, would break or rebuild it.
unset CARGO_TARGET_DIR RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS RUSTFLAGS CARGO_BUILD_RUSTFLAGS

CACHE="$HOME/.cache/taksa"
TARGET_DIR="$CACHE/fuzz-target"
CORPUS_DIR="$CACHE/fuzz-corpus"
SEEDS_DIR="$CACHE/fuzz-seeds"
LOG_DIR="$CACHE/fuzz-logs"
SLOW_TOTAL_S=3600
# One input that takes longer than this is a finding: a peer could stall a node with it.
INPUT_TIMEOUT_S=10
# The RSS cap of every target: 4x the largest decode budget (64 MiB, `LARGE_DECODE_BUDGET_BYTES`
# in consensus/src/codec.rs). It catches memory that accumulates across inputs (a leak, or many
# allocations each under its budget); one input needs at most its budget plus what the harness
# and AddressSanitizer hold (about 90 MB, measured), so 256 MB leaves room without hiding growth.
RSS_LIMIT_MB=256
# AddressSanitizer keeps freed memory in quarantine (256 MB by default) to catch use after free,
# which would count against the cap above; this code is safe Rust, so a small quarantine will do.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
# std symbolizes a panic's backtrace by reading debug info into buffers of several MB, which the
# allocation limits below would report as out-of-memory, hiding the panic. libFuzzer prints the
# stack of a panic anyway, symbolized by AddressSanitizer outside the limited allocator.
export RUST_BACKTRACE=0

# Per target: the largest input libFuzzer tries (just past each size limit, so both sides of it
# are reached, but no further: longer inputs only slow the search), and the decode budget in MiB,
# the most one allocation of its decoders may take. bincode charges a container's full claimed
# capacity against the budget before it allocates, so no single allocation of a correct decoder
# exceeds it; `-malloc_limit_mb` is the budget plus 1 (libFuzzer compares whole MiB, and what
# the target does after decoding allocates in proportion to its input, well under 1 MiB), so any
# larger allocation fails the run. The budgets mirror private constants; raising one there makes
# this run fail until the table follows, which is the point:
#   1 MiB: `SMALL_DECODE_BUDGET_BYTES` (consensus/src/codec.rs), used for limits up to 256 KiB:
#          transactions (1 KiB), votes and certificates (64 KiB), sync requests (1 KiB).
#   64 MiB: `LARGE_DECODE_BUDGET_BYTES`, for blocks (4 MiB) and sync responses (16 MiB).
#   17 MiB: `DECODE_CLAIM_BYTES_MAX` (consensus/src/engine/message.rs), 4x the 4.06 MiB proposal
#          limit, rounded up: `Message::decode` uses its own configuration.
target_limits() {
  case "$1" in
    tx) echo "1100 1" ;;
    vote) echo "1024 1" ;;
    certificate) echo "4096 1" ;;
    block) echo "65536 64" ;;
    message) echo "66000 17" ;;
    sync) echo "65536 64" ;;
    rpc_params) echo "4096 1" ;;
    *) echo "fuzz: no limits for target $1: add it to target_limits in scripts/fuzz.sh" >&2; return 1 ;;
  esac
}

targets=()
if [ -n "${TAKSA_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$TAKSA_FUZZ_TARGETS"
else
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
for t in "${targets[@]}"; do target_limits "$t" >/dev/null; done

if [ "${TAKSA_FUZZ_SLOW:-0}" = "1" ]; then
  seconds=$((SLOW_TOTAL_S / ${#targets[@]}))
  [ $# -eq 0 ] || echo "fuzz: slow mode: ignoring the argument $1" >&2
  echo "fuzz: slow mode: ${SLOW_TOTAL_S} s in total, ${seconds} s for each of ${#targets[@]} targets"
else
  seconds="${1:-20}"
fi
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (or TAKSA_FUZZ_SLOW=1 scripts/fuzz.sh)" >&2
  exit 2
fi

# cargo-fuzz passes flags only nightly rustc accepts. Machines of this project's kind carry one
# toolchain and cannot fetch another; without a nightly one, the stable compiler accepts those
# flags with RUSTC_BOOTSTRAP=1, set for this build alone (the main build never sees it).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  TOOLCHAIN=nightly
else
  echo "fuzz: no nightly toolchain: building with stable and RUSTC_BOOTSTRAP=1" >&2
  TOOLCHAIN=stable
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz: cargo install cargo-fuzz --locked" >&2
  cargo install cargo-fuzz --locked
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: libFuzzer needs a C++ compiler; run: sudo apt-get install -y clang" >&2
  exit 1
fi

fuzz=(cargo "+$TOOLCHAIN" fuzz)
dirs=(--fuzz-dir fuzz --target-dir "$TARGET_DIR")
host="$(rustc "+$TOOLCHAIN" -vV | sed -n 's/^host: //p')"
mkdir -p "$TARGET_DIR" "$CORPUS_DIR" "$LOG_DIR"

echo "== fuzz: build ($TOOLCHAIN, AddressSanitizer, into $TARGET_DIR)"
build_start=$SECONDS
"${fuzz[@]}" build "${dirs[@]}"
echo "fuzz: built in $((SECONDS - build_start)) s"

rm -rf "$SEEDS_DIR"
"$TARGET_DIR/$host/release/seeds" "$SEEDS_DIR"

# One figure of libFuzzer's final statistics (-print_final_stats) from a log.
final_stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

failed=()
printf '%-12s %12s %9s %8s %8s  %s\n' target executions exec/s corpus rss_mb result
for t in "${targets[@]}"; do
  read -r max_len budget_mb < <(target_limits "$t")
  # A target without seeds of its own still starts, from an empty input.
  mkdir -p "$CORPUS_DIR/$t" "$SEEDS_DIR/$t"
  log="$LOG_DIR/$t.log"
  status=0
  "${fuzz[@]}" run "${dirs[@]}" "$t" "$CORPUS_DIR/$t" "$SEEDS_DIR/$t" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout="$INPUT_TIMEOUT_S" \
    -malloc_limit_mb=$((budget_mb + 1)) -rss_limit_mb="$RSS_LIMIT_MB" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  corpus=$(find "$CORPUS_DIR/$t" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    printf '%-12s %12s %9s %8s %8s  %s\n' "$t" "$(final_stat "$log" number_of_executed_units)" \
      "$(final_stat "$log" average_exec_per_sec)" "$corpus" "$(final_stat "$log" peak_rss_mb)" ok
  else
    failed+=("$t")
    printf '%-12s %12s %9s %8s %8s  %s\n' "$t" "$(final_stat "$log" number_of_executed_units)" "-" "$corpus" \
      "$(final_stat "$log" peak_rss_mb)" "FAILED (exit $status)"
    # From the panic or sanitizer report to libFuzzer's summary: what failed, and the stack.
    echo "---- $log:"
    report=$(awk '/panicked at|ERROR: (libFuzzer|AddressSanitizer)/ { on = 1 } on && n++ < 80 { print } /^SUMMARY/ { on = 0 }' "$log")
    if [ -n "$report" ]; then echo "$report"; else tail -20 "$log"; fi
    artifact=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ]; then
      echo "---- the input is in $artifact; replay it (with the same limits) with:"
      echo "RUST_BACKTRACE=0 ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }cargo +$TOOLCHAIN fuzz run --fuzz-dir fuzz --target-dir $TARGET_DIR $t $artifact" \
        "-- -malloc_limit_mb=$((budget_mb + 1)) -rss_limit_mb=$RSS_LIMIT_MB"
    else
      echo "---- no input was saved (the build or the fuzzer failed to start); see $log"
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no crash"
