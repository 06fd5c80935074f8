#!/usr/bin/env bash
# Build barge and run a demo container from a busybox rootfs (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --release --locked -p barge
barge=target/release/barge

bundle=$(mktemp -d /tmp/barge-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/proc" \
    "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"

"$barge" runtime spec --bundle "$bundle"
# Non-interactive demo: no terminal, a short script instead of an interactive shell.
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's|"sh"$|"sh", "-c", "echo hello from $(hostname), pid $$; id; grep -E ^CapEff /proc/self/status; ls /"|' \
    "$bundle/config.json"
"$barge" runtime run --bundle "$bundle" "demo-$$"

# Images: the same rootfs as a one-layer image in a throwaway store (a registry pull works the
# same way: `barge pull REGISTRY/NAME:TAG`).
store=$(mktemp -d /tmp/barge-demo-store.XXXXXX)
trap 'rm -rf "$bundle" "$store"' EXIT
tar -C "$bundle/rootfs" -czf "$store/rootfs.tar.gz" .
"$barge" --root "$store/root" --config "$store/etc" import -c 'CMD ["sh"]' "$store/rootfs.tar.gz" demo/busybox:latest
"$barge" --root "$store/root" --config "$store/etc" images
