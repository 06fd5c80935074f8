#!/usr/bin/env bash
# Hub scale: `barge edge sim --count N` runs N hollow agents in one process (real protocol and
# TLS, fake engine) against a hub and etcd on this machine; one Deployment change must reach
# every edge. Goal on the 2-core machine: N=10000 connected, p99 <= 2 s for the change; hub
# RSS and CPU per 1 000 edges. Prints a Markdown table on stdout, progress on stderr.
#
#   sudo bench/edge_sim.sh                  # COUNT=10000, release build
#   COUNT=1000 BARGE=target/debug/barge bench/edge_sim.sh
#
# `barge edge sim --count N --hub URL --token T --dir D` joins every hollow agent with one
# reusable token (`fleet token create --reusable`). What is measured is seen from the hub: nodes Ready in `fleet get nodes`, pods Running in `fleet get pods` after one
# DaemonSet change, sampled every second (so the latencies are +-1 s).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "edge_sim: $*" >&2; }
die() { log "$*"; exit 1; }
COUNT=${COUNT:-10000}
. "$repo/bench/lib.sh"
. "$repo/bench/edge_lib.sh"

if [[ -z ${BARGE:-} ]]; then
    log "building release binaries"
    (cd "$repo" && cargo build --release -q -p barge -p barge-hub -p barge-agent -p barge-fleet --bins)
    BARGE=$repo/target/release/barge
fi
"$BARGE" edge sim --help >/dev/null 2>&1 || die "this build has no 'barge edge sim' (the agent's simulator)"
# Each hollow agent holds a socket and its SQLite files (database, WAL, shared memory).
ulimit -n $((COUNT * 8 + 1024)) 2>/dev/null || log "could not raise the open-file limit"

work=$(mktemp -d /tmp/edgesim.XXXXXX)
trap 'edge_cleanup; rm -rf "$work"' EXIT
edge_etcd
edge_hub
token=$(fleet token create --ttl 1h --reusable)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

count_ready() { fleet get nodes -o json | python3 -c 'import json,sys; print(sum(1 for n in json.load(sys.stdin)["items"] for c in n.get("status",{}).get("conditions",[]) if c["type"]=="Ready" and c["status"]=="True"))'; }
count_running() { fleet get pods -o json | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if p["metadata"]["name"].startswith("everywhere-") and p.get("status",{}).get("phase")=="Running"))'; }

log "starting $COUNT simulated edges"
t0=$(now_ns)
c0=$(cpu_ticks "$HUB_PID")
"$BARGE" edge sim --count "$COUNT" --hub "$HUB_EDGE" --token "$token" --dir "$work/sim" \
    >"$work/sim.log" 2>&1 &
SIM_PID=$!
ready=0
for _ in $(seq 900); do
    ready=$(count_ready)
    ((ready >= COUNT)) && break
    kill -0 "$SIM_PID" 2>/dev/null || die "barge edge sim exited: $(tail -5 "$work/sim.log")"
    sleep 1
done
((ready >= COUNT)) || die "only $ready of $COUNT edges Ready after 15 min"
t1=$(now_ns)
c1=$(cpu_ticks "$HUB_PID")
rss_connected=$(rss_kib "$HUB_PID")

cat >"$work/ds.yaml" <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      containers:
      - {name: main, image: busybox, command: [sleep, "1000000"]}
YAML
log "applying a change that concerns every edge"
t2=$(now_ns)
fleet apply -f "$work/ds.yaml" >/dev/null
p50="" p99="" all=""
for _ in $(seq 300); do
    n=$(count_running)
    ms=$(( ($(now_ns) - t2) / 1000000 ))
    [[ -z $p50 ]] && ((n * 2 >= COUNT)) && p50=$ms
    [[ -z $p99 ]] && ((n * 100 >= COUNT * 99)) && p99=$ms
    ((n >= COUNT)) && { all=$ms; break; }
    sleep 1
done
[[ -n $all ]] || die "the change did not reach every edge in 5 min ($n of $COUNT)"
c2=$(cpu_ticks "$HUB_PID")
per_k=$((COUNT / 1000 > 0 ? COUNT / 1000 : 1))

echo "### Hub scale: $COUNT simulated edges"
echo
bench_machine
echo
echo "| Measure | Value |"
echo "|---|---:|"
echo "| edges Ready | $COUNT in $(( (t1 - t0) / 1000000 )) ms |"
echo "| hub RSS, all connected | $((rss_connected / 1024)) MiB ($((rss_connected / per_k / 1024)) MiB per 1 000) |"
echo "| hub CPU while they connected | $(( (c1 - c0) * 1000 / hz )) ms |"
echo "| change -> pods Running: 50% / 99% / all | $p50 / $p99 / $all ms |"
echo "| hub CPU for the change | $(( (c2 - c1) * 1000 / hz )) ms |"
echo
echo "Goal: 10 000 edges, p99 <= 2000 ms (sampled every second from the hub's side)."
