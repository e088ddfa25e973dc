# Shared by the benchmark scripts (sourced, not run): a work folder removed on exit, the
# processes started (PIDS) stopped by pid on exit, and a free loopback port.
# A script may set BENCH_BEFORE_EXIT to a command to run first on exit.
WORK="$(mktemp -d)"
PIDS=()
BENCH_BEFORE_EXIT=""
bench_cleanup() {
  if [ -n "$BENCH_BEFORE_EXIT" ]; then eval "$BENCH_BEFORE_EXIT" || true; fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  return 0
}
trap bench_cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
