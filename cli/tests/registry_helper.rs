//! The registry helper (`barge-registry`): `barge` hands pulls to it (the HTTP/TLS stack is not
//! in `barge`, which keeps `run` of a stored image small), and it dies with `barge`.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::oci_image::{push_image, Comp, Entry, Image, Layer};
use barge_testutil::registry::Registry;
use barge_testutil::token_proxy::{ProxyOptions, TokenProxy};
use barge_testutil::{exec_bounded, stderr, CMD_TIMEOUT};

fn barge(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_barge"));
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--config")
        .arg(dir.join("etc"))
        .args(args)
        .stdin(Stdio::null());
    c
}

/// A pull goes through the helper: without it, `pull` says which helper it could not start.
#[test]
fn pull_runs_in_the_registry_helper() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = barge(dir.path(), &["pull", "127.0.0.1:1/nothing:here"]);
    cmd.env("BARGE_REGISTRY", dir.path().join("no-such-helper"));
    let out = exec_bounded(cmd, CMD_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("starting the registry helper") && err.contains("no-such-helper"),
        "{err}"
    );
    // Bad names are still refused before any helper or registry.
    let mut cmd = barge(dir.path(), &["pull", "Bad Ref!"]);
    cmd.env("BARGE_REGISTRY", dir.path().join("no-such-helper"));
    let err = stderr(&exec_bounded(cmd, CMD_TIMEOUT));
    assert!(err.contains("invalid reference format"), "{err}");
}

/// `barge pull` killed with SIGKILL mid-download: the helper's download stops with it.
#[test]
fn registry_helper_dies_with_barge() {
    let reg = Registry::start();
    let mut big = Layer::new(Comp::None, vec![]);
    big.entries.push(Entry::file(
        "blob",
        barge_testutil::noise(4 << 20, 7),
        0o644,
    ));
    let built = push_image(&reg, "slow", "1", &Image::new(vec![big]));
    let proxy = TokenProxy::start_with(
        &reg.addr,
        ProxyOptions {
            bytes_per_sec: Some(1 << 20),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join(format!(
        "root/content/ingest/{}.partial",
        &built.layer_digests[0][7..]
    ));
    let size = || fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let mut child = barge(dir.path(), &["pull", &format!("{}/slow:1", proxy.addr)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while size() < 200_000 && Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after_kill = size();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        size(),
        after_kill,
        "the download went on after barge was killed"
    );
}

/// `run` of an image that is not stored pulls it through the helper (progress and summary on
/// stderr, the container's output alone on stdout), then runs it.
#[test]
fn run_pulls_a_missing_image_through_the_helper() {
    let reg = Registry::start();
    push_image(
        &reg,
        "team/app",
        "1.2",
        &Image::new(vec![Layer::busybox(Comp::Gzip)]),
    );
    let b = barge_testutil::engine::BargeEnv::new(env!("CARGO_BIN_EXE_barge"));
    let name = format!("{}/team/app:1.2", reg.addr);
    let out = b.run(&["run", "--rm", "--network", "none", &name, "echo", "hello"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(barge_testutil::stdout(&out), "hello\n");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("Unable to find image '{name}' locally"))
            && err.contains("Status: Downloaded newer image for"),
        "{err}"
    );
    // A registry that is down: the helper's error, with what was being pulled.
    let gone = "127.0.0.1:1/team/app:1.2";
    let out = b.run(&["run", "--rm", "--network", "none", gone, "true"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        stderr(&out).contains(&format!("pull {gone}: ")),
        "{}",
        stderr(&out)
    );
}
