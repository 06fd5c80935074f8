//! Published ports held like docker-proxy holds them: a host port another process holds is
//! refused at `run`/`start` with docker's message and leaves nothing behind; while the
//! container lives nobody else can bind its ports (they are free again after it stops);
//! traffic still reaches the container. Also `--add-host NAME:host-gateway`.
//!
//! Only loopback and the tests' own containers are reached. Networks made here use
//! 10.201.40-49.0/24 (network.rs uses lower ones).

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use barge_testutil::engine::BargeEnv;
use barge_testutil::net::{
    free_port, http_get, ipam_reservations, pins, rules_mentioning, wait_http, HTTPD,
};
use barge_testutil::{stderr, stdout};

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// Whether a host process can bind TCP `addr:port` (as a server would, SO_REUSEADDR on);
/// panics on errors other than "address in use".
fn tcp_free(addr: &str, port: u16) -> bool {
    match TcpListener::bind((addr, port)) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::AddrInUse => false,
        Err(e) => panic!("bind {addr}:{port}: {e}"),
    }
}

fn udp_free(port: u16) -> bool {
    match UdpSocket::bind(("0.0.0.0", port)) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::AddrInUse => false,
        Err(e) => panic!("bind udp {port}: {e}"),
    }
}

/// A unique network name (IPAM state lives in /var/lib/cni/networks/NAME, shared by stores).
fn net_name(tag: &str) -> String {
    format!("bp{tag}{}", std::process::id())
}

#[test]
fn a_port_another_process_holds_refuses_run_and_start_and_leaves_nothing() {
    let b = env();
    let net = net_name("held");
    b.ok(&["network", "create", "--subnet", "10.201.40.0/24", &net]);
    let host = TcpListener::bind("0.0.0.0:0").expect("bind");
    let p = host.local_addr().expect("addr").port();
    let msg = format!("Bind for 0.0.0.0:{p} failed: port is already allocated");
    let publish = format!("{p}:80");

    // run: docker's message and exit code; the container stays created, never started,
    // with no namespace, rule, address or attachment.
    let o = b.run(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        &net,
        "-p",
        &publish,
        "bb",
        "sleep",
        "30",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains(&msg), "{}", stderr(&o));
    let id = b.inspect("c1", "{{.Id}}");
    assert_eq!(b.inspect("c1", "{{.State.Status}}"), "created");
    assert_eq!(pins(&b), Vec::<String>::new());
    assert_eq!(rules_mentioning(&id), Vec::<String>::new());
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    assert!(!b.container_dir(&id).join("net").exists());

    // start: the same refusal (exit 1, as docker start).
    let o = b.run(&["start", "c1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&msg), "{}", stderr(&o));
    assert_eq!(b.inspect("c1", "{{.State.Status}}"), "created");

    // run --rm: no container either; a UDP port is refused the same way.
    let udp = UdpSocket::bind("0.0.0.0:0").expect("bind udp");
    let u = udp.local_addr().expect("addr").port();
    let before = b.container_dirs();
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        &net,
        "-p",
        &format!("{u}:53/udp"),
        "bb",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Bind for 0.0.0.0:{u} failed: port is already allocated"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.container_dirs(), before);
    assert_eq!(ipam_reservations(&net), BTreeSet::new());

    // Once the host lets go of the port, the same container starts and serves on it.
    drop(host);
    b.ok(&["rm", "c1"]);
    b.run_d(&[
        "--name",
        "c2",
        "--network",
        &net,
        "-e",
        "BODY=after",
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(wait_http(p), "after\n");
}

#[test]
fn published_ports_are_held_while_the_container_lives_and_freed_when_it_stops() {
    let b = env();
    let (p, u) = (free_port(), free_port());
    b.run_d(&[
        "--name",
        "web",
        "-e",
        "BODY=held",
        "-p",
        &format!("{p}:80"),
        "-p",
        &format!("{u}:53/udp"),
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    assert_eq!(wait_http(p), "held\n");
    // Nobody else can take the ports meanwhile, on any address.
    assert!(!tcp_free("0.0.0.0", p), "tcp {p} not held");
    assert!(!tcp_free("127.0.0.1", p), "tcp 127.0.0.1:{p} not held");
    assert!(!tcp_free("::", p), "tcp [::]:{p} not held");
    assert!(!udp_free(u), "udp {u} not held");
    // The traffic still goes to the container, several connections in a row.
    for _ in 0..5 {
        assert_eq!(http_get(p).as_deref(), Some("held\n"));
    }
    // Another container can't publish it either (docker's refusal).
    let o = b.run(&[
        "run",
        "-d",
        "--name",
        "twin",
        "-p",
        &format!("{p}:80"),
        "bb",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Bind for 0.0.0.0:{p} failed: port is already allocated"
        )),
        "{}",
        stderr(&o)
    );
    // Neither the CLI nor the container has the sockets: only the shim.
    let shim_pid: i32 = b.inspect("web", "{{.State.Pid}}").parse().expect("pid");
    let holders = socket_holders(p);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_ne!(holders[0], shim_pid, "the container holds the port");
    let comm = fs::read_to_string(format!("/proc/{}/comm", holders[0])).unwrap_or_default();
    assert_eq!(comm.trim(), "barge-shim");

    // Stopped: free at once; started again: held and served again.
    b.ok(&["stop", "-t", "1", "web"]);
    assert!(tcp_free("0.0.0.0", p), "tcp {p} still held after stop");
    assert!(tcp_free("::", p), "tcp [::]:{p} still held after stop");
    assert!(udp_free(u), "udp {u} still held after stop");
    b.ok(&["start", "web"]);
    assert_eq!(wait_http(p), "held\n");
    assert!(!tcp_free("0.0.0.0", p), "tcp {p} not held after start");
    b.ok(&["rm", "-f", "web"]);
    assert!(tcp_free("0.0.0.0", p), "tcp {p} still held after rm -f");
}

/// The pids holding a listening TCP socket on `port` (from /proc/net/tcp and fd links).
fn socket_holders(port: u16) -> Vec<i32> {
    let hex = format!(":{port:04X} ");
    let mut inodes = BTreeSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for l in fs::read_to_string(f).unwrap_or_default().lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // local address, state 0A = LISTEN, inode
            if cols.len() > 9 && format!("{} ", cols[1]).ends_with(&hex) && cols[3] == "0A" {
                inodes.insert(format!("socket:[{}]", cols[9]));
            }
        }
    }
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(fds) = fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        if fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .map(|l| inodes.contains(&*l.to_string_lossy()))
                .unwrap_or(false)
        }) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_restarting_container_keeps_its_port_held() {
    let b = env();
    let p = free_port();
    b.run_d(&[
        "--name",
        "flaky",
        "--restart",
        "on-failure",
        "-p",
        &format!("{p}:80"),
        "bb",
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    ]);
    // Across at least two restarts (100 ms, 200 ms delays) the port never comes free.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(!tcp_free("0.0.0.0", p), "port {p} free between restarts");
        let n: u32 = b
            .inspect("flaky", "{{.RestartCount}}")
            .parse()
            .expect("count");
        if n >= 2 || Instant::now() > end {
            assert!(n >= 2, "restart count {n}");
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    b.ok(&["stop", "-t", "1", "flaky"]);
    assert!(tcp_free("0.0.0.0", p), "port {p} held after stop");
}

#[test]
fn random_and_range_ports_are_picked_free_and_held() {
    let b = env();
    // -P: the kernel's pick, held.
    b.run_d(&[
        "--name", "all", "-e", "BODY=all", "--expose", "80", "-P", "bb", "sh", "-c", HTTPD,
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.inspect("all", "{{json .NetworkSettings.Ports}}")).expect("json");
    let port: u16 = v["80/tcp"][0]["HostPort"]
        .as_str()
        .expect("HostPort")
        .parse()
        .expect("port");
    assert_eq!(wait_http(port), "all\n");
    assert!(!tcp_free("0.0.0.0", port), "-P port {port} not held");

    // A range whose first port a host process holds: the next one, held.
    let host = TcpListener::bind("0.0.0.0:0").expect("bind");
    let first = host.local_addr().expect("addr").port();
    let last = first.saturating_add(20);
    b.run_d(&[
        "--name",
        "ranged",
        "-e",
        "BODY=ranged",
        "-p",
        &format!("{first}-{last}:80"),
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&b.inspect("ranged", "{{json .NetworkSettings.Ports}}"))
            .expect("json");
    let got: u16 = v["80/tcp"][0]["HostPort"]
        .as_str()
        .expect("HostPort")
        .parse()
        .expect("port");
    assert!(got > first && got <= last, "{got} not in {first}-{last}");
    assert_eq!(wait_http(got), "ranged\n");
    assert!(!tcp_free("0.0.0.0", got), "range port {got} not held");
}

#[test]
fn add_host_host_gateway_resolves_to_the_network_gateway() {
    let b = env();
    let net = net_name("gw");
    b.ok(&["network", "create", "--subnet", "10.201.41.0/24", &net]);
    b.run_d(&[
        "--name",
        "gw",
        "--network",
        &net,
        "--add-host",
        "host.docker.internal:host-gateway",
        "--add-host",
        "other=192.0.2.7",
        "bb",
        "sleep",
        "30",
    ]);
    let nets: serde_json::Value =
        serde_json::from_str(&b.inspect("gw", "{{json .NetworkSettings.Networks}}")).expect("json");
    assert_eq!(nets[&net]["Gateway"], "10.201.41.1", "{nets}");
    let hosts = b.ok(&["exec", "gw", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["10.201.41.1", "host.docker.internal"]),
        "{hosts}"
    );
    assert!(hosts.contains("192.0.2.7\tother"), "{hosts}");
    // Reachable by that name: ping and a TCP connection to a host listener.
    let o = b.run(&[
        "exec",
        "gw",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "host.docker.internal",
    ]);
    assert!(o.status.success(), "ping: {}{}", stdout(&o), stderr(&o));
    // A host service on the gateway address (the bridge has it now), reached by name.
    let host = TcpListener::bind("10.201.41.1:0").expect("bind on the gateway address");
    let port = host.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        host.set_nonblocking(false).ok();
        let (mut s, _) = host.accept().expect("accept");
        s.write_all(b"hello from the host\n").expect("write");
    });
    let out = b.ok(&[
        "exec",
        "gw",
        "sh",
        "-c",
        &format!("nc -w 3 host.docker.internal {port} </dev/null"),
    ]);
    assert_eq!(out, "hello from the host\n");
    t.join().expect("listener thread");
}
