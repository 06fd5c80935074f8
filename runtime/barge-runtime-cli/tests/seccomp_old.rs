//! Older seccomp profiles (issue 14): a Docker 18.09-era profile (nothing newer than Linux
//! 4.14, default ERRNO) runs busybox and the host's dynamically linked Debian programs; system
//! calls newer than every one the profile names answer ENOSYS (so glibc falls back), while one
//! the profile names keeps its own errno.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use barge_testutil::{exec_bounded, ok, old_seccomp_profile, stderr, Bundle, Runtime};
use serde_json::{json, Value};

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

fn cid(name: &str) -> String {
    format!("old-{name}-{}", std::process::id())
}

/// The old profile for barge's default capabilities.
fn old_profile() -> Value {
    old_seccomp_profile(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
}

/// A bundle whose rootfs is the host's Debian `/usr` (bind-mounted read-only) with the merged
/// `/bin`, `/lib`, `/lib64`, `/sbin` links: the host's dynamically linked programs run in it.
fn debian_bundle(script: &str, seccomp: Value) -> Bundle {
    let mut b = Bundle::new();
    let root = b.path().join("rootfs");
    for d in ["proc", "dev", "sys", "tmp", "etc", "usr"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).unwrap();
    }
    b.config["root"] = json!({"path": "rootfs", "readonly": true});
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/usr", "type": "bind", "source": "/usr",
                     "options": ["rbind", "ro", "nosuid", "nodev"]}),
    );
    b.config["process"]["args"] = json!(["/usr/bin/sh", "-c", script]);
    b.config["process"]["env"] = json!(["PATH=/usr/bin:/usr/sbin"]);
    b.config["linux"]["seccomp"] = seccomp;
    b.write();
    b
}

/// A perl line printing the errno of `syscall(nr, args...)` as `name=errno` (0: it worked).
/// The arguments are harmless: close_range(1000, 1000, 0), faccessat2(AT_FDCWD, "/", X_OK,
/// AT_EACCESS), clone3(NULL, 0), openat2(AT_FDCWD, NULL, NULL, 0), acct(NULL),
/// mount_setattr(-1, NULL, 0, NULL, 0).
const PERL_PROBE: &str = r#"perl -e '
    my $p = "/";
    sub probe { my ($name, $nr, @a) = @_; $! = 0; my $r = syscall($nr, @a); print "$name=", ($r == -1 ? $!+0 : 0), "\n" }
    probe("close_range", 436, 1000, 1000, 0);
    probe("faccessat2", 439, -100, $p, 1, 0x200);
    probe("clone3", 435, 0, 0);
    probe("openat2", 437, -100, 0, 0, 0);
    probe("acct", 163, 0);
    probe("mount_setattr", 442, -1, 0, 0, 0, 0);
'"#;

#[track_caller]
fn run_ok(b: &Bundle, name: &str) -> String {
    let r = rt();
    let out = r.run(b, &cid(name));
    assert!(
        out.status.success(),
        "{name}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
}

/// Busybox under the old profile: starts (the runtime no longer needs close_range once the
/// filter is in) and is filtered.
#[test]
fn busybox_runs_under_a_docker_18_09_profile() {
    let mut b = Bundle::sh(
        "grep '^Seccomp:' /proc/self/status; id; ls /bin/busybox; echo a | cat; \
         echo $(echo sub); wc -l < /etc/passwd",
    );
    b.config["linux"]["seccomp"] = old_profile();
    b.write();
    let out = run_ok(&b, "busybox");
    assert_eq!(
        out, "Seccomp:\t2\nuid=0(root) gid=0(root)\n/bin/busybox\na\nsub\n3\n",
        "{out}"
    );
}

/// Debian's dynamically linked programs (glibc 2.36: clone3, faccessat2, rseq...) under the
/// old profile: `ls`, `id`, `sh -c` with a pipe and `test -x` (faccessat2 → ENOSYS → glibc's
/// fallback; with the profile's EPERM, `test -x` would be false). Newer calls answer ENOSYS,
/// an old call the profile does not allow keeps EPERM.
#[test]
fn debian_programs_run_and_newer_calls_answer_enosys() {
    let script = format!(
        "ls -d /usr/bin; id -u; id -g; test -x /usr/bin/ls && echo test-x-ok; \
         ls /usr/bin | grep -c '^perl$'; {PERL_PROBE}"
    );
    let out = run_ok(&debian_bundle(&script, old_profile()), "debian");
    let head: Vec<&str> = out.lines().take(5).collect();
    assert_eq!(head, ["/usr/bin", "0", "0", "test-x-ok", "1"], "{out}");
    let enosys = libc::ENOSYS.to_string();
    for call in [
        "close_range",
        "faccessat2",
        "clone3",
        "openat2",
        "mount_setattr",
    ] {
        assert_eq!(field(&out, call), enosys, "{call} in:\n{out}");
    }
    // acct (Linux 1.x) is older than statx, the newest call the profile names: the profile's
    // default errno, not ENOSYS.
    assert_eq!(field(&out, "acct"), libc::EPERM.to_string(), "{out}");
}

/// Naming a later call with its own errno still denies it with that errno; calls newer than
/// it still answer ENOSYS. (Calls numbered below it but not named, openat2 here, get the
/// default errno: numbers stand for age, as in runc.)
#[test]
fn a_later_call_the_profile_denies_keeps_its_errno() {
    let mut p = old_profile();
    p["syscalls"].as_array_mut().unwrap().extend([
        json!({"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        json!({"names": ["faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EOPNOTSUPP}),
    ]);
    let script =
        format!("test -x /usr/bin/ls && echo test-x-ok || echo test-x-denied; {PERL_PROBE}");
    let out = run_ok(&debian_bundle(&script, p), "denied");
    assert_eq!(out.lines().next(), Some("test-x-denied"), "{out}");
    assert_eq!(field(&out, "close_range"), libc::EPERM.to_string(), "{out}");
    assert_eq!(
        field(&out, "faccessat2"),
        libc::EOPNOTSUPP.to_string(),
        "{out}"
    );
    assert_eq!(field(&out, "openat2"), libc::EPERM.to_string(), "{out}");
    assert_eq!(
        field(&out, "mount_setattr"),
        libc::ENOSYS.to_string(),
        "{out}"
    );
}

/// `exec` into a container under the old profile: the exec'd process gets the filter and its
/// setup needs nothing the profile denies.
#[test]
fn exec_works_under_the_old_profile() {
    let r = rt();
    let id = cid("exec");
    let b = debian_bundle("sleep 300", old_profile());
    let p = b.path().to_string_lossy().into_owned();
    ok(&exec_bounded(
        r.cmd(&["run", "-d", "--bundle", &p, &id]),
        Duration::from_secs(30),
    ));
    let out = exec_bounded(
        r.cmd(&[
            "exec",
            &id,
            "/usr/bin/sh",
            "-c",
            &format!("grep '^Seccomp:' /proc/self/status; id -u; {PERL_PROBE}"),
        ]),
        Duration::from_secs(30),
    );
    let text = ok(&out);
    assert!(text.starts_with("Seccomp:\t2\n0\n"), "{text}");
    assert_eq!(field(&text, "clone3"), libc::ENOSYS.to_string(), "{text}");
    ok(&r.exec(&["delete", "--force", &id]));
}
