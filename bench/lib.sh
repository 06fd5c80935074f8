# What the container benchmarks share (sourced by container_run.sh and network_run.sh, after
# they set `repo` and define `log` and `die`): the barge binary, a throw-away store with the
# busybox image in it (and in podman when PODMAN_IMAGE is set), timing and statistics.

# BARGE, or the release binaries built now (barge-shim and barge-registry live next to barge).
bench_build() {
    if [[ -z ${BARGE:-} ]]; then
        log "building release binaries"
        (cd "$repo" && cargo build --release -q -p barge -p barge-shim -p barge-engine --bins)
        BARGE=$repo/target/release/barge
    fi
    local d
    d=$(dirname "$BARGE")
    [[ -x $BARGE && -x $d/barge-shim && -x $d/barge-exit && -x $d/barge-registry ]] ||
        die "no barge, barge-shim, barge-exit and barge-registry (pulls) at $BARGE"
}

# A store in a new directory `work` (prefix $1), removed with everything in it on exit.
bench_store() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    export BARGE_ROOT=$work/root BARGE_RUNROOT=$work/run BARGE_CONFIG=$work/etc
    trap bench_cleanup EXIT
}

bench_cleanup() {
    "$BARGE" ps -aq --no-trunc 2>/dev/null | xargs -r "$BARGE" rm -f >/dev/null 2>&1 || true
    if [[ -n ${PODMAN_IMAGE:-} ]]; then podman rmi -f "$PODMAN_IMAGE" >/dev/null 2>&1 || true; fi
    grep -o " ${work}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$work"
}

# The host's busybox as image bench/busybox in barge (and PODMAN_IMAGE in podman).
bench_image() {
    log "making the busybox image"
    mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
    cp /bin/busybox "$work/rootfs/bin/"
    for a in sh true sleep; do ln -s busybox "$work/rootfs/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    "$BARGE" import "$work/rootfs.tar" bench/busybox:latest >/dev/null
    if [[ -n ${PODMAN_IMAGE:-} ]]; then
        podman import -q "$work/rootfs.tar" "$PODMAN_IMAGE" >/dev/null
    fi
}

now_ns() { date +%s%N; }

# Mean, standard deviation and minimum, in ms, of durations in ns.
stats() { python3 -c 'import sys,statistics as s; v=[int(x)/1e6 for x in sys.argv[1:]]; print(f"{s.mean(v):.1f} {s.stdev(v) if len(v)>1 else 0:.1f} {min(v):.1f}")' "$@"; }

bench_machine() {
    echo "Machine: $(nproc) cores, $(uname -r), $(sed -n "s/^PRETTY_NAME=//p" /etc/os-release | tr -d "\"")"
}
