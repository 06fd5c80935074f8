#!/usr/bin/env bash
# `barge build` against Debian's `buildah bud` on the same multi-stage Dockerfile (a builder
# stage with a RUN, COPY --from, COPY from the context, a RUN in the final stage), from the
# same busybox base image (imported into both stores): a cold build (`--no-cache`) and a
# cached rebuild (every step a cache hit), alternating ABAB.
#
# Prints a Markdown table on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=5      timed runs per tool and case (the issue asks for >= 5)
#   BARGE=...   barge binary (default: target/release/barge, built if missing)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-5}
log() { printf 'build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ $RUNS =~ ^[0-9]+$ ]] || die "RUNS must be a whole number"
command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"

. "$here/lib.sh"
bench_build
bench_store bbuild
IMG=localhost/bench/busybox:latest

log "making the busybox image in both stores"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/ctx/src"
cp /bin/busybox "$work/rootfs/bin/"
for a in sh true ls mkdir seq echo printf chmod; do ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$BARGE" import "$work/rootfs.tar" "$IMG" >/dev/null
c=$(buildah from scratch)
buildah copy "$c" "$work/rootfs" / >/dev/null
buildah commit -q "$c" "$IMG" >/dev/null
buildah rm "$c" >/dev/null

for i in $(seq 1 50); do echo "file $i" >"$work/ctx/src/f$i.txt"; done
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM localhost/bench/busybox AS builder
RUN mkdir /out && for i in $(seq 1 200); do echo "line $i" >> /out/data.txt; done && printf '#!/bin/sh\necho hi\n' > /out/hello && chmod +x /out/hello
FROM localhost/bench/busybox
COPY --from=builder /out/ /app/
COPY src/ /src/
RUN ls /app /src > /listing
CMD ["/app/hello"]
DOCKERFILE

cleanup_buildah() { buildah rmi -f localhost/bench/built:1 "$IMG" >/dev/null 2>&1 || true; buildah rm -a >/dev/null 2>&1 || true; }
trap 'cleanup_buildah; bench_cleanup' EXIT

barge_cold() { "$BARGE" build -q --no-cache -t bench/built:1 "$work/ctx" >/dev/null; }
barge_cached() { "$BARGE" build -q -t bench/built:1 "$work/ctx" >/dev/null; }
buildah_cold() { buildah bud -q --no-cache -t localhost/bench/built:1 "$work/ctx" >/dev/null; }
buildah_cached() { buildah bud -q --layers -t localhost/bench/built:1 "$work/ctx" >/dev/null; }

# Warm-up (and the cache both cached cases use).
barge_cached
buildah_cached

declare -A t
for case in cold cached; do
    for tool in barge buildah; do t[$tool.$case]=""; done
    log "$case: $RUNS runs each, alternating"
    for ((r = 0; r < RUNS; r++)); do
        for tool in barge buildah; do
            s=$(now_ns)
            "${tool}_$case"
            t[$tool.$case]+=" $(($(now_ns) - s))"
        done
    done
done

bench_machine
echo
echo "| build | barge mean (sd) ms | buildah mean (sd) ms | barge / buildah |"
echo "|---|---|---|---|"
for case in cold cached; do
    read -r bm bs _ <<<"$(stats ${t[barge.$case]})"
    read -r hm hs _ <<<"$(stats ${t[buildah.$case]})"
    ratio=$(python3 -c "print(f'{$bm/$hm:.2f}')")
    echo "| $case | $bm ($bs) | $hm ($hs) | $ratio |"
done
echo
echo "RUNS=$RUNS, barge: $BARGE"
