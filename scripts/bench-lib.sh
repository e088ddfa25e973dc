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
# CPU seconds used so far by the given processes (all their threads; user + system).
cpu_seconds() {
  local tck; tck=$(getconf CLK_TCK)
  for pid in "$@"; do cat "/proc/$pid/stat" 2>/dev/null || echo; done \
    | python3 -c 'import sys; t=sum(int(l.rsplit(")",1)[1].split()[11]) + int(l.rsplit(")",1)[1].split()[12]) for l in sys.stdin if ")" in l); print(t / int(sys.argv[1]))' "$tck"
}
# Runs a command and writes the CPU seconds it (and its children) used to the file $CPU_OUT.
cpu_of() {
  python3 -c 'import os, resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(os.environ["CPU_OUT"], "w").write(str(u.ru_utime + u.ru_stime))
sys.exit(rc)' "$@"
}
