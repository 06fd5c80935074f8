//! The OCI lifecycle through the `barge-runtime` command line (run as root): create, start,
//! state, kill, delete, run, list, spec, features, logging, and clean failure on bad input.
//!
//! Effects are observed from the host wherever possible: processes in /proc, cgroup
//! directories under /sys/fs/cgroup, mounts in /proc/self/mountinfo, files written by the
//! container into a bind-mounted host directory.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::{
    busybox_rootfs, children, host_mounts_containing, ok, stderr, stdout, Bundle, Runtime,
};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_barge-runtime");

/// Upper bound for one runtime command (tests run in parallel on a small VM).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a process may take to disappear after SIGKILL / a state change to show.
const SETTLE: Duration = Duration::from_secs(10);

const SLEEPER: &str = "sleep 30";
const TERM_TRAPPER: &str = "trap 'exit 7' TERM; while :; do sleep 0.1; done";

fn rt() -> Runtime {
    Runtime::new(BIN)
}

/// A container id unique to this test process (container cgroups are named after the id and
/// live in the hierarchy shared with every other test run on the machine).
fn cid(name: &str) -> String {
    format!("lc-{name}-{}", std::process::id())
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn bundle_arg(b: &Bundle) -> String {
    path_str(b.path())
}

// ---------------------------------------------------------------------------------------------
// Running commands whose stdio a container may inherit.
// ---------------------------------------------------------------------------------------------

/// Wait for `child` at most `timeout`; kill it and return None on timeout.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_all(f: &mut File) -> Vec<u8> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek output file");
    f.read_to_end(&mut v).expect("read output file");
    v
}

/// A command whose stdout/stderr go to files rather than pipes: the container process inherits
/// them, so with pipes `Command::output` would wait for the container to exit.
struct Spawned {
    child: Child,
    out: File,
    err: File,
    what: String,
}

impl Spawned {
    fn new(mut cmd: Command) -> Self {
        let out = tempfile::tempfile().expect("stdout file");
        let err = tempfile::tempfile().expect("stderr file");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(err.try_clone().expect("dup"));
        let what = format!("{cmd:?}");
        let child = cmd.spawn().expect("spawn runtime");
        Self {
            child,
            out,
            err,
            what,
        }
    }

    /// Wait (bounded) and collect what the command wrote.
    fn finish(&mut self, timeout: Duration) -> Output {
        let status = wait_child(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("{} did not finish within {timeout:?}", self.what));
        Output {
            status,
            stdout: read_all(&mut self.out),
            stderr: read_all(&mut self.err),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn create(rt: &Runtime, b: &Bundle, id: &str) -> Output {
    rt.exec(&["create", "--bundle", &bundle_arg(b), id])
}

#[track_caller]
fn create_ok(rt: &Runtime, b: &Bundle, id: &str) -> i32 {
    ok(&create(rt, b, id));
    let st = state(rt, id);
    assert_eq!(st["status"], "created", "{st}");
    pid_of(&st)
}

#[track_caller]
fn start_ok(rt: &Runtime, id: &str) {
    ok(&rt.exec(&["start", id]));
}

/// create + start a container running `script`; returns (bundle, init pid).
#[track_caller]
fn running(rt: &Runtime, script: &str, id: &str) -> (Bundle, i32) {
    let b = Bundle::sh(script);
    let pid = create_ok(rt, &b, id);
    start_ok(rt, id);
    wait_status(rt, id, "running");
    (b, pid)
}

#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    for n in needles {
        assert!(
            err.contains(n),
            "stderr does not mention {n:?}:\n{err}\n(stdout: {})",
            stdout(out)
        );
    }
    err
}

// ---------------------------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn state(rt: &Runtime, id: &str) -> Value {
    let out = ok(&rt.exec(&["state", id]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("state is not JSON ({e}): {out}"))
}

fn try_status(rt: &Runtime, id: &str) -> Option<String> {
    let out = rt.exec(&["state", id]);
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"].as_str().map(str::to_string)
}

#[track_caller]
fn wait_status(rt: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + SETTLE;
    let mut last;
    loop {
        last = try_status(rt, id);
        if last.as_deref() == Some(want) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("container {id} never became {want:?}; last status {last:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[track_caller]
fn pid_of(st: &Value) -> i32 {
    let pid = st["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {st}"));
    assert!(pid > 0, "pid {pid} in {st}");
    pid as i32
}

// ---------------------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------------------

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    barge_util::process::alive(pid)
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Live processes (other than this one) whose command line contains `needle`.
fn procs_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) && alive(pid) {
            out.push((pid, cmdline));
        }
    }
    out
}

/// Wait (bounded) until no live process mentions `needle`; returns the stragglers.
fn wait_no_procs_mentioning(needle: &str) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let p = procs_mentioning(needle);
        if p.is_empty() || Instant::now() >= deadline {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` has a handler for signal `sig` (SigCgt in /proc/PID/status).
fn catches(pid: i32, sig: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << (sig - 1)) != 0)
}

#[track_caller]
fn wait_catches_term(pid: i32) {
    let deadline = Instant::now() + SETTLE;
    while !catches(pid, 15) {
        assert!(
            Instant::now() < deadline,
            "container init {pid} never installed its TERM trap"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Cgroups.
// ---------------------------------------------------------------------------------------------

/// Mounted cgroup hierarchies: (controllers, empty for cgroup2; mount point).
fn cgroup_mounts() -> Vec<(Vec<String>, PathBuf)> {
    let mut out = Vec::new();
    for m in barge_util::mountinfo::read_self().expect("mountinfo") {
        match m.fstype.as_str() {
            "cgroup2" => out.push((Vec::new(), m.mount_point)),
            "cgroup" => out.push((
                m.super_options.split(',').map(str::to_string).collect(),
                m.mount_point,
            )),
            _ => {}
        }
    }
    out
}

/// Directory of cgroup `path` (as in /proc/PID/cgroup) in the hierarchy named `ctrls`.
fn cgroup_dir(mounts: &[(Vec<String>, PathBuf)], ctrls: &str, path: &str) -> Option<PathBuf> {
    let want: Vec<&str> = ctrls.split(',').filter(|c| !c.is_empty()).collect();
    let rel = path.trim_start_matches('/');
    mounts.iter().find_map(|(have, mp)| {
        let hit = if want.is_empty() {
            have.is_empty()
        } else {
            !have.is_empty() && want.iter().all(|w| have.iter().any(|h| h == w))
        };
        hit.then(|| mp.join(rel))
    })
}

/// Where the runtime puts container `id` by default: `<own cgroup>/barge-<id>` in every
/// hierarchy this process is in.
fn default_cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mounts = cgroup_mounts();
    let own = fs::read_to_string("/proc/self/cgroup").expect("/proc/self/cgroup");
    own.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            let dir = cgroup_dir(&mounts, ctrls, path)?;
            Some(dir.join(format!("barge-{id}")))
        })
        .collect()
}

/// The container's cgroup directories, from its init's /proc/PID/cgroup (those that exist).
#[track_caller]
fn container_cgroup_dirs(pid: i32, id: &str) -> Vec<PathBuf> {
    let mounts = cgroup_mounts();
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("init's cgroup file");
    let suffix = format!("/barge-{id}");
    let dirs: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrls, path) = (p.next()?, p.next()?, p.next()?);
            if !path.ends_with(&suffix) {
                return None;
            }
            cgroup_dir(&mounts, ctrls, path)
        })
        .filter(|d| d.is_dir())
        .collect();
    assert!(
        dirs.len() >= 3,
        "container init {pid} is in fewer than 3 barge-{id} cgroups:\n{text}\n{dirs:?}"
    );
    assert!(
        dirs.iter().any(|d| d.starts_with("/sys/fs/cgroup/memory")),
        "no memory cgroup in {dirs:?}"
    );
    dirs
}

#[track_caller]
fn assert_cgroups_gone(dirs: &[PathBuf]) {
    let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
    assert!(left.is_empty(), "cgroup directories left behind: {left:?}");
}

/// Nothing of container `id` is left: no state, no cgroup, no host mount, no process.
#[track_caller]
fn assert_no_trace(rt: &Runtime, b: &Bundle, id: &str) {
    assert!(
        rt.leftovers().is_empty(),
        "left under the root: {:?}",
        rt.leftovers()
    );
    assert_cgroups_gone(&default_cgroup_dirs(id));
    let mounts = host_mounts_containing(&bundle_arg(b));
    assert!(mounts.is_empty(), "host mounts left: {mounts:#?}");
    let procs = wait_no_procs_mentioning(&path_str(rt.root()));
    assert!(procs.is_empty(), "runtime processes left: {procs:#?}");
}

/// `create` must fail naming the problem, leaving nothing behind.
#[track_caller]
fn create_fails_cleanly(b: &Bundle, id: &str, needles: &[&str]) {
    let rt = rt();
    let out = create(&rt, b, id);
    assert_fails_with(&out, needles);
    assert_no_trace(&rt, b, id);
}

// ---------------------------------------------------------------------------------------------
// create / state / start
// ---------------------------------------------------------------------------------------------

#[test]
fn create_leaves_init_waiting_and_reports_oci_state() {
    let rt = rt();
    let mut b = Bundle::sh(SLEEPER);
    b.config["annotations"] = json!({"org.example.lifecycle": "yes"});
    b.write();
    let id = cid("create");
    let pid_file = b.path().join("init.pid");
    let out = rt.exec(&[
        "create",
        "--bundle",
        &bundle_arg(&b),
        "--pid-file",
        &path_str(&pid_file),
        &id,
    ]);
    ok(&out);

    let st = state(&rt, &id);
    let keys: Vec<&str> = st
        .as_object()
        .expect("state is an object")
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "ociVersion",
        "id",
        "status",
        "pid",
        "bundle",
        "rootfs",
        "created",
        "owner",
        "annotations",
    ] {
        assert!(keys.contains(&k), "state lacks {k}: {st}");
    }
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], b.config["ociVersion"]);
    assert_eq!(
        st["bundle"],
        path_str(&fs::canonicalize(b.path()).unwrap()).as_str()
    );
    assert_eq!(
        st["rootfs"],
        path_str(&fs::canonicalize(busybox_rootfs()).unwrap()).as_str()
    );
    assert_eq!(st["owner"], "root");
    assert_eq!(st["annotations"]["org.example.lifecycle"], "yes", "{st}");
    let created = st["created"].as_str().expect("created is a string");
    assert!(
        created.len() >= 20 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "created is not RFC 3339: {created:?}"
    );

    let pid = pid_of(&st);
    assert_eq!(
        fs::read_to_string(&pid_file).expect("pid file"),
        pid.to_string(),
        "pid file must hold exactly the init pid"
    );
    assert!(alive(pid), "init {pid} is not alive");
    let ns = |p: &str| fs::read_link(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_ne!(
        ns(&format!("/proc/{pid}/ns/pid")),
        ns("/proc/self/ns/pid"),
        "init is in the host pid namespace"
    );
    assert_ne!(
        ns(&format!("/proc/{pid}/ns/mnt")),
        ns("/proc/self/ns/mnt"),
        "init is in the host mount namespace"
    );
    // The user process has not been exec'd yet: init is still the runtime's fork.
    let c = comm(pid);
    assert!(
        c != "sleep" && c != "sh",
        "init already runs {c:?} before start"
    );
    assert!(
        rt.root().join(&id).join("exec.fifo").exists(),
        "exec.fifo missing for a created container"
    );
    let cgroups = container_cgroup_dirs(pid, &id);

    // A created container is deleted without --force.
    ok(&rt.exec(&["delete", &id]));
    assert!(wait_gone(pid, SETTLE), "init {pid} survived delete");
    assert_cgroups_gone(&cgroups);
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

#[test]
fn start_runs_the_process_once() {
    let rt = rt();
    let host_dir = tempfile::tempdir().unwrap();
    let marker = host_dir.path().join("marker");
    let mut b = Bundle::sh("echo started >> /tmp/marker; exec sleep 30");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "bind",
                     "source": host_dir.path(), "options": ["rbind", "rw"]}));
    b.write();
    let id = cid("start");
    let pid = create_ok(&rt, &b, &id);
    let fifo = rt.root().join(&id).join("exec.fifo");
    assert!(fifo.exists(), "no exec.fifo after create");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !marker.exists(),
        "the user process ran before start: {:?}",
        fs::read_to_string(&marker)
    );

    start_ok(&rt, &id);
    assert!(!fifo.exists(), "exec.fifo still there after start");
    let st = state(&rt, &id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(pid_of(&st), pid, "pid changed by start");
    let deadline = Instant::now() + SETTLE;
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the process never wrote its marker"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // A second start fails, names the state, and runs nothing.
    let out = rt.exec(&["start", &id]);
    assert_fails_with(&out, &[&id, "running"]);
    assert_eq!(state(&rt, &id)["status"], "running");
    assert!(alive(pid));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        "started\n",
        "process ran twice"
    );
}

#[test]
fn start_of_unknown_container_fails() {
    let rt = rt();
    let id = cid("nostart");
    let out = rt.exec(&["start", &id]);
    assert_fails_with(&out, &[&id, "does not exist"]);
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

#[test]
fn state_of_unknown_container_fails() {
    let rt = rt();
    let id = cid("nostate");
    let out = rt.exec(&["state", &id]);
    assert_fails_with(&out, &[&id, "does not exist"]);
    assert!(out.stdout.is_empty(), "state printed {}", stdout(&out));
}

#[test]
fn duplicate_id_is_refused_and_first_container_untouched() {
    let rt = rt();
    let id = cid("dup");
    let b1 = Bundle::sh(SLEEPER);
    let pid = create_ok(&rt, &b1, &id);
    let cgroups = container_cgroup_dirs(pid, &id);

    let b2 = Bundle::sh("echo second");
    let out = create(&rt, &b2, &id);
    assert_fails_with(&out, &[&id, "already exists"]);

    let st = state(&rt, &id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(pid_of(&st), pid, "pid changed");
    assert_eq!(
        st["bundle"],
        path_str(&fs::canonicalize(b1.path()).unwrap()).as_str()
    );
    assert!(alive(pid), "first container's init died");
    for d in &cgroups {
        assert!(d.is_dir(), "first container's cgroup {d:?} was removed");
    }
    assert!(rt.root().join(&id).join("exec.fifo").exists());
    assert!(host_mounts_containing(&bundle_arg(&b2)).is_empty());
    // And it still starts.
    start_ok(&rt, &id);
    wait_status(&rt, &id, "running");
}

// ---------------------------------------------------------------------------------------------
// kill
// ---------------------------------------------------------------------------------------------

/// `run` a container in the background, signal it with `kill <id> <kill_args>`, and return
/// run's exit code.
fn run_and_kill(name: &str, script: &str, kill_args: &[&str], wait_trap: bool) -> i32 {
    let rt = rt();
    let b = Bundle::sh(script);
    let id = cid(name);
    let mut run = Spawned::new(rt.cmd(&["run", "--bundle", &bundle_arg(&b), &id]));
    wait_status(&rt, &id, "running");
    let pid = pid_of(&state(&rt, &id));
    if wait_trap {
        wait_catches_term(pid);
    }
    let mut args = vec!["kill", id.as_str()];
    args.extend_from_slice(kill_args);
    ok(&rt.exec(&args));
    let out = run.finish(CMD_TIMEOUT);
    assert!(wait_gone(pid, SETTLE), "init {pid} still alive");
    assert!(
        rt.leftovers().is_empty(),
        "run left {:?} (stderr: {})",
        rt.leftovers(),
        stderr(&out)
    );
    out.status
        .code()
        .unwrap_or_else(|| panic!("run died by a signal: {:?}", out.status))
}

#[test]
fn kill_defaults_to_sigterm() {
    assert_eq!(run_and_kill("killdef", TERM_TRAPPER, &[], true), 7);
}

#[test]
fn kill_accepts_term_by_name() {
    for (i, sig) in ["TERM", "SIGTERM", "term", "15"].into_iter().enumerate() {
        let code = run_and_kill(&format!("killterm{i}"), TERM_TRAPPER, &[sig], true);
        assert_eq!(code, 7, "kill {sig}");
    }
}

#[test]
fn kill_accepts_kill_by_name_and_number() {
    for (i, sig) in ["KILL", "SIGKILL", "9"].into_iter().enumerate() {
        let code = run_and_kill(&format!("killkill{i}"), SLEEPER, &[sig], false);
        assert_eq!(code, 137, "kill {sig}");
    }
}

#[test]
fn kill_stops_container_and_then_fails() {
    let rt = rt();
    let id = cid("killstop");
    let (_b, pid) = running(&rt, TERM_TRAPPER, &id);
    wait_catches_term(pid);
    ok(&rt.exec(&["kill", &id, "TERM"]));
    wait_status(&rt, &id, "stopped");
    assert!(wait_gone(pid, SETTLE), "init {pid} still alive");
    let st = state(&rt, &id);
    assert_eq!(st["pid"], 0, "a stopped container reports pid 0: {st}");

    let out = rt.exec(&["kill", &id, "KILL"]);
    assert_fails_with(&out, &[&id, "stopped"]);

    // A stopped container is deleted without --force.
    ok(&rt.exec(&["delete", &id]));
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
    assert_cgroups_gone(&default_cgroup_dirs(&id));
}

#[test]
fn kill_of_created_container_stops_it() {
    let rt = rt();
    let id = cid("killcreated");
    let b = Bundle::sh(SLEEPER);
    let pid = create_ok(&rt, &b, &id);
    ok(&rt.exec(&["kill", &id, "KILL"]));
    assert!(wait_gone(pid, SETTLE), "init {pid} survived SIGKILL");
    wait_status(&rt, &id, "stopped");
    ok(&rt.exec(&["delete", &id]));
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

#[test]
fn kill_with_unknown_signal_fails_and_leaves_container_running() {
    let rt = rt();
    let id = cid("killbad");
    let (_b, pid) = running(&rt, SLEEPER, &id);
    for sig in ["NOPE", "SIGNOPE", "999"] {
        let out = rt.exec(&["kill", &id, sig]);
        assert_fails_with(&out, &["unknown signal", sig]);
    }
    assert!(alive(pid), "container died from a rejected kill");
    assert_eq!(state(&rt, &id)["status"], "running");
}

#[test]
fn kill_of_unknown_container_fails() {
    let rt = rt();
    let id = cid("killnone");
    let out = rt.exec(&["kill", &id, "KILL"]);
    assert_fails_with(&out, &[&id, "does not exist"]);
}

#[test]
fn kill_all_signals_every_process_in_the_cgroup() {
    let rt = rt();
    let id = cid("killall");
    // Without a pid namespace, killing init alone would leave its children running: only
    // --all reaches them.
    let mut b = Bundle::sh("sleep 100 & sleep 100 & wait");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.write();
    let pid = create_ok(&rt, &b, &id);
    start_ok(&rt, &id);
    let deadline = Instant::now() + SETTLE;
    let kids = loop {
        let k: Vec<i32> = children(pid)
            .into_iter()
            .filter(|&c| comm(c) == "sleep")
            .collect();
        if k.len() == 2 {
            break k;
        }
        assert!(
            Instant::now() < deadline,
            "init {pid} never had 2 sleep children: {:?}",
            children(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    };

    ok(&rt.exec(&["kill", "--all", &id, "KILL"]));
    for p in kids.iter().chain([&pid]) {
        assert!(wait_gone(*p, SETTLE), "process {p} survived kill --all");
    }
    wait_status(&rt, &id, "stopped");
    ok(&rt.exec(&["delete", &id]));
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

// ---------------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------------

#[test]
fn delete_of_running_container_needs_force() {
    let rt = rt();
    let id = cid("delrun");
    let (b, pid) = running(&rt, SLEEPER, &id);
    let cgroups = container_cgroup_dirs(pid, &id);

    let out = rt.exec(&["delete", &id]);
    assert_fails_with(&out, &[&id, "--force"]);
    assert!(alive(pid), "delete without --force killed the container");
    assert_eq!(state(&rt, &id)["status"], "running");
    for d in &cgroups {
        assert!(d.is_dir(), "cgroup {d:?} removed by a refused delete");
    }

    ok(&rt.exec(&["delete", "--force", &id]));
    assert!(wait_gone(pid, SETTLE), "init {pid} survived delete --force");
    assert!(!rt.root().join(&id).exists(), "state directory left");
    let out = rt.exec(&["state", &id]);
    assert_fails_with(&out, &[&id, "does not exist"]);
    assert_cgroups_gone(&cgroups);
    assert_no_trace(&rt, &b, &id);
}

#[test]
fn delete_of_unknown_container() {
    let rt = rt();
    let id = cid("delnone");
    ok(&rt.exec(&["delete", "--force", &id]));
    let out = rt.exec(&["delete", &id]);
    assert_fails_with(&out, &[&id, "does not exist"]);
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

// ---------------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------------

#[test]
fn run_returns_the_exit_status() {
    let rt = rt();
    let id = cid("run3");
    let b = Bundle::sh("exit 3");
    let out = Spawned::new(rt.cmd(&["run", "--bundle", &bundle_arg(&b), &id])).finish(CMD_TIMEOUT);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_no_trace(&rt, &b, &id);
}

/// The create handshake must not depend on which of the intermediate process (reporting the
/// init pid) and the init (asking for the createRuntime hooks) writes to the shared sync
/// socket first. Without tracing this fails in about 0.3% of creates; delaying the return of
/// the intermediate's fork (strace fault injection) makes the race deterministic.
#[test]
fn create_handshake_tolerates_a_slow_intermediate() {
    let rt = rt();
    let b = Bundle::sh("exit 3");
    let strace = ["/usr/bin/strace", "/bin/strace"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(strace) = strace else {
        // No strace: hammer the race instead (bounded in iterations and time).
        let deadline = Instant::now() + Duration::from_secs(40);
        for i in 0..2000 {
            if Instant::now() >= deadline {
                break;
            }
            let id = cid(&format!("race{i}"));
            let out = rt.run(&b, &id);
            assert_eq!(
                out.status.code(),
                Some(3),
                "run #{i} failed: {}",
                stderr(&out)
            );
        }
        return;
    };
    for i in 0..3 {
        let id = cid(&format!("slowinter{i}"));
        let mut cmd = Command::new(strace);
        cmd.args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=clone,clone3",
            "-e",
            "inject=clone,clone3:delay_exit=300000",
            BIN,
            "--root",
        ])
        .arg(rt.root())
        .args(["run", "--bundle", &bundle_arg(&b), &id]);
        let out = Spawned::new(cmd).finish(CMD_TIMEOUT);
        assert_eq!(
            out.status.code(),
            Some(3),
            "run with a slow intermediate failed: {}",
            stderr(&out)
        );
        assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
    }
}

/// `start` must not lose a container that execs and exits at once: opening the exec fifo lets
/// init run, and under a subreaper (podman's conmon) it can be reaped before `start` looks at
/// it. strace delays the return of start's fifo open; the test process is the subreaper.
#[test]
fn start_tolerates_an_init_that_exits_and_is_reaped_at_once() {
    let strace = ["/usr/bin/strace", "/bin/strace"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("strace not found: apt-get install strace");
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let rt = rt();
    let id = cid("reaped");
    let b = Bundle::new(); // runs `true`
    let pid = create_ok(&rt, &b, &id);
    let reaper = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        // init becomes our child once its parent, the intermediate, is gone.
        loop {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                Ok(_) => return true,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => return false,
            }
        }
    });
    let fifo = rt.root().join(&id).join("exec.fifo");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-o", "/dev/null", "-P"])
        .arg(&fifo)
        .args(["-e", "inject=openat:delay_exit=300000", BIN, "--root"])
        .arg(rt.root())
        .args(["start", &id]);
    let out = Spawned::new(cmd).finish(CMD_TIMEOUT);
    assert!(reaper.join().unwrap(), "init {pid} was never reaped");
    assert!(
        out.status.success(),
        "start failed when init was reaped early: {}",
        stderr(&out)
    );
    wait_status(&rt, &id, "stopped");
    ok(&rt.exec(&["delete", &id]));
}

#[test]
fn run_passes_container_output_through() {
    let rt = rt();
    let id = cid("runout");
    let b = Bundle::sh("echo out-line; echo err-line >&2");
    let out = rt.run(&b, &id);
    assert_eq!(ok(&out), "out-line\n");
    assert!(stderr(&out).contains("err-line"), "{}", stderr(&out));
    assert_no_trace(&rt, &b, &id);
}

#[test]
fn run_of_killed_container_exits_137() {
    assert_eq!(run_and_kill("run137", SLEEPER, &["KILL"], false), 137);
}

#[test]
fn run_detached_returns_while_the_container_runs() {
    let rt = rt();
    let id = cid("rund");
    let b = Bundle::sh(SLEEPER);
    let t0 = Instant::now();
    let out = rt.exec(&["run", "-d", "--bundle", &bundle_arg(&b), &id]);
    ok(&out);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "run -d waited for the container"
    );
    let st = state(&rt, &id);
    assert_eq!(st["status"], "running", "{st}");
    let pid = pid_of(&st);
    assert!(alive(pid));
    assert_eq!(comm(pid), "sleep");
    ok(&rt.exec(&["delete", "--force", &id]));
    assert!(wait_gone(pid, SETTLE));
    assert_no_trace(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

#[test]
fn list_table_json_and_quiet() {
    let rt = rt();
    let a = cid("lista");
    let c = cid("listb");
    let ba = Bundle::sh(SLEEPER);
    let pa = create_ok(&rt, &ba, &a);
    let (bc, pc) = running(&rt, SLEEPER, &c);
    let expect = [
        (a.as_str(), pa, "created", &ba),
        (c.as_str(), pc, "running", &bc),
    ];

    let table = ok(&rt.exec(&["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    for (id, pid, status, b) in &expect {
        let row = lines[1..]
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|r| r.first() == Some(id))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
        assert_eq!(row.len(), 6, "{row:?}");
        assert_eq!(row[1], pid.to_string());
        assert_eq!(row[2], *status);
        assert_eq!(row[3], path_str(&fs::canonicalize(b.path()).unwrap()));
        assert_eq!(row[5], "root");
    }

    let json_out = ok(&rt.exec(&["list", "--format", "json"]));
    let v: Value = serde_json::from_str(&json_out).expect("list JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2, "{v}");
    for (id, pid, status, _) in &expect {
        let s = arr
            .iter()
            .find(|s| s["id"] == *id)
            .unwrap_or_else(|| panic!("{id} missing from {v}"));
        assert_eq!(s["pid"], *pid);
        assert_eq!(s["status"], *status);
        assert_eq!(*s, state(&rt, id), "list entry differs from state");
    }

    let quiet = ok(&rt.exec(&["list", "-q"]));
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort_unstable();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
}

#[test]
fn list_of_empty_root_prints_only_the_header() {
    let rt = rt();
    let table = ok(&rt.exec(&["list"]));
    assert_eq!(
        table.split_whitespace().collect::<Vec<_>>(),
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let v: Value = serde_json::from_str(&ok(&rt.exec(&["list", "--format", "json"]))).unwrap();
    assert_eq!(v, json!([]));
    assert_eq!(ok(&rt.exec(&["list", "-q"])), "");
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error and nothing left behind.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_missing_config_json() {
    let b = Bundle::new();
    fs::remove_file(b.path().join("config.json")).unwrap();
    create_fails_cleanly(&b, &cid("noconfig"), &["config.json", &bundle_arg(&b)]);
}

#[test]
fn bad_malformed_json() {
    let b = Bundle::new();
    fs::write(b.path().join("config.json"), "{\"ociVersion\": \"1.2.1\", ").unwrap();
    create_fails_cleanly(&b, &cid("badjson"), &["config.json"]);
}

#[test]
fn bad_missing_rootfs() {
    let mut b = Bundle::new();
    let missing = b.path().join("no-such-rootfs");
    b.config["root"]["path"] = json!(missing);
    b.write();
    create_fails_cleanly(&b, &cid("norootfs"), &["root.path", &path_str(&missing)]);
}

/// Bad `linux.resources` values: refused with the field named; the ones only the kernel can
/// judge (a cpu list beyond the machine) fail after the cgroups exist and are rolled back.
#[test]
fn bad_resources_name_the_field_and_leave_no_cgroup() {
    let cases: [(&str, Value, &[&str]); 7] = [
        (
            "devtype",
            json!({"devices": [{"allow": true, "type": "x"}]}),
            &["linux.resources.devices[0].type", "`x`"],
        ),
        (
            "devtypeu",
            json!({"devices": [{"allow": true, "type": "u"}]}),
            &["linux.resources.devices[0].type", "\"u\""],
        ),
        (
            "negative",
            json!({"memory": {"limit": -2}}),
            &["linux.resources.memory.limit", "-2"],
        ),
        (
            "overflow",
            json!({"memory": {"limit": u64::MAX}}),
            &["linux.resources.memory.limit", "18446744073709551615"],
        ),
        (
            "shares",
            json!({"cpu": {"shares": 300000}}),
            &["linux.resources.cpu.shares", "300000"],
        ),
        (
            "devmajor",
            json!({"devices": [{"allow": true, "type": "c", "major": -4}]}),
            &["linux.resources.devices[0].major", "-4"],
        ),
        (
            "cpus",
            json!({"cpu": {"cpus": "0-4095"}}),
            &["cpuset.cpus", "0-4095"],
        ),
    ];
    for (name, resources, needles) in cases {
        let mut b = Bundle::new();
        b.config["linux"]["resources"] = resources;
        b.write();
        create_fails_cleanly(&b, &cid(name), needles);
    }
}

#[test]
fn bad_cgroups_path_escaping_with_dotdot() {
    let mut b = Bundle::new();
    b.config["linux"]["cgroupsPath"] = json!("../../escape");
    b.write();
    create_fails_cleanly(&b, &cid("dotdot"), &["cgroupsPath", "'..'"]);
    assert!(
        !Path::new("/sys/fs/cgroup/memory/escape").exists(),
        "a cgroup was made outside"
    );
}

#[test]
fn bad_relative_missing_rootfs() {
    let mut b = Bundle::new();
    b.config["root"]["path"] = json!("rootfs");
    b.write();
    create_fails_cleanly(&b, &cid("norelrootfs"), &["root.path", "rootfs"]);
}

#[test]
fn bad_unknown_namespace_type() {
    let mut b = Bundle::new();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "foo"}));
    b.write();
    create_fails_cleanly(&b, &cid("badns"), &["foo"]);
}

#[test]
fn bad_empty_args() {
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!([]);
    b.write();
    create_fails_cleanly(&b, &cid("noargs"), &["process.args"]);
}

#[test]
fn bad_relative_cwd() {
    let mut b = Bundle::new();
    b.config["process"]["cwd"] = json!("relative/dir");
    b.write();
    create_fails_cleanly(&b, &cid("relcwd"), &["cwd", "relative/dir"]);
}

#[test]
fn bad_missing_executable() {
    let mut b = Bundle::new();
    b.own_rootfs();
    b.config["process"]["args"] = json!(["/bin/no-such-program"]);
    b.write();
    create_fails_cleanly(&b, &cid("noexe"), &["/bin/no-such-program"]);
}

#[test]
fn bad_container_ids() {
    for (i, id) in ["../x", "a/b", "", "..", "a b"].into_iter().enumerate() {
        let rt = rt();
        let b = Bundle::new();
        let sibling = rt.root().parent().unwrap().join("x");
        let sibling_before = sibling.exists();
        let out = create(&rt, &b, id);
        assert_fails_with(&out, &["container id"]);
        if !id.is_empty() {
            assert!(stderr(&out).contains(id), "error doesn't name {id:?}");
        }
        assert!(
            rt.leftovers().is_empty(),
            "id {id:?}: left {:?}",
            rt.leftovers()
        );
        assert_eq!(
            sibling.exists(),
            sibling_before,
            "id {id:?} escaped the root"
        );
        // Check the cgroup names a path-like id could have produced.
        assert_cgroups_gone(&default_cgroup_dirs(id));
        assert_cgroups_gone(&default_cgroup_dirs(&format!("bad{i}")));
        assert!(host_mounts_containing(&bundle_arg(&b)).is_empty());
        assert!(procs_mentioning(&path_str(rt.root())).is_empty());
        // Other commands refuse the id the same way instead of touching paths.
        for cmd in ["state", "start", "kill", "delete"] {
            let out = rt.exec(&[cmd, id]);
            assert!(!out.status.success(), "{cmd} {id:?} succeeded");
        }
    }
}

#[test]
fn failing_create_runtime_hook_undoes_everything() {
    let mut b = Bundle::new();
    b.own_rootfs();
    b.config["process"]["args"] = json!(["sh", "-c", SLEEPER]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.write();
    create_fails_cleanly(&b, &cid("hookfail"), &["createRuntime", "/bin/false"]);
}

#[test]
fn hook_timeout_is_enforced() {
    let mut b = Bundle::new();
    b.own_rootfs();
    b.config["process"]["args"] = json!(["sh", "-c", SLEEPER]);
    // A unique duration so the hook process can be found on the host.
    let dur = format!("5.{}", std::process::id());
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", dur], "timeout": 1}
    ]});
    b.write();
    let t0 = Instant::now();
    create_fails_cleanly(&b, &cid("hooktimeout"), &["createRuntime", "timed out"]);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "create took {took:?} with a 1s hook timeout"
    );
    assert!(
        took >= Duration::from_millis(900),
        "hook killed before its timeout: {took:?}"
    );
    let hooks = procs_mentioning(&format!("sleep {dur}"));
    assert!(hooks.is_empty(), "hook process left running: {hooks:?}");
}

#[test]
fn failed_run_leaves_nothing() {
    let rt = rt();
    let id = cid("runbad");
    let mut b = Bundle::new();
    b.config["process"]["args"] = json!([]);
    b.write();
    let out = rt.exec(&["run", "--bundle", &bundle_arg(&b), &id]);
    assert_fails_with(&out, &["process.args"]);
    assert_no_trace(&rt, &b, &id);
}

// ---------------------------------------------------------------------------------------------
// spec / features
// ---------------------------------------------------------------------------------------------

#[test]
fn spec_writes_a_config_that_runs() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    ok(&rt.exec(&["spec", "--bundle", &path_str(dir.path())]));
    let path = dir.path().join("config.json");
    let mut config: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("config.json written"))
            .expect("spec output is JSON");
    assert!(config["ociVersion"].is_string(), "{config}");
    assert!(config["linux"]["namespaces"].is_array());
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    config["root"]["path"] = json!(busybox_rootfs());
    fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let id = cid("spec");
    let out = rt.exec(&["run", "--bundle", &path_str(dir.path()), &id]);
    let text = ok(&out);
    assert!(text.starts_with("spec-ok\n"), "{text}");
    if let Some(h) = config["hostname"].as_str() {
        assert!(text.contains(&format!("{h}\n")), "hostname not set: {text}");
    }
    assert!(rt.leftovers().is_empty(), "{:?}", rt.leftovers());
}

#[test]
fn spec_refuses_to_overwrite() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fs::write(&path, "{\"keep\": true}").unwrap();
    let out = rt.exec(&["spec", "--bundle", &path_str(dir.path())]);
    assert_fails_with(&out, &[&path_str(&path), "exists"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"keep\": true}");
}

#[test]
fn spec_rootless_maps_the_caller() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    ok(&rt.exec(&["spec", "--rootless", "--bundle", &path_str(dir.path())]));
    let config: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    let me = fs::metadata("/proc/self").unwrap();
    let ns = config["linux"]["namespaces"]
        .as_array()
        .expect("namespaces");
    assert!(ns.iter().any(|n| n["type"] == "user"), "{ns:?}");
    assert_eq!(config["linux"]["uidMappings"][0]["hostID"], me.uid());
    assert_eq!(config["linux"]["uidMappings"][0]["containerID"], 0);
    assert_eq!(config["linux"]["gidMappings"][0]["hostID"], me.gid());
    assert!(config["linux"]["uidMappings"][0]["size"].as_u64() >= Some(1));
}

#[test]
fn features_document() {
    let out = ok(&rt().exec(&["features"]));
    let v: Value = serde_json::from_str(&out).expect("features JSON");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ] {
        assert!(ns.contains(&t), "{t} missing from {ns:?}");
    }
    let sc = &v["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true, "{sc}");
    for a in ["SCMP_ACT_NOTIFY", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_ERRNO"] {
        assert!(
            sc["actions"].as_array().unwrap().contains(&json!(a)),
            "{sc}"
        );
    }
    assert!(sc["operators"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_CMP_MASKED_EQ")));
    assert_eq!(
        v["linux"]["mountExtensions"]["idmap"]["enabled"], true,
        "{v}"
    );
    assert!(v["ociVersionMax"].is_string(), "{v}");
}

// ---------------------------------------------------------------------------------------------
// Global flags.
// ---------------------------------------------------------------------------------------------

#[test]
fn json_log_records_errors() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runtime.log");
    let id = cid("log");
    let out = rt.exec(&[
        "--log",
        &path_str(&log),
        "--log-format",
        "json",
        "state",
        &id,
    ]);
    assert_fails_with(&out, &["does not exist"]);
    let text = fs::read_to_string(&log).expect("log file written");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let e = entries
        .iter()
        .find(|e| e["level"] == "error")
        .unwrap_or_else(|| panic!("no error entry in {text}"));
    let msg = e["msg"].as_str().expect("msg");
    assert!(
        msg.contains("does not exist") && msg.contains(&id),
        "msg {msg:?}"
    );
    assert!(e["time"].is_string(), "{e}");
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    let rt = rt();
    let out = rt.exec(&["--systemd-cgroup", "list"]);
    assert_fails_with(&out, &["systemd", "not supported"]);

    let b = Bundle::sh(SLEEPER);
    let id = cid("systemd");
    let out = rt.exec(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        &bundle_arg(&b),
        &id,
    ]);
    assert_fails_with(&out, &["not supported"]);
    assert_no_trace(&rt, &b, &id);
}
