//! `barge-runtime exec` (run as root): the new process is checked from inside the container and
//! from the host against the container's init: namespaces, cgroups, user, env, capabilities,
//! seccomp, the terminal, exit codes, and clean errors.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::{exec_bounded, ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_barge-runtime");

/// Upper bound for one runtime command (tests run in parallel on a small VM).
const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a state change may take to show.
const SETTLE: Duration = Duration::from_secs(10);

fn rt() -> Runtime {
    Runtime::new(BIN)
}

/// A container id unique to this test process (cgroups are named after it and shared with
/// every other test run on the machine).
fn cid(name: &str) -> String {
    format!("ex-{name}-{}", std::process::id())
}

fn run_cmd(r: &Runtime, args: &[&str]) -> Output {
    exec_bounded(r.cmd(args), CMD_TIMEOUT)
}

/// Start `b` detached as `id`; returns the init's host pid.
#[track_caller]
fn start(r: &Runtime, b: &Bundle, id: &str) -> i32 {
    let p = b.path().to_string_lossy().into_owned();
    ok(&run_cmd(r, &["run", "-d", "--bundle", &p, id]));
    let st = state(r, id);
    assert_eq!(st["status"], "running", "{st}");
    st["pid"].as_i64().expect("pid in state") as i32
}

/// A running container whose init sleeps; returns (bundle, init pid).
#[track_caller]
fn sleeper(r: &Runtime, id: &str) -> (Bundle, i32) {
    let b = Bundle::sh("sleep 300");
    let pid = start(r, &b, id);
    (b, pid)
}

#[track_caller]
fn state(r: &Runtime, id: &str) -> Value {
    let out = ok(&run_cmd(r, &["state", id]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("state is not JSON ({e}): {out}"))
}

#[track_caller]
fn wait_status(r: &Runtime, id: &str, want: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let st = state(r, id);
        if st["status"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never became {want}: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `exec <id> <args...>` in the foreground.
fn exec(r: &Runtime, id: &str, args: &[&str]) -> Output {
    let mut all = vec!["exec", id];
    all.extend_from_slice(args);
    run_cmd(r, &all)
}

#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure\nstdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    for n in needles {
        assert!(err.contains(n), "stderr does not mention {n:?}:\n{err}");
    }
}

fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// The value of `key:` in /proc/PID/status (or in `text` of one).
fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .trim()
        .to_string()
}

fn proc_status(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status")
}

fn cap_mask(bits: &[u32]) -> String {
    format!("{:016x}", bits.iter().fold(0u64, |m, c| m | (1 << c)))
}

/// The container's processes (host pids), by `ps --format json`.
fn container_pids(r: &Runtime, id: &str) -> Vec<i64> {
    let out = ok(&run_cmd(r, &["ps", "--format", "json", id]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ps json ({e}): {out}"))
}

fn pid_alive(pid: i32) -> bool {
    barge_util::process::alive(pid)
}

#[test]
fn joins_every_namespace_of_the_container() {
    let r = rt();
    let id = cid("ns");
    let (_b, init) = sleeper(&r, &id);
    let script = "for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; \
                  hostname; grep PPid /proc/$$/status; tr '\\0' ' ' </proc/1/cmdline; echo; echo self=$$";
    let out = ok(&exec(&r, &id, &["sh", "-c", script]));
    let init_s = init.to_string();
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let want = format!("{n}={}", ns_link(&init_s, n));
        assert!(out.lines().any(|l| l == want), "{want} not in\n{out}");
        assert_ne!(ns_link("self", n), ns_link(&init_s, n), "{n} is the host's");
    }
    // The spec's hostname, set by the init in its uts namespace.
    assert!(out.lines().any(|l| l == "barge"), "{out}");
    // Pid 1 is the container's init; our parent (the runtime) lives outside the namespace.
    assert!(out.contains("sleep 300"), "{out}");
    assert!(out.lines().any(|l| l == "PPid:\t0"), "{out}");
    let self_pid = out
        .lines()
        .find_map(|l| l.strip_prefix("self="))
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap();
    assert!(self_pid > 1, "{out}");
}

#[test]
fn detached_process_with_pid_file_lives_in_the_containers_cgroup() {
    let r = rt();
    let id = cid("detach");
    let (_b, init) = sleeper(&r, &id);
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("exec.pid");
    let pf = pid_file.to_string_lossy().into_owned();
    let t0 = Instant::now();
    let out = exec(&r, &id, &["-d", "--pid-file", &pf, "sleep", "60"]);
    assert_eq!(ok(&out), "", "exec -d prints nothing");
    assert!(t0.elapsed() < Duration::from_secs(10), "exec -d waited");
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid), "pid {pid} from the pid file is not running");
    assert_ne!(pid, init);
    let cg = |p: i32| fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(pid), cg(init), "exec'd process is in other cgroups");
    let (p, i) = (pid.to_string(), init.to_string());
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_eq!(ns_link(&p, n), ns_link(&i, n), "{n} namespace differs");
    }
    // Host pid and container pid: really inside the container's pid namespace.
    let nspid = status_field(&proc_status(pid), "NSpid");
    let ids: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "NSpid {nspid}");
    assert_eq!(ids[0], p);
    assert_ne!(ids[1], "1");
    let pids = container_pids(&r, &id);
    assert!(pids.contains(&(pid as i64)), "{pids:?}");
    ok(&run_cmd(&r, &["delete", "--force", &id]));
    let deadline = Instant::now() + SETTLE;
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "exec'd process survived delete");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn env_cwd_user_and_rlimit_flags() {
    let r = rt();
    let id = cid("user");
    let (_b, _) = sleeper(&r, &id);
    let out = ok(&exec(
        &r,
        &id,
        &[
            "--cwd",
            "/tmp",
            "-e",
            "FOO=bar baz",
            "--env",
            "TERM=dumb",
            "-u",
            "1000:1000",
            "-g",
            "2000",
            "sh",
            "-c",
            "id; pwd; echo \"$FOO\"; env | grep -c '^TERM='; echo $TERM; echo $PATH; ulimit -n",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "uid=1000(user) gid=1000(user) groups=2000(extra)",
            "/tmp",
            "bar baz",
            "1",
            "dumb",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "1024",
        ],
        "{out}"
    );
    // Defaults come from the container's process: root, cwd /.
    let out = ok(&exec(&r, &id, &["sh", "-c", "id -u; pwd"]));
    assert_eq!(out, "0\n/\n");
}

#[test]
fn exit_code_and_output_pass_through() {
    let r = rt();
    let id = cid("exit");
    let (_b, _) = sleeper(&r, &id);
    let o = exec(&r, &id, &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "{}", stderr(&o));
    let o = exec(&r, &id, &["sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137));
    let o = exec(&r, &id, &["true"]);
    assert_eq!(o.status.code(), Some(0));
    // Hyphenated arguments belong to the command.
    let o = exec(&r, &id, &["ls", "-d", "/proc"]);
    assert_eq!(ok(&o), "/proc\n");
}

#[test]
fn signals_are_forwarded_to_the_process() {
    let r = rt();
    let id = cid("sig");
    let (_b, _) = sleeper(&r, &id);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = r
        .cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SETTLE;
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < deadline, "exec'd shell did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("exec did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(9));
    assert!(fs::read_to_string(&out).unwrap().contains("got-term"));
}

#[test]
fn capabilities_are_the_containers_and_cap_adds_one() {
    let r = rt();
    let id = cid("caps");
    // No filter even under BARGE_TEST_SECCOMP: a profile made for the container's capabilities
    // would refuse sethostname to an exec that adds CAP_SYS_ADMIN (as docker's does).
    let mut b = Bundle::sh("sleep 300");
    b.config["linux"]["seccomp"] = Value::Null;
    b.write();
    let init = start(&r, &b, &id);
    let script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
    let out = ok(&exec(&r, &id, &["sh", "-c", script]));
    let init_status = proc_status(init);
    // CAP_KILL=5, CAP_NET_BIND_SERVICE=10, CAP_AUDIT_WRITE=29: the default spec's set.
    let default = cap_mask(&[5, 10, 29]);
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&out, k), default, "{k}: {out}");
        assert_eq!(status_field(&init_status, k), default, "init {k}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    // CAP_SYS_ADMIN=21 added to bounding, effective and permitted.
    let out = ok(&exec(
        &r,
        &id,
        &["--cap", "CAP_SYS_ADMIN", "sh", "-c", script],
    ));
    let with_admin = cap_mask(&[5, 10, 21, 29]);
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&out, k), with_admin, "{k}: {out}");
    }
    // ... and it works: only CAP_SYS_ADMIN allows sethostname in the uts namespace.
    let o = exec(&r, &id, &["hostname", "other"]);
    assert!(!o.status.success(), "sethostname without CAP_SYS_ADMIN");
    ok(&exec(
        &r,
        &id,
        &["-c", "CAP_SYS_ADMIN", "hostname", "other"],
    ));
    assert_eq!(ok(&exec(&r, &id, &["hostname"])), "other\n");
    let o = exec(&r, &id, &["--cap", "CAP_NOPE", "true"]);
    assert_fails_with(&o, &["CAP_NOPE"]);
}

/// A container whose seccomp profile refuses mkdir with EPERM, and a tmpfs on /tmp where
/// mkdir works otherwise.
fn seccomp_bundle() -> Bundle {
    let mut b = Bundle::sh("sleep 300");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]
    }));
    b.write();
    b
}

#[test]
fn the_containers_seccomp_filter_applies() {
    let r = rt();
    let id = cid("seccomp");
    let b = seccomp_bundle();
    let init = start(&r, &b, &id);
    assert_eq!(status_field(&proc_status(init), "Seccomp"), "2");
    let script = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                  mkdir /tmp/d 2>&1 && echo made; touch /tmp/f && echo touched";
    let out = ok(&exec(&r, &id, &["sh", "-c", script]));
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(!out.contains("made"), "{out}");
    assert!(out.contains("touched"), "{out}");

    // --process with noNewPrivileges false: the filter is loaded while the process still has
    // CAP_SYS_ADMIN (needed without no_new_privs), then capabilities are dropped.
    let dir = tempfile::tempdir().unwrap();
    let proc_file = dir.path().join("process.json");
    fs::write(
        &proc_file,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", script],
            "cwd": "/tmp",
            "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "noNewPrivileges": false,
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
        }))
        .unwrap(),
    )
    .unwrap();
    let pf = proc_file.to_string_lossy().into_owned();
    let out = ok(&exec(&r, &id, &["--process", &pf]));
    assert_eq!(status_field(&out, "Seccomp"), "2", "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("touched"), "{out}");
    // A control: without the profile, mkdir works in the same setup.
    let r2 = rt();
    let id2 = cid("noseccomp");
    let mut b2 = seccomp_bundle();
    // null, not absent: no filter even under BARGE_TEST_SECCOMP.
    b2.config["linux"]["seccomp"] = Value::Null;
    b2.write();
    start(&r2, &b2, &id2);
    let out = ok(&exec(&r2, &id2, &["sh", "-c", script]));
    assert_eq!(status_field(&out, "Seccomp"), "0", "{out}");
    assert!(out.contains("made"), "{out}");
}

#[test]
fn process_file_is_used_as_given() {
    let r = rt();
    let id = cid("procfile");
    let (_b, _) = sleeper(&r, &id);
    let dir = tempfile::tempdir().unwrap();
    let proc_file = dir.path().join("process.json");
    fs::write(
        &proc_file,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo $ONLY; env | wc -l; id -u; pwd"],
            "cwd": "/proc",
            "env": ["ONLY=this", "PATH=/bin"],
            "user": {"uid": 65534, "gid": 65534}
        }))
        .unwrap(),
    )
    .unwrap();
    let pf = proc_file.to_string_lossy().into_owned();
    let out = ok(&exec(&r, &id, &["-p", &pf]));
    // Exactly the given env (sh adds PWD and SHLVL of its own).
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "this");
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 4, "{out}");
    assert_eq!(lines[2], "65534");
    assert_eq!(lines[3], "/proc");
    let o = exec(&r, &id, &["-p", &pf, "true"]);
    assert_fails_with(&o, &["--process"]);
}

#[test]
fn errors_are_clear_and_leave_nothing_behind() {
    let r = rt();
    let id = cid("errs");
    let (_b, init) = sleeper(&r, &id);

    let o = exec(&r, &id, &["nosuch-program", "arg"]);
    assert_fails_with(&o, &["\"nosuch-program\"", "not found"]);
    let o = exec(&r, &id, &["/bin/nosuch"]);
    assert_fails_with(&o, &["/bin/nosuch"]);
    let o = exec(&r, &id, &["--cwd", "/does/not/exist", "true"]);
    assert_fails_with(&o, &["/does/not/exist"]);
    let o = exec(&r, &id, &["--cwd", "relative", "true"]);
    assert_fails_with(&o, &["absolute"]);
    let o = exec(&r, &id, &[]);
    assert_fails_with(&o, &["no command"]);
    let o = exec(&r, &id, &["-u", "root", "true"]);
    assert_fails_with(&o, &["UID[:GID]"]);
    let o = exec(&r, &id, &["-d", "-t", "true"]);
    assert_fails_with(&o, &["--console-socket"]);
    // Failed execs leave no process in the container, and it keeps running.
    assert_eq!(container_pids(&r, &id), [init as i64]);
    assert_eq!(state(&r, &id)["status"], "running");

    let o = exec(&r, &cid("nosuch"), &["true"]);
    assert_fails_with(&o, &["does not exist"]);

    ok(&run_cmd(&r, &["pause", &id]));
    let o = exec(&r, &id, &["true"]);
    assert_fails_with(&o, &["paused", "exec"]);
    ok(&run_cmd(&r, &["resume", &id]));
    ok(&exec(&r, &id, &["true"]));

    // A container whose init has exited.
    let stopped = cid("stopped");
    let b = Bundle::new();
    let p = b.path().to_string_lossy().into_owned();
    ok(&run_cmd(&r, &["run", "-d", "--bundle", &p, &stopped]));
    wait_status(&r, &stopped, "stopped");
    let o = exec(&r, &stopped, &["true"]);
    assert_fails_with(&o, &["stopped", "exec"]);

    // A created (not started) container.
    let created = cid("created");
    let b = Bundle::new();
    let p = b.path().to_string_lossy().into_owned();
    ok(&run_cmd(&r, &["create", "--bundle", &p, &created]));
    let o = exec(&r, &created, &["true"]);
    assert_fails_with(&o, &["created", "exec"]);
}

/// CVE-2024-21626: a cwd of `/proc/self/fd/N` must not reach a host directory through an fd
/// the runtime still holds while it sets the process up.
#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    let r = rt();
    let id = cid("cwdfd");
    let (_b, init) = sleeper(&r, &id);
    for n in 3..=20 {
        let cwd = format!("/proc/self/fd/{n}");
        let o = exec(&r, &id, &["--cwd", &cwd, "sh", "-c", "pwd; ls"]);
        assert!(
            !o.status.success(),
            "--cwd {cwd} ran:\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(stdout(&o), "", "--cwd {cwd}");
        assert!(stderr(&o).contains(&cwd), "{}", stderr(&o));
    }
    assert_eq!(container_pids(&r, &id), [init as i64]);
}

/// Accept one connection on `listener` in a thread; the fd it receives.
fn accept_master(listener: UnixListener) -> std::thread::JoinHandle<std::os::fd::OwnedFd> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (name, fd) = barge_testutil::recv_with_fd(&conn);
        assert!(
            String::from_utf8_lossy(&name).starts_with("/dev/pts/"),
            "{name:?}"
        );
        fd.expect("no fd received")
    })
}

/// Everything the pty's master yields until the slave side is gone.
fn read_master(master: std::os::fd::OwnedFd) -> String {
    let mut f = fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn tty_master_is_sent_over_the_console_socket() {
    let r = rt();
    let id = cid("tty");
    let (_b, _) = sleeper(&r, &id);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let s = sock.to_string_lossy().into_owned();

    // Foreground: exec waits for the process, the pty keeps its output for us.
    let accept = accept_master(UnixListener::bind(&sock).unwrap());
    let script = "tty; test -t 0 && echo stdin-is-tty; echo done";
    let o = exec(&r, &id, &["-t", "--console-socket", &s, "sh", "-c", script]);
    ok(&o);
    let out = read_master(accept.join().unwrap());
    assert!(
        out.lines().any(|l| l.trim_end().starts_with("/dev/pts/")),
        "{out}"
    );
    assert!(out.contains("stdin-is-tty"), "{out}");
    assert!(out.contains("done"), "{out}");

    // Detached: returns at once; the master drives the shell.
    fs::remove_file(&sock).unwrap();
    let accept = accept_master(UnixListener::bind(&sock).unwrap());
    let pid_file = dir.path().join("pid");
    let pf = pid_file.to_string_lossy().into_owned();
    ok(&exec(
        &r,
        &id,
        &["-d", "-t", "--console-socket", &s, "--pid-file", &pf, "sh"],
    ));
    let master = accept.join().unwrap();
    let mut f = fs::File::from(master);
    std::io::Write::write_all(&mut f, b"echo $((6*7)); tty; exit\n").unwrap();
    let out = read_master(f.into());
    assert!(out.contains("42"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    let pid: i32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + SETTLE;
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "shell did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tty_is_proxied_without_a_console_socket() {
    let r = rt();
    let id = cid("ttyproxy");
    let (_b, _) = sleeper(&r, &id);
    let o = exec(&r, &id, &["-t", "sh", "-c", "tty; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("/dev/pts/"), "{}", stdout(&o));
}

#[test]
fn preserved_fds_are_passed() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let r = rt();
    let id = cid("fds");
    let (_b, _) = sleeper(&r, &id);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut cmd = r.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        &id,
        "sh",
        "-c",
        "echo through-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let fd = writer.as_raw_fd();
    // SAFETY: dup2 in the child between fork and exec only touches fds.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = exec_bounded(cmd, CMD_TIMEOUT);
    drop(writer);
    let listing = ok(&o);
    let mut got = String::new();
    reader.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through-fd3\n");
    let fds: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(&fds[..4], ["0", "1", "2", "3"], "{listing}");
    assert!(fds.len() <= 5, "extra fds leaked: {listing}");
}

#[test]
fn joins_a_user_namespace_first() {
    let r = rt();
    let id = cid("userns");
    let mut b = Bundle::sh("sleep 300");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.write();
    let init = start(&r, &b, &id);
    let out = ok(&exec(
        &r,
        &id,
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user; echo \"$(whoami)\"",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"]);
    assert_eq!(lines[2], ns_link(&init.to_string(), "user"));
    // Seen from the host: the exec'd process runs as the mapped uid.
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("pid");
    let pfs = pf.to_string_lossy().into_owned();
    ok(&exec(&r, &id, &["-d", "--pid-file", &pfs, "sleep", "30"]));
    let pid: i32 = fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    let uid = status_field(&proc_status(pid), "Uid");
    assert!(uid.starts_with("100000\t"), "{uid}");
}

#[test]
fn apparmor_flag_is_not_silently_dropped() {
    // This host has no AppArmor: the profile is ignored with a warning, as in `create`.
    if fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
    {
        return;
    }
    let r = rt();
    let id = cid("apparmor");
    let (_b, _) = sleeper(&r, &id);
    let o = exec(&r, &id, &["--apparmor", "docker-default", "echo", "ran"]);
    assert_eq!(ok(&o), "ran\n");
    assert!(
        stderr(&o).contains("\"docker-default\" ignored"),
        "{}",
        stderr(&o)
    );
    let o = exec(&r, &id, &["--process-label", "system_u:r:t:s0", "true"]);
    ok(&o);
    assert!(stderr(&o).contains("--process-label"), "{}", stderr(&o));
}

/// `exec` is what a `ps` of the container sees while the process runs: one more process,
/// gone (reaped by the runtime) once exec returns.
#[test]
fn foreground_exec_reaps_its_process() {
    let r = rt();
    let id = cid("reap");
    let (_b, init) = sleeper(&r, &id);
    let cmd = {
        let mut c = Command::new(BIN);
        c.arg("--root")
            .arg(r.root())
            .args(["exec", &id, "sh", "-c", "exit 0"]);
        c
    };
    let o = exec_bounded(cmd, CMD_TIMEOUT);
    ok(&o);
    assert_eq!(container_pids(&r, &id), [init as i64]);
}

/// The container's seccomp profile uses NOTIFY: the exec process's listener goes to the agent
/// at listenerPath too (after the init's), and the agent answers the exec process's mkdir.
#[test]
fn seccomp_notify_listener_of_the_exec_process_reaches_the_agent() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut b = Bundle::sh("sleep 300");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.write();
    let agent = std::thread::spawn(move || {
        let mut states = Vec::new();
        let mut fds = Vec::new();
        for _ in 0..2 {
            let (conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let (mut text, fd) = barge_testutil::recv_with_fd(&conn);
            let mut conn = conn;
            let _ = conn.read_to_end(&mut text);
            states.push(serde_json::from_slice::<Value>(&text).unwrap());
            fds.push(fd.expect("no listener fd"));
        }
        // The second listener is the exec process's: answer its mkdir.
        let fd = fds[1].as_raw_fd();
        let req = ScmpNotifReq::receive(fd).unwrap();
        ScmpNotifResp::new_error(req.id, -libc::EMLINK, ScmpNotifRespFlags::empty())
            .respond(fd)
            .unwrap();
        states
    });
    let r = rt();
    let id = cid("notify");
    let init = start(&r, &b, &id);
    let out = ok(&exec(
        &r,
        &id,
        &[
            "sh",
            "-c",
            "echo pid=$$; mkdir /dev/agent-says 2>&1; echo rc=$?",
        ],
    ));
    let states = agent.join().unwrap();
    assert!(out.contains("Too many links"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert_eq!(states[0]["pid"], init, "{:?}", states[0]);
    assert_ne!(states[1]["pid"], init, "{:?}", states[1]);
    assert_eq!(states[1]["state"]["status"], "running", "{:?}", states[1]);
    assert_eq!(states[1]["state"]["id"], id.as_str(), "{:?}", states[1]);
}
