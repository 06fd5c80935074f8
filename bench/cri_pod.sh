#!/usr/bin/env bash
# barge daemon's CRI against Debian's containerd 1.6 CRI plugin (runc), both driven by the
# same tonic client (api/barge-api/examples/cri_bench.rs) over their CRI sockets:
#   - RunPodSandbox + CreateContainer + StartContainer of a `true` container, then
#     StopPodSandbox + RemovePodSandbox, alternating ABAB, RUNS cycles each after a warm-up;
#   - memory of N idle pods (RunPodSandbox only): the growth of a memory cgroup holding the
#     daemon (and containerd's shims and pause processes) and the pods' cgroups, without page
#     cache (memory.usage_in_bytes - total_cache, cgroup v1), divided by N.
# Both pods get a CNI bridge network of their own (barge: its default network; containerd: a
# bridge + host-local conflist in a temp dir). containerd's sandbox image is the same busybox
# with CMD sleep (the real pause image cannot be pulled here).
#
#   RUNS=20 N=20 CONTAINERD=1 BARGE=target/release/barge sudo bench/cri_pod.sh
# CRI_BENCH=PATH uses an already built client (api/barge-api/examples/cri_bench.rs).
# BRIDGE_DRIVER=cni wires barge's pods with the CNI bridge + host-local plugins (what barge
# did before its in-process driver) instead of the default `in-process`.
# Prints a Markdown report on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
N=${N:-20}
CONTAINERD=${CONTAINERD:-1}
log() { printf 'cri_pod: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for n in RUNS N CONTAINERD; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"; done
if ((CONTAINERD)); then
    command -v containerd >/dev/null && command -v ctr >/dev/null ||
        die "containerd is needed (apt-get install containerd), or CONTAINERD=0"
fi

. "$here/lib.sh"
bench_build
bindir=$(dirname "$BARGE")
if [[ ! -x $bindir/barge-daemon || -n ${REBUILD_DAEMON:-} ]]; then
    log "building the daemon (scripts/build-daemon.sh: --profile daemon, static glibc)"
    "$repo/scripts/build-daemon.sh" "$bindir" >&2
fi
client=${CRI_BENCH:-}
if [[ -z $client ]]; then
    log "building the CRI client"
    (cd "$repo" && cargo build --release -q -p barge-api --example cri_bench)
    client=$repo/target/release/examples/cri_bench
fi

bench_store cribench
if [[ -n ${BRIDGE_DRIVER:-} ]]; then
    mkdir -p "$BARGE_CONFIG"
    printf '{"network": {"bridge-driver": "%s"}}\n' "$BRIDGE_DRIVER" >"$BARGE_CONFIG/config.json"
fi
bench_image
mkdir -p "$work/logs"

# A memory cgroup under this script's own, holding both daemons (and so their shims) and,
# as their parent, the pods' cgroups.
mine=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
mroot=/sys/fs/cgroup/memory
[[ -d $mroot$mine ]] || die "no cgroup v1 memory hierarchy (this benchmark reads v1 files)"
cg_b=${mine%/}/cribench-$$-barge cg_c=${mine%/}/cribench-$$-containerd
mkdir -p "$mroot$cg_b" "$mroot$cg_c"

daemon_pid= ctrd_pid=
stop_all() {
    if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; fi
    if [[ -n $ctrd_pid ]]; then
        pkill -f "containerd-shim-runc-v2 -namespace k8s.io.*$work" 2>/dev/null || true
        kill "$ctrd_pid" 2>/dev/null; wait "$ctrd_pid" 2>/dev/null || true
    fi
    grep -o " ${work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for cg in "$cg_b" "$cg_c"; do
        find "$mroot$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
        rmdir "$mroot$cg" 2>/dev/null || true
    done
}
trap 'stop_all; bench_cleanup' EXIT

BCRI=$work/barge-cri.sock
(echo "$BASHPID" >"$mroot$cg_b/cgroup.procs" &&
    exec "$BARGE" daemon -H "unix://$work/docker.sock" --cri "unix://$BCRI") 2>"$work/daemon.log" &
daemon_pid=$!
eps=("unix://$BCRI")

if ((CONTAINERD)); then
    mkdir -p "$work/cni"
    cat >"$work/cni/10-bench.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "cribench", "plugins": [
  {"type": "bridge", "bridge": "cribench0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.0.0/16"}]],
            "dataDir": "$work/cni-ipam"}},
  {"type": "loopback"}]}
CNI
    cat >"$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd/root"
state = "$work/containerd/state"
[grpc]
  address = "$work/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/bench/pause:latest"
  # The CRI plugin gives sandboxes oom_score_adj -998, which this VM refuses (runc's init
  # dies writing it: "can't get final child's PID from pipe: EOF"); restricted, it is
  # containerd's own score, as barge's sandboxes (no process) and containers get.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$work/cni"
TOML
    "$BARGE" import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["sleep","inf"]' "$work/rootfs.tar" bench/pause:latest >/dev/null
    "$BARGE" save -o "$work/images.tar" bench/busybox:latest bench/pause:latest
    (echo "$BASHPID" >"$mroot$cg_c/cgroup.procs" && exec containerd --config "$work/containerd.toml") \
        >"$work/containerd.log" 2>&1 &
    ctrd_pid=$!
    for _ in $(seq 100); do [[ -S $work/containerd.sock ]] && break; sleep 0.1; done
    [[ -S $work/containerd.sock ]] || die "containerd did not start: $(tail -5 "$work/containerd.log")"
    ctr -a "$work/containerd.sock" -n k8s.io images import "$work/images.tar" >/dev/null
    eps+=("unix://$work/containerd.sock")
fi
for _ in $(seq 100); do [[ -S $BCRI ]] && break; sleep 0.1; done
[[ -S $BCRI ]] || die "barge daemon did not start: $(cat "$work/daemon.log")"

log "timing $RUNS pod cycles each, alternating"
# Both endpoints alternate in one client; their pods' cgroups go under the barge daemon's
# bench cgroup (only the timing is taken here; the memory figures come later, per daemon).
"$client" cycle "$RUNS" docker.io/bench/busybox:latest "$cg_b/cycle" "$work/logs" "${eps[@]}" >"$work/b.out"
read -r _ bm bs bmin <<<"$(sed -n 1p "$work/b.out")"
cm=n/a cs=n/a cmin=n/a ratio=n/a
if ((CONTAINERD)); then
    read -r _ cm cs cmin <<<"$(sed -n 2p "$work/b.out")"
    ratio=$(python3 -c "print(f'{$bm/$cm:.2f}')")
fi

# memory.usage_in_bytes without page cache, in KiB.
anon_kib() {
    local f=$mroot$1
    echo $((($(cat "$f/memory.usage_in_bytes") - $(awk '$1 == "total_cache" {print $2}' "$f/memory.stat")) / 1024))
}
idle() { # ENDPOINT CGROUP -> KiB per idle pod
    local before after ids
    sleep 2
    before=$(anon_kib "$2")
    mapfile -t ids < <("$client" pods "$N" "$2/pods" "$work/logs" "$1")
    sleep 2
    after=$(anon_kib "$2")
    "$client" rmpods "$1" "${ids[@]}"
    echo $(((after - before) / N))
}
log "memory of $N idle pods"
mem_b=$(idle "${eps[0]}" "$cg_b")
mem_c=n/a
if ((CONTAINERD)); then mem_c=$(idle "${eps[1]}" "$cg_c"); fi

echo "### CRI: pod start/stop and idle pod memory"
echo
bench_machine
echo "barge at $(cd "$repo" && git rev-parse --short HEAD) (bridge driver: ${BRIDGE_DRIVER:-in-process}); containerd $(containerd --version | awk '{print $3}') with runc $(runc --version | awk 'NR==1 {print $3}')"
echo
echo "| RunPodSandbox + Create + Start \`true\`, Stop + Remove ($RUNS cycles, alternating) | mean ms | stdev | min | vs containerd |"
echo "|---|---|---|---|---|"
echo "| barge daemon (CRI) | $bm | $bs | $bmin | $ratio |"
if ((CONTAINERD)); then echo "| containerd CRI plugin | $cm | $cs | $cmin | 1 |"; fi
echo
echo "| memory per idle pod ($N pods; cgroup v1 usage without page cache, KiB) | barge | containerd |"
echo "|---|---|---|"
echo "| daemon + shims + pause + kernel objects | $mem_b | $mem_c |"
