#!/usr/bin/env bash
# Build barge and run a demo container from a busybox rootfs (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --release --locked -p barge -p barge-shim -p barge-engine -p barge-hub -p barge-agent -p barge-fleet -p barge-mapper --bins
# The API daemon: a panic in one request fails that request only (panic = unwind); glibc
# linked in statically (less resident memory). Next to `barge`, which execs it.
scripts/build-daemon.sh target/release
barge=target/release/barge

bundle=$(mktemp -d /tmp/barge-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/proc" \
    "$bundle/rootfs/sys" "$bundle/rootfs/dev" "$bundle/rootfs/tmp"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"

"$barge" runtime spec --bundle "$bundle"
# Non-interactive demo: no terminal, a short script instead of an interactive shell.
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's|"sh"$|"sh", "-c", "echo hello from $(hostname), pid $$; id; grep -E ^CapEff /proc/self/status; ls /"|' \
    "$bundle/config.json"
"$barge" runtime run --bundle "$bundle" "demo-$$"

# Images and containers: the same rootfs as a one-layer image in a throwaway store (a
# registry pull works the same way: `barge pull REGISTRY/NAME:TAG`), then containers from it.
store=$(mktemp -d /tmp/barge-demo-store.XXXXXX)
export BARGE_ROOT=$store/root BARGE_RUNROOT=$store/run BARGE_CONFIG=$store/etc
daemon_pid= etcd_pid= hub_pid= agent_pid= mqtt_pid= mapper_pid=
cleanup() {
    for p in $mapper_pid $agent_pid $mqtt_pid $hub_pid $etcd_pid $daemon_pid; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    "$barge" pod ls -q 2>/dev/null | xargs -r "$barge" pod rm -f >/dev/null 2>&1 || true
    "$barge" ps -aq --no-trunc 2>/dev/null | xargs -r "$barge" rm -f >/dev/null 2>&1 || true
    "$barge" network prune -f >/dev/null 2>&1 || true
    rm -rf "$bundle" "$store"
}
trap cleanup EXIT
tar -C "$bundle/rootfs" -czf "$store/rootfs.tar.gz" .
"$barge" import -c 'CMD ["sh"]' "$store/rootfs.tar.gz" demo/busybox:latest
"$barge" images
"$barge" run --rm demo/busybox sh -c 'echo hello from container $(hostname); grep -E "^(CapEff|Seccomp):" /proc/self/status'
"$barge" run -d --name ticker --restart always demo/busybox sh -c 'while true; do date; sleep 1; done'
sleep 2
"$barge" ps
"$barge" logs --tail 2 ticker
"$barge" exec ticker ps
"$barge" rm -f ticker
# Networking: a web server on a published port, and two containers on a user network that
# find each other by name.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$barge" run -d --name web -p "127.0.0.1:$port:80" demo/busybox \
    sh -c 'mkdir -p /www && echo "hello over the barge bridge" >/www/index.html && exec httpd -f -p 80 -h /www'
"$barge" ps
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" && break; sleep 0.1; done
net=demo-net-$$
"$barge" network create "$net" >/dev/null
"$barge" network connect "$net" web
"$barge" run --rm --network "$net" demo/busybox ping -c 1 web
"$barge" rm -f web
"$barge" network rm "$net"

# The Docker Engine API: `barge daemon` on a socket of its own, over the same store; the docker
# CLI (and docker-py, docker-compose) drive it unchanged, and it sees what the CLI made.
if command -v docker >/dev/null; then
    "$barge" daemon -H "unix://$store/docker.sock" &
    daemon_pid=$!
    for _ in $(seq 50); do [[ -S $store/docker.sock ]] && break; sleep 0.1; done
    export DOCKER_HOST=unix://$store/docker.sock
    docker version --format 'docker CLI {{.Client.Version}} -> {{.Server.Platform.Name}} {{.Server.Version}} (API {{.Server.APIVersion}})'
    "$barge" run -d --name made-by-cli demo/busybox sleep 60 >/dev/null
    docker run --rm demo/busybox echo hello through the Docker API
    docker ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}'
    docker rm -f made-by-cli >/dev/null
fi

# An edge fleet: etcd, a cloud hub, one edge agent on this machine (over the same store), a
# Deployment placed on it by its label, seen from the cloud with `barge fleet`.
if command -v etcd >/dev/null; then
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    ep=$(free_port) pp=$(free_port) edge_port=$(free_port) api_port=$(free_port)
    etcd --data-dir "$store/etcd" --listen-client-urls "http://127.0.0.1:$ep" \
        --advertise-client-urls "http://127.0.0.1:$ep" --listen-peer-urls "http://127.0.0.1:$pp" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "default=http://127.0.0.1:$pp" >"$store/etcd.log" 2>&1 &
    etcd_pid=$!
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$ep/health" >/dev/null 2>&1 && break; sleep 0.1; done
    "$barge" hub --etcd "http://127.0.0.1:$ep" --listen "127.0.0.1:$edge_port" \
        --api "127.0.0.1:$api_port" --state-dir "$store/hub" 2>"$store/hub.log" &
    hub_pid=$!
    for _ in $(seq 100); do [[ -s $store/hub/admin.conf ]] && break; sleep 0.1; done
    [[ -s $store/hub/admin.conf ]] || { cat "$store/hub.log"; exit 1; }
    export BARGE_FLEET_CONFIG=$store/hub/admin.conf
    token=$("$barge" fleet token create --ttl 10m)
    "$barge" edge join "https://127.0.0.1:$edge_port" --token "$token" --name demo-edge --label site=lab
    # The device's MQTT broker (KubeEdge's EventBus talks to one), when mosquitto is installed.
    mqtt=none
    if [[ -x /usr/sbin/mosquitto ]]; then
        mq=$(free_port)
        printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n' "$mq" >"$store/mosquitto.conf"
        /usr/sbin/mosquitto -c "$store/mosquitto.conf" >"$store/mosquitto.log" 2>&1 &
        mqtt_pid=$!
        mqtt=tcp://127.0.0.1:$mq
    fi
    "$barge" edge run --mqtt "$mqtt" 2>"$store/agent.log" &
    agent_pid=$!
    cat >"$store/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      nodeSelector: {site: lab}
      containers:
      - name: app
        image: demo/busybox:latest
        imagePullPolicy: Never
        command: ["sh", "-c", "echo hello from the edge; exec sleep 3600"]
YAML
    "$barge" fleet apply -f "$store/web.yaml"
    for _ in $(seq 100); do
        "$barge" fleet get pods -o json | grep -q '"phase": *"Running"' && break
        sleep 0.2
    done
    "$barge" fleet get nodes
    "$barge" fleet get pods
    pod=$("$barge" fleet get pods -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["metadata"]["name"])')
    "$barge" fleet logs "demo-edge/$pod"
    "$barge" fleet exec "demo-edge/$pod" -- hostname
    "$barge" ps
    # A device and its twin: a (virtual) thermometer on the edge, read by `barge mapper` over
    # MQTT; the cloud sets a desired value and sees what the device reports.
    if [[ $mqtt != none ]]; then
        cat >"$store/device.yaml" <<'YAML'
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: thermometer}
spec:
  protocol: virtual
  properties:
  - {name: temperature, type: INT, accessMode: ReadOnly, minimum: "-20", maximum: "60", unit: C}
  - {name: setpoint, type: INT, accessMode: ReadWrite, minimum: "5", maximum: "30", unit: C}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: thermo-1}
spec:
  deviceModelRef: {name: thermometer}
  nodeName: demo-edge
  protocol: {protocolName: virtual}
  properties:
  - name: temperature
    collectCycle: 500
    visitors: {protocolName: virtual, configData: {generator: randomWalk, initial: "21"}}
  - name: setpoint
    collectCycle: 500
    desired: {value: "19"}
    visitors: {protocolName: virtual, configData: {generator: constant, initial: "18"}}
YAML
        "$barge" fleet apply -f "$store/device.yaml"
        "$barge" mapper --node demo-edge --mqtt "$mqtt" --protocol virtual 2>"$store/mapper.log" &
        mapper_pid=$!
        reported() {
            "$barge" fleet get device thermo-1 -o json | python3 -c 'import json,sys
twins = {t["propertyName"]: t.get("reported", {}).get("value") for t in json.load(sys.stdin).get("status", {}).get("twins", [])}
print(twins.get(sys.argv[1]) or "")' "$1"
        }
        for _ in $(seq 100); do [[ $(reported setpoint) == 19 ]] && break; sleep 0.2; done
        "$barge" fleet device set thermo-1 setpoint=23
        for _ in $(seq 100); do [[ $(reported setpoint) == 23 ]] && break; sleep 0.2; done
        "$barge" fleet get devices
        [[ $(reported setpoint) == 23 ]] || { echo "the device did not reach setpoint 23" >&2; cat "$store/agent.log" "$store/mapper.log" >&2; exit 1; }
    fi
    # The fleet API is https with the fleet CA (admin.conf's "ca"): curl --cacert works.
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca"], end="")' "$store/hub/admin.conf" >"$store/fleet-ca.pem"
    curl -fsS --cacert "$store/fleet-ca.pem" "https://127.0.0.1:$api_port/healthz" >/dev/null
    "$barge" fleet get ca
    echo "fleet dashboard: https://127.0.0.1:$api_port/ (CA in $store/fleet-ca.pem, admin token in $store/hub/admin.conf; removed when the demo ends)"
fi
