#!/usr/bin/env bash
# Hub scale: `barge edge sim --count N` runs N hollow agents in one process (real protocol and
# TLS, fake engine) against a hub and etcd on this machine; one Deployment change must reach
# every edge. Goal on the 2-core machine: N=10000 connected, p99 <= 2 s for the change; hub
# RSS and CPU per 1 000 edges. Prints a Markdown table on stdout, progress on stderr.
#
#   sudo bench/edge_sim.sh                  # COUNT=10000, release build (KEEP=1: keep the logs)
#   COUNT=1000 BARGE=target/debug/barge bench/edge_sim.sh
#
#   COUNT=10000 BARGE_HUB=target/release/barge-hub BARGE_EDGE=target/release/barge-edge \
#     BARGE_FLEET=target/release/barge-fleet bench/edge_sim.sh   # the three release binaries only
#
# `barge edge sim --count N --hub URL --token T --dir D` joins every hollow agent with one
# reusable token (`fleet token create --reusable`), keeps each one's cache in memory and
# raises its own open-files limit (as root up to /proc/sys/fs/nr_open; so does the hub).
# Measured: nodes Ready in `fleet get nodes` (polled), the hub's RSS and CPU, and for one
# DaemonSet change: when each hollow agent applied its pod (`--report`: a line per agent
# with the time in ms; p50/p99/max from these, not sampled) and when all were Running as
# seen from the hub (`fleet get pods`, polled every second).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "edge_sim: $*" >&2; }
die() { log "$*"; exit 1; }
COUNT=${COUNT:-10000}
. "$repo/bench/lib.sh"
. "$repo/bench/edge_lib.sh"

if [[ -z ${BARGE:-} && -z ${BARGE_EDGE:-} ]]; then
    log "building release binaries (hub, agent, fleet CLI)"
    (cd "$repo" && cargo build --release -q -p barge-hub -p barge-agent -p barge-fleet --bins)
    BARGE_HUB=$repo/target/release/barge-hub
    BARGE_EDGE=$repo/target/release/barge-edge
    BARGE_FLEET=$repo/target/release/barge-fleet
fi
BARGE=${BARGE:-barge}
read -r -a SIM <<<"${BARGE_EDGE:-$BARGE edge}"
sim() { "${SIM[@]}" sim "$@"; }
sim --help 2>&1 | grep -q -- --report || die "this build's 'edge sim' has no --report"
# The hub and the sim raise their own open-files limits; raise the shell's too (for older
# builds), as far as root may.
ulimit -Hn "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || log "could not raise the open-file limit"
RAMP_MS=${RAMP_MS:-0}

work=$(mktemp -d /tmp/edgesim.XXXXXX)
trap 'edge_cleanup; if [[ -n ${KEEP:-} ]]; then log "kept $work"; else rm -rf "$work"; fi' EXIT
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
"${SIM[@]}" sim --count "$COUNT" --hub "$HUB_EDGE" --token "$token" --dir "$work/sim" \
    --ramp-ms "$RAMP_MS" --report "$work/report" >"$work/sim.log" 2>&1 &
SIM_PID=$!
# Readiness is polled through the fleet API every READY_POLL_S seconds (default 5): at
# 10 000 edges one `fleet get nodes -o json` reads every node's record and costs the hub
# and etcd a few hundred ms, which a poll every second would add to the connect figures.
READY_POLL_S=${READY_POLL_S:-5}
ready=0
for _ in $(seq $((900 / READY_POLL_S))); do
    ready=$(count_ready)
    ((ready >= COUNT)) && break
    kill -0 "$SIM_PID" 2>/dev/null || die "barge edge sim exited: $(tail -5 "$work/sim.log")"
    sleep "$READY_POLL_S"
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
sleep 5 # let the connect burst's statuses settle
# Steady state: every edge connected, nothing changing (heartbeats, session ticks).
IDLE_S=${IDLE_S:-10}
ci0=$(cpu_ticks "$HUB_PID")
sleep "$IDLE_S"
c1b=$(cpu_ticks "$HUB_PID")
s1=$(cpu_ticks "$SIM_PID")
e1=$(cpu_ticks "$ETCD_PID")
log "applying a change that concerns every edge"
t2=$(now_ns)
fleet apply -f "$work/ds.yaml" >/dev/null
seen() { grep -c ' [^ ]*/everywhere-' "$work/report" || true; }
# Polled 4 times a second: the figures come from the report's own timestamps, and the
# poll (a grep and a shell) shares the 2 cores with what is measured.
for _ in $(seq 1200); do
    (($(seen) >= COUNT)) && break
    sleep 0.25
done
n=$(seen)
((n >= COUNT)) || die "the change reached $n of $COUNT edges in 5 min"
c2=$(cpu_ticks "$HUB_PID")
s2=$(cpu_ticks "$SIM_PID")
e2=$(cpu_ticks "$ETCD_PID")
read -r a50 a99 amax < <(python3 - "$work/report" "$t2" <<'PY'
import sys
t0 = int(sys.argv[2]) // 1_000_000
ms = sorted(int(l.split()[0]) - t0 for l in open(sys.argv[1]) if "/everywhere-" in l)
pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(pick(0.50), pick(0.99), ms[-1])
# When they arrived, per 250 ms (on stderr, to see the shape of the tail).
hist = {}
for m in ms:
    hist[m // 250] = hist.get(m // 250, 0) + 1
print("edge_sim: applied per 250 ms: " + " ".join(f"{b * 250}:{n}" for b, n in sorted(hist.items())), file=sys.stderr)
PY
)
running=""
for _ in $(seq 300); do
    r=$(count_running)
    ((r >= COUNT)) && { running=$(( ($(now_ns) - t2) / 1000000 )); break; }
    sleep 1
done
rss_after=$(rss_kib "$HUB_PID")
sim_rss=$(rss_kib "$SIM_PID")
per_k=$((COUNT / 1000 > 0 ? COUNT / 1000 : 1))

echo "### Hub scale: $COUNT simulated edges"
echo
bench_machine
echo
echo "| Measure | Value |"
echo "|---|---:|"
echo "| edges Ready (polled every $READY_POLL_S s) | $COUNT in $(( (t1 - t0) / 1000000 )) ms |"
echo "| hub RSS, all connected | $((rss_connected / 1024)) MiB ($((rss_connected / per_k / 1024)) MiB per 1 000) |"
echo "| hub CPU while they connected | $(( (c1 - c0) * 1000 / hz )) ms ($(( (c1 - c0) * 1000 / hz / per_k )) ms per 1 000) |"
idle_pct=$(( (c1b - ci0) * 100000 / hz / IDLE_S ))  # percent of a core, times 1000
printf '| hub CPU, all connected and idle (%s s) | %d.%d %% of a core (%d.%02d %% per 1 000) |\n' \
    "$IDLE_S" $((idle_pct / 1000)) $((idle_pct % 1000 / 100)) \
    $((idle_pct / per_k / 1000)) $((idle_pct / per_k % 1000 / 10))
echo "| DaemonSet change -> applied by each edge: p50 / p99 / max | $a50 / $a99 / $amax ms |"
echo "| hub / sim / etcd CPU until every edge applied it | $(( (c2 - c1b) * 1000 / hz )) / $(( (s2 - s1) * 1000 / hz )) / $(( (e2 - e1) * 1000 / hz )) ms |"
echo "| change -> all Running in fleet get pods (polled every second) | ${running:-not within 5 min} ms |"
echo "| hub RSS after the change | $((rss_after / 1024)) MiB |"
echo "| sim process RSS ($COUNT hollow agents) | $((sim_rss / 1024)) MiB |"
echo
echo "Goal: 10 000 edges, p99 <= 2000 ms for the change to reach them."
