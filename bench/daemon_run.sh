#!/usr/bin/env bash
# barge's API daemon against podman's Docker-compatible service, both driven by the same
# docker CLI: `docker run --rm IMG true` through each socket, alternating ABAB; then the
# daemon's idle RSS with N containers running and the time of `docker ps` listing them.
#
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=20        timed runs per daemon (the issue asks for >= 20)
#   N=100          sleep containers for the RSS and ps rows (0 skips them)
#   PODMAN=1       include podman (0: barge only)
#   BARGE=...      barge binary with barge-daemon, barge-shim, barge-exit next to it
#                  (default: target/release/barge, built if missing)
#   DOCKER=docker  the docker CLI
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
N=${N:-100}
PODMAN=${PODMAN:-1}
DOCKER=${DOCKER:-docker}
log() { printf 'daemon_run: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for n in RUNS N PODMAN; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"; done
command -v "$DOCKER" >/dev/null || die "no docker CLI ($DOCKER)"

. "$here/lib.sh"
if [[ -z ${BARGE:-} ]]; then
    log "building release binaries"
    (cd "$repo" && cargo build --release -q -p barge -p barge-shim -p barge-engine -p barge-api --bins)
    BARGE=$repo/target/release/barge
fi
bench_build
[[ -x $(dirname "$BARGE")/barge-daemon ]] || die "no barge-daemon next to $BARGE"
PODMAN_IMAGE=
if ((PODMAN)); then PODMAN_IMAGE=localhost/barge-bench; fi
bench_store bdaemon
bench_image

pids=()
stop_daemons() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_daemons; bench_cleanup' EXIT

wait_sock() {
    for _ in $(seq 100); do
        DOCKER_HOST=unix://$1 "$DOCKER" version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "nothing answers on $1"
}

BSOCK=$work/barge.sock
"$BARGE" daemon --host "unix://$BSOCK" 2>"$work/daemon.log" &
bpid=$!
pids+=("$bpid")
wait_sock "$BSOCK"
if ((PODMAN)); then
    PSOCK=$work/podman.sock
    # This machine's podman needs runc (crun refuses the hybrid cgroup layout) and ulimits
    # root can set without CAP_SYS_RESOURCE (the service ignores the CLI's --ulimit).
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=2048:2048"]\n' \
        >"$work/containers.conf"
    CONTAINERS_CONF=$work/containers.conf podman --runtime runc system service --time=0 \
        "unix://$PSOCK" 2>"$work/podman.log" &
    ppid=$!
    pids+=("$ppid")
    wait_sock "$PSOCK"
fi
export DOCKER_CONFIG=$work/docker-config
b() { DOCKER_HOST=unix://$BSOCK "$DOCKER" "$@"; }
p() { DOCKER_HOST=unix://$PSOCK "$DOCKER" "$@"; }

log "warm-up"
for _ in 1 2 3; do
    b run --rm --network none bench/busybox true
    if ((PODMAN)); then p run --rm --network none "$PODMAN_IMAGE" true; fi
done
declare -a tb tp
log "timing $RUNS runs each, alternating"
for ((i = 0; i < RUNS; i++)); do
    t0=$(now_ns); b run --rm --network none bench/busybox true; t1=$(now_ns)
    tb+=($((t1 - t0)))
    if ((PODMAN)); then
        t0=$(now_ns); p run --rm --network none "$PODMAN_IMAGE" true; t1=$(now_ns)
        tp+=($((t1 - t0)))
    fi
done
read -r bm bs bmin <<<"$(stats "${tb[@]}")"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
echo "# barge daemon vs podman service (docker CLI $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null))"
echo
bench_machine
echo
echo "| \`docker run --rm IMG true\` ($RUNS runs, ABAB) | mean ms | sd ms | min ms |"
echo "|---|---|---|---|"
echo "| barge daemon | $bm | $bs | $bmin |"
if ((PODMAN)); then
    read -r pm ps pmin <<<"$(stats "${tp[@]}")"
    echo "| podman system service | $pm | $ps | $pmin |"
    echo
    echo "Ratio barge/podman: $(python3 -c "print(f'{$bm/$pm:.2f}')")"
fi
if ((N > 0)); then
    log "starting $N containers on the barge daemon"
    for ((i = 0; i < N; i++)); do b run -d --network none bench/busybox sleep 3600 >/dev/null; done
    sleep 2
    declare -a tl
    for _ in 1 2 3 4 5; do t0=$(now_ns); b ps -q >/dev/null; t1=$(now_ns); tl+=($((t1 - t0))); done
    read -r lm ls lmin <<<"$(stats "${tl[@]}")"
    echo
    echo "| barge daemon with $N containers running | value |"
    echo "|---|---|"
    echo "| idle RSS | $(rss "$bpid") KiB |"
    echo "| \`docker ps\` (5 runs) | mean $lm ms, min $lmin ms |"
fi
