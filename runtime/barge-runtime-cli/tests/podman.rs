//! barge-runtime as podman's OCI runtime (`podman --runtime`): the drop-in promise, checked with
//! the real podman (Debian's package) on private storage.
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use barge_testutil::{exec_bounded, ok, stdout};

struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Self {
        assert!(
            Path::new("/usr/bin/podman").exists(),
            "podman is missing: apt-get install podman (scripts/setup.sh installs it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("barge-podman-")
            .tempdir()
            .unwrap();
        Self { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--runtime", env!("CARGO_BIN_EXE_barge-runtime")])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args)
            .stdin(std::process::Stdio::null());
        c
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        exec_bounded(self.cmd(args), Duration::from_secs(120))
    }

    /// Import the busybox fixture rootfs as an image.
    fn import_busybox(&self) -> &'static str {
        let tar = self.dir.path().join("rootfs.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(barge_testutil::busybox_rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        ok(&self.exec(&["import", "-q", &tar.to_string_lossy(), "localhost/bb:test"]));
        "localhost/bb:test"
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.exec(&["rm", "-af", "-t", "0"]);
        let _ = self.exec(&["system", "reset", "-f"]);
    }
}

/// Run options every container needs on these machines: podman asks for RLIMIT_NOFILE and
/// RLIMIT_NPROC of 1048576, above the hard limits here, and this root lacks CAP_SYS_RESOURCE
/// (runc fails the same way without them). podman's default seccomp profile applies.
const RUN_OPTS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=2048:2048",
];

#[test]
fn podman_runs_containers_through_barge_runtime() {
    let p = Podman::new();
    let image = p.import_busybox();

    // Foreground: output, exit code, and the container really is in its own namespaces.
    let mut args = vec!["run", "--rm", "--hostname", "via-barge"];
    args.extend(RUN_OPTS);
    args.extend([
        image,
        "sh",
        "-c",
        "hostname; echo pid=$$; grep ^Seccomp: /proc/self/status; exit 5",
    ]);
    let o = p.exec(&args);
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // podman's default seccomp profile is in force (mode 2: filter).
    assert_eq!(stdout(&o), "via-barge\npid=1\nSeccomp:\t2\n");

    // Detached: ps, logs, stop with SIGTERM (trapped by the container), exit status.
    let mut args = vec!["run", "-d", "--name", "svc"];
    args.extend(RUN_OPTS);
    args.extend([
        image,
        "sh",
        "-c",
        "trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.1; done",
    ]);
    ok(&p.exec(&args));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let logs = stdout(&p.exec(&["logs", "svc"]));
        if logs.contains("started") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no output: {logs}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ps = ok(&p.exec(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.contains("svc Up"), "{ps}");
    ok(&p.exec(&["stop", "-t", "10", "svc"]));
    assert_eq!(stdout(&p.exec(&["logs", "svc"])), "started\ngot TERM\n");
    let st = ok(&p.exec(&["inspect", "--format", "{{.State.ExitCode}}", "svc"]));
    assert_eq!(st.trim(), "0");
    ok(&p.exec(&["rm", "svc"]));

    // A terminal (podman hands barge-runtime a --console-socket).
    let mut args = vec!["run", "--rm", "-t"];
    args.extend(RUN_OPTS);
    args.extend([image, "tty"]);
    let o = ok(&p.exec(&args));
    assert!(o.contains("/dev/pts/0"), "{o}");
}
