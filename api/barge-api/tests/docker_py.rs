//! docker-py (PyPI `docker`, 7.x) scenarios (tests/py/scenarios.py) against the daemon:
//! pull, images, containers (run detached, streamed logs with follow, wait, remove), attach
//! socket and exec_run, volumes and networks, put/get archive.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)] // the harness exports more than this file uses
mod common;

use barge_testutil::oci_image::{push_image, Image};
use barge_testutil::registry::Registry;
use common::*;

fn scenario(d: &Daemon, name: &str, env: &[(&str, &str)]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/scenarios.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script)
        .arg(name)
        .env("DOCKER_HOST", format!("unix://{}", d.sock.display()))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = exec_bounded(c, DOCKER_TIMEOUT);
    assert!(
        o.status.success(),
        "docker-py scenario {name} failed:\n{}\n{}\ndaemon log:\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
}

#[test]
fn py_pull() {
    let reg = Registry::start();
    push_image(&reg, "py/bb", "7", &Image::busybox());
    let d = Daemon::start();
    let repo = format!("{}/py/bb", reg.addr);
    scenario(&d, "pull", &[("PULL_REPO", &repo), ("PULL_TAG", "7")]);
}

#[test]
fn py_images() {
    scenario(&Daemon::start(), "images", &[]);
}

#[test]
fn py_containers_logs_wait_remove() {
    scenario(&Daemon::start(), "containers", &[]);
}

#[test]
fn py_attach_socket_and_exec() {
    scenario(&Daemon::start(), "attach_exec", &[]);
}

#[test]
fn py_volumes_networks() {
    scenario(&Daemon::start(), "volumes_networks", &[]);
}

#[test]
fn py_archive() {
    scenario(&Daemon::start(), "archive", &[]);
}
