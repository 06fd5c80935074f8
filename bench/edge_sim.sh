#!/usr/bin/env bash
# Hub scale: `barge edge sim --count N` runs N hollow agents in one process (real protocol and
# TLS, fake engine) against a hub and etcd on this machine; one Deployment change must reach
# every edge. Goal on the 2-core machine: N=10000 connected, p99 <= 2 s for the change; hub
# RSS and CPU per 1 000 edges. Prints a Markdown table on stdout, progress on stderr.
#
#   sudo bench/edge_sim.sh                  # COUNT=10000, release build
#   COUNT=1000 BARGE=target/debug/barge bench/edge_sim.sh
#
# SKELETON: the report expects `barge edge sim` (the agent's helper) to take
# `--count N HUB_URL --token T` and to print one JSON object per line on stdout:
# `{"event":"connected","count":N}` once all are connected, then for each applied change
# `{"event":"synced","revision":R,"p50_ms":..,"p99_ms":..,"max_ms":..}`. Adjust here when the
# helper's interface is final.
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
# One file per connection, on both sides.
ulimit -n $((COUNT * 2 + 1024)) 2>/dev/null || log "could not raise the open-file limit"

work=$(mktemp -d /tmp/edgesim.XXXXXX)
trap 'edge_cleanup; rm -rf "$work"' EXIT
edge_etcd
edge_hub
token=$(fleet token create --ttl 1h)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

log "starting $COUNT simulated edges"
t0=$(now_ns)
c0=$(cpu_ticks "$HUB_PID")
mkfifo "$work/sim.out"
"$BARGE" edge sim --count "$COUNT" "$HUB_EDGE" --token "$token" >"$work/sim.out" 2>"$work/sim.log" &
SIM_PID=$!
exec 3<"$work/sim.out"
connected=""
while read -r -t 600 line <&3; do
    if [[ $line == *'"connected"'* ]]; then connected=$line; break; fi
done
[[ -n $connected ]] || die "the edges did not all connect in 10 min: $(tail -5 "$work/sim.log")"
t1=$(now_ns)
c1=$(cpu_ticks "$HUB_PID")
rss_connected=$(rss_kib "$HUB_PID")

cat >"$work/deploy.yaml" <<YAML
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
fleet apply -f "$work/deploy.yaml" >/dev/null
synced=""
while read -r -t 300 line <&3; do
    if [[ $line == *'"synced"'* ]]; then synced=$line; break; fi
done
[[ -n $synced ]] || die "the change did not reach every edge in 5 min"
c2=$(cpu_ticks "$HUB_PID")
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], '?'))" "$synced" "$1"; }

echo "### Hub scale: $COUNT simulated edges"
echo
bench_machine
echo
echo "| Measure | Value |"
echo "|---|---:|"
echo "| edges connected | $COUNT in $(( (t1 - t0) / 1000000 )) ms |"
echo "| hub RSS, all connected | $((rss_connected / 1024)) MiB ($((rss_connected / (COUNT / 1000 > 0 ? COUNT / 1000 : 1) / 1024)) MiB per 1 000) |"
echo "| hub CPU while they connected | $(( (c1 - c0) * 1000 / hz )) ms |"
echo "| change -> every edge: p50 / p99 / max | $(field p50_ms) / $(field p99_ms) / $(field max_ms) ms |"
echo "| hub CPU for the change | $(( (c2 - c1) * 1000 / hz )) ms |"
echo
echo "Goal: 10 000 edges, p99 <= 2000 ms."
