//! `linux.seccomp` in real containers: verdicts seen from inside, and a NOTIFY agent run by
//! the test.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use barge_testutil::{ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

fn cid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn with_seccomp(script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::sh(script);
    b.config["linux"]["seccomp"] = seccomp;
    b.write();
    b
}

/// `barge-runtime spec --seccomp`: Docker's default profile. Ordinary programs run; namespace
/// and mount calls fail with EPERM; the process is filtered (Seccomp: 2).
#[test]
fn default_profile_denies_namespace_calls_and_allows_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let o = rt().exec(&[
        "spec",
        "--seccomp",
        "--bundle",
        &dir.path().to_string_lossy(),
    ]);
    ok(&o);
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    let profile = spec["linux"]["seccomp"].clone();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{profile}");
    // CAP_SYS_ADMIN is granted after the profile was made for the default capabilities: only
    // the filter stands in the way of unshare and mount (the control run shows they work).
    let script = "grep '^Seccomp:' /proc/self/status; ls / >/dev/null && echo ls-ok; \
                  unshare -n true 2>&1 && echo unshare-ok; \
                  mount -t tmpfs t /mnt 2>&1 && echo mount-ok; echo done";
    let admin = |mut b: Bundle| {
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        b.write();
        b
    };
    // null, not absent: no filter even under BARGE_TEST_SECCOMP.
    let mut control = Bundle::sh(script);
    control.config["linux"]["seccomp"] = Value::Null;
    let control = ok(&rt().run(&admin(control), &cid("nofilter")));
    assert_eq!(
        control, "Seccomp:\t0\nls-ok\nunshare-ok\nmount-ok\ndone\n",
        "{control}"
    );
    let b = admin(with_seccomp(script, profile));
    let out = ok(&rt().run(&b, &cid("default")));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Seccomp:\t2", "{out}");
    assert_eq!(lines[1], "ls-ok", "{out}");
    assert!(lines[2].contains("Operation not permitted"), "{out}");
    // busybox mount words EPERM its own way.
    assert!(lines[3].contains("permission denied"), "{out}");
}

/// ERRNO with a chosen errno, and an argument condition (MASKED_EQ on the mode's setuid bit).
#[test]
fn errno_and_argument_conditions() {
    let b = with_seccomp(
        "mkdir /dev/d 2>&1; touch /dev/f; chmod 755 /dev/f && echo chmod-755-ok; \
         chmod 4755 /dev/f 2>&1; stat -c %a /dev/f",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
                {"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [
                {"index": 2, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}),
    );
    let out = ok(&rt().run(&b, &cid("errno")));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("Invalid cross-device link"), "{out}"); // EXDEV = 18
    assert_eq!(lines[1], "chmod-755-ok", "{out}");
    assert!(lines[2].contains("Operation not permitted"), "{out}");
    assert_eq!(lines[3], "755", "{out}");
}

/// KILL_PROCESS ends the container with SIGSYS: `run` exits 128+31.
#[test]
fn kill_process_action_kills() {
    let mut b = with_seccomp(
        "true",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}),
    );
    b.args(&["uname", "-a"]);
    let out = rt().run(&b, &cid("kill"));
    assert_eq!(out.status.code(), Some(159), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// A bad profile fails `create` naming the field, before anything exists.
#[test]
fn bad_profiles_are_refused_naming_the_field() {
    let r = rt();
    for (seccomp, needle) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_BOOM"}]}),
            "linux.seccomp.syscalls[0].action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "listenerPath",
        ),
    ] {
        let b = with_seccomp("true", seccomp);
        let out = r.run(&b, &cid("badsc"));
        assert!(!out.status.success());
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
        assert!(r.leftovers().is_empty(), "{:?}", r.leftovers());
    }
}

/// Receive the container process state and the listener fd from the runtime.
fn receive_state(listener: &UnixListener) -> (Value, OwnedFd) {
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut text, fd) = barge_testutil::recv_with_fd(&conn);
    // The rest of a long state, if the stream split it.
    use std::io::Read;
    let mut conn = conn;
    let _ = conn.read_to_end(&mut text);
    let fd = fd.expect("no fd with the state");
    (serde_json::from_slice(&text).unwrap(), fd)
}

/// NOTIFY: the runtime hands the listener to the agent at listenerPath; the agent (this test)
/// answers the container's mkdir with EMLINK, which the container sees.
#[test]
fn notify_hands_the_listener_to_the_agent() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let id = cid("notify");
    let b = with_seccomp(
        "mkdir /dev/agent-says 2>&1; echo rc=$?",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
               "listenerMetadata": "from-test", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    let agent = std::thread::spawn(move || {
        let (state, fd) = receive_state(&listener);
        let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
        let name = req.data.syscall;
        assert!(
            name == ScmpSyscall::from_name("mkdir").unwrap()
                || name == ScmpSyscall::from_name("mkdirat").unwrap()
        );
        ScmpNotifResp::new_error(req.id, -libc::EMLINK, ScmpNotifRespFlags::empty())
            .respond(fd.as_raw_fd())
            .unwrap();
        state
    });
    let out = ok(&rt().run(&b, &id));
    let state = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "from-test", "{state}");
    assert_eq!(state["state"]["id"], id.as_str(), "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert!(out.contains("Too many links"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
}
