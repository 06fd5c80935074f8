#!/usr/bin/env bash
# Device twins (issue 18): etcd, a hub, one agent and a mosquitto on this machine, a test
# mapper (mosquitto_sub/mosquitto_pub driven by python3) answering every delta with the value
# as reported.
# 1. Round trip cloud -> edge -> mapper -> cloud: POST the twin endpoint (desired temp=V),
#    then poll the fleet API (GET the Device, every 2 ms) until status shows V reported.
#    N updates (default 1000); p50/p99/mean. Goal p99 <= 50 ms.
# 2. RATE reported updates per minute from one edge (default 10 000) for DURATION seconds
#    (default 60): the agent's CPU (utime + stime of barge-edge) over that time. Goal <= 10 %
#    of a core.
# Prints a Markdown table on stdout, progress on stderr.
#
#   sudo bench/device_twin.sh                         # release build
#   N=200 DURATION=20 BARGE=target/debug/barge bench/device_twin.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "device_twin: $*" >&2; }
die() { log "$*"; exit 1; }
N=${N:-1000}
RATE=${RATE:-10000}
DURATION=${DURATION:-60}
. "$repo/bench/lib.sh"
. "$repo/bench/edge_lib.sh"

if [[ -z ${BARGE:-} ]]; then
    log "building release binaries"
    (cd "$repo" && cargo build --release -q -p barge -p barge-shim -p barge-hub -p barge-agent \
        -p barge-fleet --bins)
    BARGE=$repo/target/release/barge
fi
command -v mosquitto_pub >/dev/null || die "no mosquitto-clients (scripts/setup.sh)"
[[ -x /usr/sbin/mosquitto ]] || die "no /usr/sbin/mosquitto (scripts/setup.sh)"

bench_store devtwin
MQ_PID=
trap 'kill $MQ_PID 2>/dev/null || true; edge_cleanup; bench_cleanup' EXIT
edge_etcd
edge_hub
mq=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n' "$mq" >"$work/mq.conf"
/usr/sbin/mosquitto -c "$work/mq.conf" >"$work/mq.log" 2>&1 &
MQ_PID=$!
log "joining the device"
token=$(fleet token create)
"$BARGE" edge join "$HUB_EDGE" --token "$token" --name bench-edge >/dev/null
"$BARGE" edge run --mqtt "tcp://127.0.0.1:$mq" >"$work/agent.log" 2>&1 &
AGENT_PID=$!
cat >"$work/device.yaml" <<'YAML'
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: thermo}
spec:
  properties:
  - {name: temp, type: INT, accessMode: ReadWrite, minimum: "0", maximum: "1000000"}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: t1}
spec:
  deviceModelRef: {name: thermo}
  nodeName: bench-edge
  properties:
  - name: temp
    desired: {value: "0"}
YAML
fleet apply -f "$work/device.yaml" >/dev/null

python3 - "$HUB_API" "$FLEET_CONF" "$mq" "$N" "$RATE" "$DURATION" "$AGENT_PID" <<'PY'
import json, os, statistics, subprocess, sys, time, urllib.request

api, conf, mq, n, rate, duration, agent = sys.argv[1:8]
n, rate, duration, agent = int(n), int(rate), int(duration), int(agent)
token = json.load(open(conf))["token"]
dev = api + "/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices/t1"
base = ["-h", "127.0.0.1", "-p", mq, "-q", "1"]
upd = "$hw/events/device/t1/twin/update"

def call(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)

def reported():
    for t in call("GET", dev).get("status", {}).get("twins", []):
        if t.get("propertyName") == "temp":
            return (t.get("reported") or {}).get("value")

def log(m):
    print("device_twin: " + m, file=sys.stderr, flush=True)

# The mapper: every delta answered with the value as reported.
pub = subprocess.Popen(["mosquitto_pub", *base, "-l", "-t", upd], stdin=subprocess.PIPE, text=True)
sub = subprocess.Popen(["mosquitto_sub", *base, "-t", upd + "/delta"], stdout=subprocess.PIPE, text=True)
def report(v):
    pub.stdin.write(json.dumps({"twin": {"temp": {"actual": {"value": v}}}}) + "\n")
    pub.stdin.flush()
import atexit, threading
atexit.register(lambda: (sub.kill(), pub.kill()))
def mapper():
    for line in sub.stdout:
        try:
            d = json.loads(line).get("delta", {})
        except ValueError:
            continue
        if "temp" in d:
            report(d["temp"])
threading.Thread(target=mapper, daemon=True).start()

# The first delta went out before the mapper subscribed: report the first value directly.
time.sleep(1)
report("0")
end = time.time() + 60
while reported() != "0":
    if time.time() > end:
        sys.exit("the device never reported its first value (agent connected to the broker?)")
    time.sleep(0.1)

log(f"round trip x{n}")
lat = []
for i in range(1, n + 1):
    v = str(i)
    t0 = time.perf_counter()
    call("POST", dev + "/twin", {"desired": {"temp": v}})
    deadline = time.time() + 10
    while reported() != v:
        if time.time() > deadline:
            sys.exit(f"update {i}: not reported within 10 s")
        time.sleep(0.002)
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]

def ticks():
    f = open(f"/proc/{agent}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
hz = os.sysconf("SC_CLK_TCK")
count = rate * duration // 60
log(f"{count} reports in {duration} s")
c0, w0 = ticks(), time.time()
for i in range(count):
    report(str(1000 + i % 1000))
    wait = w0 + (i + 1) * duration / count - time.time()
    if wait > 0:
        time.sleep(wait)
last = str(1000 + (count - 1) % 1000)
deadline = time.time() + 30
while reported() != last and time.time() < deadline:
    time.sleep(0.05)
c1, w1 = ticks(), time.time()
cpu = (c1 - c0) / hz / (w1 - w0) * 100
arrived = reported() == last
sys.stdout.flush()
print("| measure | value |")
print("|---|---|")
print(f"| round trip cloud -> edge -> mapper -> cloud, n={n} | p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, mean {statistics.mean(lat):.1f} ms |")
print(f"| {rate} reported updates/min for {duration} s | agent CPU {cpu:.1f} % of a core (last value {'arrived' if arrived else 'NOT arrived'}) |")
pub.stdin.close(); pub.wait(); sub.kill()
PY
