#!/usr/bin/env bash
# The test command (README and CI run exactly this): setup, lint, then every test as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) != 0 ]]; then
    echo "test: the runtime tests start real containers: run as root" >&2
    exit 1
fi
. scripts/setup.sh
# A fresh clone builds once: incremental state would only cost disk (6 GB) and time.
if [[ ${CI:-} == true ]]; then export CARGO_INCREMENTAL=0; fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The container tests run `barge`, which starts `barge-shim` (and shims run `barge-exit`) from
# next to itself: nextest only builds the binaries of packages that have integration tests, so
# build them here. The edge e2e tests (edge/barge-edge-e2e) run `barge hub|edge|fleet`, which
# exec barge-hub, barge-edge and barge-fleet from next to `barge`: build those too (and
# barge-mapper, for `barge mapper`; its container test runs `barge` from target/debug).
cargo build --locked -p barge-shim -p barge-engine -p barge -p barge-hub -p barge-agent -p barge-fleet -p barge-mapper --bins
cargo nextest run --workspace --locked --no-fail-fast "$@"
# The runtime's container tests again under an old-style profile (Docker 18.09's era: nothing
# newer than Linux 4.14) and under Docker's default profile, given to every test bundle without
# a profile of its own: a system call the runtime makes after loading the container's filter
# fails them. (Not the VM and podman comparisons: 60 s of the package's time, no filter in play.)
for profile in old docker; do
    BARGE_TEST_SECCOMP=$profile cargo nextest run --locked -p barge-runtime-cli --no-fail-fast \
        -E 'not (binary(cgroup_v2_vm) | binary(podman))'
done
