#!/usr/bin/env bash
# Install what building and testing barge needs on Debian 12 (run as root). Idempotent.
set -euo pipefail

# Debian packages: busybox-static (test rootfs), strace (race regression test),
# qemu-system-x86 + cpio (cgroup v2 VM tests), runc + time (benchmarks), pkg-config.
PACKAGES=(busybox-static strace qemu-system-x86 cpio runc time pkg-config)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3; do
        if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
            break
        fi
        [[ $attempt == 3 ]] && { echo "setup: apt-get failed" >&2; exit 1; }
        sleep 5
    done
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi
