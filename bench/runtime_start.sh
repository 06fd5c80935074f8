#!/usr/bin/env bash
# Container start speed: `barge-runtime run` vs `runc run` of a `true`
# container on the same busybox bundle, alternating ABAB.
#
# Also reports the release size of barge-runtime (and runc's, for
# comparison) and the peak RSS of each runtime's `create` process.
#
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Environment:
#   RUNS=50            timed `run`s per runtime (>= 30 for the project's goal)
#   WARMUP=3           untimed `run`s per runtime before timing
#   RSS_RUNS=5         `create`s per runtime for the peak RSS figure
#   BARGE_RUNTIME=...  use this binary instead of building one (release)
#   RUNC=...           runc binary (default: runc on PATH)
#   BUSYBOX=...        static busybox for the rootfs (default: /bin/busybox)
#   RUN_TIMEOUT=30     seconds one runtime invocation may take
#   SAMPLES=file.csv   also write every timed run (runtime,index,ns) there
#   SECCOMP=1          give the container Docker's default seccomp profile
#                      (`barge-runtime spec --seccomp`), as docker and podman do
#
# Needs root, python3, runc and a static busybox
# (Debian: apt-get install -y runc busybox-static).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

RUNS=${RUNS:-50}
WARMUP=${WARMUP:-3}
RSS_RUNS=${RSS_RUNS:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-30}
BUSYBOX=${BUSYBOX:-/bin/busybox}
SECCOMP=${SECCOMP:-0}

log() { printf 'runtime_start: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for n in RUNS WARMUP RSS_RUNS RUN_TIMEOUT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, got '${!n}'"
done
((RUNS >= 1)) || die "RUNS must be at least 1"
((RSS_RUNS >= 1)) || die "RSS_RUNS must be at least 1"
((RUN_TIMEOUT >= 1)) || die "RUN_TIMEOUT must be at least 1"
((RUNS >= 30)) || log "warning: RUNS=$RUNS is below the 30 the project asks for"

[[ $(id -u) -eq 0 ]] || die "must run as root (containers need it)"
command -v python3 >/dev/null || die "python3 not found"
RUNC=${RUNC:-$(command -v runc || true)}
[[ -n $RUNC && -x $RUNC ]] || die "runc not found (apt-get install -y runc)"
[[ -x $BUSYBOX ]] || die "$BUSYBOX not found (apt-get install -y busybox-static)"
if ! file_out=$(LC_ALL=C file -L "$BUSYBOX" 2>/dev/null) ||
    [[ $file_out != *static* ]]; then
    # `file` may be missing; ldd is the fallback check.
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked: the rootfs needs a static busybox"
    fi
fi

# --- the barge-runtime binary ------------------------------------------------
if [[ -n ${BARGE_RUNTIME:-} ]]; then
    [[ -x $BARGE_RUNTIME ]] || die "BARGE_RUNTIME=$BARGE_RUNTIME is not executable"
    barge=$(readlink -f "$BARGE_RUNTIME")
    log "using $barge"
else
    command -v cargo >/dev/null || die "cargo not found (or set BARGE_RUNTIME)"
    log "building barge-runtime (release)"
    (cd "$repo" && cargo build --release --quiet -p barge-runtime-cli) >&2
    barge=${CARGO_TARGET_DIR:-$repo/target}/release/barge-runtime
    [[ $barge = /* ]] || barge=$repo/$barge
    [[ -x $barge ]] || die "build did not produce $barge"
fi

# --- scratch space, cleaned up on any exit -----------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/barge-bench.XXXXXX")
cleanup() {
    local id
    # Force-delete anything a failed or interrupted run left behind.
    if [[ -d $work/root-barge ]]; then
        for id in $("$barge" --root "$work/root-barge" list -q 2>/dev/null || true); do
            "$barge" --root "$work/root-barge" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    if [[ -d $work/root-runc ]]; then
        for id in $("$RUNC" --root "$work/root-runc" list -q 2>/dev/null || true); do
            "$RUNC" --root "$work/root-runc" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the bundle, shared by both runtimes -------------------------------------
bundle=$work/bundle
rootfs=$bundle/rootfs
mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp}
cp "$BUSYBOX" "$rootfs/bin/busybox"
while read -r applet; do
    [[ -n $applet && $applet != busybox ]] || continue
    ln -sf busybox "$rootfs/bin/$applet"
done < <("$BUSYBOX" --list)
if [[ $SECCOMP == 1 ]]; then
    "$barge" spec --seccomp --bundle "$bundle"
else
    "$barge" spec --bundle "$bundle"
fi
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    cfg = json.load(f)
cfg["process"]["terminal"] = False
cfg["process"]["args"] = ["true"]
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")
PY
mkdir -p "$work/root-barge" "$work/root-runc"

# --- machine description -----------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
[[ -n $cpu ]] || cpu=$(uname -m)
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
mem=$(awk -v k="$mem_kib" 'BEGIN {printf "%.1f GiB", k / 1048576}')
runc_version=$("$RUNC" --version | head -n1)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
cgroups=v1
[[ -f /sys/fs/cgroup/cgroup.controllers ]] && cgroups=v2
[[ -f /sys/fs/cgroup/unified/cgroup.controllers ]] && cgroups="v1 (hybrid)"

time_bin=${TIME_BIN:-/usr/bin/time}
if [[ ! -x $time_bin ]] || ! "$time_bin" -f %M -o /dev/null true 2>/dev/null; then
    log "warning: GNU time ($time_bin) missing: peak RSS will not be measured" \
        "(apt-get install -y time)"
    time_bin=
fi

# --- measure and report ------------------------------------------------------
log "timing $RUNS runs each (ABAB), after $WARMUP warm-up runs each"
BARGE="$barge" RUNC="$RUNC" WORK="$work" BUNDLE="$bundle" RUNS="$RUNS" \
    WARMUP="$WARMUP" RSS_RUNS="$RSS_RUNS" RUN_TIMEOUT="$RUN_TIMEOUT" \
    MACHINE="nproc $(nproc), memory $mem, kernel $(uname -r), CPU $cpu, cgroups $cgroups" \
    SAMPLES="${SAMPLES:-}" RUNC_VERSION="$runc_version" REV="$rev" TIME_BIN="$time_bin" BUSYBOX="$BUSYBOX" SECCOMP="$SECCOMP" \
    python3 - <<'PY'
import math
import os
import statistics
import subprocess
import sys
import time

env = os.environ
work, bundle = env["WORK"], env["BUNDLE"]
runs, warmup, rss_runs = int(env["RUNS"]), int(env["WARMUP"]), int(env["RSS_RUNS"])
timeout = int(env["RUN_TIMEOUT"])
time_bin, busybox = env["TIME_BIN"], env["BUSYBOX"]
runtimes = {
    "barge": [env["BARGE"], "--root", os.path.join(work, "root-barge")],
    "runc": [env["RUNC"], "--root", os.path.join(work, "root-runc")],
}
errors = {"barge": [], "runc": []}


def log(msg):
    print(f"runtime_start: {msg}", file=sys.stderr, flush=True)


def invoke(name, args):
    """Run one runtime command; returns (wall ns, exit code, stderr)."""
    cmd = runtimes[name] + args
    t0 = time.perf_counter_ns()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, -1, f"timed out after {timeout}s"
    t1 = time.perf_counter_ns()
    return t1 - t0, p.returncode, p.stderr.decode(errors="replace").strip()


def run_once(name, cid):
    ns, rc, err = invoke(name, ["run", "--bundle", bundle, cid])
    if rc != 0:
        errors[name].append(f"run {cid}: exit {rc}: {err}")
        return None
    return ns


# Warm up (page cache, first-use costs) and check both runtimes work at all.
for i in range(warmup):
    for name in runtimes:
        run_once(name, f"warm-{name}-{i}")
for name in runtimes:
    if warmup and len(errors[name]) == warmup:
        log(f"{name} failed every warm-up run; first error:\n{errors[name][0]}")

# Timed runs, alternating A B A B ...
times = {"barge": [], "runc": []}
for i in range(runs):
    for name in runtimes:
        ns = run_once(name, f"bench-{name}-{i}")
        if ns is not None:
            times[name].append(ns)
    if (i + 1) % 10 == 0:
        log(f"{i + 1}/{runs} pairs done")


def peak_rss_kib(name, cid):
    """Max RSS (KiB) of the `create` process and the helpers it reaps.

    Measured by GNU time (wait4's ru_maxrss): ru_maxrss also counts the image
    a child had before exec, so a small waiter is needed (from python it
    would report python's own RSS). The floor is time's own RSS, ~1-2 MiB.
    """
    out = os.path.join(work, "rss.txt")
    cmd = [time_bin, "-o", out, "-f", "%M"] + runtimes[name] + [
        "create", "--bundle", bundle, cid]
    # The created container keeps the stdio it was given open until it is
    # deleted, so stderr goes to a file, not a pipe (a pipe would never close).
    errfile = os.path.join(work, "create.err")
    with open(errfile, "w+b") as ef:
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=ef, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        ef.seek(0)
        err = ef.read().decode(errors="replace").strip()
        if rc == -1:
            err += f" (timed out after {timeout}s)"
    subprocess.run(runtimes[name] + ["delete", "--force", cid],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout)
    if rc != 0:
        errors[name].append(f"create {cid}: exit {rc}: {err}")
        return None
    with open(out) as f:
        return int(f.read().split()[-1])


def floor_kib():
    """GNU time's own RSS floor: the same measurement of a static `true`."""
    out = os.path.join(work, "rss.txt")
    subprocess.run([time_bin, "-o", out, "-f", "%M", busybox, "true"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=timeout)
    with open(out) as f:
        return int(f.read().split()[-1])


rss = {"barge": [], "runc": []}
floor = None
if time_bin:
    log(f"measuring peak RSS of create ({rss_runs} each)")
    floor = floor_kib()
    for i in range(rss_runs):
        for name in runtimes:
            kib = peak_rss_kib(name, f"rss-{name}-{i}")
            if kib is not None:
                rss[name].append(kib)
else:
    log("GNU time not found (apt-get install -y time): skipping peak RSS")

if env.get("SAMPLES"):
    with open(env["SAMPLES"], "w") as f:
        f.write("runtime,index,ns\n")
        for name, xs in times.items():
            f.writelines(f"{name},{i},{ns}\n" for i, ns in enumerate(xs))
    log(f"raw timings written to {env['SAMPLES']}")

size = {"barge": os.stat(env["BARGE"]).st_size, "runc": os.stat(env["RUNC"]).st_size}


def pct(xs, p):
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def ms(ns):
    return f"{ns / 1e6:.2f}"


def stat_row(label, f, goal=""):
    b, r = times["barge"], times["runc"]
    if not b or not r:
        bv = ms(f(b)) if b else "failed"
        rv = ms(f(r)) if r else "failed"
        return f"| {label} | {bv} | {rv} | – | {goal} |"
    vb, vr = f(b), f(r)
    return f"| {label} | {ms(vb)} | {ms(vr)} | {vb / vr:.3f} | {goal} |"


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


out = []
out.append(f"**Machine:** {env['MACHINE']}  ")
out.append(f"**runc:** {env['RUNC_VERSION']} ({env['RUNC']})  ")
out.append(f"**barge:** {env['REV']} ({env['BARGE']})  ")
out.append(f"**Runs:** {runs} per runtime, alternating ABAB after {warmup} warm-up "
           f"runs each; `true` in a static-busybox rootfs, same bundle for both"
           + ("; Docker's default seccomp profile" if env.get('SECCOMP') == '1' else ""))
out.append("")
out.append("| metric | barge-runtime | runc | barge / runc | goal |")
out.append("| --- | ---: | ---: | ---: | --- |")
out.append(stat_row("`run` of `true`, mean (ms)", statistics.fmean, "ratio ≤ 0.333"))
out.append(stat_row("`run` of `true`, median (ms)", statistics.median))
out.append(stat_row("`run` of `true`, p95 (ms)", lambda xs: pct(xs, 95)))
out.append(stat_row("`run` of `true`, min (ms)", min))
out.append(stat_row("`run` of `true`, stddev (ms)", sd).rsplit("|", 3)[0] + "| | |")
mb = {k: v / 1e6 for k, v in size.items()}
mib = {k: v / 2**20 for k, v in size.items()}
out.append(f"| binary size, MB (10⁶ B) | {mb['barge']:.2f} | {mb['runc']:.2f} "
           f"| {size['barge'] / size['runc']:.3f} | barge ≤ 3 MB |")
out.append(f"| binary size, MiB (2²⁰ B) | {mib['barge']:.2f} | {mib['runc']:.2f} | | |")
label = f"peak RSS of `create` (MiB, max of {rss_runs})"
if not time_bin:
    out.append(f"| {label} | n/a | n/a | | needs GNU time |")
elif rss["barge"] and rss["runc"]:
    rb, rr = max(rss["barge"]) / 1024, max(rss["runc"]) / 1024
    out.append(f"| {label} | {rb:.2f} | {rr:.2f} | {rb / rr:.3f} | |")
else:
    rb = f"{max(rss['barge']) / 1024:.2f}" if rss["barge"] else "failed"
    rr = f"{max(rss['runc']) / 1024:.2f}" if rss["runc"] else "failed"
    out.append(f"| {label} | {rb} | {rr} | – | |")
ok = {k: len(v) for k, v in times.items()}
out.append(f"| successful timed runs | {ok['barge']}/{runs} | {ok['runc']}/{runs} | | |")
if floor is not None:
    out.append("")
    out.append(f"Peak RSS is GNU time's `%M` for the `create` process and the helpers "
               f"it reaps; the method's floor (time's own RSS, measured with a static "
               f"`true`) is {floor / 1024:.2f} MiB.")
print("\n".join(out), flush=True)

failed = False
for name, errs in errors.items():
    if errs:
        failed = True
        log(f"{name}: {len(errs)} failed invocation(s); first: {errs[0]}")
sys.exit(1 if failed else 0)
PY
