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
#   oom      dd of 64 MiB under a 16 MiB memory limit
#   pids, cpu, memory, devices, hugetlb   print their cgroup files (and effects) from inside

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

# --- resource checks: each bundle prints what it sees; compare with the expected text -------
# expect NAME BUNDLE WANT: run the bundle, its stdout flattened must equal WANT.
expect() {
    rt run -b "/bundles/$2" "$2" </dev/null >/tmp/$2.out 2>/tmp/$2.err
    rc=$?
    out=$(flat </tmp/$2.out)
    if [ "$out" = "$3" ]; then
        pass "$1" "[$out]"
    else
        fail "$1" "rc=$rc got=[$out] want=[$3] stderr=[$(flat </tmp/$2.err)]"
    fi
    rt delete --force "$2" >/dev/null 2>&1
}

# --- 6. oom-kill: a process past memory.max is killed: run exits 128+9 ----------------------
rt run -b /bundles/oom oom </dev/null >/tmp/oom.out 2>&1
rc=$?
if [ "$rc" = 137 ]; then pass oom-kill "rc=137"; else fail oom-kill "rc=$rc (want 137) output=[$(flat </tmp/oom.out)]"; fi
rt delete --force oom >/dev/null 2>&1

# --- 7-11. limits land in the v2 files (conversions: shares 512 -> weight 20; swap is
# memory+swap in the spec, swap alone in memory.swap.max) and act --------------------------
expect pids pids "current=5 max=6"
cpu_out=$(rt run -b /bundles/cpu cpu </dev/null 2>/tmp/cpu.err | flat)
case "$cpu_out" in
"10000 100000 20 0 nr_throttled 0") fail cpu "never throttled: [$cpu_out]" ;;
"10000 100000 20 0 nr_throttled "*) pass cpu "[$cpu_out]" ;;
*) fail cpu "got=[$cpu_out] stderr=[$(flat </tmp/cpu.err)]" ;;
esac
rt delete --force cpu >/dev/null 2>&1
expect memory memory "67108864 67108864 33554432"
# The eBPF device program: 5:1 readable only; 4:64 not listed; /dev/null always allowed.
expect devices devices "/dev/xcon<ok /dev/xcon>denied /dev/xtty<denied /dev/null>ok"
expect hugetlb hugetlb "4194304 4194304"

# --- 12. update: a running container's limits change ----------------------------------------
rt run -d -b /bundles/sleep upd </dev/null >/tmp/upd.out 2>&1
rt update --memory 64m --pids-limit 20 --cpu-quota 20000 upd >>/tmp/upd.out 2>&1
rc=$?
got="$(cat $CG/barge-upd/memory.max 2>&1) $(cat $CG/barge-upd/pids.max 2>&1) $(cat $CG/barge-upd/cpu.max 2>&1)"
if [ "$rc" = 0 ] && [ "$got" = "67108864 20 20000 100000" ]; then
    pass update "[$got]"
else
    fail update "rc=$rc got=[$got] output=[$(flat </tmp/upd.out)]"
fi
rt delete --force upd >/dev/null 2>&1

# --- 13. pause: cgroup.freeze with the kernel's handshake; state says paused ----------------
rt run -d -b /bundles/sleep pz </dev/null >/tmp/pz.out 2>&1
rt pause pz >>/tmp/pz.out 2>&1
p_rc=$?
frozen=$(grep frozen $CG/barge-pz/cgroup.events 2>&1)
st=$(rt state pz 2>&1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
rt resume pz >>/tmp/pz.out 2>&1
r_rc=$?
thawed=$(grep frozen $CG/barge-pz/cgroup.events 2>&1)
st2=$(rt state pz 2>&1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
detail="pause=$p_rc [$frozen] $st; resume=$r_rc [$thawed] $st2"
if [ "$frozen" = "frozen 1" ] && [ "$st" = paused ] && [ "$thawed" = "frozen 0" ] && [ "$st2" = running ]; then
    pass pause "$detail"
else
    fail pause "$detail output=[$(flat </tmp/pz.out)]"
fi
rt delete --force pz >/dev/null 2>&1

# --- 14. stats: `events --stats` reads the v2 files (runc's JSON) ----------------------------
rt run -d -b /bundles/statbox sb </dev/null >/tmp/sb.out 2>&1
rt events --stats sb >/tmp/sb.json 2>>/tmp/sb.out
rc=$?
js=$(cat /tmp/sb.json)
case "$js" in
*'"pids":{"current":2,"limit":20}'*'"usage":{"limit":67108864,"usage":'[1-9]*)
    pass stats "rc=$rc $(echo "$js" | cut -c1-200)" ;;
*'"usage":{"limit":67108864,"usage":'[1-9]*'"pids":{"current":2,"limit":20}'*)
    pass stats "rc=$rc $(echo "$js" | cut -c1-200)" ;;
*) fail stats "rc=$rc json=[$js] output=[$(flat </tmp/sb.out)]" ;;
esac
rt delete --force sb >/dev/null 2>&1

# --- 15. oom-event: `events` streams {"type":"oom"} when the kernel OOM-kills in the cgroup --
rt run -d -b /bundles/oomlate ol </dev/null >/tmp/ol.out 2>&1
timeout 40 barge-runtime --root /run/barge events --interval 1s ol >/tmp/ol.ev 2>>/tmp/ol.out &
evpid=$!
i=0
while [ $i -lt 60 ] && ! grep -q '"type":"oom"' /tmp/ol.ev; do
    sleep 0.5
    i=$((i + 1))
done
if grep -q '"type":"oom","id":"ol"' /tmp/ol.ev; then
    pass oom-event "$(grep '"type":"oom"' /tmp/ol.ev | head -n 1)"
else
    fail oom-event "events=[$(cut -c1-120 /tmp/ol.ev | flat)] output=[$(flat </tmp/ol.out)]"
fi
rt delete --force ol >/dev/null 2>&1
wait $evpid 2>/dev/null
