#!/usr/bin/env bash
# Make an OCI image of barge-mapper and load it into a barge store:
#   scripts/mapper-image.sh TAG [MAPPER_BINARY]
# The image holds the binary (default target/release/barge-mapper), the shared libraries
# `ldd` lists for it, and busybox-static (a shell for debugging); its ENTRYPOINT is the
# mapper, so `barge run --network host TAG --node N --mqtt tcp://127.0.0.1:1883` runs it
# against the edge's broker. The store is barge's usual one: set BARGE_ROOT / BARGE_CONFIG
# (or pass flags in BARGE, e.g. BARGE="barge --root /var/lib/x"); BARGE is the barge command.
set -euo pipefail

if (($# < 1 || $# > 2)); then
    echo "usage: $0 TAG [MAPPER_BINARY]" >&2
    exit 2
fi
tag=$1
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${2:-$here/target/release/barge-mapper}
barge=${BARGE:-barge}
busybox=/bin/busybox

[[ -x $bin ]] || { echo "mapper-image: $bin: no such executable (cargo build -p barge-mapper)" >&2; exit 1; }
[[ -x $busybox ]] || { echo "mapper-image: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root"/{bin,usr/local/bin,etc,tmp,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh ls cat ps; do
    ln -s busybox "$root/bin/$applet"
done
cp "$bin" "$root/usr/local/bin/barge-mapper"
# A debug build carries ~30 MB of debug info: leave it out of the image.
if command -v strip >/dev/null; then
    strip --strip-debug "$root/usr/local/bin/barge-mapper"
fi
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

# Shared libraries and the loader, at the paths the binary asks for.
libs=$(ldd "$bin" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)
if [[ -z $libs ]] && ! ldd "$bin" 2>&1 | grep -q "not a dynamic"; then
    echo "mapper-image: ldd $bin listed no libraries" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

tar -C "$root" -cf "$tmp/rootfs.tar" .
# shellcheck disable=SC2086 # BARGE may carry flags
$barge import -m "barge-mapper image" -c 'ENTRYPOINT ["/usr/local/bin/barge-mapper"]' \
    "$tmp/rootfs.tar" "$tag"
