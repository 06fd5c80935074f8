//! exec as docker users expect it: a killed `exec` client affects only its own process (never
//! the container), `exec -d` processes belong to the container's shim (reaped by it, their exit
//! codes shown by `barge container exec-inspect`), `-it` without a terminal is refused, and a
//! program that can't be executed gives docker's exit codes (127, 126) and messages.

use std::fs;
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use barge_testutil::engine::{alive, wait_until, BargeEnv};
use barge_testutil::stderr;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

fn ppid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `(container init pid, shim pid)` from the shim's state file.
fn pids(b: &BargeEnv, id: &str) -> (i32, i32) {
    let data = fs::read(b.container_dir(id).join("state.json")).expect("state.json");
    let v: Value = serde_json::from_slice(&data).expect("state.json");
    (
        v["pid"].as_i64().unwrap_or(0) as i32,
        v["shim_pid"].as_i64().unwrap_or(0) as i32,
    )
}

/// Host pids of the processes in the container's pid namespace whose command line is `cmd`.
fn container_procs(init: i32, cmd: &str) -> Vec<i32> {
    let ns = fs::read_link(format!("/proc/{init}/ns/pid")).ok();
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|p| fs::read_link(format!("/proc/{p}/ns/pid")).ok() == ns)
                .filter(|p| {
                    let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmd
                })
                .filter(|p| alive(*p))
                .collect()
        })
        .unwrap_or_default()
}

fn exec_inspect(b: &BargeEnv, id: &str) -> Value {
    let out = b.ok(&["container", "exec-inspect", id]);
    let v: Value = serde_json::from_str(&out).expect("exec-inspect JSON");
    v[0].clone()
}

/// A pseudo-terminal pair (master, slave) made by the test.
fn pty() -> (OwnedFd, OwnedFd) {
    let p = nix::pty::openpty(None, None).expect("openpty");
    (p.master, p.slave)
}

/// SIGTERM `child` (a barge client we spawned) and wait up to `limit` for it to end.
fn term_and_wait(child: &mut Child, limit: Duration) -> bool {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM the client");
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// A client killed with SIGTERM (`timeout -s TERM 3 barge exec -t c sh`): the client ends, the
/// container keeps running with the same init, and only the exec'd process is affected (with
/// a terminal it gets the terminal's hangup and ends). Before the fix, `exec -t` forwarded the
/// TERM to the interactive shell, which ignores it, and the client hung until the container
/// ended.
#[test]
fn killing_an_exec_client_affects_only_its_process() {
    let b = env();
    let id = b.run_d(&["--name", "s3", "bb", "sleep", "600"]);
    let (init, shim) = pids(&b, &id);
    for mode in ["-t", "-it", "plain"] {
        let (cmd, shell): (Vec<&str>, &str) = match mode {
            "plain" => (vec!["exec", "s3", "sleep", "500"], "sleep 500"),
            m => (vec!["exec", m, "s3", "sh"], "sh"),
        };
        let mut c = b.cmd(&cmd);
        // -it needs a terminal on stdin (the test's own pty); -t and plain get /dev/null.
        let _pty = if mode == "-it" {
            let (m, s) = pty();
            c.stdin(Stdio::from(s));
            Some(m)
        } else {
            c.stdin(Stdio::null());
            None
        };
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn exec");
        assert!(
            wait_until(Duration::from_secs(10), || !container_procs(init, shell)
                .is_empty()),
            "{mode}: the exec'd process never ran"
        );
        assert!(
            term_and_wait(&mut child, Duration::from_secs(3)),
            "{mode}: the exec client did not end on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(init) && alive(shim), "{mode}: the container died");
        assert_eq!(b.inspect("s3", "{{.State.Status}}"), "running", "{mode}");
        assert_eq!(
            b.inspect("s3", "{{.State.Pid}}"),
            init.to_string(),
            "{mode}"
        );
        // The exec'd process went (hangup of its terminal, or the forwarded TERM).
        assert!(
            wait_until(Duration::from_secs(5), || container_procs(init, shell)
                .is_empty()),
            "{mode}: the exec'd process outlived its client"
        );
    }
    assert_eq!(b.ok(&["exec", "s3", "echo", "still here"]), "still here\n");
}

/// `exec -d` starts the process under the container's shim: its parent (seen from the host)
/// is the shim while it runs, and `container exec-inspect` shows it running, then its exit
/// code once it exited, whoever started it.
#[test]
fn detached_exec_belongs_to_the_shim_and_its_exit_code_is_kept() {
    let b = env();
    let id = b.run_d(&["--name", "dx", "bb", "sleep", "600"]);
    let (_, shim) = pids(&b, &id);
    let t = Instant::now();
    let eid = b
        .ok(&["exec", "-d", "dx", "sh", "-c", "sleep 1.5; exit 7"])
        .trim()
        .to_string();
    assert!(t.elapsed() < Duration::from_millis(1400), "exec -d waited");
    assert_eq!(eid.len(), 64, "exec -d printed {eid:?}");
    let v = exec_inspect(&b, &eid);
    assert_eq!(v["ID"], eid.as_str(), "{v}");
    assert_eq!(v["ContainerID"], id.as_str(), "{v}");
    assert_eq!(v["Running"], true, "{v}");
    assert_eq!(v["ExitCode"], Value::Null, "{v}");
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh", "{v}");
    assert_eq!(
        v["ProcessConfig"]["arguments"][1], "sleep 1.5; exit 7",
        "{v}"
    );
    let pid = v["Pid"].as_i64().expect("Pid") as i32;
    assert!(alive(pid), "exec pid {pid} is not running");
    assert_eq!(
        ppid(pid),
        Some(shim),
        "the exec's parent is not the shim {shim}"
    );
    // A unique prefix finds it too; it exits on its own and the shim records the code.
    let short = &eid[..12];
    assert!(
        wait_until(Duration::from_secs(8), || exec_inspect(&b, short)
            ["Running"]
            == false),
        "exit never recorded: {}",
        exec_inspect(&b, short)
    );
    let v = exec_inspect(&b, short);
    assert_eq!(v["ExitCode"], 7, "{v}");
    assert!(v["FinishedAt"].is_string(), "{v}");
    assert!(!alive(pid), "the exec process was not reaped");
    // A program that can't be run: 127 now, and recorded.
    let out = b.run(&["exec", "-d", "dx", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // Unknown exec ids are reported.
    let out = b.run(&["container", "exec-inspect", "abcdef0123"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such exec instance"),
        "{}",
        stderr(&out)
    );
}

/// `-it` when stdin is not a terminal: docker's "the input device is not a TTY", exit 1, at
/// once (before, the program printed a prompt and waited forever), for run, exec, start -ai
/// and attach.
#[test]
fn it_without_a_terminal_is_refused() {
    let b = env();
    b.run_d(&["--name", "tt", "bb", "sleep", "600"]);
    b.ok(&["create", "--name", "cr", "-it", "bb", "sh"]);
    b.run_d(&["--name", "at", "-it", "bb", "sh"]);
    for cmd in [
        vec!["run", "--rm", "-it", "bb", "sh"],
        vec!["exec", "-it", "tt", "sh"],
        vec!["start", "-ai", "cr"],
        vec!["attach", "at"],
    ] {
        let t = Instant::now();
        let out = b.run(&cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the input device is not a TTY"),
            "{cmd:?}: {}",
            stderr(&out)
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{cmd:?} took {:?}",
            t.elapsed()
        );
    }
    // Nothing was started or left behind by the refused ones.
    assert_eq!(b.inspect("cr", "{{.State.Status}}"), "created");
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 3);
    // With a terminal, -it works.
    let (m, s) = pty();
    let out = barge_testutil::exec_bounded(
        {
            let mut c = b.cmd(&["exec", "-it", "tt", "sh", "-c", "echo tty-ok"]);
            c.stdin(Stdio::from(s));
            c
        },
        Duration::from_secs(20),
    );
    drop(m);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tty-ok"));
}

/// A program that can't be executed: docker's codes and messages, decided from the runtime's
/// typed failure (not from text): 127 not found, 126 not executable, 1 for a missing
/// container.
#[test]
fn exec_failures_give_dockers_codes() {
    let b = env();
    b.run_d(&["--name", "ef", "bb", "sleep", "600"]);
    let out = b.run(&["exec", "ef", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("exec: \"nosuchcmd\": executable file not found in $PATH"),
        "{err}"
    );
    assert!(!err.contains("barge-runtime"), "{err}");
    let out = b.run(&["exec", "ef", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = b.run(&["exec", "ef", "/"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let out = b.run(&["exec", "nosuchctr", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Error response from daemon: No such container: nosuchctr"),
        "{}",
        stderr(&out)
    );
    // run: the same typed failure.
    let out = b.run(&["run", "--rm", "bb", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "bb", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    // The container still runs; a good exec works.
    assert_eq!(b.ok(&["exec", "ef", "echo", "ok"]), "ok\n");
}

/// docker's stdin rules for exec: `-i` passes our input, without it the process reads
/// nothing (before, every exec read the client's stdin).
#[test]
fn exec_reads_stdin_only_with_i() {
    let b = env();
    b.run_d(&["--name", "in", "bb", "sleep", "600"]);
    let with_input = |args: &[&str]| {
        let mut c = b.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn exec");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        let out = child.wait_with_output().expect("exec output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(
        with_input(&["exec", "-i", "in", "cat"]),
        (Some(0), "hello\n".to_string())
    );
    assert_eq!(with_input(&["exec", "in", "cat"]), (Some(0), String::new()));
}
