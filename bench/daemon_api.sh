#!/usr/bin/env bash
# The API daemon against podman's Docker-compatible service, both driven by the same docker
# CLI: `docker run --rm IMG true` through barge's socket and through `podman system service`'s,
# alternating ABAB; the daemons' resident memory with C containers running (started through
# the API); `docker ps` through barge's socket with P containers running.
#
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=20        timed `docker run --rm` per daemon (the issue asks for >= 20)
#   C=100          containers running for the idle-RSS row (0 skips it)
#   P=1000         containers running for the `docker ps` row (0 skips it)
#   PODMAN=1       include podman (0: barge only)
#   BARGE=...      barge binary (default: target/release/barge, built if missing); the daemon
#                  is built by scripts/build-daemon.sh (as it ships) and put next to it
#
# Both with --network none (bench/network_run.sh times the bridge); podman uses runc (its
# default crun refuses this hybrid-cgroup host) through a containers.conf of its own.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
C=${C:-100}
P=${P:-1000}
PODMAN=${PODMAN:-1}
log() { printf 'daemon_api: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for n in RUNS C P PODMAN; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"; done
command -v docker >/dev/null || die "the docker CLI is needed"

. "$here/lib.sh"
bench_build
bindir=$(dirname "$BARGE")
if [[ ! -x $bindir/barge-daemon || -n ${REBUILD_DAEMON:-} ]]; then
    log "building the daemon (scripts/build-daemon.sh: --profile daemon, static glibc)"
    "$repo/scripts/build-daemon.sh" "$bindir" >&2
fi
PODMAN_IMAGE=
if ((PODMAN)); then PODMAN_IMAGE=localhost/barge-bench; fi
bench_store dbench
bench_image

daemon_pid= podman_pid=
stop_daemons() {
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
    [[ -n $podman_pid ]] && kill "$podman_pid" 2>/dev/null && wait "$podman_pid" 2>/dev/null || true
}
trap 'stop_daemons; bench_cleanup' EXIT

BSOCK=$work/barge.sock PSOCK=$work/podman.sock
"$BARGE" daemon -H "unix://$BSOCK" 2>"$work/daemon.log" &
daemon_pid=$!
if ((PODMAN)); then
    # runc (crun refuses this hybrid cgroup layout) and ulimits root can set without
    # CAP_SYS_RESOURCE (the service ignores the CLI's --ulimit).
    printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=2048:2048"]\n[engine]\nruntime = "runc"\n' \
        >"$work/containers.conf"
    CONTAINERS_CONF=$work/containers.conf podman system service --time=0 "unix://$PSOCK" 2>"$work/podman.log" &
    podman_pid=$!
fi
for _ in $(seq 100); do
    [[ -S $BSOCK ]] && { ((!PODMAN)) || [[ -S $PSOCK ]]; } && break
    sleep 0.1
done
[[ -S $BSOCK ]] || die "barge daemon did not start: $(cat "$work/daemon.log")"
bd() { DOCKER_HOST=unix://$BSOCK docker "$@"; }
pd() { DOCKER_HOST=unix://$PSOCK docker "$@"; }
# The real barge-daemon process (`barge daemon` execs it).
dpid=$daemon_pid

declare -a tb tp
log "warm-up"
for _ in 1 2 3; do
    bd run --rm --network none bench/busybox true
    if ((PODMAN)); then pd run --rm --network none "$PODMAN_IMAGE" true; fi
done
log "timing $RUNS runs each, alternating"
for ((i = 0; i < RUNS; i++)); do
    t0=$(now_ns); bd run --rm --network none bench/busybox true; t1=$(now_ns)
    tb+=($((t1 - t0)))
    if ((PODMAN)); then
        t0=$(now_ns); pd run --rm --network none "$PODMAN_IMAGE" true; t1=$(now_ns)
        tp+=($((t1 - t0)))
    fi
done
read -r bm bs bmin <<<"$(stats "${tb[@]}")"

rss() { awk '/^VmRSS/ {print $2}' /proc/"$1"/status; }
# podman's service forks a child per request on some paths: the listening process is the one.
rss_idle_b=$(rss "$dpid")
rss_idle_p=n/a
if ((PODMAN)); then rss_idle_p=$(rss "$podman_pid"); fi

rss_c_b=n/a rss_c_p=n/a
if ((C > 0)); then
    log "$C containers through each API"
    for ((i = 0; i < C; i++)); do bd run -d --network none bench/busybox sleep 3600 >/dev/null; done
    if ((PODMAN)); then
        for ((i = 0; i < C; i++)); do pd run -d --network none "$PODMAN_IMAGE" sleep 3600 >/dev/null; done
    fi
    bd ps -q >/dev/null
    if ((PODMAN)); then pd ps -q >/dev/null; fi
    sleep 5
    rss_c_b=$(rss "$dpid")
    if ((PODMAN)); then rss_c_p=$(rss "$podman_pid"); fi
    [[ $(bd ps -q | wc -l) -eq $C ]] || die "barge lists $(bd ps -q | wc -l) running, not $C"
    if ((PODMAN)); then pd ps -aq | xargs -r -n 50 env DOCKER_HOST=unix://$PSOCK docker rm -f >/dev/null; fi
fi

ps_mean=n/a ps_min=n/a
if ((P > 0)); then
    have=$(bd ps -q | wc -l)
    log "$P containers for docker ps (have $have)"
    for ((i = have; i < P; i++)); do "$BARGE" run -d --network none bench/busybox sleep 3600 >/dev/null; done
    [[ $(bd ps -q | wc -l) -eq $P ]] || die "barge lists $(bd ps -q | wc -l) running, not $P"
    declare -a tps
    bd ps >/dev/null
    for ((i = 0; i < 20; i++)); do
        t0=$(now_ns); bd ps >/dev/null; t1=$(now_ns)
        tps+=($((t1 - t0)))
    done
    read -r ps_mean _ ps_min <<<"$(stats "${tps[@]}")"
    # The API call alone (the docker CLI's own start-up is in the row above).
    declare -a tcu
    for ((i = 0; i < 20; i++)); do
        t0=$(now_ns); curl -sf --unix-socket "$BSOCK" -o /dev/null http://d/v1.47/containers/json; t1=$(now_ns)
        tcu+=($((t1 - t0)))
    done
    read -r cu_mean _ cu_min <<<"$(stats "${tcu[@]}")"
    tcli=()
    for ((i = 0; i < 20; i++)); do
        t0=$(now_ns); docker --version >/dev/null; t1=$(now_ns)
        tcli+=($((t1 - t0)))
    done
    read -r cli_mean _ cli_min <<<"$(stats "${tcli[@]}")"
    # The docker CLI's own floor: the same list served at once by a server that only
    # replays barge's bytes (a Python unix-socket server), alternating with barge.
    curl -sf --unix-socket "$BSOCK" -o "$work/list.json" http://d/v1.47/containers/json
    python3 "$here/replay_server.py" "$work/replay.sock" "$work/list.json" &
    replay_pid=$!
    for _ in $(seq 50); do [[ -S $work/replay.sock ]] && break; sleep 0.1; done
    tfl=() tbl=()
    for ((i = 0; i < 20; i++)); do
        t0=$(now_ns); DOCKER_HOST=unix://$work/replay.sock docker ps >/dev/null; t1=$(now_ns)
        tfl+=($((t1 - t0)))
        t0=$(now_ns); bd ps >/dev/null; t1=$(now_ns)
        tbl+=($((t1 - t0)))
    done
    kill "$replay_pid" 2>/dev/null; wait "$replay_pid" 2>/dev/null || true
    read -r fl_mean _ fl_min <<<"$(stats "${tfl[@]}")"
    read -r bl_mean _ bl_min <<<"$(stats "${tbl[@]}")"
    rss_p=$(rss "$dpid")
fi

bench_machine
echo
echo "| \`docker run --rm IMG true\` ($RUNS runs, alternating) | mean ms | stdev | min | vs podman |"
echo "|---|---|---|---|---|"
if ((PODMAN)); then
    read -r pm ps pmin <<<"$(stats "${tp[@]}")"
    ratio=$(python3 -c "print(f'{$bm/$pm:.2f}')")
    echo "| barge daemon | $bm | $bs | $bmin | **$ratio×** |"
    echo "| podman 4.3 system service (runc) | $pm | $ps | $pmin | 1 |"
else
    echo "| barge daemon | $bm | $bs | $bmin | |"
fi
echo
echo "| daemon resident memory (VmRSS, KiB) | barge daemon | podman system service |"
echo "|---|---|---|"
echo "| after the timed runs, no container running | $rss_idle_b | $rss_idle_p |"
echo "| $C containers running (started through the API) | **$rss_c_b** | $rss_c_p |"
if ((P > 0)); then
    echo "| $P containers running, after 21 \`docker ps\` | $rss_p | |"
    echo
    echo "| \`docker ps\` with $P containers running (20 runs) | mean ms | min ms |"
    echo "|---|---|---|"
    echo "| \`docker ps\` through barge's socket | **$ps_mean** | $ps_min |"
    echo "| \`GET /containers/json\` alone (curl) | $cu_mean | $cu_min |"
    echo "| the docker CLI's own start-up (\`docker --version\`) | $cli_mean | $cli_min |"
    echo
    echo "| \`docker ps\`, $P containers, 20 runs alternating | mean ms | min ms |"
    echo "|---|---|---|"
    echo "| through barge's socket | $bl_mean | $bl_min |"
    echo "| from a server replaying barge's answer at once (the CLI's floor) | $fl_mean | $fl_min |"
fi
