#!/usr/bin/env bash
# Starts member i of the cluster described in a state directory written by
# cluster.sh, in the background, and writes its PID to `member-<i>.pid`. With `new`
# it bootstraps a new cluster; with `existing` it rejoins with its data.
#
#   tests/etcd/member.sh <state-dir> <i> new|existing
#
# ETCD_EXTRA_FLAGS adds flags (word-split), such as "--auth-token-ttl 1".
set -euo pipefail
state=$1
i=$2
mode=${3:-existing}
base=${ETCD_BASE_PORT:-23790}
client=$((base + 2 * i - 1))
peer=$((base + 2 * i))
etcd --name "m$i" --data-dir "$state/m$i.data" \
  --listen-client-urls "http://127.0.0.1:$client" \
  --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "$(cat "$state/cluster")" \
  --initial-cluster-token core-store-test \
  --initial-cluster-state "$mode" \
  --heartbeat-interval 50 --election-timeout 500 \
  ${ETCD_EXTRA_FLAGS:-} \
  >>"$state/m$i.log" 2>&1 &
echo "$!" >"$state/member-$i.pid"
