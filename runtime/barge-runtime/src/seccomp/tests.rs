//! Tests of the seccomp module.
//!
//! Filters are loaded for real in a child process: the parent test re-runs this test binary
//! with `--exact seccomp::tests::child_helper` and `CHILD_ENV` naming a scenario; the helper
//! loads a filter, makes system calls and prints `RESULT key=value` lines, which the parent
//! checks. Without `CHILD_ENV` the helper does nothing.

use std::collections::HashMap;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::socket::{
    recvmsg, socket, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxSeccomp, Spec};
use serde_json::json;

use super::*;

const CHILD_ENV: &str = "BARGE_SECCOMP_TEST_SCENARIO";
const LISTENER_ENV: &str = "BARGE_SECCOMP_TEST_LISTENER";
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
/// The errno most test rules return: not one a real failure of these calls would give.
const E2BIG: i32 = libc::E2BIG;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn compile_err(v: serde_json::Value) -> String {
    match Filter::compile(&profile(v)) {
        Ok(_) => panic!("profile compiled"),
        Err(e) => {
            assert!(matches!(e, crate::Error::Config(_)), "{e:?}");
            e.to_string()
        }
    }
}

fn lib_at_least(major: u32, minor: u32) -> bool {
    let v = libseccomp::ScmpVersion::current().unwrap();
    (v.major, v.minor) >= (major, minor)
}

// ---- compile: errors name the field -----------------------------------------------------

/// Names the runtime cannot map (action, op, arch, flag) are refused when config.json is
/// parsed, with the field named (the OCI types are enums).
#[test]
fn bad_names_in_config_name_the_field() {
    let cases = [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getppid"], "action": "SCMP_ACT_EXPLODE"}]}),
            "linux.seccomp.syscalls[1].action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}),
            "linux.seccomp.syscalls[0].args[1].op",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]}),
            "linux.seccomp.architectures[1]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "flags": ["SECCOMP_FILTER_FLAG_SOMETHING"]}),
            "linux.seccomp.flags[0]",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_MAYBE"}),
            "linux.seccomp.defaultAction",
        ),
    ];
    for (seccomp, field) in cases {
        let spec = json!({"ociVersion": "1.2.1", "linux": {"seccomp": seccomp}});
        let text = serde_json::to_string_pretty(&spec).unwrap();
        let err = crate::spec::parse_json::<Spec>(&text).unwrap_err();
        assert!(err.starts_with(&format!("{field}:")), "{field}: {err}");
    }
}

#[test]
fn errno_values_out_of_range_name_the_field() {
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}));
    assert!(err.contains("linux.seccomp.defaultErrnoRet: 5000"), "{err}");
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4095}]}));
    assert!(
        err.contains("linux.seccomp.syscalls[1].errnoRet: 4095"),
        "{err}"
    );
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 70000}]}));
    assert!(
        err.contains("linux.seccomp.syscalls[0].errnoRet: 70000"),
        "{err}"
    );
    // The largest values that fit are fine.
    Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 65535},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4094}]}),
    ))
    .unwrap();
}

#[test]
fn bad_rules_name_the_field() {
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(
        err.contains("linux.seccomp.syscalls[1].args[1].index: 6"),
        "{err}"
    );

    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]}));
    assert!(err.contains("linux.seccomp.syscalls[0].names:"), "{err}");

    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]}));
    assert!(
        err.contains("linux.seccomp.syscalls[0].names[1]: empty"),
        "{err}"
    );
}

#[test]
fn notify_restrictions_name_the_field() {
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(
        err.starts_with("invalid config: linux.seccomp.defaultAction:"),
        "{err}"
    );
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(
        err.contains("linux.seccomp.syscalls[1].names[1]: SCMP_ACT_NOTIFY"),
        "{err}"
    );
    let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(err.contains("linux.seccomp.syscalls[0].names[0]"), "{err}");
}

#[test]
fn flags_map_to_filter_attributes() {
    let f = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_TSYNC"]}),
    ))
    .unwrap();
    assert_eq!(f.ctx_attrs(), (true, true));
    let f = Filter::compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).unwrap();
    assert_eq!(f.ctx_attrs(), (false, false));

    // SCMP_FLTATR_CTL_WAITKILL came with libseccomp 2.6.
    let r = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    ));
    if lib_at_least(2, 6) {
        r.unwrap();
    } else {
        let err = r.unwrap_err().to_string();
        assert!(
            err.contains("linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
                && err.contains("2.6"),
            "{err}"
        );
    }
}

#[test]
fn architectures_are_added() {
    let f = Filter::compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                          "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64",
                          "SCMP_ARCH_PPC64LE", "SCMP_ARCH_MIPSEL64"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    let pfc = f.pfc();
    for arch in [
        "x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "ppc64le", "mipsel64",
    ] {
        assert!(
            pfc.contains(&format!("# filter for arch {arch} (")),
            "{arch}:\n{pfc}"
        );
    }
    // One filter cannot mix byte orders: libseccomp refuses, and the entry is named.
    if cfg!(target_endian = "little") {
        let err = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_S390X"]}));
        assert!(
            err.contains("linux.seccomp.architectures[1]: SCMP_ARCH_S390X"),
            "{err}"
        );
    }
    // LoongArch came with libseccomp 2.6: older ones refuse it, naming the entry.
    let r = Filter::compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]})));
    if !lib_at_least(2, 6) {
        let err = r.unwrap_err().to_string();
        assert!(
            err.contains("linux.seccomp.architectures[1]: SCMP_ARCH_LOONGARCH64"),
            "{err}"
        );
    }
}

// ---- compile: what the rules become ------------------------------------------------------

/// The action each OCI action becomes, read back from libseccomp's filter text.
#[test]
fn actions_map_as_runc() {
    let f = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
        {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["gettid"], "action": "SCMP_ACT_TRAP"},
        {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["geteuid"], "action": "SCMP_ACT_LOG"},
        {"names": ["getegid"], "action": "SCMP_ACT_NOTIFY"},
        {"names": ["getpgrp"], "action": "SCMP_ACT_KILL_THREAD"},
        {"names": ["getsid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpgid"], "action": "SCMP_ACT_TRACE"}]}),
    ))
    .unwrap();
    assert!(f.uses_notify());
    let pfc = f.pfc();
    for (name, action) in [
        ("getpid", "KILL"),
        ("getppid", "KILL_PROCESS"),
        ("gettid", "TRAP"),
        ("getuid", "TRACE(7)"),
        ("getgid", "ERRNO(13)"),
        ("geteuid", "LOG"),
        // libseccomp 2.5's text output has no name for NOTIFY.
        ("getegid", "0x7fc00000"),
        ("getpgrp", "KILL"),
        ("getsid", "ERRNO(1)"),
        ("getpgid", "TRACE(1)"),
    ] {
        assert_eq!(
            rule_action(&pfc, name).as_deref(),
            Some(action),
            "{name}:\n{pfc}"
        );
    }
    let f = Filter::compile(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38})))
    .unwrap();
    assert!(
        f.pfc().contains("# default action\n  action ERRNO(38);"),
        "{}",
        f.pfc()
    );
    assert!(!f.uses_notify());
}

/// The action of the unconditional rule for `name` in a pfc text.
fn rule_action(pfc: &str, name: &str) -> Option<String> {
    let mut lines = pfc.lines();
    lines.find(|l| l.contains(&format!("syscall \"{name}\"")))?;
    lines.next()?;
    let action = lines.next()?.trim();
    Some(
        action
            .strip_prefix("action ")?
            .trim_end_matches(';')
            .to_string(),
    )
}

#[test]
fn operators_map_to_comparisons() {
    let f = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1000, "op": "SCMP_CMP_GT"}]},
        {"names": ["getsid"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1001, "op": "SCMP_CMP_GE"}]},
        {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1002, "op": "SCMP_CMP_LT"}]},
        {"names": ["wait4"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1003, "op": "SCMP_CMP_LE"}]},
        {"names": ["close"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1004, "op": "SCMP_CMP_EQ"}]},
        {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1005, "op": "SCMP_CMP_NE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": 0x80800, "valueTwo": 0x800, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    ))
    .unwrap();
    let pfc = f.pfc();
    for want in [
        "$a0.lo32 > 1000",
        "$a0.lo32 >= 1001",
        // libseccomp writes LT/LE as the negation of GE/GT.
        "$a0.lo32 >= 1002",
        "$a0.lo32 > 1003",
        "$a0.lo32 == 1004",
        "$a0.lo32 == 1005",
        "$a1.lo32 & 0x00080800 == 2048",
    ] {
        assert!(pfc.contains(want), "{want}:\n{pfc}");
    }
}

#[test]
fn unknown_syscalls_and_default_action_rules_are_skipped() {
    let f = Filter::compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall", "getppid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["another_unknown_one"], "action": "SCMP_ACT_NOTIFY"}]}),
    ))
    .unwrap();
    let pfc = f.pfc();
    assert_eq!(
        rule_action(&pfc, "getppid").as_deref(),
        Some("ERRNO(1)"),
        "{pfc}"
    );
    assert!(!pfc.contains("\"getpid\""), "{pfc}");
    // No NOTIFY rule made it into the filter, so there will be no listener.
    assert!(!f.uses_notify());
}

#[test]
fn default_profile_compiles() {
    let p = default_profile();
    assert_eq!(
        p.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    assert_eq!(p.default_errno_ret(), Some(1));
    let f = Filter::compile(&p).unwrap();
    assert!(!f.uses_notify());
    let pfc = f.pfc();
    assert_eq!(
        rule_action(&pfc, "getpid").as_deref(),
        Some("ALLOW"),
        "{pfc}"
    );
    assert_eq!(
        rule_action(&pfc, "clone3").as_deref(),
        Some("ERRNO(38)"),
        "{pfc}"
    );
    assert!(!pfc.contains("\"mount\""), "{pfc}");
    assert!(!pfc.contains("\"unshare\""), "{pfc}");
    if cfg!(target_arch = "x86_64") {
        for arch in ["x86_64", "x86", "x32"] {
            assert!(
                pfc.contains(&format!("# filter for arch {arch} (")),
                "{arch}"
            );
        }
        assert_eq!(rule_action(&pfc, "arch_prctl").as_deref(), Some("ALLOW"));
    }

    // With every capability Docker's capability rules all apply, duplicates included.
    let all: Vec<&str> = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYSLOG", "CAP_BPF"]
        .into_iter()
        .chain(DOCKER_DEFAULT_CAPS.iter().copied())
        .collect();
    let f = Filter::compile(&default_profile_for_caps(&all)).unwrap();
    let pfc = f.pfc();
    assert_eq!(
        rule_action(&pfc, "mount").as_deref(),
        Some("ALLOW"),
        "{pfc}"
    );
    assert_eq!(
        rule_action(&pfc, "clone3").as_deref(),
        Some("ALLOW"),
        "{pfc}"
    );
    assert_eq!(
        rule_action(&pfc, "ptrace").as_deref(),
        Some("ALLOW"),
        "{pfc}"
    );
}

/// `create` compiles the profile on every start: keep it cheap. Prints the numbers. A timing
/// measurement, not a correctness test (it failed under a loaded CI machine): run it by hand
/// with `cargo nextest run -p barge-runtime --run-ignored only default_profile_compile_time`.
#[test]
#[ignore = "timing measurement; run by hand"]
fn default_profile_compile_time() {
    let p = default_profile();
    Filter::compile(&p).unwrap(); // libseccomp's one-time probing of the kernel
    let runs = 20;
    let (mut compile, mut generate) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..runs {
        let t = Instant::now();
        let f = Filter::compile(&p).unwrap();
        compile += t.elapsed();
        let t = Instant::now();
        assert!(f.bpf_len().unwrap() > 0);
        generate += t.elapsed();
    }
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(default_profile());
    }
    let build = t.elapsed() / runs;
    let (compile, generate) = (compile / runs, generate / runs);
    println!(
        "default profile: build {build:?}, Filter::compile {compile:?}, BPF generation (part \
         of load) {generate:?}"
    );
    // Generous bounds for a debug build on a loaded machine; a regression to a slow path
    // (e.g. tens of milliseconds) still fails.
    assert!(compile < Duration::from_millis(50), "compile {compile:?}");
    assert!(
        generate < Duration::from_millis(50),
        "generate {generate:?}"
    );
}

// ---- send_to_listener --------------------------------------------------------------------

/// Accept one connection on `listener` and read the state JSON and the fd sent with it.
fn receive_state(listener: &UnixListener) -> (serde_json::Value, OwnedFd) {
    let mut pfd = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut pfd, 10_000u16).unwrap(), 1, "no connection");
    let (stream, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(f) = c {
            fds.extend(f);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "fds: {fds:?}");
    let fd = crate::sys::own_fd(fds[0]);
    // The rest of the state, if the stream split it, then EOF.
    let mut data = buf[..n].to_vec();
    (&stream).read_to_end(&mut data).unwrap();
    (serde_json::from_slice(&data).unwrap(), fd)
}

#[test]
fn send_to_listener_sends_state_and_fd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (r, w) = nix::unistd::pipe().unwrap();
    let state = json!({"ociVersion": "1.2.1", "id": "box", "status": "creating", "pid": 4242,
                       "bundle": "/b", "annotations": {"big": "x".repeat(300_000)}});
    let sender = {
        let path = path.clone();
        let state = state.clone();
        std::thread::spawn(move || send_to_listener(&path, "meta data", 4242, &state, w.as_fd()))
    };
    let (got, fd) = receive_state(&listener);
    sender.join().unwrap().unwrap();
    assert_eq!(got["ociVersion"], CONTAINER_PROCESS_STATE_VERSION);
    assert_eq!(got["fds"], json!(["seccompFd"]));
    assert_eq!(got["pid"], 4242);
    assert_eq!(got["metadata"], "meta data");
    assert_eq!(got["state"], state);
    // The fd is the pipe's write end: what goes in comes out of the read end.
    nix::unistd::write(&fd, b"through the fd").unwrap();
    drop(fd);
    let mut out = [0u8; 64];
    let n = nix::unistd::read(&r, &mut out).unwrap();
    assert_eq!(&out[..n], b"through the fd");

    // No metadata: the field is left out, as runc.
    let (_r, w) = nix::unistd::pipe().unwrap();
    let sender = {
        let path = path.clone();
        std::thread::spawn(move || send_to_listener(&path, "", 1, &json!({}), w.as_fd()))
    };
    let (got, _fd) = receive_state(&listener);
    sender.join().unwrap().unwrap();
    assert!(got.get("metadata").is_none(), "{got}");
}

#[test]
fn send_to_listener_names_the_path_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    let (_r, w) = nix::unistd::pipe().unwrap();
    let err = send_to_listener(&path, "", 1, &json!({}), w.as_fd()).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

// ---- real effects, in a child process ------------------------------------------------------

struct ChildRun {
    status: ExitStatus,
    results: HashMap<String, String>,
    output: String,
}

impl ChildRun {
    fn get(&self, key: &str) -> &str {
        match self.results.get(key) {
            Some(v) => v,
            None => panic!(
                "no result {key:?}; child {:?}:\n{}",
                self.status, self.output
            ),
        }
    }
    fn assert_ok(&self) {
        assert!(
            self.status.success(),
            "child {:?}:\n{}",
            self.status,
            self.output
        );
    }
}

fn spawn_child(scenario: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "seccomp::tests::child_helper",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, scenario)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn wait_child(mut child: std::process::Child) -> ChildRun {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let s = child.wait().unwrap();
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            panic!("child timed out ({s:?}):\n{out}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    let results = output
        .lines()
        // The first result follows the harness's "test ... " on the same line.
        .filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ChildRun {
        status,
        results,
        output,
    }
}

fn run_child(scenario: &str) -> ChildRun {
    wait_child(spawn_child(scenario, &[]))
}

/// Not a test of its own: the body of the child processes (does nothing without CHILD_ENV).
#[test]
fn child_helper() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    child::run(&scenario);
    // Leave before the test harness does anything more under the filter.
    std::process::exit(0);
}

/// ERRNO with and without errnoRet, TRACE without a tracer, LOG, and argument conditions:
/// EQ, NE, LT, LE, GE, GT, MASKED_EQ, several arguments ANDed, one argument twice ORed.
#[test]
fn errno_trace_log_and_conditions_take_effect() {
    let r = run_child("errno");
    r.assert_ok();
    let e2big = E2BIG.to_string();
    let checks: &[(&str, String)] = &[
        ("mkdir", libc::EACCES.to_string()),
        ("rmdir", libc::EPERM.to_string()),
        ("getcwd_traced", libc::ENOSYS.to_string()),
        ("getppid_logged", std::process::id().to_string()),
        ("kill_pid1_sig0", e2big.clone()),
        ("kill_self_sig0", "ok".into()),
        ("getsid_4000000", e2big.clone()),
        ("getsid_self", "ok".into()),
        ("getpgid_4100000", e2big.clone()),
        ("getpgid_self", "ok".into()),
        ("waitpid_50", e2big.clone()),
        ("waitpid_123456", libc::ECHILD.to_string()),
        ("dup_stdin", "ok".into()),
        ("dup_stderr", e2big.clone()),
        ("personality_8", e2big.clone()),
        ("personality_0x20000", e2big.clone()),
        ("personality_query", "ok".into()),
        ("socket_unix_nonblock", e2big.clone()),
        ("socket_unix_nonblock_cloexec", "ok".into()),
        ("socket_unix_blocking", "ok".into()),
        ("socket_inet_nonblock", "ok".into()),
    ];
    for (key, want) in checks {
        assert_eq!(r.get(key), want, "{key}:\n{}", r.output);
    }
}

#[test]
fn kill_process_kills_the_process() {
    let r = run_child("kill_process");
    assert_eq!(r.status.signal(), Some(libc::SIGSYS), "{}", r.output);
    assert_eq!(r.get("before"), "1");
    assert!(!r.results.contains_key("after"), "{}", r.output);
}

#[test]
fn trap_raises_sigsys() {
    let r = run_child("trap");
    assert_eq!(r.status.signal(), Some(libc::SIGSYS), "{}", r.output);
    assert_eq!(r.get("before"), "1");
    assert!(!r.results.contains_key("after"), "{}", r.output);
}

/// SCMP_ACT_KILL is KILL_THREAD: the calling thread dies, the process lives on.
#[test]
fn kill_kills_only_the_thread() {
    let r = run_child("kill_thread");
    r.assert_ok();
    assert_eq!(r.get("thread_finished"), "false");
    assert_eq!(r.get("process_alive"), "true");
}

/// Flags load with the filter, which then takes effect.
#[test]
fn flags_load() {
    let r = run_child("flags");
    r.assert_ok();
    assert_eq!(r.get("getpgid"), E2BIG.to_string());
    assert_eq!(r.get("seccomp_mode"), "2");
}

/// NOTIFY: the listener fd reaches an agent through `send_to_listener`; the agent receives the
/// child's blocked system call and answers it, and the child goes on with that answer.
#[test]
fn notify_listener_reaches_agent_which_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let child = spawn_child("notify", &[(LISTENER_ENV, path.to_str().unwrap())]);
    let child_pid = child.id();
    let (state, fd) = receive_state(&listener);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["pid"], child_pid);
    assert_eq!(state["metadata"], "test-agent");
    assert_eq!(state["state"]["id"], "notify-test");

    let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut pfd, 10_000u16).unwrap(), 1, "no notification");
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    assert_eq!(req.data.syscall, ScmpSyscall::from_name("getppid").unwrap());
    // The request comes from a thread of the child.
    let tgid = std::fs::read_to_string(format!("/proc/{}/status", req.pid)).unwrap();
    assert!(
        tgid.lines().any(|l| l == format!("Tgid:\t{child_pid}")),
        "{tgid}"
    );
    libseccomp::notify_id_valid(fd.as_raw_fd(), req.id).unwrap();
    ScmpNotifResp::new_val(req.id, 4242, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .unwrap();

    let r = wait_child(child);
    r.assert_ok();
    assert_eq!(r.get("listener"), "sent");
    assert_eq!(r.get("getppid"), "4242");
}

/// Docker's default profile: mount/unshare/AF_VSOCK/odd personalities are EPERM; ordinary
/// calls, a shell and busybox tools work (clone3 gets ENOSYS and libc falls back to clone).
#[test]
fn default_profile_takes_effect() {
    let r = run_child("default_profile");
    r.assert_ok();
    let eperm = libc::EPERM.to_string();
    for (key, want) in [
        ("mount", eperm.as_str()),
        ("unshare_uts", &eperm),
        ("socket_vsock", &eperm),
        ("socket_unix", "ok"),
        ("personality_query", "ok"),
        ("personality_read_implies_exec", &eperm),
        ("getpid", "true"),
        ("openat", "ok"),
        ("mkdir_rmdir", "ok"),
        ("sh", "sh-ok"),
        ("busybox", "busybox-ok"),
    ] {
        assert_eq!(r.get(key), want, "{key}:\n{}", r.output);
    }
    // busybox words EPERM from mount(2) as "permission denied (are you root?)".
    let denied = |s: &str| {
        let s = s.to_lowercase();
        s.contains("permission denied") || s.contains("operation not permitted")
    };
    assert!(denied(r.get("busybox_mount")), "{}", r.output);
    // Control: without the filter the same mount fails otherwise (the target is missing), so
    // the check above sees the filter, not a lack of privilege.
    if nix::unistd::geteuid().is_root() {
        let out = Command::new("busybox")
            .args([
                "mount",
                "-t",
                "tmpfs",
                "none",
                "/nonexistent-barge-seccomp-test",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !denied(&text), "{text}");
    }
    assert!(
        r.get("busybox_unshare").contains("Operation not permitted"),
        "{}",
        r.output
    );
}

/// defaultErrnoRet is what denied calls return.
#[test]
fn default_errno_ret_takes_effect() {
    let r = run_child("default_errno_ret");
    r.assert_ok();
    assert_eq!(r.get("mount"), libc::EOPNOTSUPP.to_string());
    assert_eq!(r.get("getpid"), "true");
}

/// The child side of the real-effect tests.
mod child {
    use super::*;
    use nix::sched::CloneFlags;
    use nix::sys::signal::kill;
    use nix::sys::wait::{waitpid, WaitPidFlag};
    use nix::unistd::{getpgid, getppid, getsid};

    fn result(key: &str, value: impl std::fmt::Display) {
        println!("RESULT {key}={value}");
    }

    fn code<T>(r: nix::Result<T>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => (e as i32).to_string(),
        }
    }

    fn io_code<T>(r: std::io::Result<T>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(e) => e.raw_os_error().unwrap_or(-1).to_string(),
        }
    }

    fn load(v: serde_json::Value) -> Option<OwnedFd> {
        load_profile(&profile(v))
    }

    /// Through the runtime's own path: the (cached) program, installed with seccomp(2).
    fn load_profile(p: &LinuxSeccomp) -> Option<OwnedFd> {
        let prog = crate::seccomp::Program::build(p).unwrap();
        // Loading needs no_new_privs or CAP_SYS_ADMIN; set it so the tests need no root.
        nix::sys::prctl::set_no_new_privs().unwrap();
        prog.load().unwrap()
    }

    pub fn run(scenario: &str) {
        match scenario {
            "errno" => errno(),
            "kill_process" => kill_one("SCMP_ACT_KILL_PROCESS"),
            "trap" => kill_one("SCMP_ACT_TRAP"),
            "kill_thread" => kill_thread(),
            "flags" => flags(),
            "notify" => notify(),
            "default_profile" => default_profile_effects(),
            "default_errno_ret" => default_errno_ret(),
            other => panic!("unknown scenario {other}"),
        }
    }

    fn errno() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        let af_unix = libc::AF_UNIX as u64;
        let nonblock = libc::SOCK_NONBLOCK as u64;
        let nonblock_cloexec = (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64;
        let fd = load(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES},
            {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 3},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 1, "op": "SCMP_CMP_LE"}]},
            {"names": ["getsid"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 0, "value": 4_000_000, "op": "SCMP_CMP_GE"}]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 0, "value": 4_000_000, "op": "SCMP_CMP_GT"}]},
            {"names": ["wait4", "waitid"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG,
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_LT"}]},
            {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 0x20000, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG, "args": [
                {"index": 0, "value": af_unix, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": nonblock_cloexec, "valueTwo": nonblock,
                 "op": "SCMP_CMP_MASKED_EQ"}]}]}));
        assert!(fd.is_none());
        result(
            "mkdir",
            io_code(std::fs::create_dir(dir.path().join("new"))),
        );
        result("rmdir", io_code(std::fs::remove_dir(&existing)));
        result("getcwd_traced", io_code(std::env::current_dir()));
        result("getppid_logged", getppid());
        result("kill_pid1_sig0", code(kill(Pid::from_raw(1), None)));
        result("kill_self_sig0", code(kill(Pid::this(), None)));
        result(
            "getsid_4000000",
            code(getsid(Some(Pid::from_raw(4_000_000)))),
        );
        result("getsid_self", code(getsid(None)));
        result(
            "getpgid_4100000",
            code(getpgid(Some(Pid::from_raw(4_100_000)))),
        );
        result("getpgid_self", code(getpgid(None)));
        let nohang = Some(WaitPidFlag::WNOHANG);
        result("waitpid_50", code(waitpid(Pid::from_raw(50), nohang)));
        result(
            "waitpid_123456",
            code(waitpid(Pid::from_raw(123_456), nohang)),
        );
        result("dup_stdin", code(nix::unistd::dup(std::io::stdin())));
        result("dup_stderr", code(nix::unistd::dup(std::io::stderr())));
        result("personality_8", code(crate::sys::personality(8)));
        result(
            "personality_0x20000",
            code(crate::sys::personality(0x20000)),
        );
        result(
            "personality_query",
            code(crate::sys::personality(0xffff_ffff)),
        );
        let sock = |family, flags| code(socket(family, SockType::Stream, flags, None));
        result(
            "socket_unix_nonblock",
            sock(AddressFamily::Unix, SockFlag::SOCK_NONBLOCK),
        );
        result(
            "socket_unix_nonblock_cloexec",
            sock(
                AddressFamily::Unix,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            ),
        );
        result(
            "socket_unix_blocking",
            sock(AddressFamily::Unix, SockFlag::SOCK_CLOEXEC),
        );
        result(
            "socket_inet_nonblock",
            sock(AddressFamily::Inet, SockFlag::SOCK_NONBLOCK),
        );
    }

    fn kill_one(action: &str) {
        load(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": action}]}));
        result("before", 1);
        let p = getppid();
        result("after", p);
    }

    fn kill_thread() {
        load(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_KILL"}]}));
        // A thread started now inherits the filter; its getppid kills it alone.
        let t = std::thread::spawn(getppid);
        std::thread::sleep(Duration::from_millis(300));
        result("thread_finished", t.is_finished());
        result("process_alive", true);
    }

    fn flags() {
        load(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                      "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": E2BIG}]}));
        result("getpgid", code(getpgid(None)));
        let tid = nix::unistd::gettid();
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        let mode = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(str::trim)
            .unwrap_or("?");
        result("seccomp_mode", mode);
    }

    fn notify() {
        let path = std::env::var(LISTENER_ENV).unwrap();
        let fd = load(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}))
        .expect("a NOTIFY filter returns the listener");
        let state = json!({"ociVersion": "1.2.1", "id": "notify-test", "status": "creating",
                           "pid": std::process::id(), "bundle": "/nowhere"});
        send_to_listener(
            std::path::Path::new(&path),
            "test-agent",
            std::process::id() as i32,
            &state,
            fd.as_fd(),
        )
        .unwrap();
        drop(fd);
        result("listener", "sent");
        // Blocks until the agent answers.
        result("getppid", getppid());
    }

    fn default_profile_effects() {
        let dir = tempfile::tempdir().unwrap();
        load_profile(&default_profile());
        // Without the filter this would fail with ENOENT (no such target), never mount.
        let target = "/nonexistent-barge-seccomp-test";
        let m = nix::mount::mount(
            Some("none"),
            target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
        result("mount", code(m));
        result(
            "unshare_uts",
            code(nix::sched::unshare(CloneFlags::CLONE_NEWUTS)),
        );
        result(
            "socket_vsock",
            code(socket(
                AddressFamily::Vsock,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )),
        );
        result(
            "socket_unix",
            code(socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )),
        );
        result(
            "personality_query",
            code(crate::sys::personality(0xffff_ffff)),
        );
        result(
            "personality_read_implies_exec",
            code(crate::sys::personality(0x0040_0000)),
        );
        result("getpid", nix::unistd::getpid().as_raw() > 0);
        result("openat", io_code(std::fs::read("/proc/self/status")));
        let sub = dir.path().join("sub");
        result(
            "mkdir_rmdir",
            io_code(std::fs::create_dir(&sub).and_then(|_| std::fs::remove_dir(&sub))),
        );
        let sh = Command::new("/bin/sh")
            .args([
                "-c",
                "ls / >/dev/null && cat /proc/self/status >/dev/null && echo sh-ok",
            ])
            .output()
            .unwrap();
        result("sh", String::from_utf8_lossy(&sh.stdout).trim());
        let busybox = |script: &str| {
            let out = Command::new("busybox")
                .args(["sh", "-c", script])
                .output()
                .unwrap();
            let mut s = String::from_utf8_lossy(&out.stdout).to_string();
            s.push_str(&String::from_utf8_lossy(&out.stderr));
            s.trim().replace('\n', " | ")
        };
        result(
            "busybox",
            busybox("ls / >/dev/null && cat /proc/self/status >/dev/null && echo busybox-ok"),
        );
        result(
            "busybox_mount",
            busybox(&format!("mount -t tmpfs none {target}")),
        );
        result("busybox_unshare", busybox("unshare -u true"));
    }

    fn default_errno_ret() {
        let mut p = default_profile();
        p.set_default_errno_ret(Some(libc::EOPNOTSUPP as u32));
        load_profile(&p);
        let m = nix::mount::mount(
            Some("none"),
            "/nonexistent-barge-seccomp-test",
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
        result("mount", code(m));
        result("getpid", nix::unistd::getpid().as_raw() > 0);
    }
}
