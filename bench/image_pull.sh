#!/usr/bin/env bash
# Image pull speed: `barge pull` vs `skopeo copy` + `umoci unpack` vs
# `podman pull`, of one multi-layer gzip image from a local registry,
# alternating A B C, A B C, ...
#
# Starts Debian's docker-registry (distribution 2.8) on a free loopback port,
# builds a test image with umoci (LAYERS gzip layers of about LAYER_MB MB
# each: a static busybox, random data, base64 and hex text, copies of
# /usr/bin binaries), pushes it with skopeo, then times each contender
# pulling and unpacking it into an empty store. Also reports the peak RSS
# of one pull per contender.
#
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=5             timed pulls per contender
#   WARMUP=1           untimed pulls per contender before timing
#   LAYERS=5           layers in the test image (>= 5 for the project's goal)
#   LAYER_MB=22        uncompressed MB (10^6 B) of data per layer
#   RUN_TIMEOUT=60     seconds one pull may take
#   BARGE=...          use this barge binary instead of building one (release)
#   PODMAN=0           leave podman out
#   SAMPLES=file.csv   also write every timed run (tool,index,ns) there
#   CONCURRENCY="1 2 3 4 5"  max-concurrent-downloads values for barge's RSS table
#                      (empty: no table)
#
# Needs root, python3, curl, docker-registry, umoci, skopeo and (optional)
# podman, GNU time for the RSS figures (Debian: apt-get install -y
# docker-registry umoci skopeo podman busybox-static time curl).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-22}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
CONCURRENCY=${CONCURRENCY-1 2 3 4 5}
PODMAN=${PODMAN:-1}
BUSYBOX=${BUSYBOX:-/bin/busybox}

log() { printf 'image_pull: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for n in RUNS WARMUP LAYERS LAYER_MB RUN_TIMEOUT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, got '${!n}'"
done
for c in $CONCURRENCY; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY must list whole numbers >= 1, got '$c'"
done
((RUNS >= 1)) || die "RUNS must be at least 1"
((LAYERS >= 1)) || die "LAYERS must be at least 1"
((LAYER_MB >= 1)) || die "LAYER_MB must be at least 1"
((RUN_TIMEOUT >= 1)) || die "RUN_TIMEOUT must be at least 1"
((LAYERS >= 5)) || log "warning: LAYERS=$LAYERS is below the 5 the project asks for"
((LAYERS * LAYER_MB >= 100)) ||
    log "warning: LAYERS*LAYER_MB=$((LAYERS * LAYER_MB)) MB is below the 100 MB the project asks for"

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in python3 curl umoci skopeo timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
REGISTRY=${REGISTRY:-/usr/bin/docker-registry}
[[ -x $REGISTRY ]] || die "$REGISTRY not found (apt-get install -y docker-registry)"
[[ -x $BUSYBOX ]] || die "$BUSYBOX not found (apt-get install -y busybox-static)"
podman_bin=
if [[ $PODMAN == 1 ]]; then
    podman_bin=$(command -v podman || true)
    [[ -n $podman_bin ]] || log "warning: podman not found: its row will be n/a"
fi
time_bin=${TIME_BIN:-/usr/bin/time}
if [[ ! -x $time_bin ]] || ! "$time_bin" -f %M -o /dev/null true 2>/dev/null; then
    log "warning: GNU time ($time_bin) missing: peak RSS will not be measured" \
        "(apt-get install -y time)"
    time_bin=
fi

# --- the barge binary --------------------------------------------------------
if [[ -n ${BARGE:-} ]]; then
    [[ -x $BARGE ]] || die "BARGE=$BARGE is not executable"
    barge=$(readlink -f "$BARGE")
    log "using $barge"
else
    command -v cargo >/dev/null || die "cargo not found (or set BARGE)"
    log "building barge (release)"
    (cd "$repo" && cargo build --release --quiet -p barge) >&2
    barge=${CARGO_TARGET_DIR:-$repo/target}/release/barge
    [[ $barge = /* ]] || barge=$repo/$barge
    [[ -x $barge ]] || die "build did not produce $barge"
fi
"$barge" pull --help >/dev/null 2>&1 || die "$barge has no \`pull\` command (stale binary?)"

# --- scratch space and the registry, cleaned up on any exit -----------------
work=$(mktemp -d "${TMPDIR:-/tmp}/barge-pull-bench.XXXXXX")
registry_pid=

# Unmount whatever a tool left mounted under $1 (podman's overlay driver may
# keep its home mounted), deepest first.
unmount_under() {
    local m
    while read -r m; do
        if [[ -n $m ]]; then umount -l "$m" 2>/dev/null || true; fi
    done < <(findmnt -rn -o TARGET | awk -v p="$1" '$0 == p || index($0, p "/") == 1' | sort -r)
}

cleanup() {
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    unmount_under "$work"
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_registry() {
    local attempt i
    mkdir -p "$work/registry"
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
        "$REGISTRY" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
        registry_pid=$!
        for ((i = 0; i < 100; i++)); do
            if curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; then
                return 0
            fi
            kill -0 "$registry_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
        registry_pid=
        log "registry did not come up on port $port (attempt $attempt): $(tail -n 3 "$work/registry.log")"
    done
    die "could not start $REGISTRY"
}

log "starting $REGISTRY"
start_registry
ref=127.0.0.1:$port/bench:1
log "registry on 127.0.0.1:$port"

# --- the test image ------------------------------------------------------------
# Each layer: LAYER_MB MB made of about 2/11 random bytes (incompressible),
# 2/11 base64 text (~75% after gzip), 3/11 hex dump text (~45%) and 4/11
# copies of /usr/bin binaries (~40-60%): about 60-70% overall, as real
# images. Files are at most 2 MB.
mapfile -t host_bins < <(find /usr/bin -maxdepth 1 -type f -size +20k -size -2M 2>/dev/null | sort)
bin_next=0

# fill KIND DIR BYTES: write files of KIND (random, base64, hex) into DIR.
fill() {
    local kind=$1 dir=$2 left=$3 n=0 chunk
    mkdir -p "$dir"
    while ((left > 0)); do
        chunk=$((left < 2000000 ? left : 2000000))
        case $kind in
        random) head -c "$chunk" /dev/urandom >"$dir/$kind$n.bin" ;;
        # The generators die of SIGPIPE when head has enough: not an error.
        base64) { base64 /dev/urandom || true; } | head -c "$chunk" >"$dir/$kind$n.txt" ;;
        hex) { od -An -tx1 -v /dev/urandom || true; } | head -c "$chunk" >"$dir/$kind$n.txt" ;;
        esac
        left=$((left - chunk))
        n=$((n + 1))
    done
}

# copy_bins DIR BYTES: copy host binaries (round robin over /usr/bin) into DIR.
copy_bins() {
    local dir=$1 left=$2 f size
    mkdir -p "$dir"
    if ((${#host_bins[@]} == 0)); then
        fill hex "$dir" "$left"
        return
    fi
    while ((left > 0)); do
        f=${host_bins[bin_next % ${#host_bins[@]}]}
        bin_next=$((bin_next + 1))
        size=$(stat -c %s "$f")
        cp "$f" "$dir/${f##*/}.$bin_next"
        left=$((left - size))
    done
}

build_image() {
    local layout=$work/layout bundle=$work/build i unit rootfs applet
    umoci init --layout "$layout"
    umoci new --image "$layout:bench"
    unit=$((LAYER_MB * 1000000 / 11))
    for ((i = 1; i <= LAYERS; i++)); do
        umoci unpack --image "$layout:bench" "$bundle" >/dev/null
        rootfs=$bundle/rootfs
        if ((i == 1)); then
            mkdir -p "$rootfs"/{bin,dev,etc,home,proc,root,sys,tmp,usr/bin,var/log}
            chmod 1777 "$rootfs/tmp"
            cp "$BUSYBOX" "$rootfs/bin/busybox"
            while read -r applet; do
                [[ -n $applet && $applet != busybox ]] || continue
                ln -sf busybox "$rootfs/bin/$applet"
            done < <("$BUSYBOX" --list)
        fi
        fill random "$rootfs/data/layer$i/random" $((2 * unit))
        fill base64 "$rootfs/data/layer$i/base64" $((2 * unit))
        fill hex "$rootfs/data/layer$i/hex" $((3 * unit))
        copy_bins "$rootfs/data/layer$i/bin" $((LAYER_MB * 1000000 - 7 * unit))
        umoci repack --image "$layout:bench" "$bundle" >/dev/null
        rm -rf -- "$bundle"
    done
    umoci gc --layout "$layout"
}

log "building the test image ($LAYERS layers of ~$LAYER_MB MB)"
build_image
log "pushing it to $ref"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout:bench" "docker://$ref" >&2

# Layer count, compressed and uncompressed size, tar entries: from the layout.
image_stats=$(python3 - "$work/layout" <<'PY'
import gzip, json, os, sys, tarfile
layout = sys.argv[1]
def blob(d):
    return os.path.join(layout, "blobs", *d.split(":", 1))
index = json.load(open(os.path.join(layout, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
comp = unc = entries = 0
for layer in manifest["layers"]:
    assert layer["mediaType"].endswith("+gzip"), layer["mediaType"]
    comp += layer["size"]
    with gzip.open(blob(layer["digest"])) as f:
        while chunk := f.read(1 << 20):
            unc += len(chunk)
    with tarfile.open(blob(layer["digest"]), "r:gz") as t:
        entries += sum(1 for _ in t)
n = len(manifest["layers"])
print(f"{n} gzip layer{'s' if n != 1 else ''}, {comp / 1e6:.1f} MB compressed, {unc / 1e6:.1f} MB "
      f"uncompressed ({100 * comp / unc:.0f}%), {entries} tar entries")
PY
)
log "image: $image_stats"

# --- the contenders ------------------------------------------------------------
# prep_X cleans the store (untimed), exec_X is timed, check_X verifies (untimed).
barge_root=$work/barge-root
barge_etc=$work/barge-etc
sk_layout=$work/sk
sk_bundle=$work/sk-bundle
pm_root=$work/podman-root
pm_run=$work/podman-run
pm_tmp=$work/podman-tmp
mkdir -p "$barge_etc"

prep_barge() { rm -rf -- "$barge_root"; }
exec_barge() {
    timeout -k 5 "$RUN_TIMEOUT" "$barge" --root "$barge_root" --config "$barge_etc" pull -q "$ref"
}
check_barge() {
    "$barge" --root "$barge_root" --config "$barge_etc" images |
        awk -v r="127.0.0.1:$port/bench" '$1 == r && $2 == "1" { found = 1 } END { exit !found }'
}

prep_skopeo() { rm -rf -- "$sk_layout" "$sk_bundle"; }
exec_skopeo() {
    timeout -k 5 "$RUN_TIMEOUT" skopeo --insecure-policy copy -q --src-tls-verify=false \
        "docker://$ref" "oci:$sk_layout:bench" &&
        timeout -k 5 "$RUN_TIMEOUT" umoci unpack --image "$sk_layout:bench" "$sk_bundle"
}
check_skopeo() { [[ -x $sk_bundle/rootfs/bin/busybox ]]; }

podman_cmd=()
[[ -n $podman_bin ]] && podman_cmd=("$podman_bin" --root "$pm_root" --runroot "$pm_run"
    --tmpdir "$pm_tmp" --storage-driver overlay)
prep_podman() {
    unmount_under "$pm_root"
    unmount_under "$pm_run"
    rm -rf -- "$pm_root" "$pm_run" "$pm_tmp"
}
exec_podman() { timeout -k 5 "$RUN_TIMEOUT" "${podman_cmd[@]}" pull --tls-verify=false -q "$ref"; }
check_podman() { "${podman_cmd[@]}" image exists "$ref"; }

tools=(barge skopeo)
[[ -n $podman_bin ]] && tools+=(podman)
declare -A label=(
    [barge]="barge pull"
    [skopeo]="skopeo copy + umoci unpack"
    [podman]="podman pull (overlay)"
)
declare -A broken=()
[[ $PODMAN == 1 && -z $podman_bin ]] && broken[podman]="podman not found"
samples=$work/samples.csv
: >"$samples"

# run_one TOOL PHASE INDEX: one pull, timed; records the sample if PHASE=timed.
run_one() {
    local tool=$1 phase=$2 i=$3 t0 t1 rc=0 out=$work/$1.out
    "prep_$tool" >/dev/null 2>&1
    # Nothing dirty in the page cache from the previous run: barge's syncfs
    # would otherwise write back another tool's files on its own clock.
    sync
    t0=$(date +%s%N)
    "exec_$tool" >"$out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    local why=
    if ((rc == 124)); then
        why="timed out after ${RUN_TIMEOUT}s"
    elif ((rc != 0)); then
        why="exit $rc"
    elif ! "check_$tool" >>"$out" 2>&1; then
        why="exit 0, but the image is not in its store"
    fi
    if [[ -n $why ]]; then
        # One line, no tabs: it goes into the report.
        why="$why: $(tail -n 5 "$out" | tr '\t\n' '  ' | sed 's/ *$//')"
        [[ $tool == barge ]] && die "barge failed ($phase run $i): $why"
        broken[$tool]=$why
        log "${label[$tool]} failed ($phase run $i), leaving it out: $why"
        return 0
    fi
    if [[ $phase == timed ]]; then
        echo "$tool,$i,$((t1 - t0))" >>"$samples"
    fi
    log "$phase $i: ${label[$tool]}: $(awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.3f s", ns / 1e9}')"
}

round() {
    local phase=$1 i=$2 tool
    for tool in "${tools[@]}"; do
        [[ -n ${broken[$tool]:-} ]] || run_one "$tool" "$phase" "$i"
    done
}

for ((w = 1; w <= WARMUP; w++)); do round warmup "$w"; done
log "timing $RUNS pulls each, alternating ${tools[*]}"
for ((r = 1; r <= RUNS; r++)); do round timed "$r"; done

# Peak RSS (KiB) of one pull: GNU time's %M, the largest process of the
# command's tree that it waited for (skopeo and umoci separately: the max).
declare -A rss=()
if [[ -n $time_bin ]]; then
    log "measuring peak RSS of one pull each"
    for tool in "${tools[@]}"; do
        [[ -z ${broken[$tool]:-} ]] || continue
        "prep_$tool" >/dev/null 2>&1
        case $tool in
        barge)
            "$time_bin" -o "$work/rss" -f %M "$barge" --root "$barge_root" \
                --config "$barge_etc" pull -q "$ref" >/dev/null 2>&1 || continue
            rss[$tool]=$(tail -n1 "$work/rss")
            ;;
        skopeo)
            "$time_bin" -o "$work/rss" -f %M skopeo --insecure-policy copy -q \
                --src-tls-verify=false "docker://$ref" "oci:$sk_layout:bench" >/dev/null 2>&1 || continue
            "$time_bin" -a -o "$work/rss" -f %M umoci unpack --image "$sk_layout:bench" \
                "$sk_bundle" >/dev/null 2>&1 || continue
            rss[$tool]=$(sort -n "$work/rss" | tail -n1)
            ;;
        podman)
            "$time_bin" -o "$work/rss" -f %M "${podman_cmd[@]}" pull --tls-verify=false -q \
                "$ref" >/dev/null 2>&1 || continue
            rss[$tool]=$(tail -n1 "$work/rss")
            ;;
        esac
    done
fi

# Peak RSS and time of barge against max-concurrent-downloads (config.json), one pull each
# (the default, 3, is also the row above).
sweep=$work/sweep.tsv
: >"$sweep"
if [[ -n $time_bin && -n $CONCURRENCY ]]; then
    log "peak RSS against max-concurrent-downloads: $CONCURRENCY"
    for c in $CONCURRENCY; do
        printf '{"max-concurrent-downloads": %d}\n' "$c" >"$barge_etc/config.json"
        prep_barge
        sync
        "$time_bin" -o "$work/rss" -f '%e %M' "$barge" --root "$barge_root" \
            --config "$barge_etc" pull -q "$ref" >/dev/null 2>&1 || die "barge pull failed with max-concurrent-downloads $c"
        printf '%s\t%s\n' "$c" "$(tail -n1 "$work/rss")" >>"$sweep"
    done
    rm -f "$barge_etc/config.json"
fi

if [[ -n ${SAMPLES:-} ]]; then
    { echo "tool,index,ns" && cat "$samples"; } >"$SAMPLES"
    log "raw timings written to $SAMPLES"
fi

# --- machine description and report --------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
[[ -n $cpu ]] || cpu=$(uname -m)
mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
fs=$(findmnt -n -o FSTYPE -T "$work" || echo unknown)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
versions="$(skopeo --version | head -n1), $(umoci --version | head -n1)"
[[ -n $podman_bin ]] && versions+=", $("$podman_bin" --version | head -n1)"
versions+=", docker-registry $("$REGISTRY" --version 2>/dev/null | awk 'NR == 1 {print $NF}')"

report_rows() {
    local tool
    for tool in barge skopeo podman; do
        [[ $tool != podman || $PODMAN == 1 ]] || continue
        printf '%s\t%s\t%s\t%s\n' "$tool" "${label[$tool]}" "${rss[$tool]:-}" "${broken[$tool]:-}"
    done
}

MACHINE="nproc $(nproc), memory $mem, kernel $(uname -r), CPU $cpu, $fs" \
    IMAGE="$image_stats" VERSIONS="$versions" REV="$rev" BARGE_BIN="$barge" RUNS="$RUNS" \
    WARMUP="$WARMUP" python3 - "$samples" <(report_rows) "$sweep" <<'PY'
import os
import statistics
import sys

env = os.environ
times = {}
with open(sys.argv[1]) as f:
    for line in f:
        tool, _, ns = line.strip().split(",")
        times.setdefault(tool, []).append(int(ns) / 1e9)
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[2])]

base = statistics.fmean(times["barge"])
out = [
    f"**Machine:** {env['MACHINE']}  ",
    f"**Image:** {env['IMAGE']}, from a local docker-registry on 127.0.0.1  ",
    f"**Tools:** {env['VERSIONS']}  ",
    f"**barge:** {env['REV']} ({env['BARGE_BIN']})  ",
    f"**Runs:** {env['RUNS']} per tool, alternating, after {env['WARMUP']} warm-up "
    "run(s) each; every pull into an empty store, page cache warm, `sync` before each",
    "",
    "| tool | mean s | stddev s | min s | max s | ratio vs barge | peak RSS MiB |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]
failed = False
for tool, label, rss, broken in rows:
    xs = times.get(tool, [])
    rss_s = f"{int(rss) / 1024:.1f}" if rss else "n/a"
    if broken or not xs:
        out.append(f"| {label} | n/a | | | | | {rss_s} |")
        failed |= tool != "podman"
        continue
    mean = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    out.append(f"| {label} | {mean:.3f} | {sd:.3f} | {min(xs):.3f} | {max(xs):.3f} "
               f"| {mean / base:.2f} | {rss_s} |")
for tool, label, _, broken in rows:
    if broken:
        out.append("")
        out.append(f"{label}: n/a, {broken}")
sweep = [line.split() for line in open(sys.argv[3]) if line.strip()]
if sweep:
    out += ["", "| barge pull, max-concurrent-downloads | s (one pull) | peak RSS MiB |",
            "| ---: | ---: | ---: |"]
    for c, secs, kib in sweep:
        out.append(f"| {c} | {float(secs):.2f} | {int(kib) / 1024:.1f} |")
print("\n".join(out), flush=True)
sys.exit(1 if failed else 0)
PY
