#!/bin/sh
# barge-runtime on a pure cgroup v2 host: run inside the test VM by /init (busybox sh, as root,
# in the root cgroup). Prints `V2CHECK <name> PASS|FAIL <detail>` per check; every
# barge-runtime call is bounded by `timeout`.
#
# Bundles (built by run.sh from `barge-runtime spec`, rootfs /rootfs read-only):
#   detect   sh -c: /proc/self/cgroup between CG< >CG markers, then its /sys/fs/cgroup mountinfo line
#   sleep    sleep 30
#   relpath  sleep 30, linux.cgroupsPath "mygroup/c1"
#   exit7    sh -c 'exit 7'

T=30
CG=/sys/fs/cgroup

rt() { timeout "$T" barge-runtime --root /run/barge "$@"; }
flat() { tr '\n' ' ' | sed 's/  */ /g; s/ $//'; }
pass() { echo "V2CHECK $1 PASS $2"; }
fail() { echo "V2CHECK $1 FAIL $2"; }
# The container init's pid from `state ID` ("pid": N).
pid_of() { rt state "$1" 2>/dev/null | sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' | head -n 1; }
# "file:contents" of a file, flattened, or "file:(absent)".
show() { if [ -e "$1" ]; then echo "$1=[$(flat <"$1")]"; else echo "$1=(absent)"; fi; }

echo "V2INFO runtime shell cgroup: $(cat /proc/self/cgroup)"

# --- 1. detect: the container sees its own cgroup namespace and a cgroup2 mount -------------
out=$(rt run -b /bundles/detect detect </dev/null 2>/tmp/detect.err)
rc=$?
cg=$(echo "$out" | sed -n '/^CG<$/,/^>CG$/p' | sed '1d;$d')
mi=$(echo "$out" | awk '$5 == "/sys/fs/cgroup"')
# mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
fstype=$(echo "$mi" | sed -n 's/.* - \([^ ]*\) .*/\1/p')
mroot=$(echo "$mi" | awk '{ print $4 }')
detail="rc=$rc /proc/self/cgroup=[$(echo "$cg" | flat)] /sys/fs/cgroup: fstype=${fstype:-none} root=${mroot:-none}"
if [ "$rc" = 0 ] && [ "$cg" = "0::/" ] && [ "$fstype" = cgroup2 ] && [ "$mroot" = / ]; then
    pass detect "$detail"
else
    fail detect "$detail stdout=[$(echo "$out" | flat)] stderr=[$(flat </tmp/detect.err)]"
fi
rt delete --force detect >/dev/null 2>&1

# --- 2. placement: default cgroupsPath is <runtime's cgroup>/barge-<id> ----------------------
rt run -d -b /bundles/sleep place </dev/null >/tmp/place.out 2>&1
rc=$?
pid=$(pid_of place)
if [ -n "$pid" ] && [ -e "/proc/$pid/cgroup" ]; then
    pcg=$(cat "/proc/$pid/cgroup")
else
    pcg="(no pid)"
fi
detail="rc=$rc pid=${pid:-none} /proc/pid/cgroup=[$pcg] $(show $CG/barge-place/cgroup.procs)"
if [ "$rc" = 0 ] && [ -n "$pid" ] && [ "$pcg" = "0::/barge-place" ] &&
    grep -qx "$pid" $CG/barge-place/cgroup.procs 2>/dev/null; then
    pass placement "$detail"
else
    fail placement "$detail run-output=[$(flat </tmp/place.out)] state=[$(rt state place 2>&1 | flat)]"
fi
place_pid=$pid

# --- 3. relative-path: cgroupsPath "mygroup/c1" goes under the runtime's own cgroup ----------
mkdir -p $CG/runner
# The shell moves itself into /runner, then becomes barge-runtime (which inherits it).
timeout "$T" sh -c '
    echo $$ >/sys/fs/cgroup/runner/cgroup.procs || exit 99
    cat /proc/self/cgroup >/tmp/rel.own
    exec barge-runtime --root /run/barge run -d -b /bundles/relpath rel
' </dev/null >/tmp/rel.out 2>&1
rc=$?
pid=$(pid_of rel)
if [ -n "$pid" ] && [ -e "/proc/$pid/cgroup" ]; then
    pcg=$(cat "/proc/$pid/cgroup")
else
    pcg="(no pid)"
fi
detail="rc=$rc runtime-cgroup=[$(flat 2>/dev/null </tmp/rel.own)] pid=${pid:-none} /proc/pid/cgroup=[$pcg] $(show $CG/runner/mygroup/c1/cgroup.procs)"
if [ "$rc" = 0 ] && [ -n "$pid" ] && [ "$pcg" = "0::/runner/mygroup/c1" ] &&
    grep -qx "$pid" $CG/runner/mygroup/c1/cgroup.procs 2>/dev/null; then
    pass relative-path "$detail"
else
    fail relative-path "$detail run-output=[$(flat </tmp/rel.out)] state=[$(rt state rel 2>&1 | flat)]"
fi
rel_pid=$pid

# --- 4. delete: delete --force removes the container's cgroup directories ---------------------
rt delete --force place >/tmp/del.out 2>&1
rc1=$?
rt delete --force rel >>/tmp/del.out 2>&1
rc2=$?
gone=yes
for d in $CG/barge-place $CG/runner/mygroup/c1; do
    [ -e "$d" ] && gone="no ($d remains: $(show "$d/cgroup.procs"))"
done
# The runtime created runner/mygroup too (it removes what it created); runner is ours.
if [ -e $CG/runner/mygroup ]; then parent="runner/mygroup kept"; else parent="runner/mygroup removed"; fi
if rt state place >/dev/null 2>&1 || rt state rel >/dev/null 2>&1; then st="state still present"; else st="state gone"; fi
detail="rc=$rc1,$rc2 dirs-gone=$gone; $parent; $st (pids were ${place_pid:-none},${rel_pid:-none})"
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ] && [ "$gone" = yes ] && [ "$st" = "state gone" ]; then
    pass delete "$detail"
else
    fail delete "$detail output=[$(flat </tmp/del.out)]"
fi

# --- 5. exit-code: run returns the container's exit status -----------------------------------
rt run -b /bundles/exit7 exit7 </dev/null >/tmp/exit.out 2>&1
rc=$?
left=""
[ -e $CG/barge-exit7 ] && left=" leftover $CG/barge-exit7"
if [ "$rc" = 7 ]; then
    pass exit-code "rc=7$left"
else
    fail exit-code "rc=$rc (want 7)$left output=[$(flat </tmp/exit.out)]"
fi
rt delete --force exit7 >/dev/null 2>&1
