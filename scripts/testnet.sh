#!/usr/bin/env bash
# A local multi-node Taksa testnet on 127.0.0.1, from the root genesis.json.
#
#   scripts/testnet.sh start [N] [--full M] [--reset]   N validators (default 4) + M full nodes
#   scripts/testnet.sh status | stop | demo | help
#   scripts/testnet.sh kill I | restart I | wipe I | logs I [--no-follow]
#
# The validator keys and funded accounts derive from a PUBLISHED test mnemonic and the keystore
# password is a fixed public test password: nothing here is secret. Never use them for real money.
# `scripts/testnet.sh help` lists the environment variables.
set -euo pipefail

# Resolved against the caller's folder before we move to the repository root.
TESTNET_DIR_RAW="${TAKSA_TESTNET_DIR:-$HOME/.taksa/testnet}"
case "$TESTNET_DIR_RAW" in
  /*) ;;
  *) TESTNET_DIR_RAW="$PWD/$TESTNET_DIR_RAW" ;;
esac
# One spelling per folder: a node counts as ours by the folder in its command line.
TESTNET_DIR_RAW="$(realpath -m -- "$TESTNET_DIR_RAW" 2>/dev/null || printf '%s' "$TESTNET_DIR_RAW")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Public test material (see genesis.json's "comment"): anyone can sign with these keys.
MNEMONIC="abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
TEST_PASSWORD="taksa-public-testnet-password-not-secret"
GENESIS_SRC="${TAKSA_TESTNET_GENESIS:-$ROOT/genesis.json}"
P2P_BASE="${TAKSA_TESTNET_P2P_PORT:-30400}"
RPC_BASE="${TAKSA_TESTNET_RPC_PORT:-8600}"
TIMEOUT_S="${TAKSA_TESTNET_TIMEOUT:-60}"
LOG_FILTER="${TAKSA_TESTNET_LOG:-info}"
STOP_TIMEOUT_S=10
DEMO_AMOUNT="1.5"
DEMO_AMOUNT_BASE=1500000000

say() { printf 'testnet: %s\n' "$*"; }
warn() { printf 'testnet: warning: %s\n' "$*" >&2; }
die() {
  printf 'testnet: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<EOF
Local multi-node Taksa testnet on 127.0.0.1 (chain from $GENESIS_SRC).

Usage: scripts/testnet.sh COMMAND [ARGS]

  start [N] [--full M] [--reset]  build, then start N validators (default 4, at most the genesis's)
                                  and M full nodes (default 0); wait until every node answers RPC and
                                  the chain finalizes. An existing testnet folder is resumed with its
                                  chain data; --reset deletes it first.
  status                          one line per node: role, pid, heights, head, peers, view, RPC URL
  stop                            SIGTERM every node (SIGKILL after ${STOP_TIMEOUT_S} s)
  kill I                          SIGKILL node I (a crash)
  restart I                       start node I again with its recorded command line (stops it first)
  wipe I                          stop node I and delete its chain data (keys kept); then restart I
                                  makes it sync from genesis
  logs I [--no-follow]            the last 50 lines of node I's log, then follow it (or exit)
  demo                            send transfers through different nodes and check every node agrees
  help                            this text

Environment:
  TAKSA_TESTNET_DIR       state folder [default: ~/.taksa/testnet]; now: $TESTNET_DIR_RAW
  TAKSA_TESTNET_P2P_PORT  first p2p port tried [default: 30400]; busy ports are skipped
  TAKSA_TESTNET_RPC_PORT  first RPC port tried [default: 8600]; busy ports are skipped
  TAKSA_TESTNET_TIMEOUT   seconds to wait for the nodes to be ready [default: 60]
  TAKSA_TESTNET_LOG       log filter passed to the nodes as TAKSA_LOG [default: info]
  TAKSA_SKIP_BUILD=1      use the existing \$CARGO_TARGET_DIR/debug/taksa without building
  TAKSA_TESTNET_GENESIS   another genesis file with the same keys (another block time, say)
                          [default: the checkout's genesis.json]
  TAKSA_RELEASE=1         build and run the release binary (\$CARGO_TARGET_DIR/release/taksa)
  CARGO_TARGET_DIR        build folder [default: ~/.cache/taksa/target, as scripts/setup.sh]

The validator keys and funded accounts come from the PUBLISHED test mnemonic
"$MNEMONIC",
and the keystores use the fixed public test password in each node's "password" file.
Nothing here is secret: never send real money to these keys.
EOF
}

# ---------------------------------------------------------------------------------------------
# Folder layout

DIR="$TESTNET_DIR_RAW"
ENV_FILE="$DIR/testnet.env"
node_dir() { printf '%s/node%s' "$DIR" "$1"; }

# Reads KEY from a KEY=VALUE file we wrote.
kv() {
  local file="$1" key="$2" k v
  [ -f "$file" ] || return 1
  while IFS='=' read -r k v; do
    if [ "$k" = "$key" ]; then
      printf '%s\n' "$v"
      return 0
    fi
  done <"$file"
  return 1
}

require_testnet() {
  [ -f "$ENV_FILE" ] || die "no testnet in $DIR (no testnet.env): create one with scripts/testnet.sh start"
  VALIDATORS="$(kv "$ENV_FILE" VALIDATORS)"
  FULL="$(kv "$ENV_FILE" FULL)"
  BIN="$(kv "$ENV_FILE" BIN)"
  TOTAL=$((VALIDATORS + FULL))
  GENESIS="$DIR/genesis.json"
}

# Checks that I names a node of this testnet.
check_index() {
  local i="${1:-}"
  [ -n "$i" ] || die "which node? give its index, 0..$((TOTAL - 1)) (scripts/testnet.sh status lists them)"
  if ! [[ "$i" =~ ^[0-9]+$ ]] || [ "$i" -ge "$TOTAL" ]; then
    die "node index must be 0..$((TOTAL - 1)) (this testnet has $TOTAL nodes), not '$i'"
  fi
}

role_of() { cat "$(node_dir "$1")/role" 2>/dev/null || echo "?"; }
rpc_url_of() { printf 'http://127.0.0.1:%s' "$(kv "$(node_dir "$1")/ports" RPC_PORT)"; }
p2p_addr_of() { printf '127.0.0.1:%s' "$(kv "$(node_dir "$1")/ports" P2P_PORT)"; }

# One exclusive lock per testnet folder for the commands that change it. The nodes are started
# with the lock's descriptor closed, so they never hold it.
take_lock() {
  mkdir -p "$DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DIR/.lock"
    flock -n 9 || die "another scripts/testnet.sh command is working on $DIR; wait for it to finish"
  fi
}

# ---------------------------------------------------------------------------------------------
# JSON-RPC and JSON (python3; jq is not required)

command -v python3 >/dev/null 2>&1 || die "python3 is needed (to read JSON and test ports): apt-get install python3"
# The interpreter itself: a version manager's shim costs ~0.3 s per call, and we call it often.
PY="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)" || PY=python3
[ -x "$PY" ] || PY=python3
command -v curl >/dev/null 2>&1 || die "curl is needed (to talk JSON-RPC to the nodes): apt-get install curl"

# rpc URL METHOD [PARAMS_JSON]: prints the response body; fails when the node does not answer.
rpc() {
  curl -s --max-time "${RPC_MAX_TIME_S:-3}" -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":${3:-[]}}" "$1"
}

# jget PATH...: reads a JSON-RPC response on stdin and prints the result's fields at PATH (dotted;
# "len" is the length of the result), tab-separated; "-" for an absent field. Exits 2 with the
# error's message on an error response, 3 on something that is not JSON-RPC.
jget() {
  "$PY" -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except Exception:
    sys.exit(3)
if not isinstance(doc, dict) or "result" not in doc:
    err = doc.get("error") if isinstance(doc, dict) else None
    sys.stderr.write("node answered with an error: %s\n" % json.dumps(err))
    sys.exit(2)
out = []
for path in sys.argv[1:]:
    v = doc["result"]
    if path == "len":
        v = len(v) if isinstance(v, (list, dict)) else None
    elif path != ".":
        for k in path.split("."):
            if isinstance(v, dict):
                v = v.get(k)
            elif isinstance(v, list) and k.isdigit() and int(k) < len(v):
                v = v[int(k)]
            else:
                v = None
    out.append("-" if v is None else v if isinstance(v, str) else json.dumps(v))
print("\t".join(out))
' "$@"
}

# chain_info URL: prints "headHeight finalizedHeight headHash" (tab-separated) or fails.
chain_info() {
  local body
  body="$(rpc "$1" chain_getInfo)" || return 1
  jget headHeight finalizedHeight headHash <<<"$body" 2>/dev/null
}

finalized_height() {
  local info
  info="$(chain_info "$1")" || return 1
  printf '%s\n' "$info" | cut -f2
}

# finalized_heights URL...: one line per URL: its finalized height, or "-" when it does not
# answer. One python call for all (each costs ~0.1 s, the nodes share 2 cores).
finalized_heights() {
  local url
  local -a bodies=()
  for url in "$@"; do bodies+=("$(rpc "$url" chain_getInfo || true)"); done
  "$PY" -c '
import json, sys
for body in sys.argv[1:]:
    try:
        print(int(json.loads(body)["result"]["finalizedHeight"]))
    except Exception:
        print("-")
' "${bodies[@]}"
}

# node_state URL: "headHeight finalizedHeight headHash peers view" (tab-separated) from
# chain_getInfo, node_peers and consensus_getStatus; fails when chain_getInfo does not answer.
node_state() {
  local info peers cons
  info="$(rpc "$1" chain_getInfo)" || return 1
  peers="$(rpc "$1" node_peers || true)"
  cons="$(rpc "$1" consensus_getStatus || true)"
  "$PY" -c '
import json, sys
def result(body):
    try:
        return json.loads(body).get("result")
    except Exception:
        return None
info, peers, cons = (result(b) for b in sys.argv[1:4])
if not isinstance(info, dict):
    sys.exit(1)
print("\t".join(str(x) for x in (
    info.get("headHeight", "?"), info.get("finalizedHeight", "?"), info.get("headHash", "?"),
    len(peers) if isinstance(peers, list) else "?", cons.get("view", "?") if isinstance(cons, dict) else "?")))
' "$info" "$peers" "$cons"
}

# genesis_get FILE EXPR: a field of the genesis file (EXPR is python over `g`).
genesis_get() {
  "$PY" -c 'import json, sys; g = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# Whether 127.0.0.1:PORT can be bound now (the same way a server binds it: with SO_REUSEADDR, so
# a port left in TIME_WAIT counts as free, a listening one does not).
port_free() {
  "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
' "$1"
}

# pick_port FIRST: sets PORT to the first free port >= FIRST not already in $PICKED
# (space-separated), and adds it there. Not in a $(subshell), so PICKED keeps growing.
pick_port() {
  local p="$1" last=$(($1 + 2000))
  while [ "$p" -le "$last" ] && [ "$p" -le 65535 ]; do
    if [[ " $PICKED " != *" $p "* ]] && port_free "$p"; then
      PICKED="$PICKED $p"
      PORT="$p"
      return 0
    fi
    p=$((p + 1))
  done
  die "no free port in $1..$last on 127.0.0.1; set TAKSA_TESTNET_P2P_PORT / TAKSA_TESTNET_RPC_PORT to another range"
}

# ---------------------------------------------------------------------------------------------
# Processes: a node's pid counts only while it is a `taksa` process whose command line names this
# testnet's node folder, so a stale pid file never makes us signal anything else.

pid_of() {
  local nd pid comm args
  nd="$(node_dir "$1")"
  [ -f "$nd/pid" ] || return 1
  pid="$(cat "$nd/pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  comm="$(ps -p "$pid" -o comm= 2>/dev/null)" || return 1
  [ "${comm##*/}" = "taksa" ] || return 1
  args="$(ps -p "$pid" -o args= 2>/dev/null)" || return 1
  [[ "$args " == *" --data-dir $nd/data "* ]] || return 1
  printf '%s\n' "$pid"
}

running_nodes() {
  local i out=""
  for ((i = 0; i < TOTAL; i++)); do
    if pid_of "$i" >/dev/null; then out="$out $i"; fi
  done
  printf '%s\n' "${out# }"
}

# launch I: starts node I in the background from its recorded command line.
launch() {
  local i="$1" nd pid
  nd="$(node_dir "$i")"
  local -a cmd
  eval "cmd=($(cat "$nd/cmd"))"
  printf '\n===== %s scripts/testnet.sh starts node %s (TAKSA_LOG=%s): %s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$i" "$LOG_FILTER" "$(cat "$nd/cmd")" >>"$nd/node.log"
  # setsid: its own session, so the node outlives this shell and a Ctrl-C here; nohup for good
  # measure. Not a process group leader here, so setsid execs in place and $! is the node's pid.
  TAKSA_LOG="$LOG_FILTER" setsid nohup "${cmd[@]}" >>"$nd/node.log" 2>&1 </dev/null 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$nd/pid"
  say "node $i ($(role_of "$i")) started: pid $pid, RPC $(rpc_url_of "$i"), p2p $(p2p_addr_of "$i"), log $nd/node.log"
}

# signal_stop SIGNAL I...: sends SIGNAL to the listed nodes that run, then waits until they are
# gone; SIGTERM waits up to STOP_TIMEOUT_S and then SIGKILLs what is left.
signal_stop() {
  local sig="$1" i pid left deadline now
  shift
  local -a targets=()
  for i in "$@"; do
    if pid="$(pid_of "$i")"; then
      kill "-$sig" "$pid" 2>/dev/null || true
      targets+=("$i")
    else
      rm -f "$(node_dir "$i")/pid"
    fi
  done
  [ "${#targets[@]}" -gt 0 ] || return 0
  deadline=$(($(date +%s) + STOP_TIMEOUT_S))
  while :; do
    left=""
    for i in "${targets[@]}"; do
      if pid_of "$i" >/dev/null; then left="$left $i"; fi
    done
    [ -n "$left" ] || break
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
      for i in $left; do
        if pid="$(pid_of "$i")"; then
          warn "node $i (pid $pid) did not stop within ${STOP_TIMEOUT_S} s: sending SIGKILL"
          kill -KILL "$pid" 2>/dev/null || true
        fi
      done
      sleep 1
      break
    fi
    progress "stopping: node(s)$left still running, $((deadline - now)) s before SIGKILL"
    sleep 0.5
  done
  progress_end
  for i in "${targets[@]}"; do
    if pid_of "$i" >/dev/null; then
      warn "node $i is still running after SIGKILL"
    else
      rm -f "$(node_dir "$i")/pid"
    fi
  done
}

# Whether PID is a live process (a zombie, a node that exited but is not reaped yet, is not).
alive() {
  local stat
  stat="$(ps -p "$1" -o stat= 2>/dev/null)" || return 1
  [[ "$stat" != Z* ]]
}

# A progress line: rewritten in place on a terminal, printed at most every 5 s otherwise.
PROGRESS_LAST=0
progress() {
  if [ -t 1 ]; then
    printf '\rtestnet: %s\033[K' "$*"
  else
    local now
    now=$(date +%s)
    if [ $((now - PROGRESS_LAST)) -ge 5 ]; then
      PROGRESS_LAST=$now
      say "$*"
    fi
  fi
}
progress_end() { if [ -t 1 ]; then printf '\r\033[K'; fi; }

show_log_tail() {
  local i="$1" lines="${2:-20}"
  printf -- '----- last %s lines of node %s (%s): %s/node.log\n' "$lines" "$i" "$(role_of "$i")" "$(node_dir "$i")"
  tail -n "$lines" "$(node_dir "$i")/node.log" 2>/dev/null | sed 's/^/  | /' || true
}

# wait_ready TARGET I...: waits until every listed node answers chain_getInfo with a finalized
# height >= TARGET. TARGET "next" means one block more than the highest finalized height seen when
# they all first answer (a resumed chain must make progress). Fails fast when a node exits, and
# after TIMEOUT_S with the logs of the nodes that are not ready.
wait_ready() {
  local target="$1" i k fin answering ready max_fin start now deadline dead=""
  local -a heights=()
  shift
  local -a nodes=("$@")
  start=$(date +%s)
  deadline=$((start + TIMEOUT_S))
  declare -A fins=()
  while :; do
    answering=0
    ready=0
    max_fin=-1
    local -a urls=()
    for i in "${nodes[@]}"; do
      if ! alive "$(cat "$(node_dir "$i")/pid" 2>/dev/null || echo 0)"; then dead="$dead $i"; fi
      urls+=("$(rpc_url_of "$i")")
    done
    mapfile -t heights < <(finalized_heights "${urls[@]}")
    for k in "${!nodes[@]}"; do
      i="${nodes[k]}"
      fin="${heights[k]:--}"
      fins[$i]=""
      [ "$fin" != "-" ] || continue
      fins[$i]="$fin"
      answering=$((answering + 1))
      if [ "$fin" -gt "$max_fin" ]; then max_fin="$fin"; fi
    done
    if [ -n "$dead" ]; then
      progress_end
      for i in $dead; do
        printf 'testnet: error: node %s exited while starting (pid %s); its log:\n' "$i" "$(cat "$(node_dir "$i")/pid" 2>/dev/null)" >&2
        show_log_tail "$i" 30 >&2
      done
      printf 'testnet: the other nodes may still run: see scripts/testnet.sh status; stop them with scripts/testnet.sh stop\n' >&2
      return 1
    fi
    if [ "$target" = next ] && [ "$answering" -eq "${#nodes[@]}" ]; then
      target=$((max_fin + 1))
      [ "$target" -ge 1 ] || target=1
      progress_end
      say "all ${#nodes[@]} node(s) answer RPC; the chain was at finalized height $max_fin: waiting for height $target"
    fi
    if [ "$target" != next ]; then
      for i in "${nodes[@]}"; do
        if [ -n "${fins[$i]}" ] && [ "${fins[$i]}" -ge "$target" ]; then ready=$((ready + 1)); fi
      done
    fi
    now=$(date +%s)
    if [ "$ready" -eq "${#nodes[@]}" ]; then
      progress_end
      WAITED_S=$((now - start))
      READY_TARGET="$target"
      return 0
    fi
    if [ "$now" -ge "$deadline" ]; then
      progress_end
      printf 'testnet: error: after %s s, %s of %s node(s) are ready (RPC answers and finalized height >= %s); not ready:\n' \
        "$TIMEOUT_S" "$ready" "${#nodes[@]}" "$target" >&2
      for i in "${nodes[@]}"; do
        if [ -z "${fins[$i]}" ] || [ "$target" = next ] || [ "${fins[$i]}" -lt "$target" ]; then
          printf 'testnet:   node %s (%s): %s\n' "$i" "$(role_of "$i")" \
            "$([ -n "${fins[$i]}" ] && echo "finalized height ${fins[$i]}" || echo "RPC $(rpc_url_of "$i") does not answer")" >&2
          show_log_tail "$i" 20 >&2
        fi
      done
      printf 'testnet: the nodes are still running: inspect with scripts/testnet.sh status / logs I, stop with scripts/testnet.sh stop (TAKSA_TESTNET_TIMEOUT=%s sets the wait)\n' "$TIMEOUT_S" >&2
      return 1
    fi
    if [ "$target" = next ]; then
      progress "waiting for ${#nodes[@]} node(s): $answering answer RPC, $((deadline - now)) s left"
    else
      progress "waiting for ${#nodes[@]} node(s): $answering answer RPC, $ready at finalized height >= $target (highest ${max_fin/#-1/none}), $((deadline - now)) s left"
    fi
    sleep 1
  done
}

# ---------------------------------------------------------------------------------------------
# start

# start_args ARGS...: sets ARG_N and ARG_M (empty when not given) and ARG_RESET.
start_args() {
  ARG_N=""
  ARG_M=""
  ARG_RESET=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --full)
        [ $# -ge 2 ] || die "--full needs a number of full nodes, e.g. --full 1"
        ARG_M="$2"
        shift
        ;;
      --full=*) ARG_M="${1#--full=}" ;;
      --reset) ARG_RESET=1 ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        if ! [[ "$1" =~ ^[0-9]+$ ]] || [ -n "$ARG_N" ]; then
          die "start takes [N] [--full M] [--reset]; '$1' is not one of them"
        fi
        ARG_N="$1"
        ;;
    esac
    shift
  done
  [ -z "$ARG_M" ] || [[ "$ARG_M" =~ ^[0-9]+$ ]] || die "--full takes a number of full nodes, not '$ARG_M'"
}

# start_folder: refuses a running testnet or a folder that is not a testnet's, applies --reset,
# and sets RESUMED, VALIDATORS and FULL (a resumed testnet keeps its counts).
start_folder() {
  if [ ! -f "$ENV_FILE" ] && [ -d "$DIR" ] &&
    [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock | head -n 1)" ]; then
    die "$DIR is not empty and holds no testnet (no testnet.env); choose another TAKSA_TESTNET_DIR"
  fi
  take_lock
  if [ -f "$ENV_FILE" ]; then
    require_testnet
    local running
    running="$(running_nodes)"
    if [ -n "$running" ]; then
      die "a testnet is already running in $DIR (node(s) $running run). See it with scripts/testnet.sh status; stop it with scripts/testnet.sh stop"
    fi
    if [ "$ARG_RESET" -eq 1 ]; then
      say "--reset: deleting the testnet in $DIR (chain data, keys, logs)"
      local d
      for d in "$DIR"/node* "$DIR/wallet"; do
        if [ -e "$d" ]; then rm -rf -- "$d"; fi
      done
      rm -f -- "$ENV_FILE" "$DIR/genesis.json"
    fi
  fi
  RESUMED=0
  VALIDATORS="${ARG_N:-4}"
  FULL="${ARG_M:-0}"
  [ -f "$ENV_FILE" ] || return 0
  RESUMED=1
  local old_n old_m
  old_n="$(kv "$ENV_FILE" VALIDATORS)"
  old_m="$(kv "$ENV_FILE" FULL)"
  if { [ -n "$ARG_N" ] && [ "$ARG_N" != "$old_n" ]; } || { [ -n "$ARG_M" ] && [ "$ARG_M" != "$old_m" ]; }; then
    die "$DIR holds a testnet of $old_n validator(s) + $old_m full node(s); start it with those counts (or none), or add --reset to start a new one"
  fi
  VALIDATORS="$old_n"
  FULL="$old_m"
  if ! cmp -s "$GENESIS_SRC" "$DIR/genesis.json"; then
    warn "$GENESIS_SRC changed since this testnet was created; it keeps running its own copy $DIR/genesis.json (add --reset to use the new one)"
  fi
}

# start_binary: builds taksa (unless TAKSA_SKIP_BUILD=1) and sets BIN; TAKSA_RELEASE=1 builds
# and runs the release binary, as operators do (and as benchmarks must).
start_binary() {
  if [ "${TAKSA_RELEASE:-0}" = 1 ]; then
    # shellcheck source=scripts/setup.sh
    source "$ROOT/scripts/setup.sh"
    say "TAKSA_RELEASE=1: building the release binary into $CARGO_TARGET_DIR/release"
    taksa_release_build
    BIN="$CARGO_TARGET_DIR/release/taksa"
    return 0
  fi
  if [ "${TAKSA_SKIP_BUILD:-0}" = 1 ]; then
    # The same default as scripts/setup.sh, without its build checks.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/taksa/target}"
    say "TAKSA_SKIP_BUILD=1: not building; using $CARGO_TARGET_DIR/debug/taksa"
  else
    # shellcheck source=scripts/setup.sh
    source "$ROOT/scripts/setup.sh"
    say "building taksa (the whole workspace, as scripts/dev.sh does) into $CARGO_TARGET_DIR"
    # shellcheck disable=SC2119 # build with its defaults, not with our arguments
    taksa_build
  fi
  BIN="$CARGO_TARGET_DIR/debug/taksa"
  [ -x "$BIN" ] || die "no taksa binary at $BIN: run without TAKSA_SKIP_BUILD=1 to build it, or set CARGO_TARGET_DIR to the build folder"
}

# start_keys HRP: node folders, password files and validator keys (imported once, checked
# against the genesis).
start_keys() {
  local hrp="$1" i nd addr expect
  for ((i = 0; i < TOTAL; i++)); do
    nd="$(node_dir "$i")"
    mkdir -p "$nd/data"
    if [ "$i" -lt "$VALIDATORS" ]; then echo "validator-$i" >"$nd/role"; else echo full >"$nd/role"; fi
    [ -f "$nd/node.log" ] || : >"$nd/node.log"
    [ "$i" -lt "$VALIDATORS" ] || continue
    if [ ! -f "$nd/password" ]; then (umask 077 && printf '%s\n' "$TEST_PASSWORD" >"$nd/password"); fi
    chmod 600 "$nd/password"
    [ ! -f "$nd/keystore/validator-$i.json" ] || continue
    say "node $i: importing validator key $i (m/44'/7331'/$i'/1' of the public test mnemonic) into $nd/keystore"
    addr="$(printf '%s\n' "$MNEMONIC" | "$BIN" wallet import --name "validator-$i" --index "$i" --validator \
      --hrp "$hrp" --keystore "$nd/keystore" --password-file "$nd/password" | sed -n 's/^ *address: *//p')" ||
      die "importing validator key $i failed (see the message above)"
    expect="$(genesis_get "$GENESIS" "g['validators'][$i]['address']")"
    [ "$addr" = "$expect" ] ||
      die "validator key $i derives to '$addr' but the genesis lists $expect; is $GENESIS this testnet's genesis?"
    say "node $i: validator address $addr"
  done
}

# start_ports: keeps each node's recorded ports when they are still free, else takes the next
# free ones from the base ports; writes nodeI/ports.
start_ports() {
  local i nd p2p rpcp old
  PICKED=""
  for ((i = 0; i < TOTAL; i++)); do
    nd="$(node_dir "$i")"
    p2p=""
    rpcp=""
    if old="$(kv "$nd/ports" P2P_PORT 2>/dev/null)" && [[ " $PICKED " != *" $old "* ]] && port_free "$old"; then
      p2p="$old"
      PICKED="$PICKED $old"
    fi
    if old="$(kv "$nd/ports" RPC_PORT 2>/dev/null)" && [[ " $PICKED " != *" $old "* ]] && port_free "$old"; then
      rpcp="$old"
      PICKED="$PICKED $old"
    fi
    if [ -z "$p2p" ]; then
      pick_port $((P2P_BASE + i))
      p2p="$PORT"
    fi
    if [ -z "$rpcp" ]; then
      pick_port $((RPC_BASE + i))
      rpcp="$PORT"
    fi
    printf 'P2P_PORT=%s\nRPC_PORT=%s\n' "$p2p" "$rpcp" >"$nd/ports"
  done
}

# start_commands: writes each node's exact command line (nodeI/cmd, shell-quoted) and
# testnet.env. Everyone boots from node0; node0 from node1, so a restarted node0 finds the
# network again.
start_commands() {
  local i nd boot0 boot1=""
  boot0="$(p2p_addr_of 0)"
  if [ "$TOTAL" -gt 1 ]; then boot1="$(p2p_addr_of 1)"; fi
  for ((i = 0; i < TOTAL; i++)); do
    nd="$(node_dir "$i")"
    local -a c=("$BIN" node --genesis "$GENESIS" --data-dir "$nd/data")
    if [ "$i" -lt "$VALIDATORS" ]; then
      c+=(--validator-key "$nd/keystore/validator-$i.json" --password-file "$nd/password")
    fi
    c+=(--p2p-addr "$(p2p_addr_of "$i")")
    if [ "$i" -gt 0 ]; then
      c+=(--bootnode "$boot0")
    elif [ -n "$boot1" ]; then
      c+=(--bootnode "$boot1")
    fi
    c+=(--rpc-addr "127.0.0.1:$(kv "$nd/ports" RPC_PORT)")
    printf '%q ' "${c[@]}" >"$nd/cmd"
    printf '\n' >>"$nd/cmd"
  done
  printf 'VALIDATORS=%s\nFULL=%s\nBIN=%s\nCREATED=%s\n' "$VALIDATORS" "$FULL" "$BIN" \
    "$(kv "$ENV_FILE" CREATED 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)" >"$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
}

cmd_start() {
  start_args "$@"
  [ -f "$GENESIS_SRC" ] || die "no genesis at $GENESIS_SRC"
  start_folder
  local nvals quorum hrp chain_id i
  nvals="$(genesis_get "$GENESIS_SRC" 'len(g["validators"])')"
  hrp="$(genesis_get "$GENESIS_SRC" 'g["address_hrp"]')"
  chain_id="$(genesis_get "$GENESIS_SRC" 'g["chain_id"]')"
  quorum=$((nvals - (nvals - 1) / 3))
  [ "$VALIDATORS" -le "$nvals" ] ||
    die "the genesis has $nvals validators: N can be at most $nvals (add full nodes with --full M)"
  [ "$VALIDATORS" -ge "$quorum" ] ||
    die "$VALIDATORS validator(s) of $nvals cannot reach the quorum of $quorum votes: the chain would never finalize; use N >= $quorum"
  TOTAL=$((VALIDATORS + FULL))
  [ "$TOTAL" -le 64 ] || die "at most 64 nodes on one machine"
  start_binary

  GENESIS="$DIR/genesis.json"
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  [ -f "$GENESIS" ] || cp "$GENESIS_SRC" "$GENESIS"
  if [ "$RESUMED" -eq 1 ]; then
    say "resuming the testnet in $DIR ($VALIDATORS validator(s) + $FULL full node(s)) with its chain data (--reset starts over)"
  else
    say "creating a testnet in $DIR: $VALIDATORS validator(s) + $FULL full node(s), chain $chain_id"
  fi
  start_keys "$hrp"
  start_ports
  start_commands

  say "starting $TOTAL node(s) (logs at TAKSA_LOG=$LOG_FILTER)"
  local -a all=()
  for ((i = 0; i < TOTAL; i++)); do
    launch "$i"
    all+=("$i")
  done
  local target=1
  if [ "$RESUMED" -eq 1 ]; then target=next; fi
  wait_ready "$target" "${all[@]}" || exit 1
  say "ready after ${WAITED_S} s: every node answers RPC and has finalized height >= $READY_TARGET"
  print_summary
}

print_summary() {
  local i nd
  echo
  echo "Taksa testnet in $DIR ($VALIDATORS validator(s) + $FULL full node(s))"
  printf '  %-4s %-12s %-8s %-23s %-16s %s\n' node role pid "RPC URL" "p2p address" log
  for ((i = 0; i < TOTAL; i++)); do
    nd="$(node_dir "$i")"
    printf '  %-4s %-12s %-8s %-23s %-16s %s\n' "$i" "$(role_of "$i")" "$(pid_of "$i" || echo -)" \
      "$(rpc_url_of "$i")" "$(p2p_addr_of "$i")" "$nd/node.log"
  done
  cat <<EOF

Use it:
  export PATH="$(dirname "$BIN"):\$PATH"
  taksa wallet --rpc $(rpc_url_of 0) balance <address>       # any node's RPC URL works
  scripts/testnet.sh demo       # import funded test accounts 0 and 1 (into $DIR/wallet) and send through several nodes
  scripts/testnet.sh status     # heights, head, peers and view of every node
  scripts/testnet.sh kill 1 / restart 1 / wipe 1 / logs 1
  scripts/testnet.sh stop
Funded accounts: m/44'/7331'/i'/0' (i = 0..9) of the PUBLIC test mnemonic "$MNEMONIC";
the keystore password in the "password" files is a fixed public test password. Never use them for real money.
EOF
}

# ---------------------------------------------------------------------------------------------
# status

cmd_status() {
  require_testnet
  local i pid state info head fin hash peers view
  echo "Taksa testnet in $DIR: $VALIDATORS validator(s) + $FULL full node(s)"
  printf '%-4s %-12s %-16s %7s %7s %-14s %5s %6s  %s\n' node role state height final head peers view "RPC URL"
  local stopped=""
  for ((i = 0; i < TOTAL; i++)); do
    head="-"
    fin="-"
    hash="-"
    peers="-"
    view="-"
    if pid="$(pid_of "$i")"; then
      state="running $pid"
      if info="$(node_state "$(rpc_url_of "$i")")"; then
        IFS=$'\t' read -r head fin hash peers view <<<"$info"
        hash="${hash:0:12}.."
      else
        state="running $pid (RPC silent)"
      fi
    else
      state="stopped"
      stopped="$stopped $i"
    fi
    printf '%-4s %-12s %-16s %7s %7s %-14s %5s %6s  %s\n' "$i" "$(role_of "$i")" "$state" "$head" "$fin" "$hash" \
      "$peers" "$view" "$(rpc_url_of "$i")"
  done
  if [ -n "$stopped" ]; then
    echo "stopped:$stopped (start one with scripts/testnet.sh restart I; all with scripts/testnet.sh start)"
  fi
}

# ---------------------------------------------------------------------------------------------
# stop, kill, restart, wipe, logs

cmd_stop() {
  require_testnet
  take_lock
  local running
  running="$(running_nodes)"
  if [ -z "$running" ]; then
    say "no node of the testnet in $DIR is running; nothing to stop"
    return 0
  fi
  say "stopping node(s) $running with SIGTERM (SIGKILL after ${STOP_TIMEOUT_S} s)"
  local i
  # shellcheck disable=SC2086
  signal_stop TERM ${running}
  for ((i = 0; i < TOTAL; i++)); do rm -f "$(node_dir "$i")/pid"; done
  say "stopped; the chain data stays in $DIR (scripts/testnet.sh start resumes it, start --reset starts over)"
}

cmd_kill() {
  require_testnet
  check_index "${1:-}"
  take_lock
  local i="$1" pid
  if ! pid="$(pid_of "$i")"; then
    say "node $i ($(role_of "$i")) is not running; nothing to kill"
    return 0
  fi
  say "killing node $i ($(role_of "$i"), pid $pid) with SIGKILL, as a crash would"
  signal_stop KILL "$i"
  say "node $i is down; the others keep going (scripts/testnet.sh status); bring it back with scripts/testnet.sh restart $i"
}

cmd_restart() {
  require_testnet
  check_index "${1:-}"
  take_lock
  local i="$1" pid j f target=0 p
  [ -f "$(node_dir "$i")/cmd" ] || die "node $i has no recorded command line; run scripts/testnet.sh start"
  if pid="$(pid_of "$i")"; then
    say "node $i ($(role_of "$i"), pid $pid) is running: stopping it first (SIGTERM)"
    signal_stop TERM "$i"
  fi
  for p in "$(kv "$(node_dir "$i")/ports" P2P_PORT)" "$(kv "$(node_dir "$i")/ports" RPC_PORT)"; do
    port_free "$p" || die "port $p of node $i is taken by another program; stop it, or stop the testnet and run start again (it picks free ports)"
  done
  # The node has caught up when it reaches the network's finalized height of now.
  for ((j = 0; j < TOTAL; j++)); do
    [ "$j" -ne "$i" ] || continue
    pid_of "$j" >/dev/null || continue
    if f="$(finalized_height "$(rpc_url_of "$j")")" && [ "$f" -gt "$target" ]; then target="$f"; fi
  done
  [ "$target" -ge 1 ] || target=1
  say "restarting node $i with its recorded command line ($(node_dir "$i")/cmd)"
  launch "$i"
  say "waiting until node $i answers RPC and reaches the network's finalized height $target"
  WAITED_S=0
  wait_ready "$target" "$i" || exit 1
  local info
  info="$(chain_info "$(rpc_url_of "$i")")"
  say "node $i is back after ${WAITED_S} s at finalized height $(printf '%s' "$info" | cut -f2) (head $(printf '%s' "$info" | cut -f3))"
}

cmd_wipe() {
  require_testnet
  check_index "${1:-}"
  take_lock
  local i="$1" pid nd
  nd="$(node_dir "$i")"
  if pid="$(pid_of "$i")"; then
    say "stopping node $i ($(role_of "$i"), pid $pid) before wiping it"
    signal_stop TERM "$i"
  fi
  if [ "$i" -lt "$VALIDATORS" ]; then
    warn "node $i is a validator: its data holds its record of the votes it signed. A wiped validator can sign twice in a view it already voted in; acceptable on this throw-away testnet, never on a real network"
  fi
  rm -rf -- "$nd/data"
  mkdir -p "$nd/data"
  say "deleted node $i's chain data ($nd/data; keys, password and ports kept)"
  say "start it again with scripts/testnet.sh restart $i: it syncs from genesis from its peers"
}

cmd_logs() {
  require_testnet
  check_index "${1:-}"
  local i="$1" follow=1
  [ "${2:-}" = "--no-follow" ] && follow=0
  [ -z "${2:-}" ] || [ "$follow" -eq 0 ] || die "logs takes I [--no-follow], not '$2'"
  local log
  log="$(node_dir "$i")/node.log"
  [ -f "$log" ] || die "node $i has no log yet ($log)"
  if [ "$follow" -eq 1 ]; then
    say "following $log (node $i, $(role_of "$i")); Ctrl-C to stop"
    exec tail -n 50 -f "$log"
  fi
  tail -n 50 "$log"
}

# ---------------------------------------------------------------------------------------------
# demo

# wait_height URL HEIGHT SECONDS: until the node at URL has finalized HEIGHT.
wait_height() {
  local url="$1" h="$2" deadline f
  deadline=$(($(date +%s) + $3))
  while :; do
    if f="$(finalized_height "$url")" && [ "$f" -ge "$h" ]; then return 0; fi
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

# demo_accounts: imports funded accounts 0 and 1 as acct0 and acct1 into $DIR/wallet; sets
# DEMO_KS, DEMO_PW, ADDR0 and ADDR1.
demo_accounts() {
  local i hrp
  hrp="$(genesis_get "$GENESIS" 'g["address_hrp"]')"
  mkdir -p "$DIR/wallet"
  chmod 700 "$DIR/wallet"
  DEMO_KS="$DIR/wallet/keystore"
  DEMO_PW="$DIR/wallet/password"
  if [ ! -f "$DEMO_PW" ]; then (umask 077 && printf '%s\n' "$TEST_PASSWORD" >"$DEMO_PW"); fi
  for i in 0 1; do
    [ ! -f "$DEMO_KS/acct$i.json" ] || continue
    say "importing funded test account $i (m/44'/7331'/$i'/0' of the public test mnemonic) as acct$i into $DEMO_KS"
    printf '%s\n' "$MNEMONIC" | "$BIN" wallet import --name "acct$i" --index "$i" --hrp "$hrp" \
      --keystore "$DEMO_KS" --password-file "$DEMO_PW" >/dev/null || die "importing account $i failed (see above)"
  done
  ADDR0="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$DEMO_KS/acct0.json")"
  ADDR1="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$DEMO_KS/acct1.json")"
  say "sender acct0 = $ADDR0"
  say "recipient acct1 = $ADDR1"
}

# demo_send I...: one transfer acct0 -> acct1 through each listed node's RPC, each waited for
# until final; sets LAST_HEIGHT to the height of the last one.
demo_send() {
  local i url out h k=0
  LAST_HEIGHT=0
  for i in "$@"; do
    url="$(rpc_url_of "$i")"
    k=$((k + 1))
    # The node must know the previous transfer, or it would hand out a used nonce.
    wait_height "$url" "$LAST_HEIGHT" 30 ||
      die "node $i did not reach finalized height $LAST_HEIGHT within 30 s (scripts/testnet.sh status)"
    say "transfer $k/$#: $DEMO_AMOUNT TKS acct0 -> acct1 through node $i ($(role_of "$i"), $url)"
    out="$("$BIN" wallet --rpc "$url" --keystore "$DEMO_KS" --password-file "$DEMO_PW" send --from acct0 \
      --to "$ADDR1" --amount "$DEMO_AMOUNT" --memo "testnet demo $k via node $i")" || {
      printf '%s\n' "$out"
      die "transfer $k through node $i failed (above); see scripts/testnet.sh status and logs $i"
    }
    h="$(printf '%s\n' "$out" | sed -n 's/^finalized at height \([0-9]*\).*/\1/p')"
    [ -n "$h" ] || die "could not read the height from the wallet's output: $out"
    say "  $(printf '%s\n' "$out" | sed -n 's/^submitted /transfer /p'): $(printf '%s\n' "$out" | grep '^finalized at')"
    LAST_HEIGHT="$h"
  done
}

# balance_of URL ADDRESS: the committed balance in base units, or "?".
balance_of() {
  rpc "$1" account_getBalance "[\"$2\"]" | jget . 2>/dev/null || echo '?'
}

cmd_demo() {
  require_testnet
  take_lock
  [ -x "$BIN" ] || die "the binary that started this testnet ($BIN) is gone; run scripts/testnet.sh start again"
  local running i
  running="$(running_nodes)"
  [ -n "$running" ] || die "no node is running in $DIR: start the testnet first (scripts/testnet.sh start)"
  demo_accounts

  # One transfer through each running node (at most 5), and at least 2 transfers.
  local -a via=()
  for i in $running; do
    if [ "${#via[@]}" -lt 5 ]; then via+=("$i"); fi
  done
  if [ "${#via[@]}" -lt 2 ]; then via+=("${via[0]}"); fi
  local first before1 before0 fee want1 want0
  first="$(rpc_url_of "${via[0]}")"
  before1="$(balance_of "$first" "$ADDR1")"
  before0="$(balance_of "$first" "$ADDR0")"
  if [ "$before1" = "?" ] || [ "$before0" = "?" ]; then die "node ${via[0]} does not answer account_getBalance"; fi
  say "before: acct0 holds $before0, acct1 $before1 base units (on node ${via[0]})"
  demo_send "${via[@]}"
  fee="$(genesis_get "$GENESIS" 'g["fee_floor"]')"
  want1="$("$PY" -c 'import sys; a = [int(x) for x in sys.argv[1:]]; print(a[0] + a[1] * a[2])' \
    "$before1" "${#via[@]}" "$DEMO_AMOUNT_BASE")"
  want0="$("$PY" -c 'import sys; a = [int(x) for x in sys.argv[1:]]; print(a[0] - a[1] * (a[2] + a[3]))' \
    "$before0" "${#via[@]}" "$DEMO_AMOUNT_BASE" "$fee")"
  # shellcheck disable=SC2086 # a list of node indices
  demo_check "$LAST_HEIGHT" "$want0" "$want1" $running
}

# demo_check HEIGHT WANT0 WANT1 I...: prints each node's block hash at HEIGHT and both balances;
# dies unless every node agrees and the balances are the expected ones.
demo_check() {
  local height="$1" want0="$2" want1="$3" i url ok=1
  shift 3
  say "checking that every running node has the same state at height $height"
  local -a bal1=() bal0=() hashes=() fins=()
  for i in "$@"; do
    url="$(rpc_url_of "$i")"
    wait_height "$url" "$height" 30 || warn "node $i has not reached height $height after 30 s"
    fins[i]="$(finalized_height "$url" || echo '?')"
    bal1[i]="$(balance_of "$url" "$ADDR1")"
    bal0[i]="$(balance_of "$url" "$ADDR0")"
    hashes[i]="$(rpc "$url" chain_getBlock "[$height]" | jget hash 2>/dev/null || echo '?')"
  done
  echo
  printf '%-4s %-12s %9s  %-20s %-22s %s\n' node role finalized "block $height hash" "acct1 balance" "acct0 balance"
  for i in "$@"; do
    printf '%-4s %-12s %9s  %-20s %-22s %s\n' "$i" "$(role_of "$i")" "${fins[i]}" "${hashes[i]:0:18}.." \
      "${bal1[i]}" "${bal0[i]}"
  done
  echo
  for i in "$@"; do
    if [ "${bal1[i]}" != "$want1" ] || [ "${bal0[i]}" != "$want0" ] || [ "${hashes[i]}" != "${hashes[$1]}" ] ||
      [ "${hashes[i]}" = "?" ]; then
      ok=0
      printf 'testnet: node %s disagrees: want acct1 %s, acct0 %s (fee floor per transfer) and block %s = %s\n' \
        "$i" "$want1" "$want0" "$height" "${hashes[$1]}" >&2
    fi
  done
  [ "$ok" -eq 1 ] || die "the nodes do not agree (table above); inspect with scripts/testnet.sh status and logs I"
  say "all $# running node(s) agree: block $height is ${hashes[$1]}; acct1 holds ${bal1[$1]} base units, acct0 ${bal0[$1]}"
}

# ---------------------------------------------------------------------------------------------

main() {
  local cmd="${1:-help}"
  [ $# -eq 0 ] || shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    wipe) cmd_wipe "$@" ;;
    logs) cmd_logs "$@" ;;
    demo) cmd_demo ;;
    help | -h | --help) usage ;;
    *)
      usage >&2
      die "unknown command '$cmd' (see the usage above)"
      ;;
  esac
}

main "$@"
