#!/usr/bin/env bash
# Kernel memory of an idle pod (sandbox up, no containers): N pods made by `barge pod create`
# + `pod start` from a shell in a memory cgroup of its own, so everything the kernel allocates
# for them (namespaces, veth, mounts, the pod cgroup, inodes) is charged there; prints
# memory.kmem.usage_in_bytes growth per pod (cgroup v1 memory controller), then removes them
# and prints what stays charged. Run once with the default network and once without.
#
#   sudo bench/pod_memory.sh                          # N=40, default network
#   NET="--network host" sudo bench/pod_memory.sh     # IPC + UTS + /dev/shm + cgroup only
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "pod_memory: needs root" >&2; exit 1; }
N=${N:-40}
NET=${NET:-}
BARGE=${BARGE:-${CARGO_TARGET_DIR:-$repo/target}/debug/barge}
[[ -x $BARGE ]] || { echo "pod_memory: no barge at $BARGE (cargo build --workspace --bins)" >&2; exit 1; }
MEMCG=/sys/fs/cgroup/memory
[[ -f $MEMCG/memory.kmem.usage_in_bytes ]] || { echo "pod_memory: needs the v1 memory controller with kmem accounting" >&2; exit 1; }

dir=$(mktemp -d /tmp/podmemXXXX)
export BARGE_ROOT=$dir/root BARGE_RUNROOT=$dir/run BARGE_CONFIG=$dir/etc
cg=$MEMCG/barge-podmem-$$
mkdir "$cg"
cleanup() {
    for i in $(seq "$N"); do "$BARGE" pod rm -f "p$i" >/dev/null 2>&1 || true; done
    echo $$ > "$MEMCG/cgroup.procs"
    rmdir "$cg" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
echo $$ > "$cg/cgroup.procs"
# Warm up: the default network, its bridge and rules, the database.
"$BARGE" pod create --name warm $NET >/dev/null
"$BARGE" pod start warm >/dev/null
"$BARGE" pod rm -f warm >/dev/null
k0=$(cat "$cg/memory.kmem.usage_in_bytes")
for i in $(seq "$N"); do
    "$BARGE" pod create --name "p$i" $NET >/dev/null
    "$BARGE" pod start "p$i" >/dev/null
done
k1=$(cat "$cg/memory.kmem.usage_in_bytes")
echo "N=$N network=${NET:-default}: kernel memory per idle pod: $(( (k1 - k0) / N / 1024 )) KiB"
for i in $(seq "$N"); do "$BARGE" pod rm -f "p$i" >/dev/null; done
k2=$(cat "$cg/memory.kmem.usage_in_bytes")
echo "still charged after removing them: $(( (k2 - k0) / 1024 )) KiB in all"
