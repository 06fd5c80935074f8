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

. "$here/lib.sh"
bench_build
PODMAN_IMAGE=localhost/barge-netbench
bench_store bnet
bench_image
# This machine's hard limits are below podman's defaults (root lacks CAP_SYS_RESOURCE).
PODMAN_OPTS=(--ulimit nofile=1024:1024 --ulimit nproc=2048:2048)

bench_machine
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
