//! docker-compose 1.29 (Debian's `docker-compose`) against the daemon: `up -d`, `ps`,
//! `logs`, `down -v` on a two-service project with a user network and a named volume, the
//! client reaching the server by its service name.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // the harness exports more than this file uses
mod common;

use common::*;

fn compose(d: &Daemon, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new("docker-compose");
    c.current_dir(dir)
        .args(["-p", "d2proj"])
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env("DOCKER_CONFIG", d.store.path().join("docker-config"))
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .stdin(std::process::Stdio::null());
    exec_bounded(c, DOCKER_TIMEOUT)
}

#[track_caller]
fn compose_ok(d: &Daemon, dir: &std::path::Path, args: &[&str]) -> String {
    let o = compose(d, dir, args);
    assert!(
        o.status.success(),
        "docker-compose {args:?}: {}\n{}\ndaemon log:\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
    stdout(&o)
}

#[test]
fn compose_up_ps_logs_down() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose/docker-compose.yml"),
        dir.path().join("docker-compose.yml"),
    )
    .unwrap();
    compose_ok(&d, dir.path(), &["up", "-d"]);
    let ps = compose_ok(&d, dir.path(), &["ps"]);
    assert!(ps.contains("d2proj_web_1"), "{ps}");
    let ok = wait_until(std::time::Duration::from_secs(20), || {
        compose(&d, dir.path(), &["logs", "client"])
            .stdout
            .windows(10)
            .any(|w| w == b"compose-ok")
    });
    assert!(
        ok,
        "the client never reached web by name:\n{}",
        stdout(&compose(&d, dir.path(), &["logs"]))
    );
    let vols = d.docker_ok(&["volume", "ls", "-q"]);
    assert!(vols.contains("d2proj_store"), "{vols}");
    let nets = d.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.contains("d2proj_back"), "{nets}");
    compose_ok(&d, dir.path(), &["down", "-v"]);
    assert_eq!(d.docker_ok(&["ps", "-aq"]).trim(), "");
    assert!(!d
        .docker_ok(&["volume", "ls", "-q"])
        .contains("d2proj_store"));
    assert!(!d
        .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("d2proj_back"));
}
