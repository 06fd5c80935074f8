#!/usr/bin/env bash
# Install what building and testing barge needs on Debian 12 (run as root). Idempotent.
# Sourced by test.sh and demo.sh (so a freshly installed cargo is on their PATH).
set -euo pipefail

# Debian packages: busybox-static (test rootfs), strace (race regression test),
# qemu-system-x86 + cpio (cgroup v2 VM tests), podman (drop-in test), runc + time
# (benchmarks), pkg-config + libseccomp-dev (the runtime's seccomp filters), uidmap
# (newuidmap/newgidmap for rootless containers), docker-registry + skopeo + umoci + openssl +
# apache2-utils (htpasswd) (a local registry seeded with test images; TLS and basic auth),
# docker-compose + python3-pip (the API daemon's docker-compose and docker-py tests),
# protobuf-compiler (protoc: the CRI server's gRPC code is generated from its .proto),
# etcd-server + etcd-client (the edge hub's state store; the edge e2e tests start their own
# etcd 3.4 on loopback ports), mosquitto + mosquitto-clients (an MQTT broker for the edge's
# device tests), gcc (barge build's test makes a C toolchain image from the host's gcc),
# buildah (bench/build.sh compares barge build with it).
PACKAGES=(busybox-static tini strace qemu-system-x86 cpio runc time pkg-config podman libseccomp-dev uidmap
    docker-registry skopeo umoci openssl apache2-utils containernetworking-plugins iptables iproute2 curl
    docker-compose python3-pip protobuf-compiler etcd-server etcd-client mosquitto mosquitto-clients
    # The fleet dashboard test drives headless Chromium through Selenium
    # (edge/barge-edge-e2e/tests/dashboard.rs, scripts/browser.py).
    chromium chromium-driver python3-selenium
    # barge build's tests compile C in a stage (gcc); bench/build.sh compares with buildah.
    gcc buildah
    # Cross-building (barge build --platform linux/arm64|linux/arm/v7): RUN steps under
    # qemu-user-static, registered in binfmt_misc (with the F flag) by binfmt-support.
    qemu-user-static binfmt-support)

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

# Cross-building tests: binfmt_misc mounted and qemu-aarch64/qemu-arm registered (a kernel
# or container that refuses is reported; the tests then check barge's error instead), and
# Debian's arm64 and armhf busybox-static unpacked where the tests look for them
# (barge_testutil::foreign_busybox).
if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
        echo "setup: cannot mount binfmt_misc: cross-building RUN steps will be refused" >&2
fi
if [[ -e /proc/sys/fs/binfmt_misc/register ]]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || echo "setup: qemu-aarch64 not registered" >&2
    update-binfmts --enable qemu-arm 2>/dev/null || echo "setup: qemu-arm not registered" >&2
fi
for arch in arm64 armhf; do
    dest=/usr/local/lib/barge-test/busybox-$arch
    [[ -x $dest/bin/busybox ]] && continue
    dpkg --print-foreign-architectures | grep -qx "$arch" || { dpkg --add-architecture "$arch"; apt-get update -qq; }
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq "busybox-static:$arch" >/dev/null)
    mkdir -p "$dest"
    dpkg-deb -x "$tmp"/busybox-static_*_"$arch".deb "$dest"
    rm -rf "$tmp"
done

# docker-py (PyPI `docker`) for api/barge-api/tests/docker_py.rs.
if ! python3 -c 'import docker' 2>/dev/null; then
    pip install -q docker || pip install -q --break-system-packages docker
fi
# pymodbus (PyPI) 3.10+ (ModbusDeviceContext, device_id=): the Modbus TCP server of
# edge/barge-mapper/tests (the mapper's Modbus tests).
if ! python3 -c 'from pymodbus.datastore import ModbusDeviceContext' 2>/dev/null; then
    pip install -q 'pymodbus>=3.10,<4' || pip install -q --break-system-packages 'pymodbus>=3.10,<4'
fi

if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
if ! command -v cargo >/dev/null; then
    # Debian 12's own cargo is too old for the dependencies: use rustup's stable toolchain.
    echo "setup: installing Rust with rustup" >&2
    apt-get install -y -qq curl ca-certificates >/dev/null
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    export PATH=$HOME/.cargo/bin:$PATH
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi
