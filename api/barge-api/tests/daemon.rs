//! The daemon itself: its socket, version negotiation, a panicking handler, fork safety,
//! surviving SIGKILL, and sharing the store with the `barge` CLI.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

/// The socket is 0660, owned by root and the --group's group; never world-accessible.
#[test]
fn socket_mode_and_group() {
    // `nogroup` (gid 65534) exists on Debian; any group but root's shows the chown.
    let gid: u32 = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f[0] == "nogroup").then(|| f[2].parse().unwrap())
        })
        .expect("group nogroup");
    let d = Daemon::start_with(&["--group", "nogroup"]);
    let m = std::fs::metadata(&d.sock).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!((m.uid(), m.gid()), (0, gid), "socket owner");
    let v = d.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.47");
}

/// A handler that panics answers 500 and the daemon goes on serving.
#[test]
fn panicking_handler_is_a_500() {
    let d = Daemon::start();
    let (status, body) = d.json("GET", "/_barge/panic", b"");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("panicked"),
        "{body}"
    );
    let (status, _) = d.json("GET", "/v1.47/_barge/panic", b"");
    assert_eq!(status, 500);
    assert_eq!(d.request("GET", "/_ping", b"").text(), "OK");
    d.docker_ok(&["ps"]);
    assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid()), None).is_ok());
}

/// `--host fd://` under systemd-socket-activate: the daemon serves the socket it was given.
#[test]
fn socket_activation() {
    let d = Daemon::start_wrapped(&["systemd-socket-activate", "-l", "{sock}"], &[], true);
    let v = d.docker_ok(&["version", "--format", "{{.Server.Os}}"]);
    assert_eq!(v.trim(), "linux");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "bb", "echo", "activated"]),
        "activated\n"
    );
}

/// Clients that go away in the middle of a stream (logs -f, attach, events, wait, stats)
/// leave nothing behind: the daemon's fds come back to where they were.
#[test]
fn clients_leaving_mid_stream_leak_nothing() {
    let d = Daemon::start();
    let id = d
        .docker_ok(&["run", "-d", "bb", "sleep", "300"])
        .trim()
        .to_string();
    d.docker_ok(&["logs", &id]);
    let base = d.fd_count();
    let open = |method: &str, path: &str, upgrade: bool| open_stream(&d, method, path, upgrade);
    for round in 0..3 {
        let conns = vec![
            open(
                "GET",
                &format!("/containers/{id}/logs?follow=1&stdout=1&stderr=1"),
                false,
            ),
            open(
                "POST",
                &format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin=1"),
                true,
            ),
            open("GET", "/events", false),
            open("POST", &format!("/containers/{id}/wait"), false),
            open("GET", &format!("/containers/{id}/stats"), false),
        ];
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            d.fd_count() > base,
            "round {round}: the streams hold nothing?"
        );
        drop(conns);
        let ok = wait_until(Duration::from_secs(8), || d.fd_count() <= base);
        assert!(
            ok,
            "round {round}: fds {} > {base} after the clients left:\n{}",
            d.fd_count(),
            fds(d.pid())
        );
    }
    // The container was not touched.
    assert_eq!(d.inspect(&id, "{{.State.Status}}"), "running");
}

fn fds(pid: i32) -> String {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// 50 API clients creating, starting and removing containers at once: every request
/// succeeds (no "database is locked"), none is lost, nothing is left.
#[test]
fn fifty_concurrent_clients() {
    let d = std::sync::Arc::new(Daemon::start());
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let d = d.clone();
            std::thread::spawn(move || {
                let body = br#"{"Image":"bb","Cmd":["true"]}"#;
                let (st, v) = d.json("POST", &format!("/containers/create?name=c{i}"), body);
                assert_eq!(st, 201, "create c{i}: {v}");
                let id = v["Id"].as_str().unwrap().to_string();
                let r = d.request("DELETE", &format!("/containers/{id}?force=1"), b"");
                assert_eq!(r.status, 204, "remove c{i}: {}", r.text());
                id
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in threads {
        ids.insert(t.join().expect("a client failed"));
    }
    assert_eq!(ids.len(), 50);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
    assert!(
        d.store.container_dirs().is_empty(),
        "{:?}",
        d.store.container_dirs()
    );
    assert!(!d.log().contains("locked"), "{}", d.log());
}

/// SIGKILL the daemon with 20 containers running: they all keep running, and a new daemon
/// lists them at once.
#[test]
fn sigkilled_daemon_leaves_containers_running() {
    let mut d = Daemon::start();
    let mut pids = Vec::new();
    for i in 0..20 {
        let name = format!("k{i}");
        d.docker_ok(&["run", "-d", "--name", &name, "bb", "sleep", "300"]);
        pids.push(d.inspect(&name, "{{.State.Pid}}").parse::<i32>().unwrap());
    }
    d.kill();
    std::thread::sleep(Duration::from_millis(300));
    for p in &pids {
        assert!(
            barge_testutil::engine::alive(*p),
            "container process {p} died with the daemon"
        );
    }
    d.spawn();
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    let running = ps.lines().filter(|l| l.ends_with(" running")).count();
    assert_eq!(running, 20, "{ps}");
    d.docker_ok(&["stop", "-t", "0", "k0"]);
    assert_eq!(d.inspect("k0", "{{.State.Status}}"), "exited");
}

/// The daemon and the `barge` CLI on one store: each sees, stops and removes what the
/// other started.
#[test]
fn daemon_and_cli_share_the_store() {
    let d = Daemon::start();
    let id = d.store.run_d(&["--name", "fromcli", "bb", "sleep", "300"]);
    let ps = d.docker_ok(&["ps", "--no-trunc", "-q"]);
    assert_eq!(ps.trim(), id);
    d.docker_ok(&["stop", "-t", "0", "fromcli"]);
    assert_eq!(d.store.inspect("fromcli", "{{.State.Status}}"), "exited");
    d.docker_ok(&["rm", "fromcli"]);
    assert_eq!(d.store.ok(&["ps", "-aq"]), "");

    let id = d
        .docker_ok(&["run", "-d", "--name", "fromapi", "bb", "sleep", "300"])
        .trim()
        .to_string();
    let ps = d.store.ok(&["ps", "--no-trunc", "-q"]);
    assert_eq!(ps.trim(), id);
    d.store.ok(&["stop", "-t", "0", "fromapi"]);
    assert_eq!(d.inspect("fromapi", "{{.State.Status}}"), "exited");
    d.store.ok(&["rm", "fromapi"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]), "");
}

/// The daemon never forks without exec: under strace, every process any daemon thread
/// creates execs as its first traced syscall (threads are clones with CLONE_THREAD).
#[test]
fn daemon_never_forks_without_exec() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("trace");
    let prefix_s = prefix.display().to_string();
    let d = Daemon::start_wrapped(
        &[
            "strace",
            "-qq",
            "-ff",
            "-e",
            "trace=clone,clone3,fork,vfork,execve",
            "-o",
            &prefix_s,
        ],
        &[],
        false,
    );
    let daemon = d.pid();
    d.docker_ok(&["run", "--rm", "bb", "true"]);
    d.docker_ok(&["run", "-d", "--name", "forks", "bb", "sleep", "300"]);
    d.docker_ok(&["exec", "forks", "true"]);
    d.docker_ok(&["top", "forks"]);
    d.docker_ok(&["stop", "-t", "0", "forks"]);
    d.docker_ok(&["rm", "forks"]);
    let trace = |pid: i32| std::fs::read_to_string(format!("{prefix_s}.{pid}")).unwrap_or_default();
    let child_of = |line: &str| -> Option<i32> { line.rsplit("= ").next()?.trim().parse().ok() };
    let mut threads = vec![daemon];
    let mut procs = Vec::new();
    let mut i = 0;
    while i < threads.len() {
        for line in trace(threads[i]).lines() {
            let spawns = ["clone(", "clone3(", "fork(", "vfork("]
                .iter()
                .any(|c| line.starts_with(c));
            let Some(child) = child_of(line).filter(|_| spawns) else {
                continue;
            };
            if line.contains("CLONE_THREAD") {
                threads.push(child);
            } else {
                procs.push(child);
            }
        }
        i += 1;
    }
    assert!(threads.len() > 1, "no daemon threads traced");
    assert!(
        procs.len() >= 3,
        "the workload spawned too few processes: {procs:?}"
    );
    for p in procs {
        let t = trace(p);
        let first = t.lines().next().unwrap_or("");
        assert!(
            first.starts_with("execve("),
            "child {p} of the daemon did not exec first:\n{t}"
        );
    }
}

/// A request on its own connection (an upgrade to a raw stream with `upgrade`), answered with
/// headers now and a body later: the connection, once the head (200 or 101) has been read.
fn open_stream(
    d: &Daemon,
    method: &str,
    path: &str,
    upgrade: bool,
) -> std::os::unix::net::UnixStream {
    let mut s = d.connect();
    let extra = if upgrade {
        "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    } else {
        "Connection: close\r\n"
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "{method} {path}: closed early");
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 101"),
        "{method} {path}: {head}"
    );
    s
}

/// Clients that only wait (`docker wait`, the wait every `docker run` makes, `docker
/// events`) hold no thread of the daemon: 100 waits and 100 event streams open at once,
/// more than the blocking pool's 64 threads, and the daemon still answers requests that
/// need the engine, with a handful of threads. When the container dies every wait gets its
/// exit code and every stream its `die` event.
#[test]
fn waiting_clients_hold_no_threads() {
    let d = Daemon::start();
    let id = d
        .docker_ok(&["run", "-d", "bb", "sleep", "300"])
        .trim()
        .to_string();
    let base = d.thread_count();
    let waits: Vec<_> = (0..100)
        .map(|_| open_stream(&d, "POST", &format!("/containers/{id}/wait"), false))
        .collect();
    let events: Vec<_> = (0..100)
        .map(|_| {
            open_stream(
                &d,
                "GET",
                "/events?filters=%7B%22event%22%3A%5B%22die%22%5D%7D",
                false,
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let threads = d.thread_count();
    assert!(
        threads <= base + 8,
        "{threads} threads with 200 waiting clients (from {base})"
    );
    // Requests that run on the blocking pool are answered.
    let (st, v) = d.json("GET", "/containers/json", b"");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v.as_array().map(|a| a.len()), Some(1), "{v}");
    let r = d.request("POST", &format!("/containers/{id}/kill"), b"");
    assert_eq!(r.status, 204, "{}", r.text());
    for mut w in waits {
        let mut body = String::new();
        w.read_to_string(&mut body).unwrap();
        assert!(
            body.contains(r#""StatusCode":137"#),
            "wait answered {body:?}"
        );
    }
    for mut e in events {
        e.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(r#""status":"die""#) {
            let n = e.read(&mut b).expect("the die event within 10 s");
            assert!(
                n > 0,
                "the event stream ended early: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&b[..n]);
        }
        assert!(String::from_utf8_lossy(&got).contains(&id));
    }
}
