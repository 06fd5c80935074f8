#!/usr/bin/env bash
# Networking against podman: `run --rm IMG true` on each tool's default bridge network
# (barge: CNI bridge + host-local; podman 4.3: netavark), then the same with a published port
# (`-p 127.0.0.1::80`: barge adds the CNI portmap plugin), alternating ABAB.
#
# Prints a Markdown table on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=20        timed runs per tool and case (the issue asks for >= 20)
#   BARGE=...      barge binary (default: target/release/barge, built if missing)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
log() { printf 'network_run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ $RUNS =~ ^[0-9]+$ ]] && ((RUNS >= 2)) || die "RUNS must be a whole number >= 2"
command -v podman >/dev/null || die "podman is not installed"

if [[ -z ${BARGE:-} ]]; then
    log "building release binaries"
    (cd "$repo" && cargo build --release -q -p barge -p barge-shim)
    BARGE=$repo/target/release/barge
fi
[[ -x $BARGE && -x $(dirname "$BARGE")/barge-shim ]] || die "no barge and barge-shim at $BARGE"

work=$(mktemp -d /tmp/bnet.XXXXXX)
export BARGE_ROOT=$work/root BARGE_RUNROOT=$work/run BARGE_CONFIG=$work/etc
cleanup() {
    "$BARGE" ps -aq --no-trunc 2>/dev/null | xargs -r "$BARGE" rm -f >/dev/null 2>&1 || true
    podman rmi -f localhost/barge-netbench >/dev/null 2>&1 || true
    grep -o " ${work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

log "making the busybox image"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$BARGE" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
podman import -q "$work/rootfs.tar" localhost/barge-netbench >/dev/null
# This machine's hard limits are below podman's defaults (root lacks CAP_SYS_RESOURCE).
PODMAN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=2048:2048)

now_ns() { date +%s%N; }
stats() { python3 -c 'import sys,statistics as s; v=[int(x)/1e6 for x in sys.argv[1:]]; print(f"{s.mean(v):.1f} {s.stdev(v):.1f} {min(v):.1f}")' "$@"; }

echo "Machine: $(nproc) cores, $(uname -r), $(sed -n "s/^PRETTY_NAME=//p" /etc/os-release | tr -d "\"")"
echo
echo "| run --rm IMG true, $RUNS runs each, alternating | barge ms (stdev) | podman ms (stdev) | barge / podman |"
echo "|---|---|---|---|"
for case in bridge publish; do
    extra=()
    [[ $case == publish ]] && extra=(-p 127.0.0.1::80)
    log "$case: warm-up"
    for _ in 1 2 3; do
        "$BARGE" run --rm "${extra[@]}" bench/busybox true
        podman run --rm "${PODMAN_OPTS[@]}" "${extra[@]}" localhost/barge-netbench true
    done
    log "$case: timing $RUNS runs each"
    tb=() tp=()
    for ((i = 0; i < RUNS; i++)); do
        t0=$(now_ns); "$BARGE" run --rm "${extra[@]}" bench/busybox true; t1=$(now_ns)
        tb+=($((t1 - t0)))
        t0=$(now_ns); podman run --rm "${PODMAN_OPTS[@]}" "${extra[@]}" localhost/barge-netbench true; t1=$(now_ns)
        tp+=($((t1 - t0)))
    done
    read -r bm bs _ <<<"$(stats "${tb[@]}")"
    read -r pm ps _ <<<"$(stats "${tp[@]}")"
    ratio=$(python3 -c "print(f'{$bm/$pm:.2f}')")
    label="default bridge"
    [[ $case == publish ]] && label="default bridge, -p 127.0.0.1::80"
    echo "| $label | $bm ($bs) | $pm ($ps) | **${ratio}×** |"
done
