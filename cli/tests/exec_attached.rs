//! Attached execs served by the container's shim (`Engine::exec_start_attached`, what the API
//! daemon uses for `docker exec -i/-t` and docker-py's `exec_run`): the caller never forks,
//! the process is the shim's child, its output comes back as frames on the returned socket
//! (stdout and stderr apart, everything on stream 1 with a terminal), the socket's bytes are
//! its stdin, and a last EXIT frame carries its exit code. Also `barge exec`, now a client of
//! the same path.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use barge_engine::container::Streams;
use barge_engine::exec::ExecOptions;
use barge_engine::{Engine, EngineOptions, Error};
use barge_testutil::engine::{alive, wait_until, BargeEnv};
use barge_testutil::stderr;

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// The engine on the test's store, opened in this (multi-threaded) test process, as the
/// daemon opens it.
fn engine(b: &BargeEnv) -> Engine {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_barge"));
    let config = b.path().join("etc");
    Engine::open(EngineOptions {
        root: b.root(),
        runroot: b.runroot(),
        shim: exe.with_file_name("barge-shim"),
        exit_helper: exe.with_file_name("barge-exit"),
        registry: exe.with_file_name("barge-registry"),
        init: PathBuf::from("/usr/bin/tini-static"),
        network: barge_engine::network::settings::Settings::load(&config).expect("settings"),
        config,
    })
    .expect("open the engine")
}

fn opts(cmd: &[&str], interactive: bool, tty: bool) -> ExecOptions {
    ExecOptions {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        interactive,
        tty,
        ..Default::default()
    }
}

const ALL: Streams = Streams {
    stdin: true,
    stdout: true,
    stderr: true,
};

/// Create and start an attached exec; its id and socket (reads bounded by 20 s).
fn start(e: &Engine, ctr: &str, o: &ExecOptions) -> (String, UnixStream) {
    let id = e.exec_create(ctr, o).expect("exec create");
    let sock = e.exec_start_attached(&id, ALL).expect("exec start");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    (id, sock)
}

/// Every frame up to and including EXIT: `(stream, bytes)`.
fn frames(sock: &mut UnixStream) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; 8];
        if sock.read_exact(&mut h).is_err() {
            return out;
        }
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut data = vec![0u8; len];
        sock.read_exact(&mut data).expect("frame body");
        let end = h[0] == EXIT;
        out.push((h[0], data));
        if end {
            return out;
        }
    }
}

/// The bytes of one stream, concatenated.
fn stream(f: &[(u8, Vec<u8>)], id: u8) -> String {
    let v: Vec<u8> = f
        .iter()
        .filter(|(s, _)| *s == id)
        .flat_map(|(_, d)| d.clone())
        .collect();
    String::from_utf8_lossy(&v).into_owned()
}

fn exit_code(f: &[(u8, Vec<u8>)]) -> Option<i32> {
    f.last()
        .filter(|(s, _)| *s == EXIT)
        .and_then(|(_, d)| String::from_utf8_lossy(d).trim().parse().ok())
}

/// Read frames until stream 1 contains `want` (or 15 s pass); what was read.
fn read_until(sock: &mut UnixStream, want: &str) -> String {
    let end = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    sock.set_read_timeout(Some(Duration::from_secs(15))).ok();
    while Instant::now() < end && !String::from_utf8_lossy(&got).contains(want) {
        let mut h = [0u8; 8];
        if sock.read_exact(&mut h).is_err() {
            break;
        }
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut data = vec![0u8; len];
        if sock.read_exact(&mut data).is_err() || h[0] == EXIT {
            break;
        }
        assert_eq!(h[0], STDOUT, "a terminal's output is all stream 1");
        got.extend_from_slice(&data);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn shim_pid(b: &BargeEnv, id: &str) -> i32 {
    let data = std::fs::read(b.container_dir(id).join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_slice(&data).expect("state.json");
    v["shim_pid"].as_i64().unwrap_or(0) as i32
}

/// Piped stdin (`cat` echoes what is written and ends when the writing side is shut down),
/// stdout and stderr apart, the exit code in the EXIT frame and in exec inspect; the
/// process is the shim's child, never the caller's.
#[test]
fn attached_exec_relays_stdin_output_and_exit_code() {
    let b = env();
    let cid = b.run_d(&["--name", "ae", "bb", "sleep", "600"]);
    let e = engine(&b);

    let (id, mut sock) = start(&e, "ae", &opts(&["cat"], true, false));
    let i = e.exec_inspect(&id).expect("inspect");
    assert!(i.running, "{i:?}");
    assert!(i.pid > 0 && alive(i.pid), "{i:?}");
    assert_eq!(
        ppid(i.pid),
        Some(shim_pid(&b, &cid)),
        "not the shim's child"
    );
    sock.write_all(b"hello\nworld\n").expect("write stdin");
    sock.shutdown(Shutdown::Write).expect("shutdown");
    let f = frames(&mut sock);
    assert_eq!(stream(&f, STDOUT), "hello\nworld\n", "{f:?}");
    assert_eq!(exit_code(&f), Some(0), "{f:?}");
    assert!(
        wait_until(Duration::from_secs(5), || !e
            .exec_inspect(&id)
            .expect("inspect")
            .running),
        "exit not recorded"
    );
    assert_eq!(e.exec_inspect(&id).expect("inspect").exit_code, Some(0));

    let (id, mut sock) = start(
        &e,
        "ae",
        &opts(
            &["sh", "-c", "echo out; echo err >&2; echo out2; exit 7"],
            false,
            false,
        ),
    );
    let f = frames(&mut sock);
    assert_eq!(stream(&f, STDOUT), "out\nout2\n", "{f:?}");
    assert_eq!(stream(&f, STDERR), "err\n", "{f:?}");
    assert_eq!(exit_code(&f), Some(7), "{f:?}");
    // The record is written before the EXIT frame is sent.
    let i = e.exec_inspect(&id).expect("inspect");
    assert!(!i.running, "{i:?}");
    assert_eq!(i.exit_code, Some(7), "{i:?}");
    assert!(i.pid > 0 && !alive(i.pid), "not reaped: {i:?}");

    // Without -i the process reads nothing, whatever the client writes.
    let (_, mut sock) = start(&e, "ae", &opts(&["cat"], false, false));
    let _ = sock.write_all(b"ignored\n");
    let f = frames(&mut sock);
    assert_eq!(stream(&f, STDOUT), "", "{f:?}");
    assert_eq!(exit_code(&f), Some(0), "{f:?}");
    // A client that hangs up before the end hangs the process up.
    let (id, sock) = start(&e, "ae", &opts(&["sleep", "300"], false, false));
    let pid = e.exec_inspect(&id).expect("inspect").pid;
    drop(sock);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "the process outlived its client"
    );
    assert!(
        wait_until(Duration::from_secs(5), || e
            .exec_inspect(&id)
            .expect("inspect")
            .exit_code
            == Some(129)),
        "{:?}",
        e.exec_inspect(&id)
    );
    assert_eq!(b.inspect("ae", "{{.State.Status}}"), "running");
}

/// With a terminal: output through the pty (stderr too, on stream 1), the size given at the
/// start and after a resize is what `stty size` sees, input is typed into the terminal.
#[test]
fn attached_exec_with_a_terminal() {
    let b = env();
    b.run_d(&["--name", "at", "bb", "sleep", "600"]);
    let e = engine(&b);
    let id = e
        .exec_create("at", &opts(&["sh"], true, true))
        .expect("exec create");
    let mut sock = e
        .exec_start_attached_sized(&id, ALL, Some((33, 99)))
        .expect("exec start");
    sock.write_all(b"stty size; tty\n").expect("type");
    let got = read_until(&mut sock, "/dev/pts/");
    assert!(got.contains("33 99"), "{got:?}");
    e.exec_resize(&id, 50, 140).expect("resize");
    sock.write_all(b"stty size; echo to-stderr >&2\n")
        .expect("type");
    let got = read_until(&mut sock, "to-stderr\r\n");
    assert!(got.contains("50 140"), "{got:?}");
    sock.write_all(b"exit 3\n").expect("type");
    let f = frames(&mut sock);
    assert_eq!(exit_code(&f), Some(3), "{f:?}");
    assert!(f.iter().all(|(s, _)| *s != STDERR), "{f:?}");
    // A resize of an exec that ended, or without a terminal, is an error.
    assert!(e.exec_resize(&id, 10, 10).is_err());
}

/// A program that can't run: docker's codes, as a typed error before any frame; the shim
/// answers one `err` line and nothing else.
#[test]
fn attached_exec_start_failures() {
    let b = env();
    let cid = b.run_d(&["--name", "af", "bb", "sleep", "600"]);
    let e = engine(&b);
    for (cmd, code) in [("nosuchcmd", 127), ("/etc/passwd", 126)] {
        let id = e
            .exec_create("af", &opts(&[cmd], true, false))
            .expect("create");
        match e.exec_start_attached(&id, ALL) {
            Err(Error::StartFailed { code: c, msg }) => {
                assert_eq!(c, code, "{cmd}: {msg}");
                assert!(msg.contains(cmd), "{msg}");
            }
            Err(other) => panic!("{cmd}: {other}"),
            Ok(_) => panic!("{cmd} started"),
        }
        let i = e.exec_inspect(&id).expect("inspect");
        assert_eq!(i.exit_code, Some(code), "{i:?}");
    }
    // The shim's own answer, read to its end.
    let id = e
        .exec_create("af", &opts(&["nosuchcmd"], false, true))
        .expect("create");
    let mut s = UnixStream::connect(e.paths.socket(&cid)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(format!("exec-attach {id} 1 1 1\n").as_bytes())
        .expect("request");
    let mut all = String::new();
    s.read_to_string(&mut all).expect("answer");
    assert!(all.starts_with("err 127 "), "{all:?}");
    assert_eq!(all.lines().count(), 1, "{all:?}");
    // A second start of the same exec is refused.
    let id = e
        .exec_create("af", &opts(&["true"], false, false))
        .expect("create");
    let mut s = e.exec_start_attached(&id, ALL).expect("start");
    assert_eq!(exit_code(&frames(&mut s)), Some(0));
    assert!(e.exec_start_attached(&id, ALL).is_err());
}

/// Two attached execs run at once in one container, each with its own input and output,
/// while the container keeps logging.
#[test]
fn concurrent_attached_execs_while_the_container_logs() {
    let b = env();
    b.run_d(&[
        "--name",
        "ac",
        "bb",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.05; done",
    ]);
    let e = engine(&b);
    let script = |tag: &str| format!("read x; echo {tag}$x; read y; echo {tag}$y; exit 4");
    let (ida, mut a) = start(&e, "ac", &opts(&["sh", "-c", &script("A")], true, false));
    let (idb, mut bs) = start(&e, "ac", &opts(&["sh", "-c", &script("B")], true, false));
    let ticks = || b.ok(&["logs", "ac"]).matches("tick").count();
    let before = ticks();
    // Both wait for input at once; the container goes on logging meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    assert!(e.exec_inspect(&ida).expect("inspect").running);
    assert!(e.exec_inspect(&idb).expect("inspect").running);
    assert!(
        wait_until(Duration::from_secs(5), || ticks() > before + 3),
        "the container's log stopped while execs ran"
    );
    bs.write_all(b"1\n").expect("write b");
    a.write_all(b"2\n").expect("write a");
    bs.write_all(b"3\n").expect("write b");
    a.write_all(b"4\n").expect("write a");
    let fa = frames(&mut a);
    let fb = frames(&mut bs);
    assert_eq!(stream(&fa, STDOUT), "A2\nA4\n", "{fa:?}");
    assert_eq!(stream(&fb, STDOUT), "B1\nB3\n", "{fb:?}");
    assert_eq!((exit_code(&fa), exit_code(&fb)), (Some(4), Some(4)));
    assert_eq!(b.inspect("ac", "{{.State.Status}}"), "running");
}

/// `barge exec -t` gives the process our terminal's size from the start, and follows it on
/// SIGWINCH; the exit code of the process is the client's.
#[test]
fn cli_exec_with_a_terminal_follows_our_size() {
    let b = env();
    let cid = b.run_d(&["--name", "ct", "bb", "sleep", "600"]);
    let ws = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 99,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let out = barge_testutil::exec_bounded(
        {
            let mut c = b.cmd(&["exec", "-t", "ct", "sh", "-c", "stty size; exit 5"]);
            c.stdin(Stdio::from(pty.slave.try_clone().expect("dup slave")));
            c
        },
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("33 99"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    // -it: a shell that reports its size when told to; resized in between.
    let mut child = b
        .cmd(&["exec", "-it", "ct", "sh"])
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup slave")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn exec -it");
    let mut master = std::fs::File::from(pty.master);
    let mut out = child.stdout.take().expect("stdout");
    // Typed once the process runs (the client's raw mode is set by then).
    let execs = b.container_dir(&cid).join("execs");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_dir(&execs)
                .map(|rd| {
                    rd.flatten().any(|f| {
                        std::fs::read_to_string(f.path())
                            .is_ok_and(|t| t.contains("\"running\":true"))
                    })
                })
                .unwrap_or(false)
        }),
        "exec -it never ran"
    );
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = out.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    master.write_all(b"stty size\n").expect("type");
    std::thread::sleep(Duration::from_millis(800));
    let tty = nix::unistd::ttyname(&pty.slave).expect("ttyname");
    let st = std::process::Command::new("stty")
        .arg("-F")
        .arg(&tty)
        .args(["rows", "44", "cols", "111"])
        .status()
        .expect("stty");
    assert!(st.success());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .expect("SIGWINCH");
    std::thread::sleep(Duration::from_millis(800));
    master.write_all(b"stty size; exit 6\n").expect("type");
    let status = child.wait().expect("wait exec -it");
    let text = reader.join().expect("reader");
    assert_eq!(status.code(), Some(6), "{text:?}");
    assert!(text.contains("33 99"), "{text:?}");
    assert!(text.contains("44 111"), "{text:?}");
}

/// A container whose shim predates attached execs (started by an older barge, which answers
/// requests it doesn't know `error: bad request`): the engine says so with a typed error, and
/// `barge exec` (single-threaded, it may fork) runs the process itself instead.
#[test]
fn cli_exec_falls_back_for_a_shim_that_predates_attached_exec() {
    let b = env();
    let cid = b.run_d(&["--name", "old", "bb", "sleep", "600"]);
    let e = engine(&b);
    let sock = e.paths.socket(&cid);
    let real = sock.with_extension("real");
    std::fs::rename(&sock, &real).expect("move the shim's socket aside");
    let old = std::os::unix::net::UnixListener::bind(&sock).expect("bind the old shim");
    let server = std::thread::spawn(move || {
        // An old shim: every request is unknown to it.
        for _ in 0..2 {
            let Ok((mut c, _)) = old.accept() else { return };
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while c.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let _ = c.write_all(b"error: bad request\n");
        }
    });
    let id = e
        .exec_create("old", &opts(&["true"], false, false))
        .expect("create");
    match e.exec_start_attached(&id, ALL) {
        Err(Error::ShimOutdated { id: c, .. }) => assert_eq!(c, cid),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an old shim started an attached exec"),
    }
    let out = b.run(&["exec", "old", "sh", "-c", "echo fallback; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fallback\n");
    server.join().expect("old shim");
    std::fs::rename(&real, &sock).expect("restore the shim's socket");
    assert_eq!(b.ok(&["exec", "old", "echo", "current"]), "current\n");
}
