//! `barge run --security-opt seccomp=FILE` with an older profile (issue 14): a Docker
//! 18.09-era profile in Docker's format (nothing newer than Linux 4.14, default ERRNO) runs
//! busybox and the host's dynamically linked Debian programs; calls newer than the profile
//! answer ENOSYS; a later call the profile denies keeps its errno.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use barge_testutil::engine::BargeEnv;
use barge_testutil::OLD_SECCOMP_PROFILE;
use serde_json::{json, Value};

const ENOSYS: &str = "38";
const EPERM: &str = "1";
const EOPNOTSUPP: &str = "95";

fn env() -> BargeEnv {
    BargeEnv::new(env!("CARGO_BIN_EXE_barge"))
}

/// Write `profile` next to the store; its path.
fn profile_file(b: &BargeEnv, name: &str, profile: &Value) -> String {
    let p = b.path().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(profile).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

fn old_profile() -> Value {
    serde_json::from_str(OLD_SECCOMP_PROFILE).unwrap()
}

/// Import an image `deb` whose rootfs is only the merged-/usr links and empty mount points:
/// run with `-v /usr:/usr:ro`, the host's Debian programs run in it.
fn import_debian(b: &BargeEnv) {
    let root = b.path().join("deb-rootfs");
    for d in ["proc", "dev", "sys", "tmp", "etc", "usr"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for l in ["bin", "lib", "lib64", "sbin"] {
        std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).unwrap();
    }
    let tar = b.path().join("deb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar the debian rootfs");
    b.ok(&["import", tar.to_str().unwrap(), "deb:latest"]);
}

/// Prints `name=errno` (0: it worked) for close_range, faccessat2, clone3 and acct, with
/// harmless arguments.
const PERL_PROBE: &str = r#"perl -e '
    my $p = "/";
    sub probe { my ($name, $nr, @a) = @_; $! = 0; my $r = syscall($nr, @a); print "$name=", ($r == -1 ? $!+0 : 0), "\n" }
    probe("close_range", 436, 1000, 1000, 0);
    probe("faccessat2", 439, -100, $p, 1, 0x200);
    probe("clone3", 435, 0, 0);
    probe("acct", 163, 0);
'"#;

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in:\n{out}"))
}

fn run_debian(b: &BargeEnv, profile: &str, script: &str) -> String {
    let opt = format!("seccomp={profile}");
    b.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "-v",
        "/usr:/usr:ro",
        "deb",
        "/usr/bin/sh",
        "-c",
        script,
    ])
}

#[test]
fn busybox_and_debian_programs_run_under_a_docker_18_09_profile() {
    let b = env();
    let file = profile_file(&b, "old.json", &old_profile());
    let opt = format!("seccomp={file}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "bb",
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; id -u; ls /bin/busybox; echo a | cat",
    ]);
    assert_eq!(out, "Seccomp:\t2\n0\n/bin/busybox\na\n", "{out}");

    import_debian(&b);
    let out = run_debian(
        &b,
        &file,
        &format!(
            "grep '^Seccomp:' /proc/self/status; ls -d /usr/bin; id -u; \
             test -x /usr/bin/ls && echo test-x-ok; {PERL_PROBE}"
        ),
    );
    let head: Vec<&str> = out.lines().take(4).collect();
    assert_eq!(head, ["Seccomp:\t2", "/usr/bin", "0", "test-x-ok"], "{out}");
    for call in ["close_range", "faccessat2", "clone3"] {
        assert_eq!(field(&out, call), ENOSYS, "{call} in:\n{out}");
    }
    assert_eq!(field(&out, "acct"), EPERM, "{out}");
}

#[test]
fn a_later_call_the_profile_denies_keeps_its_errno() {
    let b = env();
    import_debian(&b);
    let mut p = old_profile();
    p["syscalls"].as_array_mut().unwrap().extend([
        json!({"names": ["close_range"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}),
        json!({"names": ["faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}),
    ]);
    let file = profile_file(&b, "denied.json", &p);
    let out = run_debian(
        &b,
        &file,
        &format!("test -x /usr/bin/ls && echo test-x-ok || echo test-x-denied; {PERL_PROBE}"),
    );
    assert_eq!(out.lines().next(), Some("test-x-denied"), "{out}");
    assert_eq!(field(&out, "close_range"), EPERM, "{out}");
    assert_eq!(field(&out, "faccessat2"), EOPNOTSUPP, "{out}");
}
