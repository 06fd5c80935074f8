//! Networking end to end: CNI bridge networks, published ports, name resolution, shared and
//! host network namespaces, IPAM under parallel starts, failing and hanging plugins, and
//! teardown without leaks.
//!
//! Only loopback and the addresses of the tests' own containers are reached. Tests that make
//! a network give it its own name and subnet (10.201.N.0/24), since tests run in parallel and
//! each store has its own network config directory.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use barge_testutil::engine::{wait_until, BargeEnv};
use barge_testutil::net::{free_port, http_get, ipam_reservations, pins, rules_mentioning, HTTPD};
use barge_testutil::{stderr, stdout};
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// A shell command printing the last line of GET / from HOST:80 (the one-line bodies here);
/// busybox nc, since its wget with -T crashes in the static Debian build.
fn get_cmd(host: &str) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 | tail -n 1")
}

/// Run `barge ARGS`, which must fail saying `needle`.
fn refused(b: &BargeEnv, args: &[&str], needle: &str) {
    let o = b.run(args);
    assert!(
        !o.status.success() && stderr(&o).contains(needle),
        "{args:?}: {}",
        stderr(&o)
    );
}

/// A unique network name (IPAM state lives in /var/lib/cni/networks/NAME, shared by stores).
fn net_name(tag: &str) -> String {
    format!("bt{tag}{}", std::process::id())
}

fn create_net(b: &BargeEnv, name: &str, subnet: &str) -> Value {
    b.ok(&["network", "create", "--subnet", subnet, name]);
    let doc: Value = serde_json::from_str(&b.ok(&["network", "inspect", name])).expect("json");
    doc[0].clone()
}

/// The IPv4 address of `name` on its network, from inspect.
fn ip_of(b: &BargeEnv, name: &str) -> String {
    b.inspect(name, "{{.NetworkSettings.IPAddress}}")
}

/// Interfaces enslaved to a bridge (one veth per container on it).
fn bridge_ports(bridge: &str) -> BTreeSet<String> {
    fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn published_ports_answer_on_loopback_and_show_in_ps_and_inspect() {
    let b = env();
    let (p1, p2) = (free_port(), free_port());
    b.run_d(&[
        "--name",
        "web",
        "-e",
        "BODY=hello from barge",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        "-p",
        &format!("{p2}:80/tcp"),
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let mut body = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            body = http_get(p1);
            body.is_some()
        }),
        "nothing answers on 127.0.0.1:{p1}"
    );
    assert_eq!(body.as_deref(), Some("hello from barge\n"));
    assert_eq!(http_get(p2).as_deref(), Some("hello from barge\n"));
    let ps = b.ok(&["ps"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{p1}->80/tcp"))
            && ps.contains(&format!("0.0.0.0:{p2}->80/tcp")),
        "{ps}"
    );
    let ports: Value =
        serde_json::from_str(&b.inspect("web", "{{json .NetworkSettings.Ports}}")).expect("json");
    let hp: BTreeSet<String> = ports["80/tcp"]
        .as_array()
        .expect("80/tcp bindings")
        .iter()
        .map(|v| {
            format!(
                "{}:{}",
                v["HostIp"].as_str().unwrap(),
                v["HostPort"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        hp,
        [format!("127.0.0.1:{p1}"), format!("0.0.0.0:{p2}")]
            .into_iter()
            .collect()
    );
    // Stopped: the port is closed and its rules are gone.
    let id = b.inspect("web", "{{.Id}}");
    b.ok(&["stop", "-t", "1", "web"]);
    assert!(http_get(p1).is_none(), "port {p1} still answers after stop");
    assert_eq!(rules_mentioning(&id), Vec::<String>::new());
    assert_eq!(b.inspect("web", "{{.NetworkSettings.IPAddress}}"), "");
}

#[test]
fn publish_all_maps_exposed_ports_to_free_host_ports() {
    let b = env();
    b.run_d(&[
        "--name", "web", "-e", "BODY=all", "--expose", "80", "-P", "bb", "sh", "-c", HTTPD,
    ]);
    let v: Value =
        serde_json::from_str(&b.inspect("web", "{{json .NetworkSettings.Ports}}")).expect("json");
    let port: u16 = v["80/tcp"][0]["HostPort"]
        .as_str()
        .expect("HostPort")
        .parse()
        .expect("port");
    assert!(port > 0);
    let mut body = None;
    assert!(wait_until(Duration::from_secs(10), || {
        body = http_get(port);
        body.is_some()
    }));
    assert_eq!(body.as_deref(), Some("all\n"));
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name() {
    let b = env();
    let net = net_name("dns");
    let doc = create_net(&b, &net, "10.201.1.0/24");
    assert_eq!(doc["IPAM"]["Config"][0]["Subnet"], "10.201.1.0/24");
    b.run_d(&[
        "--name",
        "srv",
        "--network",
        &net,
        "--network-alias",
        "db",
        "-e",
        "BODY=by name",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    b.run_d(&["--name", "cli", "--network", &net, "bb", "sleep", "100"]);
    let srv_ip = ip_of(&b, "srv");
    assert!(srv_ip.starts_with("10.201.1."), "{srv_ip}");
    // The name and the alias resolve to srv's address, and its server answers there.
    for name in ["srv", "db"] {
        let out = b.ok(&["exec", "cli", "ping", "-c", "1", "-W", "2", name]);
        assert!(out.contains(&format!("({srv_ip})")), "{name}: {out}");
    }
    let mut body = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        let o = b.run(&["exec", "cli", "sh", "-c", &get_cmd("srv")]);
        body = stdout(&o);
        o.status.success() && !body.is_empty()
    }));
    assert_eq!(body, "by name\n");
    // srv sees cli too; once cli stops, its entry leaves srv's /etc/hosts.
    let cli_ip = ip_of(&b, "cli");
    let hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{cli_ip}\tcli ")), "{hosts}");
    b.ok(&["stop", "-t", "1", "cli"]);
    let hosts = b.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("\tcli "), "{hosts}");
    // The default network does no name resolution (as docker's bridge).
    b.run_d(&["--name", "other", "bb", "sleep", "100"]);
    let hosts = b.ok(&["exec", "other", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("srv"), "{hosts}");
}

#[test]
fn container_network_mode_shares_the_other_containers_stack() {
    let b = env();
    b.run_d(&[
        "--name",
        "first",
        "-e",
        "BODY=shared",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    let first_ip = ip_of(&b, "first");
    let script = format!(
        "ip -4 -o addr show eth0; for i in 1 2 3 4 5 6 7 8 9 10; do {} | grep . && break; sleep 0.3; done",
        get_cmd("127.0.0.1")
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "bb",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.contains(&format!("inet {first_ip}/")), "{out}");
    assert!(out.ends_with("shared\n"), "{out}");
    // Its network namespace is first's (same inode).
    let pid = b.inspect("first", "{{.State.Pid}}");
    let first_ns = fs::read_link(format!("/proc/{pid}/ns/net")).expect("ns");
    let second = b.run_d(&["--network", "container:first", "bb", "sleep", "100"]);
    let pid2 = b.inspect(&second, "{{.State.Pid}}");
    assert_eq!(
        fs::read_link(format!("/proc/{pid2}/ns/net")).expect("ns"),
        first_ns
    );
    // Joining a container that is not running is refused.
    b.ok(&["create", "--name", "idle", "bb", "true"]);
    refused(
        &b,
        &["run", "--rm", "--network", "container:idle", "bb", "true"],
        "not running",
    );
}

#[test]
fn host_network_sees_the_host_interfaces() {
    let b = env();
    let host: BTreeSet<String> = fs::read_dir("/sys/class/net")
        .expect("sysfs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "ls",
        "/sys/class/net",
    ]);
    let inside: BTreeSet<String> = out.split_whitespace().map(String::from).collect();
    // Interfaces may come and go meanwhile (other tests' veths): the host's stable ones.
    for i in ["lo", "eth0"].iter().filter(|i| host.contains(**i)) {
        assert!(inside.contains(*i), "{i} missing inside: {inside:?}");
    }
    assert!(inside.len() > 2, "{inside:?}");
    let ns_host = fs::read_link("/proc/self/ns/net").expect("ns");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(out.trim(), ns_host.to_string_lossy());
}

#[test]
fn ipam_hands_out_unique_addresses_under_20_parallel_runs() {
    let b = env();
    let net = net_name("ipam");
    create_net(&b, &net, "10.201.2.0/24");
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let cmd = b.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("p{i:02}"),
                "--network",
                &net,
                "bb",
                "sleep",
                "100",
            ]);
            std::thread::spawn(move || barge_testutil::exec_bounded(cmd, Duration::from_secs(120)))
        })
        .collect();
    for h in handles {
        let o = h.join().expect("thread");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut seen = BTreeSet::new();
    for i in 0..20 {
        let name = format!("p{i:02}");
        // What the container itself has on eth0.
        let out = b.ok(&["exec", &name, "ip", "-4", "-o", "addr", "show", "eth0"]);
        let ip = out
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or_else(|| panic!("no address in {out}"))
            .to_string();
        assert_eq!(ip, ip_of(&b, &name));
        assert!(seen.insert(ip.clone()), "{ip} handed out twice");
    }
    assert_eq!(ipam_reservations(&net).len(), 20);
    let names: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(|s| s.as_str()));
    b.ok(&args);
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
}

#[test]
fn hundred_run_rm_cycles_leave_no_veth_rule_namespace_or_address() {
    let b = env();
    let net = net_name("leak");
    let doc = create_net(&b, &net, "10.201.3.0/24");
    let bridge = doc["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .expect("bridge")
        .to_string();
    // The network's own rules come with its first container and stay.
    b.ok(&["run", "--rm", "--network", &net, "bb", "true"]);
    let rules_before = rules_mentioning(&net);
    assert_eq!(rules_before.len(), 3, "{rules_before:?}");
    for i in 0..100 {
        // Every tenth publishes a port (portmap's rules), the others use the network alone.
        let port = format!("127.0.0.1:{}:80", free_port());
        let mut args = vec!["run", "--rm", "--network", &net];
        if i % 10 == 0 {
            args.extend(["-p", &port]);
        }
        args.extend(["bb", "true"]);
        b.ok(&args);
    }
    // The kernel destroys the last container's veth with its namespace, in the background.
    assert!(
        wait_until(Duration::from_secs(5), || bridge_ports(&bridge).is_empty()),
        "veths left on {bridge}: {:?}",
        bridge_ports(&bridge)
    );
    assert_eq!(
        rules_mentioning(&net),
        rules_before,
        "iptables rules changed"
    );
    assert_eq!(pins(&b), Vec::<String>::new());
    assert_eq!(
        fs::read_dir(b.runroot().join("netns"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    assert_eq!(b.container_dirs(), BTreeSet::new());
    // The network goes with its rules and bridge.
    b.ok(&["network", "rm", &net]);
    assert!(!Path::new("/sys/class/net").join(&bridge).exists());
    assert_eq!(
        rules_mentioning(&format!("barge network {net}")),
        Vec::<String>::new()
    );
}

/// A config dir whose `failnet` chains the real bridge plugin and a fake one.
/// The host bridge a test's own CNI list made: the bridge plugin never deletes its bridge on
/// DEL, so the test removes it when it ends.
struct BridgeGuard(String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

fn fake_plugin_env(plugin_body: &str, timeout_secs: f64) -> (BargeEnv, String, BridgeGuard) {
    let b = env();
    let plugins = b.path().join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    let p = plugins.join("fake");
    fs::write(&p, format!("#!/bin/sh\n{plugin_body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let etc = b.path().join("etc");
    fs::create_dir_all(etc.join("cni/net.d")).unwrap();
    fs::write(
        etc.join("config.json"),
        serde_json::json!({"network": {"plugin-dirs": [plugins, "/usr/lib/cni"],
            "plugin-timeout-secs": timeout_secs}})
        .to_string(),
    )
    .unwrap();
    let net = net_name("fake");
    let bridge = format!("bf{}", std::process::id() % 100_000_000);
    fs::write(
        etc.join("cni/net.d/failnet.conflist"),
        serde_json::json!({"cniVersion": "1.0.0", "name": net, "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.201.4.0/24"}]]}},
            {"type": "fake"}]})
        .to_string(),
    )
    .unwrap();
    (b, net, BridgeGuard(bridge))
}

fn assert_nothing_left(b: &BargeEnv, net: &str, name: &str) {
    assert_eq!(ipam_reservations(net), BTreeSet::new(), "address kept");
    assert_eq!(pins(b), Vec::<String>::new());
    let id = b.inspect(name, "{{.Id}}");
    assert!(!b.container_dir(&id).join("net").exists());
    assert_eq!(b.inspect(name, "{{.State.Running}}"), "false");
}

#[test]
fn a_failing_plugin_gives_its_message_and_leaves_nothing() {
    let (b, net, bridge) = fake_plugin_env(
        r#"cat >/dev/null; [ "$CNI_COMMAND" = DEL ] && exit 0; echo '{"cniVersion":"1.0.0","code":7,"msg":"no luck today","details":"fake says so"}'; exit 1"#,
        10.0,
    );
    let o = b.run(&["run", "--name", "victim", "--network", &net, "bb", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no luck today") && err.contains("fake"),
        "{err}"
    );
    assert_nothing_left(&b, &net, "victim");
    assert_eq!(bridge_ports(&bridge.0), BTreeSet::new());
}

#[test]
fn a_hanging_plugin_is_killed_after_the_timeout_and_leaves_nothing() {
    let (b, net, _bridge) = fake_plugin_env(
        r#"cat >/dev/null; [ "$CNI_COMMAND" = DEL ] && exit 0; echo $$ > "$(dirname "$0")/../hung.pid"; sleep 60"#,
        1.0,
    );
    let t = Instant::now();
    let o = b.run(&["run", "--name", "victim", "--network", &net, "bb", "true"]);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fake") && stderr(&o).contains("did not answer"),
        "{}",
        stderr(&o)
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let pid: i32 = fs::read_to_string(b.path().join("hung.pid"))
        .expect("the plugin ran")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        wait_until(Duration::from_secs(5), || !barge_testutil::engine::alive(
            pid
        )),
        "plugin {pid} still runs"
    );
    assert_nothing_left(&b, &net, "victim");
}

#[test]
fn dns_hosts_and_hostname_flags_reach_the_container() {
    let b = env();
    let out = b.ok(&[
        "run",
        "--rm",
        "-h",
        "myhost",
        "--dns",
        "10.9.8.7",
        "--dns-search",
        "example.test",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "fixed.example:10.1.2.3",
        "bb",
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert!(parts[0].contains("nameserver 10.9.8.7"), "{out}");
    assert!(!parts[0].contains("nameserver 127."), "{out}");
    assert!(
        parts[0].contains("search example.test") && parts[0].contains("options ndots:2"),
        "{out}"
    );
    assert!(parts[1].contains("10.1.2.3\tfixed.example"), "{out}");
    assert!(parts[1].contains("\tmyhost"), "{out}");
    assert_eq!(parts[2].trim(), "myhost");
    // Without --dns: the host's resolvers, minus loopback ones.
    let out = b.ok(&["run", "--rm", "bb", "cat", "/etc/resolv.conf"]);
    assert!(
        out.contains("nameserver") && !out.contains("nameserver 127."),
        "{out}"
    );
}

#[test]
fn network_create_ls_inspect_rm_and_connect_disconnect() {
    let b = env();
    let net = net_name("cli");
    let doc = create_net(&b, &net, "10.201.5.0/24");
    assert_eq!(doc["IPAM"]["Config"][0]["Gateway"], "10.201.5.1");
    let ls = b.ok(&["network", "ls"]);
    for n in [net.as_str(), "barge", "host", "none"] {
        assert!(
            ls.lines().any(|l| l.split_whitespace().nth(1) == Some(n)),
            "{n}: {ls}"
        );
    }
    // Bad input: clear errors, nothing created.
    refused(&b, &["network", "create", &net], "already exists");
    refused(
        &b,
        &["network", "create", "--subnet", "10.201.5.128/25", "other"],
        "overlaps",
    );
    refused(
        &b,
        &["network", "create", "--subnet", "10.201.6.1/24", "other"],
        "10.201.6.0/24",
    );
    refused(&b, &["network", "inspect", "nosuchnet"], "No such network");
    assert!(!b.ok(&["network", "ls"]).contains("other"));

    // connect: a running container on the default network gets eth1 on the new one.
    b.run_d(&["--name", "box", "bb", "sleep", "100"]);
    b.ok(&["network", "connect", &net, "box"]);
    let out = b.ok(&["exec", "box", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains("inet 10.201.5."), "{out}");
    let doc: Value = serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    assert_eq!(
        doc[0]["Containers"].as_object().map(|m| m.len()),
        Some(1),
        "{doc}"
    );
    // rm refuses while a container is on it.
    refused(&b, &["network", "rm", &net], "active endpoints");
    b.ok(&["network", "disconnect", &net, "box"]);
    let o = b.run(&["exec", "box", "ip", "link", "show", "eth1"]);
    assert!(!o.status.success(), "eth1 still there: {}", stdout(&o));
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    let bridge = doc[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    b.ok(&["network", "rm", &net]);
    assert!(!Path::new("/sys/class/net").join(&bridge).exists());
    assert!(!b.ok(&["network", "ls"]).contains(&net));
    refused(&b, &["network", "rm", "barge"], "pre-defined");
}

#[test]
fn removal_after_a_crash_still_releases_the_network() {
    let b = env();
    let net = net_name("crash");
    let doc = create_net(&b, &net, "10.201.7.0/24");
    let bridge = doc["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string();
    let id = b.run_d(&["--network", &net, "bb", "sleep", "100"]);
    assert_eq!(ipam_reservations(&net).len(), 1);
    // Kill the shim and the container, as a power cut would, except the disk stays.
    let shim: Value =
        serde_json::from_str(&fs::read_to_string(b.container_dir(&id).join("state.json")).unwrap())
            .unwrap();
    let shim_pid = shim["shim_pid"]
        .as_i64()
        .or(shim["shimPid"].as_i64())
        .expect("shim pid") as i32;
    let pid: i32 = b.inspect(&id, "{{.State.Pid}}").parse().unwrap();
    unsafe_kill(shim_pid);
    unsafe_kill(pid);
    assert!(wait_until(Duration::from_secs(5), || {
        !barge_testutil::engine::alive(pid)
    }));
    assert_eq!(
        bridge_ports(&bridge).len(),
        1,
        "the veth stays until someone cleans up"
    );
    b.ok(&["rm", "-f", &id]);
    assert_eq!(ipam_reservations(&net), BTreeSet::new());
    assert!(
        wait_until(Duration::from_secs(5), || bridge_ports(&bridge).is_empty()),
        "veth left on {bridge}"
    );
    assert_eq!(pins(&b), Vec::<String>::new());
}

fn unsafe_kill(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill -9 {pid}");
}
