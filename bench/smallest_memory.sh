#!/usr/bin/env bash
# The smallest memory limit (linux.resources.memory.limit) under which `RUNTIME run` of a
# busybox `true` container succeeds, for barge-runtime, runc and crun (if installed): bisected
# in 4 KiB steps, TRIES runs per point (a point passes only if every try succeeds). Prints a
# Markdown table on stdout, progress on stderr. See bench/README.md.
#
#   sudo bench/smallest_memory.sh
#   TRIES=5 BARGE_RUNTIME=target/release/barge-runtime sudo bench/smallest_memory.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "smallest_memory: $*" >&2; }
die() { log "$*"; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root (cgroups)"

TRIES=${TRIES:-3}
LO_KIB=${LO_KIB:-4}          # assumed to fail
HI_KIB=${HI_KIB:-16384}      # assumed to succeed (checked)
BUSYBOX=${BUSYBOX:-/bin/busybox}
RUN_TIMEOUT=${RUN_TIMEOUT:-30}

if [[ -z ${BARGE_RUNTIME:-} ]]; then
    log "building barge-runtime (release)"
    (cd "$repo" && cargo build --release -q -p barge-runtime-cli)
    BARGE_RUNTIME=${CARGO_TARGET_DIR:-$repo/target}/release/barge-runtime
fi
[[ -x $BARGE_RUNTIME ]] || die "no barge-runtime at $BARGE_RUNTIME"
BARGE_RUNTIME=$(realpath "$BARGE_RUNTIME")

runtimes=("barge-runtime=$BARGE_RUNTIME")
for r in runc crun; do
    if command -v "$r" >/dev/null; then
        runtimes+=("$r=$(command -v "$r")")
    else
        log "$r not installed: skipped"
    fi
done

work=$(mktemp -d /tmp/smallest_memory.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp "$BUSYBOX" "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
(cd "$work/bundle" && "$BARGE_RUNTIME" spec)
spec=$work/bundle/config.json.in
python3 - "$work/bundle/config.json" "$spec" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["ociVersion"] = "1.0.2"  # crun 1.8 (Debian 12) refuses newer versions
json.dump(c, open(sys.argv[2], "w"))
EOF

n=0
# try NAME BIN KIB: one `run` at KIB; exit status 0 if the container ran `true` to exit 0.
try() {
    local bin=$2 kib=$3
    n=$((n + 1))
    python3 - "$spec" "$work/bundle/config.json" "$kib" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"].setdefault("resources", {})["memory"] = {"limit": int(sys.argv[3]) * 1024}
json.dump(c, open(sys.argv[2], "w"))
EOF
    local id="sm-$$-$n" rc=0
    timeout "$RUN_TIMEOUT" "$bin" --root "$work/root-$1" run --bundle "$work/bundle" "$id" \
        >"$work/out" 2>&1 </dev/null || rc=$?
    ((rc == 0)) || echo "(exit status $rc)" >>"$work/out"
    "$bin" --root "$work/root-$1" delete --force "$id" >/dev/null 2>&1 || true
    return $rc
}

# passes NAME BIN KIB: every one of TRIES runs succeeded.
passes() {
    local i
    for ((i = 0; i < TRIES; i++)); do
        try "$1" "$2" "$3" || return 1
    done
}

declare -A smallest message
for r in "${runtimes[@]}"; do
    name=${r%%=*} bin=${r#*=}
    log "$name: bisecting between $LO_KIB and $HI_KIB KiB, $TRIES tries per point"
    if ! passes "$name" "$bin" "$HI_KIB"; then
        # (crun 1.8 on a hybrid cgroup host: "cgroups in hybrid mode not supported")
        log "$name fails even at $HI_KIB KiB: $(cat "$work/out")"
        smallest[$name]="n/a"
        message[$name]="fails at $HI_KIB KiB: $(tr '\n' ' ' <"$work/out" | cut -c1-160)"
        continue
    fi
    lo=$LO_KIB hi=$HI_KIB
    while ((hi - lo > 4)); do
        mid=$(((lo + hi) / 2 / 4 * 4))
        if passes "$name" "$bin" "$mid"; then hi=$mid; else lo=$mid; fi
        log "  $name: fails at $lo, runs at $hi KiB"
    done
    smallest[$name]=$hi
    try "$name" "$bin" "$lo" || true
    message[$name]=$(tr '\n' ' ' <"$work/out" | cut -c1-160)
done

echo "## Smallest memory limit for \`run\` of \`true\`"
echo
layout="v1/hybrid"; [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] && layout="v2"
echo "$(nproc) cores, $(uname -r), cgroups $layout, $TRIES tries per point, 4 KiB steps; $(runc --version 2>/dev/null | head -1)."
echo
echo "| runtime | smallest limit that runs \`true\` | error 4 KiB below it |"
echo "|---|---|---|"
for r in "${runtimes[@]}"; do
    name=${r%%=*}
    unit=" KiB"; [[ ${smallest[$name]} == n/a ]] && unit=""
    echo "| $name | ${smallest[$name]}$unit | ${message[$name]} |"
done
