#!/usr/bin/env bash
# Build `barge-daemon` the way it ships and copy it to DEST (default target/release/), next to
# `barge` (which execs it for `barge daemon`):
# - `--profile daemon`: release with panic = unwind (a panicking request fails alone);
# - glibc linked statically (`crt-static`): the daemon's resident memory is mostly code
#   pages, and a dynamic glibc maps libc, libm, libgcc_s and ld.so besides its own code,
#   ~2 MiB resident of which it uses a fraction (bench/daemon_api.sh: 100 containers,
#   11.9 -> 10.1 MiB). It needs no NSS (groups are read from /etc/group, registry work is in
#   the `barge-registry` helper), so nothing is dlopen'ed at run time;
# - linked with GNU ld: rust-lld (Rust's default linker on x86_64 since 1.90) makes a
#   static-pie of this binary that crashes at start (a jump to the ELF header, before main).
# --target keeps RUSTFLAGS off build scripts and proc macros (host crates stay dynamic).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-target/release}
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-fuse-ld=bfd" \
    cargo build --profile daemon --locked --target "$host" -p barge-api --bin barge-daemon
mkdir -p "$dest"
cp "target/$host/daemon/barge-daemon" "$dest/barge-daemon"
