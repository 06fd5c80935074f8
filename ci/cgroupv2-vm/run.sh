#!/usr/bin/env bash
# Boot a real cgroup v2 kernel under QEMU (TCG) and run barge-runtime checks inside it.
#
# Fetches Debian's cloud kernel once (apt-get download + dpkg-deb -x into the cache dir, the
# host's own kernel is untouched), builds an initramfs holding busybox, barge-runtime (with
# its shared libraries) and OCI bundles, boots it, and reads the serial console. The VM prints
# one `V2CHECK <name> PASS|FAIL <detail>` line per check and `V2DONE`; this script exits 0 only
# if every expected check printed PASS and V2DONE appeared.
#
# Environment:
#   BARGE_RUNTIME   barge-runtime binary (default: <workspace>/target/debug/barge-runtime)
#   CGV2_CACHE      cache dir for the kernel and initramfs (default: <workspace>/target/cgroupv2-vm)
#   CGV2_KERNEL     use this vmlinuz instead of fetching Debian's linux-image-cloud-amd64
#   CGV2_LOG        console log file (default: $CGV2_CACHE/console.log)
#   CGV2_TIMEOUT    seconds the VM may run (default: 180)
#   CGV2_MEM        VM memory in MiB (default: 1024)
#   CGV2_VERBOSE=1  also stream the console while the VM runs
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${CGV2_CACHE:-$ROOT/target/cgroupv2-vm}
BARGE=${BARGE_RUNTIME:-$ROOT/target/debug/barge-runtime}
LOG=${CGV2_LOG:-$CACHE/console.log}
VM_TIMEOUT=${CGV2_TIMEOUT:-180}
MEM=${CGV2_MEM:-1024}
CHECKS=(detect placement relative-path delete exit-code oom-kill pids cpu memory devices hugetlb update pause stats oom-event)
KERNEL_PKG=linux-image-cloud-amd64
BUSYBOX=/bin/busybox

die() {
    echo "cgroupv2-vm: $*" >&2
    exit 2
}
note() { echo "cgroupv2-vm: $*" >&2; }
CLEANUP=()
cleanup() { ((${#CLEANUP[@]} == 0)) || rm -rf "${CLEANUP[@]}"; }
trap cleanup EXIT

t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# --- prerequisites ----------------------------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
command -v python3 >/dev/null || missing+=(python3)
if [[ ! -x $BUSYBOX ]] || ! [[ $(ldd "$BUSYBOX" 2>&1 || true) =~ not\ a\ dynamic\ executable|statically\ linked ]]; then
    # Debian's busybox-static puts a static binary at /bin/busybox; the dynamic `busybox`
    # package would not run inside the initramfs.
    missing+=(busybox-static)
fi
if ((${#missing[@]})); then
    die "missing host tools: apt-get install ${missing[*]} (the kernel is fetched by this script with apt-get download $KERNEL_PKG)"
fi
[[ -x $BARGE ]] || die "no barge-runtime at $BARGE: cargo build -p barge-runtime-cli (or set BARGE_RUNTIME)"
mkdir -p "$CACHE"

# --- kernel -----------------------------------------------------------------------------------
fetch_kernel() {
    local kdir=$CACHE/kernel tmp meta dep
    tmp=$(mktemp -d "$CACHE/.kernel-XXXXXX")
    CLEANUP+=("$tmp")
    # apt-get download drops privileges to _apt when it can write the directory.
    chmod 0777 "$tmp"
    (
        cd "$tmp"
        dl() { timeout 300 apt-get download -q "$@" >apt.log 2>&1; }
        if ! dl "$KERNEL_PKG"; then
            if [[ $(id -u) == 0 ]]; then
                note "apt-get download failed; running apt-get update once"
                timeout 300 apt-get update -qq >>apt.log 2>&1 || true
            fi
            dl "$KERNEL_PKG" || { cat apt.log >&2; exit 1; }
        fi
        meta=$(ls ./"$KERNEL_PKG"_*.deb)
        # The metapackage depends on the versioned image, e.g. linux-image-6.1.0-56-cloud-amd64.
        dep=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -n1)
        [[ -n $dep ]] || { echo "no linux-image dependency in $meta" >&2; exit 1; }
        dl "$dep" || { cat apt.log >&2; exit 1; }
        dpkg-deb -x ./"$dep"_*.deb x
        vmlinuz=$(ls x/boot/vmlinuz-*)
        config=$(ls x/boot/config-*)
        for opt in CONFIG_CGROUPS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP CONFIG_DEVTMPFS CONFIG_TMPFS \
            CONFIG_SERIAL_8250_CONSOLE CONFIG_PID_NS CONFIG_NET_NS CONFIG_IPC_NS CONFIG_UTS_NS CONFIG_MEMCG; do
            grep -q "^$opt=y" "$config" || { echo "$dep: $opt is not built in" >&2; exit 1; }
        done
        mkdir -p out
        cp "$vmlinuz" out/vmlinuz
        cp "$config" out/config
        echo "$dep $(dpkg-deb -f ./"$dep"_*.deb Version)" >out/VERSION
    ) || {
        rm -rf "$tmp"
        die "could not fetch the kernel ($KERNEL_PKG via apt-get download); set CGV2_KERNEL=/path/to/vmlinuz to use another"
    }
    # A concurrent run may have won the race: its kernel is as good as ours.
    if [[ ! -s $kdir/VERSION ]]; then
        rm -rf "$kdir"
        mv -T "$tmp/out" "$kdir" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    [[ -s $kdir/vmlinuz && -s $kdir/VERSION ]] || die "kernel cache $kdir is incomplete"
}

if [[ -n ${CGV2_KERNEL:-} ]]; then
    KERNEL=$CGV2_KERNEL
    [[ -r $KERNEL ]] || die "CGV2_KERNEL=$KERNEL is not readable"
    KVER="custom $KERNEL"
else
    if [[ ! -s $CACHE/kernel/vmlinuz || ! -s $CACHE/kernel/VERSION ]]; then
        tk=$(date +%s.%N)
        note "fetching $KERNEL_PKG into $CACHE/kernel"
        fetch_kernel
        note "kernel fetched in $(elapsed "$tk") s"
    fi
    KERNEL=$CACHE/kernel/vmlinuz
    KVER=$(cat "$CACHE/kernel/VERSION")
fi

# --- initramfs --------------------------------------------------------------------------------
# Shared libraries barge-runtime needs (none if it is static), and the dynamic loader.
libs=()
if ldd_out=$(ldd "$BARGE" 2>/dev/null); then
    while read -r lib; do
        [[ -n $lib ]] && libs+=("$lib")
    done < <(echo "$ldd_out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
fi

key=$(cat "$BARGE" "$BUSYBOX" "$HERE/init" "$HERE/checks.sh" "${BASH_SOURCE[0]}" "${libs[@]}" | sha256sum | cut -c1-16)
INITRD=$CACHE/initramfs-$key.cpio.gz

build_initramfs() {
    local st bin name
    st=$(mktemp -d "$CACHE/.initramfs-XXXXXX")
    CLEANUP+=("$st")
    mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,run,tmp,newroot,bundles}
    cp "$BUSYBOX" "$st/bin/busybox"
    for name in $("$BUSYBOX" --list); do
        [[ $name == busybox ]] || ln -sf busybox "$st/bin/$name"
    done
    if ! strip -o "$st/usr/local/bin/barge-runtime" "$BARGE" 2>/dev/null; then
        cp "$BARGE" "$st/usr/local/bin/barge-runtime"
    fi
    for lib in "${libs[@]}"; do
        mkdir -p "$st$(dirname "$lib")"
        cp -L "$lib" "$st$lib"
    done
    install -m 0755 "$HERE/init" "$st/init"
    install -m 0755 "$HERE/checks.sh" "$st/checks.sh"
    # The kernel opens /dev/console for init before devtmpfs is mounted (init copes without).
    if [[ $(id -u) == 0 ]]; then
        mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
    fi

    # The containers' rootfs: busybox and its applets, shared read-only by every bundle.
    local rfs=$st/rootfs
    mkdir -p "$rfs"/{bin,sbin,etc,proc,sys,dev,tmp,root,var,run,usr/bin}
    chmod 1777 "$rfs/tmp"
    cp "$BUSYBOX" "$rfs/bin/busybox"
    for name in $("$BUSYBOX" --list); do
        [[ $name == busybox ]] || ln -sf busybox "$rfs/bin/$name"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rfs/etc/group"

    # One bundle per check, from barge's own default spec (`barge-runtime spec`).
    bin=$st/usr/local/bin/barge-runtime
    local b
    for b in detect sleep relpath exit7 oom pids cpu memory devices hugetlb statbox oomlate; do
        mkdir -p "$st/bundles/$b"
        "$bin" spec --bundle "$st/bundles/$b"
    done
    python3 - "$st/bundles" <<'EOF'
import json, sys, os

bundles = sys.argv[1]
scripts = {
    # /proc/self/cgroup between markers, then the mountinfo line of /sys/fs/cgroup.
    "detect": ["sh", "-c",
               "echo 'CG<'; cat /proc/self/cgroup; echo '>CG'; "
               "grep ' /sys/fs/cgroup ' /proc/self/mountinfo"],
    "sleep": ["sleep", "30"],
    "relpath": ["sleep", "30"],
    "exit7": ["sh", "-c", "exit 7"],
}
# Cgroup files seen from inside (the container's cgroup namespace root), one per line.
cat = "cd /sys/fs/cgroup && cat "
scripts.update({
    "oom": ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    # The loop runs in a child shell, which stops at the first failed fork.
    "pids": ["sh", "-c",
             "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 30 & done'; "
             "read n < /sys/fs/cgroup/pids.current; read m < /sys/fs/cgroup/pids.max; "
             "echo current=$n max=$m"],
    "cpu": ["sh", "-c",
            cat + "cpu.max cpu.weight cpuset.cpus; "
            "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; grep nr_throttled cpu.stat"],
    "memory": ["sh", "-c", cat + "memory.max memory.swap.max memory.low"],
    "devices": ["sh", "-c",
                "mknod /dev/xcon c 5 1; mknod /dev/xtty c 4 64; "
                "for t in '/dev/xcon <' '/dev/xcon >' '/dev/xtty <' '/dev/null >'; do "
                "set -- $t; if [ $2 = '<' ]; then (exec 3<$1) 2>/dev/null; "
                "else (exec 3>$1) 2>/dev/null; fi && echo \"$1$2ok\" || echo \"$1$2denied\"; done"],
    "hugetlb": ["sh", "-c", cat + "hugetlb.2MB.max hugetlb.2MB.rsvd.max"],
    "statbox": ["sh", "-c", "sleep 60 & sleep 60"],
    # OOM only after `events` had time to start watching.
    "oomlate": ["sh", "-c", "sleep 3; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 60"],
})
resources = {
    "oom": {"memory": {"limit": 16 << 20}},
    "pids": {"pids": {"limit": 6}},
    "cpu": {"cpu": {"shares": 512, "quota": 10000, "period": 100000, "cpus": "0"}},
    "memory": {"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20}},
    "devices": {"devices": [{"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 5, "minor": 1,
                             "access": "r"}]},
    "hugetlb": {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]},
    "statbox": {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}},
    "oomlate": {"memory": {"limit": 16 << 20}},
}
for name, args in scripts.items():
    path = os.path.join(bundles, name, "config.json")
    with open(path) as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["root"] = {"path": "/rootfs", "readonly": True}
    if name == "relpath":
        c["linux"]["cgroupsPath"] = "mygroup/c1"
    if name in resources:
        c["linux"]["resources"] = resources[name]
    if name == "devices":
        for s in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][s].append("CAP_MKNOD")
    with open(path, "w") as f:
        json.dump(c, f, indent=2)
EOF

    local tmpcpio
    tmpcpio=$(mktemp "$CACHE/.initramfs-XXXXXX.cpio.gz")
    CLEANUP+=("$tmpcpio")
    (cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$tmpcpio"
    chmod 0644 "$tmpcpio"
    mv "$tmpcpio" "$INITRD"
    # Images of older binaries are no longer needed (left alone for an hour: a concurrent run
    # may be booting one).
    find "$CACHE" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "$(basename "$INITRD")" -mmin +60 -delete
}

if [[ ! -s $INITRD ]]; then
    ti=$(date +%s.%N)
    build_initramfs
    note "initramfs built in $(elapsed "$ti") s ($(du -h "$INITRD" | cut -f1), key $key)"
fi

# --- boot -------------------------------------------------------------------------------------
note "kernel: $KVER"
note "booting (TCG, ${MEM} MiB, 2 vCPUs, timeout ${VM_TIMEOUT} s); console log: $LOG"
mkdir -p "$(dirname "$LOG")"
tb=$(date +%s.%N)
qemu=(timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -m "$MEM" -smp 2
    -nographic -no-reboot -net none -kernel "$KERNEL" -initrd "$INITRD"
    -append "console=ttyS0 quiet panic=-1 rdinit=/init")
set +e
if [[ ${CGV2_VERBOSE:-} == 1 ]]; then
    "${qemu[@]}" </dev/null 2>&1 | sed -u 's/\r//g; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$LOG"
    qrc=${PIPESTATUS[0]}
else
    "${qemu[@]}" </dev/null 2>&1 | sed 's/\r//g; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' >"$LOG"
    qrc=${PIPESTATUS[0]}
fi
set -e
note "VM ran $(elapsed "$tb") s (qemu exit $qrc); total $(elapsed "$t0") s"

# --- verdict ----------------------------------------------------------------------------------
grep -E '^V2(INFO|CHECK) ' "$LOG" || true
fail=0
for c in "${CHECKS[@]}"; do
    if grep -qE "^V2CHECK $c PASS( |$)" "$LOG"; then
        :
    elif grep -qE "^V2CHECK $c " "$LOG"; then
        note "check $c FAILED"
        fail=1
    else
        note "check $c MISSING (no V2CHECK line)"
        fail=1
    fi
done
if ! grep -qx 'V2DONE' "$LOG"; then
    note "V2DONE missing: the VM did not finish the checks"
    fail=1
fi
if ((qrc == 124 || qrc == 137)); then
    note "the VM timed out after $VM_TIMEOUT s"
    fail=1
elif ((qrc != 0)); then
    note "qemu exited with $qrc"
    fail=1
fi
if ((fail)); then
    note "FAILED; last lines of $LOG:"
    tail -n 80 "$LOG" >&2
    exit 1
fi
echo "cgroupv2-vm: all ${#CHECKS[@]} checks passed"
