//! `docker ps` through the daemon is never staler than the store: the daemon caches its list
//! entries, and each test first lists (so the cache is built), then changes a container
//! behind the daemon's back (the daemonless `barge` CLI, the container's own exit, a shim's
//! death) and lists again at once, without waiting or retrying.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// `docker ps -a` as `NAME STATE STATUS` lines, newest first.
fn ps_a(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The one line of `ps_a` for `name`.
fn line_of(d: &Daemon, name: &str) -> String {
    let lines = ps_a(d);
    let mine: Vec<&String> = lines
        .iter()
        .filter(|l| l.split(' ').next() == Some(name))
        .collect();
    assert_eq!(mine.len(), 1, "{name} in {lines:?}");
    mine[0].clone()
}

/// Running containers' names (`docker ps`).
fn running(d: &Daemon) -> Vec<String> {
    d.docker_ok(&["ps", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn ps_sees_what_the_cli_does_at_once() {
    let d = Daemon::start();
    assert!(running(&d).is_empty());

    // Created and started by the CLI.
    let id = d.store.run_d(&["--name", "c1", "bb", "sleep", "300"]);
    assert_eq!(running(&d), ["c1"]);
    let ids = d.docker_ok(&["ps", "-q", "--no-trunc"]);
    assert_eq!(ids.trim(), id);

    // Renamed (the CLI has no rename: through the daemon).
    d.docker_ok(&["rename", "c1", "c2"]);
    assert_eq!(running(&d), ["c2"]);

    // Killed: once the CLI sees it exited, so does the daemon.
    d.store.ok(&["kill", "c2"]);
    assert_eq!(d.store.ok(&["wait", "c2"]).trim(), "137");
    assert!(running(&d).is_empty(), "{:?}", running(&d));
    assert!(
        line_of(&d, "c2").starts_with("c2 exited Exited (137) "),
        "{:?}",
        ps_a(&d)
    );

    // Started again, paused, unpaused, stopped.
    d.store.ok(&["start", "c2"]);
    assert!(
        line_of(&d, "c2").starts_with("c2 running Up "),
        "{:?}",
        ps_a(&d)
    );
    d.store.ok(&["pause", "c2"]);
    let l = line_of(&d, "c2");
    assert!(
        l.starts_with("c2 paused Up ") && l.ends_with("(Paused)"),
        "{l}"
    );
    d.store.ok(&["unpause", "c2"]);
    let l = line_of(&d, "c2");
    assert!(
        l.starts_with("c2 running Up ") && !l.contains("Paused"),
        "{l}"
    );
    d.store.ok(&["stop", "-t", "0", "c2"]);
    assert!(running(&d).is_empty());
    assert!(line_of(&d, "c2").starts_with("c2 exited Exited (137) "));

    // A second container, created but never started, lists first (newest) with -a.
    d.store.ok(&["create", "--name", "c3", "bb", "true"]);
    let all = ps_a(&d);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("c3 created Created"), "{all:?}");
    assert!(all[1].starts_with("c2 exited "), "{all:?}");

    // Removed.
    d.store.ok(&["rm", "c2", "c3"]);
    assert!(ps_a(&d).is_empty(), "{:?}", ps_a(&d));
}

/// A container's own exit (its shim's `die`) and a restart by its policy.
#[test]
fn ps_sees_exits_and_restarts_at_once() {
    let d = Daemon::start();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "bb",
        "sh",
        "-c",
        "sleep 2; exit 3",
    ]);
    assert_eq!(running(&d), ["ex"]);
    assert_eq!(d.store.ok(&["wait", "ex"]).trim(), "3");
    assert!(running(&d).is_empty());
    assert!(line_of(&d, "ex").starts_with("ex exited Exited (3) "));

    // Restarted by its policy: each run shows up (restart count in the journal's order).
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        "rs",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "sleep 2; exit 4",
    ]);
    assert!(line_of(&d, "rs").starts_with("rs running Up "));
    // After the policy gave up: exited, whatever the list saw in between.
    assert!(d.store.wait_for(std::time::Duration::from_secs(30), || {
        d.store.inspect("rs", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
    }));
    assert!(
        line_of(&d, "rs").starts_with("rs exited Exited (4) "),
        "{:?}",
        ps_a(&d)
    );
}

/// A shim SIGKILLed writes no event: the daemon's list sees it gone all the same.
#[test]
fn ps_sees_a_lost_shim_at_once() {
    let d = Daemon::start();
    let id = d
        .docker_ok(&["run", "-d", "--name", "sh1", "bb", "sleep", "300"])
        .trim()
        .to_string();
    assert!(line_of(&d, "sh1").starts_with("sh1 running Up "));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.store.container_dir(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = state["shim_pid"].as_i64().unwrap() as i32;
    assert!(shim > 0, "{state}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(std::time::Duration::from_secs(10), || {
        !barge_testutil::engine::alive(shim)
    }));
    // What the CLI says is what the daemon says.
    let cli = d.store.ok(&["ps", "--format", "json"]);
    assert!(cli.contains("shim lost"), "{cli}");
    let l = line_of(&d, "sh1");
    assert!(
        l.starts_with("sh1 running Up ") && l.ends_with("(shim lost)"),
        "{l}"
    );
    d.docker_ok(&["rm", "-f", "sh1"]);
    assert!(ps_a(&d).is_empty());
}

/// The cached list answers filters, limits and order like the engine's own list.
#[test]
fn cached_list_filters_and_orders() {
    let d = Daemon::start();
    d.docker_ok(&["ps"]);
    for n in ["f1", "f2", "f3"] {
        d.store.run_d(&[
            "--name",
            n,
            "--label",
            &format!("k={n}"),
            "bb",
            "sleep",
            "300",
        ]);
    }
    d.store.ok(&["stop", "-t", "0", "f2"]);
    assert_eq!(running(&d), ["f3", "f1"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        d.docker_ok(&all).lines().map(str::to_string).collect()
    };
    assert_eq!(names(&["-a"]), ["f3", "f2", "f1"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["f2"]);
    assert_eq!(names(&["--filter", "label=k=f1"]), ["f1"]);
    assert_eq!(names(&["-a", "--filter", "name=f"]), ["f3", "f2", "f1"]);
    assert_eq!(names(&["-n", "2"]), ["f3", "f2"]);
    assert_eq!(names(&["-l"]), ["f3"]);
    assert_eq!(names(&["-a", "--filter", "before=f3"]), ["f2", "f1"]);
    d.store.ok(&["rm", "-f", "f1", "f2", "f3"]);
    assert!(names(&["-a"]).is_empty());
}
