#!/usr/bin/env bash
# The engine against podman: `barge run --rm IMG true` vs `podman run --rm IMG true` on the
# same busybox image (imported into both stores), alternating ABAB; the same image under a
# registry-qualified name (`registry.local:5000/bench/busybox:1.0`, a second tag) in the same
# rotation; the peak RSS of `barge run --rm` (GNU time); then the memory of one shim, and N
# `sleep` containers running at once (start time and memory overhead).
#
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=20        timed runs per tool (the issue asks for >= 20)
#   N=1000         sleep containers for the density test (0 skips it)
#   PODMAN=1       include podman (0: barge only)
#   BARGE=...      barge binary (default: target/release/barge, built if missing)
#   TIME_BIN=...   GNU time for the peak RSS (default /usr/bin/time; missing: no RSS row)
#
# Both run with --network none (bench/network_run.sh times the bridge); podman with
# nofile/nproc ulimits this machine's hard limits allow (root here lacks CAP_SYS_RESOURCE).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
N=${N:-1000}
PODMAN=${PODMAN:-1}
log() { printf 'container_run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for n in RUNS N PODMAN; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"; done

. "$here/lib.sh"
bench_build
PODMAN_IMAGE=
if ((PODMAN)); then PODMAN_IMAGE=localhost/barge-bench; fi
bench_store bbench
bench_image
QUALIFIED=registry.local:5000/bench/busybox:1.0
"$BARGE" tag bench/busybox "$QUALIFIED"
PODMAN_OPTS=(--network none --ulimit nofile=1024:1024 --ulimit nproc=2048:2048)

declare -a tb tq tp
log "warm-up"
for _ in 1 2 3; do
    "$BARGE" run --rm --network none bench/busybox true
    "$BARGE" run --rm --network none "$QUALIFIED" true
    if ((PODMAN)); then podman run --rm "${PODMAN_OPTS[@]}" localhost/barge-bench true; fi
done
log "timing $RUNS runs each, alternating"
for ((i = 0; i < RUNS; i++)); do
    t0=$(now_ns); "$BARGE" run --rm --network none bench/busybox true; t1=$(now_ns)
    tb+=($((t1 - t0)))
    t0=$(now_ns); "$BARGE" run --rm --network none "$QUALIFIED" true; t1=$(now_ns)
    tq+=($((t1 - t0)))
    if ((PODMAN)); then
        t0=$(now_ns); podman run --rm "${PODMAN_OPTS[@]}" localhost/barge-bench true; t1=$(now_ns)
        tp+=($((t1 - t0)))
    fi
done
read -r bm bs bmin <<<"$(stats "${tb[@]}")"
read -r qm qs qmin <<<"$(stats "${tq[@]}")"

# Peak RSS (GNU time's %M: the largest of barge and the processes it waited for), the most of
# 5 runs per name.
time_bin=${TIME_BIN:-/usr/bin/time}
peak_rss() {
    local m=0 r
    for _ in 1 2 3 4 5; do
        "$time_bin" -o "$work/rss" -f %M "$BARGE" run --rm --network none "$1" true
        r=$(tail -n1 "$work/rss")
        if ((r > m)); then m=$r; fi
    done
    echo "$m"
}
rss_plain=n/a rss_qual=n/a
if [[ -x $time_bin ]]; then
    log "peak RSS"
    rss_plain=$(peak_rss bench/busybox)
    rss_qual=$(peak_rss "$QUALIFIED")
fi

log "shim memory"
id=$("$BARGE" run -d --network none bench/busybox sleep 600)
shim=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shim_pid"])' "$BARGE_ROOT/containers/$id/state.json")
rss=$(awk '/^VmRSS/ {print $2}' /proc/"$shim"/status)
read -r pss dirty clean <<<"$(awk '/^Pss:/ {p=$2} /^Private_Dirty:/ {d=$2} /^Private_Clean:/ {c=$2} END {print p, d, c}' /proc/"$shim"/smaps_rollup)"
"$BARGE" rm -f "$id" >/dev/null

bench_machine
echo
echo "| run --rm IMG true ($RUNS runs, alternating) | mean ms | stdev | min | vs podman | peak RSS KiB |"
echo "|---|---|---|---|---|---|"
qratio=$(python3 -c "print(f'{$qm/$bm:.2f}')")
if ((PODMAN)); then
    read -r pm ps pmin <<<"$(stats "${tp[@]}")"
    ratio=$(python3 -c "print(f'{$bm/$pm:.2f}')")
    qpratio=$(python3 -c "print(f'{$qm/$pm:.2f}')")
    echo "| barge (--network none) | $bm | $bs | $bmin | **$ratio×** | $rss_plain |"
    echo "| barge, \`$QUALIFIED\` (${qratio}× the plain name) | $qm | $qs | $qmin | $qpratio× | $rss_qual |"
    echo "| podman 4.3 (runc, --network none) | $pm | $ps | $pmin | 1 | |"
else
    echo "| barge | $bm | $bs | $bmin | | $rss_plain |"
    echo "| barge, \`$QUALIFIED\` (${qratio}× the plain name) | $qm | $qs | $qmin | | $rss_qual |"
fi
echo
echo "| one shim (running \`sleep\` container) | KiB |"
echo "|---|---|"
echo "| VmRSS (counts libc, ld.so and its own code pages, shared with every other shim) | $rss |"
echo "| PSS (alone: its code pages are all its own) | $pss |"
echo "| Private_Dirty (memory that is this shim's only) | **$dirty** |"
echo "| Private_Clean (its code pages, shared once several shims run) | $clean |"

if ((N > 0)); then
    log "starting $N sleep containers"
    used() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep 1; awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print t-a}' /proc/meminfo; }
    before=$(used)
    t0=$(now_ns)
    for ((i = 0; i < N; i++)); do "$BARGE" run -d --network none bench/busybox sleep 3600 >/dev/null; done
    t1=$(now_ns)
    running=$("$BARGE" ps -q | wc -l)
    after=$(used)
    shim_pids=$(pgrep -f "barge-shim $BARGE_ROOT/containers" || true)
    shims=$(echo "$shim_pids" | grep -c . || true)
    shim_pss=$(for p in $shim_pids; do awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null; done | awk '{s+=$1; n++} END {if (n) printf "%d", s/n; else print 0}')
    log "removing them"
    t2=$(now_ns)
    "$BARGE" ps -aq --no-trunc | xargs -r -n 50 "$BARGE" rm -f >/dev/null
    t3=$(now_ns)
    echo
    echo "| $N \`sleep\` containers | value |"
    echo "|---|---|"
    echo "| running at once | $running (shims: $shims) |"
    echo "| time to start all (one \`run -d\` after another) | $(( (t1 - t0) / 1000000 )) ms ($(( (t1 - t0) / 1000 / N )) µs each) |"
    echo "| memory used, before → after (MemTotal − MemAvailable) | $((before / 1024)) → $((after / 1024)) MiB |"
    echo "| overhead (containers, shims, mounts, cgroups, page tables) | **$(( (after - before) / 1024 )) MiB** ($(( (after - before) / N )) KiB per container) |"
    echo "| mean PSS of a shim with $shims running | $shim_pss KiB |"
    echo "| time to remove all (\`rm -f\`, 50 per call) | $(( (t3 - t2) / 1000000 )) ms |"
fi
