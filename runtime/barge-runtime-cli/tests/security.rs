//! Known container-escape classes, each tried against a real container and shown to fail.
//!
//! (Symlinked mount targets, masked and read-only /proc paths, and capability sets are tried in
//! `container.rs`.)
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use barge_testutil::{ok, stderr, stdout, Bundle, Runtime};
use serde_json::{json, Value};

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

fn cid(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_string_lossy().into_owned()
}

fn init_pid(r: &Runtime, id: &str) -> i32 {
    let st: Value = serde_json::from_str(&ok(&r.exec(&["state", id]))).unwrap();
    st["pid"].as_i64().unwrap() as i32
}

/// CVE-2019-5736: until it execs the container's program, the init runs the host's runtime
/// binary. A process without CAP_SYS_PTRACE (like every container process) must not be able to
/// open it through /proc/<pid>/exe, or it could rewrite the host's runtime once it exits.
#[test]
fn runtime_binary_is_not_reachable_through_proc_exe() {
    let r = rt();
    let id = cid("exe");
    let b = Bundle::sh("sleep 30");
    ok(&r.exec(&["create", "--bundle", &bundle_arg(&b), &id]));
    let pid = init_pid(&r, &id);
    let exe = format!("/proc/{pid}/exe");
    // The init waiting for `start` is still the runtime binary.
    let target = fs::read_link(&exe).unwrap();
    assert!(
        target.ends_with("barge-runtime"),
        "init {pid} runs {target:?}"
    );
    let try_open = || {
        let o = Command::new("setpriv")
            .args([
                "--inh-caps=-sys_ptrace",
                "--bounding-set=-sys_ptrace",
                "--",
                "sh",
                "-c",
            ])
            .arg(format!(
                "(exec 3<{exe}) 2>/dev/null && echo opened || echo refused; \
                 (exec 4</proc/{pid}/mem) 2>/dev/null && echo mem-opened || echo mem-refused; \
                 (exec 5>>{exe}) 2>/dev/null && echo write-opened || echo write-refused"
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(try_open(), "refused\nmem-refused\nwrite-refused\n");
    // After start the init is the container's own program and dumpable again: the same
    // check succeeds, so the refusal above is the runtime's doing.
    ok(&r.exec(&["start", &id]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fs::read_link(&exe).is_ok_and(|t| t.ends_with("barge-runtime")) {
        assert!(std::time::Instant::now() < deadline, "init never exec'd");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // (Writing stays refused: the container's program is running, ETXTBSY.)
    assert_eq!(try_open(), "opened\nmem-opened\nwrite-refused\n");
    ok(&r.exec(&["delete", "--force", &id]));
}

/// CVE-2024-21626: a cwd of /proc/self/fd/N would follow an fd the runtime still holds, maybe
/// to a host directory. Every such cwd is refused before the process runs, naming the cwd, and
/// leaves nothing behind.
#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    let r = rt();
    for n in 3..12 {
        let mut b = Bundle::sh("pwd; ls /");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.write();
        let id = cid(&format!("cwdfd{n}"));
        let out = r.run(&b, &id);
        assert!(
            !out.status.success(),
            "cwd /proc/self/fd/{n} was accepted: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains(&format!("fd/{n}")),
            "error does not name the cwd: {}",
            stderr(&out)
        );
        assert!(r.leftovers().is_empty(), "{:?}", r.leftovers());
    }
}

/// CVE-2024-21626's other half: fds the runtime's caller leaks (not close-on-exec, not passed
/// with --preserve-fds) never reach the container.
#[test]
fn fds_leaked_by_the_caller_do_not_reach_the_container() {
    // Opened without O_CLOEXEC: inherited by barge-runtime.
    let leaked = nix::fcntl::open(
        "/etc/hostname",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    // Far from the fds a container legitimately has; F_DUPFD leaves it inheritable.
    let n = nix::fcntl::fcntl(&leaked, nix::fcntl::FcntlArg::F_DUPFD(100)).unwrap();
    let b = Bundle::sh(&format!(
        "ls /proc/self/fd | sort -n | tr '\\n' ' '; readlink /proc/self/fd/{n} || echo no-fd-{n}"
    ));
    let out = ok(&rt().run(&b, &cid("leak")));
    // 0-2 and the directory fd `ls` opens.
    assert!(out.starts_with("0 1 2 3 no-fd-"), "{out}");
    assert!(out.contains(&format!("no-fd-{n}")), "{out}");
}

/// A static helper that prints its effective uid and CapEff, built with the host's gcc.
fn euid_helper(dir: &Path) -> PathBuf {
    let src = dir.join("euid.c");
    fs::write(
        &src,
        r#"#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    printf("euid=%d\n", (int)geteuid());
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CapEff:", 7)) fputs(line, stdout);
    return 0;
}
"#,
    )
    .unwrap();
    let bin = dir.join("euid");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("gcc not found: apt-get install gcc libc6-dev");
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}

/// `noNewPrivileges` stops a setuid-root program from raising the caller's privileges; without
/// it the same program runs as euid 0 but still within the bounding set.
#[test]
fn no_new_privileges_stops_setuid_gain_and_bounding_caps_stay_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let helper = euid_helper(tmp.path());
    let run_as_user = |nnp: bool, name: &str| -> String {
        let mut b = Bundle::new();
        let rootfs = b.own_rootfs();
        let dest = rootfs.join("bin/suid-euid");
        fs::copy(&helper, &dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o4755)).unwrap();
        b.config["process"]["args"] = json!(["/bin/suid-euid"]);
        b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        // CAP_SYS_ADMIN (21) is not in the bounding set: a setuid-root exec can't gain it.
        b.config["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": [], "effective": []
        });
        b.write();
        ok(&rt().run(&b, &cid(name)))
    };
    assert_eq!(
        run_as_user(true, "nnp"),
        "euid=1000\nCapEff:\t0000000000000000\n"
    );
    // CAP_CHOWN (0) and CAP_KILL (5) only: the bounding set caps what setuid-root gives.
    assert_eq!(
        run_as_user(false, "suid"),
        "euid=0\nCapEff:\t0000000000000021\n"
    );
}

/// CVE-2021-30465 and friends: a mount target swapped with a symlink to a host directory while
/// the runtime sets up the mounts. A host thread exchanges `/target` (a directory) and a
/// symlink pointing outside the rootfs as fast as it can while containers start; the tmpfs and
/// the bind mount must never land outside the rootfs, and nothing may be created there.
#[test]
fn mount_target_swapped_for_a_symlink_during_setup_stays_inside() {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let outside = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("secret-of-the-volume"), "v").unwrap();
    let mut b = Bundle::sh("echo x > /target/written-by-container 2>/dev/null; true");
    let rootfs = b.own_rootfs();
    fs::create_dir(rootfs.join("target")).unwrap();
    std::os::unix::fs::symlink(outside.path(), rootfs.join("swap")).unwrap();
    b.config["root"]["readonly"] = json!(false);
    b.config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/target", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        json!({"destination": "/target/vol", "type": "bind", "source": data.path(), "options": ["rbind"]}),
    ]);
    b.write();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let (a, z) = (rootfs.join("target"), rootfs.join("swap"));
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if renameat2(AT_FDCWD, &a, AT_FDCWD, &z, RenameFlags::RENAME_EXCHANGE).is_ok() {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let r = rt();
    let (mut started, mut refused) = (0, 0);
    for i in 0..40 {
        let out = r.run(&b, &cid(&format!("swap{i}")));
        if out.status.success() {
            started += 1;
        } else {
            refused += 1;
        }
        let _ = r.exec(&["delete", "--force", &cid(&format!("swap{i}"))]);
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 100, "the swapper barely ran ({swaps} swaps)");
    let left: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "created outside the rootfs: {left:?} ({started} started, {refused} refused)"
    );
    let host_mounts = barge_testutil::host_mounts_containing(&outside.path().to_string_lossy());
    assert!(host_mounts.is_empty(), "{host_mounts:?}");
    assert!(started + refused == 40);
}
