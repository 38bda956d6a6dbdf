#!/usr/bin/env bash
# Starts (or stops) a local etcd cluster on 127.0.0.1 for the etcd suites.
#
#   tests/etcd/cluster.sh start [members] [state-dir]   # default 3 members
#   tests/etcd/cluster.sh stop [state-dir]
#
# Member i listens for clients on port 23790+2i-1 (23791, 23793, 23795...)
# and for peers on the next port. Data lives in temporary directories under
# the state directory (default /tmp/core-store-etcd), which also holds
# `member-<i>.pid` (the PID of member i), `endpoints` (comma-separated client URLs) and
# one log per member. `stop` kills the members' current PIDs only.
set -euo pipefail

cmd=${1:-start}
if [[ $cmd == start ]]; then
  members=${2:-3}
  state=${3:-${ETCD_STATE_DIR:-/tmp/core-store-etcd}}
else
  state=${2:-${ETCD_STATE_DIR:-/tmp/core-store-etcd}}
fi
base=${ETCD_BASE_PORT:-23790}

# Each member-i.pid holds the PID of member i's current process (member.sh
# rewrites it on a restart); only those are killed.
stop() {
  local file pid
  for file in "$state"/member-*.pid; do
    [[ -f $file ]] || continue
    pid=$(<"$file")
    [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
  done
}

client_port() { echo $((base + 2 * $1 - 1)); }
peer_port() { echo $((base + 2 * $1)); }

start() {
  stop
  rm -rf "$state"
  mkdir -p "$state"
  local cluster="" endpoints=""
  for ((i = 1; i <= members; i++)); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$(peer_port "$i")"
    endpoints+="${endpoints:+,}http://127.0.0.1:$(client_port "$i")"
  done
  echo "$endpoints" >"$state/endpoints"
  echo "$cluster" >"$state/cluster"
  for ((i = 1; i <= members; i++)); do
    "$(dirname "$0")/member.sh" "$state" "$i" new >/dev/null
  done
  for _ in $(seq 1 100); do
    if ETCDCTL_API=3 etcdctl --endpoints="$endpoints" endpoint health \
      >/dev/null 2>&1; then
      echo "etcd cluster of $members members healthy at $endpoints"
      return 0
    fi
    sleep 0.2
  done
  echo "etcd cluster did not become healthy; logs in $state" >&2
  tail -n 20 "$state"/m*.log >&2 || true
  stop
  return 1
}

case $cmd in
start) start ;;
stop) stop ;;
*)
  echo "usage: $0 start [members] [state-dir] | stop [state-dir]" >&2
  exit 2
  ;;
esac
