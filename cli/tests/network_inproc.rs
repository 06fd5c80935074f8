//! barge's in-process bridge driver (netlink + host-local's address files) against the CNI
//! `bridge` + `host-local` plugins it replaces for barge's own networks: one container wired
//! by each (`network.bridge-driver` switched between the two runs) on the same network must
//! get the same kind of addresses and routes, reach each other, publish a port, reach a
//! namespace outside through the network's NAT, and leave no veth, address or rule behind.
//!
//! Only loopback, the test's own containers and a namespace the test makes are reached.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use barge_testutil::engine::{wait_until, BargeEnv};
use barge_testutil::net::{free_port, http_get, ipam_reservations, rules_mentioning, HTTPD};
use barge_testutil::stderr;
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// Pick who wires barge's bridge networks from now on.
fn set_driver(b: &BargeEnv, driver: &str) {
    let etc = b.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("config.json"),
        serde_json::json!({"network": {"bridge-driver": driver}}).to_string(),
    )
    .unwrap();
}

fn bridge_ports(bridge: &str) -> BTreeSet<String> {
    fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// A network namespace outside barge, linked to the host by a veth pair: the host has `.1`,
/// the namespace `.2` of a /30 (no route back to any container subnet: only NAT reaches it).
struct Outside {
    ns: String,
    link: String,
}

impl Outside {
    fn new(tag: &str, net: &str) -> Outside {
        let o = Outside {
            ns: format!("out{tag}{}", std::process::id()),
            link: format!("vo{}", std::process::id() % 10_000_000),
        };
        let (ns, link) = (&o.ns, &o.link);
        let out = sh(&format!(
            "set -e; ip netns add {ns}; ip link add {link} type veth peer name eth0 netns {ns}; \
             ip addr add {net}.1/30 dev {link}; ip link set {link} up; \
             ip -n {ns} addr add {net}.2/30 dev eth0; ip -n {ns} link set eth0 up; \
             ip -n {ns} link set lo up"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        o
    }

    /// Accept one TCP connection on `addr:port` inside the namespace; the peer's address.
    fn accept_one(&self, addr: &str, port: u16) -> std::process::Child {
        let py = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{addr}',{port}))\ns.listen(1)\nprint('ready',flush=True)\ns.settimeout(20)\n\
             c,a=s.accept()\nprint(a[0],flush=True)\nc.sendall(b'hi\\n')\nc.close()\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", &py])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for "ready" so the container's connect does not race the bind.
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(out);
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        assert_eq!(first.trim(), "ready");
        child.stdout = Some(lines.into_inner());
        child
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip link del {} 2>/dev/null; ip netns del {} 2>/dev/null",
            self.link, self.ns
        ));
    }
}

/// What the container has, with its own addresses replaced by SELF4/SELF6 and its MAC.
fn wiring(b: &BargeEnv, name: &str) -> (Vec<String>, String, String, String) {
    let v4 = b.inspect(name, "{{.NetworkSettings.IPAddress}}");
    let v6 = b.inspect(name, "{{.NetworkSettings.GlobalIPv6Address}}");
    let mac = b.inspect(name, "{{.NetworkSettings.MacAddress}}");
    assert!(!v4.is_empty() && !v6.is_empty(), "{name}: {v4:?} {v6:?}");
    let out = b.ok(&[
        "exec",
        name,
        "sh",
        "-c",
        "ip -o -4 addr show dev eth0; ip -o -6 addr show dev eth0 scope global; \
         ip route; ip -6 route show default; cat /sys/class/net/eth0/address",
    ]);
    let lines: Vec<String> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|w| {
                    let (addr, rest) = w.split_once('/').unwrap_or((w, ""));
                    let addr = if addr == v4 {
                        "SELF4"
                    } else if addr == v6 {
                        "SELF6"
                    } else {
                        addr
                    };
                    if w.contains('/') {
                        format!("{addr}/{rest}")
                    } else {
                        addr.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let (mac_line, rest) = lines.split_last().unwrap();
    assert_eq!(mac_line, &mac, "{name}: inspect's MAC is eth0's");
    (rest.to_vec(), v4, v6, mac)
}

/// Connect from container `name` to the outside namespace; the source address it saw.
fn outbound_source(b: &BargeEnv, o: &Outside, name: &str, port: u16) -> String {
    let child = o.accept_one("10.203.60.2", port);
    let got = b.ok(&[
        "exec",
        name,
        "sh",
        "-c",
        &format!("echo x | nc -w 3 10.203.60.2 {port}"),
    ]);
    assert_eq!(got.trim(), "hi", "{name}: no answer from outside");
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn in_process_driver_wires_containers_as_the_cni_plugins_did_and_leaves_nothing() {
    let b = env();
    let net = format!("btinp{}", std::process::id());
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.201.60.0/24",
        "--ipv6",
        &net,
    ]);
    let doc: Value = serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    let bridge = doc[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let outside = Outside::new("inp", "10.203.60");

    set_driver(&b, "cni");
    b.run_d(&["--name", "viacni", "--network", &net, "bb", "sleep", "100"]);
    set_driver(&b, "in-process");
    let port = free_port();
    b.run_d(&[
        "--name",
        "inproc",
        "--network",
        &net,
        "-e",
        "BODY=wired in process",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let record = |name: &str| -> Value {
        let id = b.inspect(name, "{{.Id}}");
        serde_json::from_slice(&fs::read(b.container_dir(&id).join("net/eth0.json")).unwrap())
            .unwrap()
    };
    assert_eq!(record("inproc")["driver"], "barge-bridge");
    assert_eq!(record("viacni").get("driver"), None);

    // Same addresses, prefixes, broadcast and routes, up to each one's own address.
    let (cni_view, cni4, _, cni_mac) = wiring(&b, "viacni");
    let (inp_view, inp4, _, inp_mac) = wiring(&b, "inproc");
    assert_eq!(inp_view, cni_view);
    assert!(
        cni_view
            .iter()
            .any(|l| l.starts_with("default via 10.201.60.1 dev eth0")),
        "{cni_view:?}"
    );
    assert_ne!(cni4, inp4);
    assert_ne!(cni_mac, inp_mac);
    // Both reserved in host-local's store, one file per address.
    assert_eq!(
        ipam_reservations(&net).len(),
        4,
        "{:?}",
        ipam_reservations(&net)
    );
    assert_eq!(bridge_ports(&bridge).len(), 2);
    let hairpin: Vec<String> = bridge_ports(&bridge)
        .iter()
        .map(|p| fs::read_to_string(format!("/sys/class/net/{p}/brport/hairpin_mode")).unwrap())
        .collect();
    assert_eq!(hairpin, ["1\n", "1\n"]);

    // Container to container, both ways, by IPv4 and IPv6 and over TCP.
    b.ok(&["exec", "viacni", "ping", "-c1", "-W3", &inp4]);
    b.ok(&["exec", "inproc", "ping", "-c1", "-W3", &cni4]);
    let inp6 = b.inspect("inproc", "{{.NetworkSettings.GlobalIPv6Address}}");
    b.ok(&["exec", "viacni", "ping", "-c1", "-W3", &inp6]);
    let body = b.ok(&[
        "exec",
        "viacni",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {inp4} 80 | tail -n 1"),
    ]);
    assert_eq!(body.trim(), "wired in process");
    // The published port (portmap chained after the in-process result).
    let mut got = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            got = http_get(port);
            got.is_some()
        }),
        "nothing answers on 127.0.0.1:{port}"
    );
    assert_eq!(got.as_deref(), Some("wired in process\n"));
    // Outbound: both leave through the network's NAT (the outside sees the host's address).
    assert_eq!(outbound_source(&b, &outside, "viacni", 9061), "10.203.60.1");
    assert_eq!(outbound_source(&b, &outside, "inproc", 9062), "10.203.60.1");

    // Teardown: no veth on the bridge, no address reserved, no port rule.
    let id = b.inspect("inproc", "{{.Id}}");
    b.ok(&["rm", "-f", "inproc", "viacni"]);
    assert!(
        wait_until(Duration::from_secs(5), || bridge_ports(&bridge).is_empty()),
        "veths left on {bridge}: {:?}",
        bridge_ports(&bridge)
    );
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    assert_eq!(rules_mentioning(&id), Vec::<String>::new());
    assert!(http_get(port).is_none(), "port {port} still answers");
    b.ok(&["network", "rm", &net]);
}

#[test]
fn a_failed_in_process_attach_leaves_nothing() {
    let b = env();
    let net = format!("btinf{}", std::process::id());
    b.ok(&["network", "create", "--subnet", "10.201.61.0/24", &net]);
    let doc: Value = serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    let bridge = doc[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    b.run_d(&[
        "--name",
        "first",
        "--network",
        &net,
        "--ip",
        "10.201.61.9",
        "bb",
        "sleep",
        "100",
    ]);
    assert_eq!(
        b.inspect("first", "{{.NetworkSettings.IPAddress}}"),
        "10.201.61.9"
    );
    // The same address again: refused, and the second container keeps nothing.
    let o = b.run(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        &net,
        "--ip",
        "10.201.61.9",
        "bb",
        "sleep",
        "100",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("10.201.61.9"), "{}", stderr(&o));
    assert_eq!(
        ipam_reservations(&net),
        ["10.201.61.9".to_string()].into_iter().collect()
    );
    assert_eq!(bridge_ports(&bridge).len(), 1);
    let id = b.inspect("second", "{{.Id}}");
    assert!(!b.container_dir(&id).join("net").exists());
    b.ok(&["rm", "-f", "first", "second"]);
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    b.ok(&["network", "rm", &net]);
}
