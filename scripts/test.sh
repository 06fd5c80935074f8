#!/usr/bin/env bash
# The test command (README and CI run exactly this): setup, lint, then every test as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) != 0 ]]; then
    echo "test: the runtime tests start real containers: run as root" >&2
    exit 1
fi
. scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The container tests run `barge`, which starts `barge-shim` from next to itself: nextest only
# builds the binaries of packages that have integration tests, so build it here.
cargo build --locked -p barge-shim
cargo nextest run --workspace --locked --no-fail-fast "$@"
