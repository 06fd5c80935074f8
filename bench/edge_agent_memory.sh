#!/usr/bin/env bash
# Idle memory of the edge agent (barge-edge: agent + engine in one process) on a device
# running 5 pods, against a hub and etcd on this machine. Goal: <= 15 MB RSS (KubeEdge's
# edgecore ~70 MB, k3s agent ~275 MB). Prints a Markdown table on stdout, progress on stderr.
#
#   sudo bench/edge_agent_memory.sh                    # builds release binaries
#   BARGE=target/debug/barge sudo bench/edge_agent_memory.sh   # reuse a build (debug: not the figure)
#   PODS=10 IDLE=30 sudo bench/edge_agent_memory.sh
#   # only the agent in release (barge edge honours BARGE_EDGE; the agent BARGE_SHIM/BARGE_EXIT):
#   BARGE=target/debug/barge BARGE_EDGE=target/release/barge-edge \
#     BARGE_SHIM=target/debug/barge-shim BARGE_EXIT=target/debug/barge-exit bench/edge_agent_memory.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "edge_agent_memory: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (the agent runs containers)"
PODS=${PODS:-5}
IDLE=${IDLE:-20}
. "$repo/bench/lib.sh"
. "$repo/bench/edge_lib.sh"

if [[ -z ${BARGE:-} ]]; then
    log "building release binaries"
    (cd "$repo" && cargo build --release -q -p barge -p barge-shim -p barge-engine -p barge-hub \
        -p barge-agent -p barge-fleet --bins)
    BARGE=$repo/target/release/barge
fi
d=$(dirname "$BARGE")
for b in barge barge-shim barge-hub barge-edge barge-fleet; do
    [[ -x $d/$b ]] || die "no $d/$b (cargo build --workspace --bins)"
done

bench_store edgemem
trap 'edge_cleanup; bench_cleanup' EXIT
bench_image
edge_etcd
edge_hub
log "joining the device"
token=$(fleet token create)
"$BARGE" edge join "$HUB_EDGE" --token "$token" --name bench-edge >/dev/null
"$BARGE" edge run >"$work/agent.log" 2>&1 &
AGENT_PID=$!
cat >"$work/deploy.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: idle}
spec:
  replicas: $PODS
  selector: {matchLabels: {app: idle}}
  template:
    metadata: {labels: {app: idle}}
    spec:
      nodeName: bench-edge
      containers:
      - name: main
        image: bench/busybox
        imagePullPolicy: Never
        command: [sleep, "1000000"]
YAML
fleet apply -f "$work/deploy.yaml" >/dev/null
log "waiting for $PODS running pods"
for _ in $(seq 300); do
    n=$("$BARGE" ps -q | wc -l)
    ((n >= PODS)) && break
    kill -0 "$AGENT_PID" 2>/dev/null || die "the agent died: $(tail -5 "$work/agent.log")"
    sleep 0.2
done
((n >= PODS)) || die "only $n of $PODS pods running: $(tail -5 "$work/agent.log")"
log "idle for ${IDLE}s"
sleep "$IDLE"

agent_exe=$(readlink "/proc/$AGENT_PID/exe")
agent_rss=$(rss_kib "$AGENT_PID")
agent_pss=$(pss_kib "$AGENT_PID")
shims=$(pgrep -d ' ' -f "barge-shim.*$work" || true)
shim_rss=0 shim_pss=0 nshim=0
for p in $shims; do
    shim_rss=$((shim_rss + $(rss_kib "$p")))
    shim_pss=$((shim_pss + $(pss_kib "$p")))
    nshim=$((nshim + 1))
done
mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
goal=$((15 * 1024))
verdict=$([[ $agent_rss -le $goal ]] && echo "met" || echo "missed")

echo "### Edge agent idle memory ($PODS pods, after ${IDLE}s idle)"
echo
bench_machine
echo "Binaries: $BARGE; agent $agent_exe"
echo
echo "| Process | Count | RSS (MiB) | PSS (MiB) |"
echo "|---|---:|---:|---:|"
echo "| barge-edge (agent + engine) | 1 | $(mib "$agent_rss") | $(mib "$agent_pss") |"
echo "| barge-shim (one per container) | $nshim | $(mib "$shim_rss") | $(mib "$shim_pss") |"
echo "| total | $((nshim + 1)) | $(mib $((agent_rss + shim_rss))) | $(mib $((agent_pss + shim_pss))) |"
echo
echo "Goal: barge-edge <= 15 MiB RSS: $verdict. For comparison (their published figures, not measured here): KubeEdge edgecore ~70 MB, k3s agent ~275 MB."
