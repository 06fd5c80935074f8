//! Pods end to end with real containers: shared network, IPC and UTS namespaces (seen from
//! inside the containers), the pod's hostname, init containers, removal without leftovers,
//! and bad input refused without half-made state.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use barge_engine::events::{Action, Journal, Type};
use barge_testutil::engine::{wait_until, BargeEnv};
use barge_testutil::net::{free_port, wait_http, HTTPD};
use barge_testutil::{stderr, stdout};
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// Removes the test's pods however the test ends (BargeEnv only knows containers).
struct Pods<'a>(&'a BargeEnv);

impl Drop for Pods<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(&["pod", "ls", "-q", "--no-trunc"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.0.run(&["pod", "rm", "-f", id]);
        }
    }
}

fn pod_inspect(b: &BargeEnv, pod: &str) -> Value {
    let v: Value = serde_json::from_str(&b.ok(&["pod", "inspect", pod])).expect("json");
    v[0].clone()
}

/// `barge exec C sh -c CMD`, trimmed stdout (must succeed).
fn exec(b: &BargeEnv, c: &str, cmd: &str) -> String {
    b.ok(&["exec", c, "sh", "-c", cmd]).trim().to_string()
}

/// Run `barge ARGS`, which must fail saying `needle`.
fn refused(b: &BargeEnv, args: &[&str], needle: &str) {
    let o = b.run(args);
    assert!(
        !o.status.success() && stderr(&o).contains(needle),
        "{args:?} should fail with {needle:?}: {}",
        stderr(&o)
    );
}

/// Mounts under the store whose line mentions `needle`.
fn mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// The inode of a namespace file, as `readlink /proc/PID/ns/X` shows it: `net:[N]`.
fn ns_link(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).unwrap().ino();
    let kind = path.file_name().unwrap().to_string_lossy().to_string();
    let kind = match kind.as_str() {
        "ipc" | "uts" => kind,
        _ => "net".to_string(),
    };
    format!("{kind}:[{ino}]")
}

#[test]
fn pod_members_share_net_ipc_uts_and_talk_over_localhost() {
    let b = env();
    let _pods = Pods(&b);
    let port = free_port();
    let pod = b
        .ok(&[
            "pod",
            "create",
            "--name",
            "p1",
            "--hostname",
            "podhost",
            "--dns",
            "192.0.2.53",
            "--dns-option",
            "ndots:3",
            "-p",
            &format!("127.0.0.1:{port}:80"),
        ])
        .trim()
        .to_string();
    assert_eq!(pod.len(), 64, "{pod}");
    let ls = b.ok(&["pod", "ls"]);
    assert!(ls.contains("p1") && ls.contains("Created"), "{ls}");
    b.run_d(&[
        "--pod",
        "p1",
        "--name",
        "web",
        "-e",
        "BODY=from the pod",
        "bb",
        "sh",
        "-c",
        HTTPD,
    ]);
    b.run_d(&["--pod", "p1", "--name", "peer", "bb", "sleep", "1000"]);
    // One network namespace: the same inode seen from both, and the pod's pin.
    let web_net = exec(&b, "web", "readlink /proc/self/ns/net");
    let peer_net = exec(&b, "peer", "readlink /proc/self/ns/net");
    assert_eq!(web_net, peer_net);
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(web_net, host_net.to_string_lossy());
    let doc = pod_inspect(&b, "p1");
    let ns = &doc["Namespaces"];
    assert_eq!(web_net, ns_link(Path::new(ns["network"].as_str().unwrap())));
    // peer reaches web's httpd on localhost.
    let mut body = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            body = b
                .ok(&[
                    "exec",
                    "peer",
                    "sh",
                    "-c",
                    "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 80 | tail -n 1",
                ])
                .trim()
                .to_string();
            !body.is_empty()
        }),
        "web does not answer on the pod's localhost"
    );
    assert_eq!(body, "from the pod");
    // The pod's published port reaches the member.
    assert_eq!(wait_http(port), "from the pod\n");
    // IPC: one namespace; a POSIX shm file written by one is read by the other.
    let web_ipc = exec(&b, "web", "readlink /proc/self/ns/ipc");
    assert_eq!(web_ipc, exec(&b, "peer", "readlink /proc/self/ns/ipc"));
    assert_eq!(web_ipc, ns_link(Path::new(ns["ipc"].as_str().unwrap())));
    assert_ne!(
        web_ipc,
        std::fs::read_link("/proc/self/ns/ipc")
            .unwrap()
            .to_string_lossy()
    );
    exec(&b, "web", "echo shared-token > /dev/shm/seg && sync");
    assert_eq!(exec(&b, "peer", "cat /dev/shm/seg"), "shared-token");
    // UTS: the pod's hostname, one namespace.
    assert_eq!(exec(&b, "web", "hostname"), "podhost");
    assert_eq!(exec(&b, "peer", "cat /etc/hostname"), "podhost");
    assert_eq!(
        exec(&b, "web", "readlink /proc/self/ns/uts"),
        exec(&b, "peer", "readlink /proc/self/ns/uts")
    );
    // The pod's DNS config.
    let resolv = exec(&b, "peer", "cat /etc/resolv.conf");
    assert!(
        resolv.contains("nameserver 192.0.2.53") && resolv.contains("ndots:3"),
        "{resolv}"
    );
    // Status from the containers'.
    let doc = pod_inspect(&b, "p1");
    assert_eq!(doc["State"], "Running", "{doc}");
    assert_eq!(doc["NumContainers"], 2);
    b.ok(&["stop", "-t", "1", "peer"]);
    assert_eq!(pod_inspect(&b, "p1")["State"], "Degraded");
    let logs = b.ok(&["pod", "logs", "p1"]);
    assert!(
        logs.is_empty() || logs.lines().all(|l| l.contains(" | ")),
        "{logs}"
    );
    b.ok(&["pod", "stop", "-t", "1", "p1"]);
    let doc = pod_inspect(&b, "p1");
    assert_eq!(doc["State"], "Stopped");
    assert_eq!(doc["Namespaces"], serde_json::json!({}));
    b.ok(&["pod", "rm", "p1"]);
    assert!(b.ok(&["pod", "ls", "-q"]).trim().is_empty());
    assert!(b.container_dirs().is_empty(), "{:?}", b.container_dirs());
    // The pod's events, in order, in the journal.
    let events: Vec<(Action, String)> = Journal::in_store(&b.root())
        .read()
        .expect("read journal")
        .into_iter()
        .filter(|e| e.typ == Type::Pod && e.actor.id == pod)
        .map(|e| (e.action, e.actor.attributes["name"].clone()))
        .collect();
    let p1 = "p1".to_string();
    assert_eq!(
        events,
        vec![
            (Action::Create, p1.clone()),
            (Action::Stop, p1.clone()),
            (Action::Destroy, p1)
        ]
    );
}

#[test]
fn pod_sysctls_and_member_restart_policy() {
    let b = env();
    let _pods = Pods(&b);
    b.ok(&[
        "pod",
        "create",
        "--name",
        "tuned",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=1024",
        "--sysctl",
        "kernel.shmmni=1234",
    ]);
    b.run_d(&["--pod", "tuned", "--name", "t1", "bb", "sleep", "1000"]);
    assert_eq!(
        exec(
            &b,
            "t1",
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"
        ),
        "1024"
    );
    assert_eq!(exec(&b, "t1", "cat /proc/sys/kernel/shmmni"), "1234");
    // The host's own values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
    // A member's restart policy still works inside the pod.
    b.run_d(&[
        "--pod",
        "tuned",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "hostname >> /dev/shm/runs; exit 1",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            b.inspect("flaky", "{{.State.Status}}") == "exited"
                && b.inspect("flaky", "{{.RestartCount}}") == "2"
        }),
        "restarts: {}",
        b.inspect("flaky", "{{.RestartCount}}")
    );
    assert_eq!(exec(&b, "t1", "cat /dev/shm/runs"), "tuned\ntuned\ntuned");
    assert_eq!(pod_inspect(&b, "tuned")["State"], "Degraded");
}

#[test]
fn init_containers_run_in_order_and_a_failure_stops_the_pod() {
    let b = env();
    let _pods = Pods(&b);
    b.ok(&["pod", "create", "--name", "ordered"]);
    for (name, n) in [("init1", "1"), ("init2", "2")] {
        b.ok(&[
            "create",
            "--pod",
            "ordered",
            "--init-ctr",
            "always",
            "--name",
            name,
            "bb",
            "sh",
            "-c",
            &format!("sleep 0.3; echo {n} >> /dev/shm/order"),
        ]);
    }
    b.ok(&[
        "create",
        "--pod",
        "ordered",
        "--name",
        "main",
        "bb",
        "sh",
        "-c",
        "cat /dev/shm/order; exec sleep 1000",
    ]);
    b.ok(&["pod", "start", "ordered"]);
    assert_eq!(b.inspect("main", "{{.State.Status}}"), "running");
    assert_eq!(b.inspect("init1", "{{.State.ExitCode}}"), "0");
    assert!(
        wait_until(Duration::from_secs(5), || b.ok(&["logs", "main"])
            == "1\n2\n"),
        "main saw {:?}",
        b.ok(&["logs", "main"])
    );
    let logs = b.ok(&["pod", "logs", "ordered"]);
    assert!(logs.contains("main  | 1\nmain  | 2\n"), "{logs:?}");
    assert_eq!(pod_inspect(&b, "ordered")["State"], "Running");

    // A failing init container: the pod start fails, the main container never starts.
    b.ok(&["pod", "create", "--name", "broken"]);
    b.ok(&[
        "create",
        "--pod",
        "broken",
        "--init-ctr",
        "always",
        "--name",
        "bad-init",
        "bb",
        "sh",
        "-c",
        "exit 3",
    ]);
    b.ok(&[
        "create", "--pod", "broken", "--name", "never", "bb", "sleep", "1000",
    ]);
    refused(
        &b,
        &["pod", "start", "broken"],
        "init container bad-init exited with code 3",
    );
    assert_eq!(b.inspect("never", "{{.State.Status}}"), "created");
    let doc = pod_inspect(&b, "broken");
    assert_eq!(doc["State"], "Stopped", "{doc}");
    assert_eq!(doc["Namespaces"], serde_json::json!({}));
}

#[test]
fn pod_rm_leaves_no_pin_veth_mount_or_cgroup() {
    let b = env();
    let _pods = Pods(&b);
    let id = b
        .ok(&["pod", "create", "--name", "gone", "--memory", "64m"])
        .trim()
        .to_string();
    b.run_d(&["--pod", "gone", "--name", "ma", "bb", "sleep", "1000"]);
    b.run_d(&["--pod", "gone", "--name", "mb", "bb", "sleep", "1000"]);
    let doc = pod_inspect(&b, "gone");
    let pins: Vec<PathBuf> = doc["Namespaces"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect();
    assert_eq!(pins.len(), 3, "{doc}");
    let cgroups: Vec<PathBuf> = doc["CgroupPaths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| PathBuf::from(v.as_str().unwrap()))
        .collect();
    assert!(!cgroups.is_empty(), "{doc}");
    // The members' cgroups are inside the pod's, and its memory limit is set there.
    let a = b.inspect("ma", "{{.Id}}");
    let mem = cgroups
        .iter()
        .find(|p| p.starts_with("/sys/fs/cgroup/memory"))
        .expect("a memory cgroup");
    assert!(mem.join(&a).is_dir(), "{} has no {a}", mem.display());
    assert_eq!(
        std::fs::read_to_string(mem.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (64u64 << 20).to_string()
    );
    // The pod's veth: the host end of the members' eth0 (its peer's ifindex).
    let peer: String = exec(&b, "ma", "cat /sys/class/net/eth0/iflink");
    let veth = host_link_with_index(&peer).expect("the pod's host-side veth");
    assert!(veth.starts_with("veth"), "{veth}");
    assert_eq!(exec(&b, "mb", "cat /sys/class/net/eth0/iflink"), peer);
    assert!(!mounts_with(&id).is_empty());

    refused(&b, &["pod", "rm", "gone"], "running containers");
    b.ok(&["pod", "rm", "-f", "gone"]);
    for p in &pins {
        assert!(!p.exists(), "{} left", p.display());
    }
    for c in &cgroups {
        assert!(!c.exists(), "{} left", c.display());
    }
    assert_eq!(mounts_with(&id), Vec::<String>::new());
    // The pin goes first and the kernel destroys the veth with the namespace, in the
    // background (see DEL_WITHOUT_NETNS in the engine): gone soon, not at once.
    assert!(
        wait_until(Duration::from_secs(5), || !Path::new("/sys/class/net")
            .join(&veth)
            .exists()),
        "{veth} left"
    );
    assert!(b.container_dirs().is_empty(), "{:?}", b.container_dirs());
    assert!(!b.root().join("pods").join(&id).exists());
    assert!(b.ok(&["pod", "ls", "-q"]).trim().is_empty());
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
}

/// The host's network interface with this ifindex.
fn host_link_with_index(index: &str) -> Option<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path().join("ifindex")).is_ok_and(|i| i.trim() == index)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

#[test]
fn bad_pod_input_is_refused_without_half_state() {
    let b = env();
    let _pods = Pods(&b);
    let first = b.ok(&["pod", "create", "--name", "dup"]).trim().to_string();
    refused(&b, &["pod", "create", "--name", "dup"], "already in use");
    assert_eq!(b.ok(&["pod", "ls", "-q", "--no-trunc"]).trim(), first);
    refused(
        &b,
        &["run", "--pod", "nosuch", "bb", "true"],
        "No such pod: nosuch",
    );
    refused(
        &b,
        &["run", "--pod", "dup", "-p", "8080:80", "bb", "true"],
        "-p/--publish cannot be used with --pod dup",
    );
    refused(
        &b,
        &["create", "--pod", "dup", "--network", "none", "bb", "true"],
        "--network cannot be used with --pod",
    );
    refused(
        &b,
        &["create", "--pod", "dup", "--hostname", "x", "bb", "true"],
        "--hostname cannot be used with --pod",
    );
    refused(
        &b,
        &["pod", "create", "--share", "bogus"],
        "unknown namespace",
    );
    refused(
        &b,
        &["pod", "create", "--cgroup-parent", "kubepods.slice"],
        "systemd",
    );
    refused(
        &b,
        &["pod", "create", "--sysctl", "kernel.panic=1"],
        "not a namespaced sysctl",
    );
    refused(
        &b,
        &["create", "--init-ctr", "always", "bb", "true"],
        "must belong to a pod",
    );
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(b.container_dirs().is_empty(), "{:?}", b.container_dirs());
    assert_eq!(b.ok(&["pod", "ls", "-q", "--no-trunc"]).trim(), first);
    let ls: Value = serde_json::from_str(&b.ok(&["pod", "ls", "--format", "json"])).unwrap();
    assert_eq!(ls[0]["Name"], "dup");
    assert_eq!(ls[0]["Status"], "Created");
    refused(&b, &["pod", "inspect", "nosuch"], "No such pod");
}

#[test]
fn pod_without_its_own_network_and_with_none() {
    let b = env();
    let _pods = Pods(&b);
    // --network none: a namespace of its own with only lo, shared by the members.
    b.ok(&["pod", "create", "--name", "quiet", "--network", "none"]);
    b.run_d(&["--pod", "quiet", "--name", "q1", "bb", "sleep", "1000"]);
    b.run_d(&["--pod", "quiet", "--name", "q2", "bb", "sleep", "1000"]);
    assert_eq!(exec(&b, "q1", "ls /sys/class/net"), "lo");
    assert_eq!(
        exec(&b, "q1", "readlink /proc/self/ns/net"),
        exec(&b, "q2", "readlink /proc/self/ns/net")
    );
    // --network host: the host's network, still a shared IPC and UTS namespace.
    b.ok(&[
        "pod",
        "create",
        "--name",
        "onhost",
        "--network",
        "host",
        "--hostname",
        "hp",
    ]);
    b.run_d(&["--pod", "onhost", "--name", "h1", "bb", "sleep", "1000"]);
    assert_eq!(
        exec(&b, "h1", "readlink /proc/self/ns/net"),
        std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(exec(&b, "h1", "hostname"), "hp");
    let doc = pod_inspect(&b, "onhost");
    assert!(doc["Namespaces"].get("network").is_none(), "{doc}");
    assert!(doc["Namespaces"].get("ipc").is_some(), "{doc}");
    refused(
        &b,
        &["pod", "create", "--network", "host", "-p", "80"],
        "port publishing needs a network",
    );
    let json: Value = serde_json::from_str(&b.ok(&["pod", "ls", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    b.ok(&["pod", "rm", "-f", "quiet", "onhost"]);
    assert!(b.ok(&["pod", "ls", "-q"]).trim().is_empty());
}
