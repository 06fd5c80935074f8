//! A lost shim and a killed `run -d`: what barge reports and what `system check` repairs.
//!
//! A shim killed with SIGKILL leaves its container running, re-parented away from barge:
//! nobody logs its output or will record its exit. barge must say so (ps, inspect), never
//! hang on it (`wait`, `attach`, `logs -f`), and stop it cleanly on `stop` or `system check`,
//! recording why. (cli/tests/recovery.rs covers the repair itself.)
//!
//! Only processes this test started, or found through its own store's state files (and
//! verified by command line), are signalled.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use barge_testutil::engine::{alive, wait_until, BargeEnv};
use barge_testutil::{exec_bounded, stderr};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

fn shim_state(b: &BargeEnv, id: &str) -> Value {
    let data = fs::read(b.container_dir(id).join("state.json")).expect("state.json");
    serde_json::from_slice(&data).expect("state.json")
}

/// SIGKILL the container's shim (checked by its command line); `(init pid, shim pid)`.
fn kill_shim(b: &BargeEnv, id: &str) -> (i32, i32) {
    let st = shim_state(b, id);
    let (pid, shim) = (
        st["pid"].as_i64().unwrap() as i32,
        st["shim_pid"].as_i64().unwrap() as i32,
    );
    let cmdline = fs::read(format!("/proc/{shim}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("barge-shim"),
        "pid {shim} is not a shim"
    );
    kill(Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    assert!(wait_until(Duration::from_secs(5), || !alive(shim)));
    (pid, shim)
}

fn state(b: &BargeEnv, id: &str) -> Value {
    serde_json::from_str(&b.inspect(id, "{{json .State}}")).expect("State JSON")
}

/// Run a barge command bounded by `limit`; fails the test if it does not end in time.
fn bounded(b: &BargeEnv, args: &[&str], limit: Duration) -> std::process::Output {
    let t = Instant::now();
    let mut c = b.cmd(args);
    c.stdin(Stdio::null());
    let out = exec_bounded(c, limit + Duration::from_secs(5));
    assert!(
        t.elapsed() < limit,
        "{args:?} took {:?} (a hang on a lost shim)",
        t.elapsed()
    );
    out
}

fn mounted(path: &Path) -> bool {
    barge_util::mountinfo::read_self()
        .unwrap_or_default()
        .iter()
        .any(|m| m.mount_point == path)
}

/// The loss is shown (ps, inspect), `wait`, `attach` and `logs -f` return with an error at
/// once instead of hanging, `exec -d` is refused, and `system check` stops the container and
/// records why. Before, ps/inspect said plain `running`, `wait` and `logs -f` hung forever.
#[test]
fn lost_shim_is_reported_and_nothing_hangs() {
    let b = env();
    let id = b.run_d(&[
        "--name",
        "lost",
        "-i",
        "bb",
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.1; done",
    ]);
    let other = b.run_d(&["--name", "fine", "bb", "sleep", "60"]);
    std::thread::sleep(Duration::from_millis(300));
    let (pid, _) = kill_shim(&b, &id);
    assert!(alive(pid), "the container died with its shim");

    let st = state(&b, &id);
    assert_eq!(st["Status"], "running", "{st}");
    assert_eq!(st["ShimLost"], true, "{st}");
    assert!(st["Error"].as_str().unwrap().contains("shim lost"), "{st}");
    assert_eq!(state(&b, &other)["ShimLost"], false);
    let ps = b.ok(&["ps"]);
    let row = ps.lines().find(|l| l.contains("lost")).expect("ps row");
    assert!(row.contains("(shim lost)"), "{ps}");
    assert!(!ps
        .lines()
        .any(|l| l.contains("fine") && l.contains("shim lost")));

    for args in [
        vec!["wait", "lost"],
        vec!["attach", "--no-stdin", "lost"],
        vec!["logs", "-f", "lost"],
    ] {
        let out = bounded(&b, &args, Duration::from_secs(5));
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr(&out).contains("shim"), "{args:?}: {}", stderr(&out));
    }
    let out = bounded(&b, &["exec", "-d", "lost", "true"], Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(alive(pid), "a command stopped the container");

    let report = b.ok(&["system", "check"]);
    assert!(
        report.contains(&id) && report.contains("repaired"),
        "{report}"
    );
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let st = state(&b, &id);
    assert_eq!(st["Status"], "exited", "{st}");
    assert_eq!(st["ExitCode"], 255, "{st}");
    assert_eq!(st["ShimLost"], false, "{st}");
    assert!(
        st["Error"]
            .as_str()
            .unwrap()
            .contains("stopped by `barge system check`"),
        "{st}"
    );
    // wait now answers at once with the recorded code.
    let out = bounded(&b, &["wait", "lost"], Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "255");
    assert_eq!(state(&b, &other)["Status"], "running");
}

/// `stop` of a container whose shim is lost stops it and does the shim's clean-up (runtime
/// state, rootfs mount, socket), recording why: nothing is left for `system check`.
#[test]
fn stop_of_a_shimless_container_cleans_up() {
    let b = env();
    let id = b.run_d(&["--name", "st", "bb", "sleep", "60"]);
    let (pid, _) = kill_shim(&b, &id);
    let out = bounded(&b, &["stop", "-t", "1", "st"], Duration::from_secs(8));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!alive(pid), "stop left the container running");
    let st = state(&b, &id);
    assert_eq!(st["Status"], "exited", "{st}");
    assert!(st["Error"].as_str().unwrap().contains("shim lost"), "{st}");
    assert!(!mounted(&b.container_dir(&id).join("rootfs")));
    assert!(!b.runroot().join("runtime").join(&id).exists());
    assert_eq!(b.ok(&["system", "check"]).trim(), "No problems found");
    b.ok(&["start", "st"]);
    assert_eq!(b.inspect("st", "{{.State.Status}}"), "running");
}

fn netns_pin(b: &BargeEnv, id: &str) -> PathBuf {
    b.runroot().join("netns").join(id)
}

/// A start killed between creating the network namespace's pin file and mounting the
/// namespace on it leaves the file behind a `Created` container: `system check` lists and
/// removes it (before, it looked only for a mounted pin and said "No problems found").
#[test]
fn check_finds_an_unmounted_netns_pin() {
    let b = env();
    b.ok(&["create", "--name", "cr", "bb", "sleep", "60"]);
    let id = b.inspect("cr", "{{.Id}}");
    let pin = netns_pin(&b, &id);
    fs::create_dir_all(pin.parent().unwrap()).unwrap();
    fs::write(&pin, "").unwrap();
    let report = b.ok(&["system", "check", "--dry-run"]);
    assert!(
        report.contains(&id) && report.contains("its network is up"),
        "{report}"
    );
    assert!(pin.exists(), "the dry run removed it");
    b.ok(&["system", "check"]);
    assert!(!pin.exists(), "the pin file is left");
    assert_eq!(b.ok(&["system", "check"]).trim(), "No problems found");
    b.ok(&["start", "cr"]);
    assert_eq!(b.inspect("cr", "{{.State.Status}}"), "running");
}

/// `run -d` SIGKILLed at spread-out moments (alone, or with its process group): after one
/// `system check` nothing is left that a second check would find, no container that is not
/// running keeps a network namespace pin (mounted or not), and every container left can be
/// started and removed.
#[test]
fn killed_run_d_leaves_nothing_check_misses() {
    let b = env();
    const N: u64 = 16;
    // 20-140 ms: create (the rootfs mount), then the network (pin file, mount), the shim.
    for i in 0..N {
        let delay = Duration::from_micros(20_000 + 120_000 * ((i * 7) % N) / (N - 1));
        let mut c = b.cmd(&["run", "-d", "bb", "sleep", "100"]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = c.spawn().expect("spawn run -d");
        std::thread::sleep(delay);
        let p = Pid::from_raw(child.id() as i32);
        if i % 2 == 1 {
            let _ = killpg(p, Signal::SIGKILL);
        } else {
            let _ = kill(p, Signal::SIGKILL);
        }
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let report = b.ok(&["system", "check"]);
    eprintln!("system check:\n{report}");
    assert_eq!(b.ok(&["system", "check"]).trim(), "No problems found");
    for id in b.ok(&["ps", "-aq", "--no-trunc"]).lines() {
        let status = b.inspect(id, "{{.State.Status}}");
        if status != "running" {
            assert!(
                fs::symlink_metadata(netns_pin(&b, id)).is_err(),
                "{status} container {id} keeps a network namespace pin"
            );
        }
        if status == "created" {
            b.ok(&["start", id]);
            assert_eq!(b.inspect(id, "{{.State.Status}}"), "running");
        }
    }
    for id in b.ok(&["ps", "-aq", "--no-trunc"]).lines() {
        b.ok(&["rm", "-f", id]);
    }
    let pins: Vec<_> = fs::read_dir(b.runroot().join("netns"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(pins.is_empty(), "pins left: {pins:?}");
}

/// A container that ended while its shim was gone (nobody recorded its exit, the runtime's
/// record is left): shown exited with the loss, and `start` runs it again (before, the new
/// create failed "already exists").
#[test]
fn container_that_ended_without_its_shim_starts_again() {
    let b = env();
    let id = b.run_d(&["--name", "ended", "bb", "sleep", "1"]);
    let (pid, _) = kill_shim(&b, &id);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the container did not end"
    );
    let st = state(&b, &id);
    assert_eq!(st["Status"], "exited", "{st}");
    assert_eq!(st["ExitCode"], 255, "{st}");
    assert_eq!(st["ShimLost"], true, "{st}");
    let out = bounded(&b, &["wait", "ended"], Duration::from_secs(5));
    assert_ne!(out.status.code(), Some(0), "wait: {}", stderr(&out));
    let out = bounded(&b, &["start", "ended"], Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(b.inspect("ended", "{{.State.Status}}"), "running");
    assert_eq!(b.inspect("ended", "{{.State.ShimLost}}"), "false");
}
