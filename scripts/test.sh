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
cargo nextest run --workspace --locked --no-fail-fast "$@"
