# What the edge benchmarks share (sourced after bench/lib.sh, with `repo`, `work`, `log`,
# `die` set): an etcd on free loopback ports and a hub, in $work, killed on exit
# (edge_cleanup, called by the scripts' EXIT trap).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# etcd 3.4 (Debian etcd-server) on free ports, data in $work/etcd; sets ETCD_URL.
edge_etcd() {
    command -v etcd >/dev/null || die "no etcd (apt-get install etcd-server, or scripts/setup.sh)"
    local c p
    c=$(free_port); p=$(free_port)
    ETCD_URL=http://127.0.0.1:$c
    etcd --name bench --data-dir "$work/etcd" --listen-client-urls "$ETCD_URL" \
        --advertise-client-urls "$ETCD_URL" --listen-peer-urls "http://127.0.0.1:$p" \
        --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "bench=http://127.0.0.1:$p" --log-level warn >"$work/etcd.log" 2>&1 &
    ETCD_PID=$!
    for _ in $(seq 100); do
        curl -fs "$ETCD_URL/health" 2>/dev/null | grep -q true && return 0
        sleep 0.2
    done
    die "etcd did not start: $(tail -5 "$work/etcd.log")"
}

# `barge hub` on free ports, state in $work/hub; sets HUB_EDGE (https://...), HUB_API,
# FLEET_CONF (its admin.conf).
edge_hub() {
    local l a
    l=$(free_port); a=$(free_port)
    HUB_EDGE=https://127.0.0.1:$l
    HUB_API=http://127.0.0.1:$a
    mkdir -p "$work/hub"
    # Plain-HTTP API (the scripts' clients speak it; figures stay comparable with earlier runs).
    # BARGE_HUB: a barge-hub binary (a release build of the hub alone), else `barge hub`.
    ${BARGE_HUB:-"$BARGE" hub} --etcd "$ETCD_URL" --listen "127.0.0.1:$l" --api "127.0.0.1:$a" \
        --api-insecure-http --state-dir "$work/hub" "$@" >"$work/hub.log" 2>&1 &
    HUB_PID=$!
    FLEET_CONF=$work/hub/admin.conf
    for _ in $(seq 150); do
        [[ -s $FLEET_CONF ]] && curl -s -o /dev/null "$HUB_API/" && return 0
        kill -0 "$HUB_PID" 2>/dev/null || break
        sleep 0.2
    done
    die "barge hub did not start: $(tail -5 "$work/hub.log")"
}

# BARGE_FLEET: a barge-fleet binary, else `barge fleet`.
fleet() { ${BARGE_FLEET:-"$BARGE" fleet} --config "$FLEET_CONF" "$@"; }

# Kill what edge_etcd / edge_hub / the script started (by pid, never by name).
edge_cleanup() {
    local p
    for p in ${AGENT_PID:-} ${SIM_PID:-} ${HUB_PID:-} ${ETCD_PID:-}; do
        kill "$p" 2>/dev/null || true
    done
    for p in ${AGENT_PID:-} ${SIM_PID:-} ${HUB_PID:-} ${ETCD_PID:-}; do
        wait "$p" 2>/dev/null || true
    done
}

# VmRSS of a pid, in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Pss (proportional: shared pages split among their users), in KiB.
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
