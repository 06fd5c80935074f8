//! A throw-away barge store for engine tests: a temp root and run root, the busybox rootfs
//! imported as image `bb`, and `barge` commands bounded in time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::{exec_bounded, ok, CMD_TIMEOUT};

pub struct BargeEnv {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
}

impl BargeEnv {
    /// A new store with the busybox image imported as `bb:latest` (CMD `sh`).
    pub fn new(barge_bin: &str) -> BargeEnv {
        // Short paths: shim sockets live under the run root and unix socket paths are short.
        let dir = tempfile::Builder::new()
            .prefix("bg")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let env = BargeEnv {
            dir,
            bin: PathBuf::from(barge_bin),
        };
        let tar = env.dir.path().join("rootfs.tar");
        let rootfs = crate::busybox_rootfs();
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success(), "tar busybox rootfs");
        ok(&env.run(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "bb:latest",
        ]));
        env
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A `barge` command against this store.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("BARGE_ROOT", self.root())
            .env("BARGE_RUNROOT", self.runroot())
            .env("BARGE_CONFIG", self.dir.path().join("etc"))
            .args(args);
        c
    }

    /// Run `barge ARGS` (bounded by CMD_TIMEOUT).
    pub fn run(&self, args: &[&str]) -> Output {
        exec_bounded(self.cmd(args), CMD_TIMEOUT)
    }

    /// Run and return stdout, panicking with stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(&self.run(args))
    }

    /// `inspect -f TEMPLATE NAME`, trimmed.
    pub fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_string()
    }

    /// Poll `f` until it is true or `timeout` passes (see [`wait_until`]).
    pub fn wait_for(&self, timeout: Duration, f: impl FnMut() -> bool) -> bool {
        wait_until(timeout, f)
    }

    /// `run -d ARGS`; the new container's id.
    pub fn run_d(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.ok(&all).trim().to_string();
        assert_eq!(id.len(), 64, "run -d printed {id:?}");
        id
    }

    /// The names under `<root>/containers`.
    pub fn container_dirs(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.root().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Poll `f` every 20 ms until it is true or `timeout` passes; whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live process (a zombie still has a /proc entry: its state tells).
pub fn alive(pid: i32) -> bool {
    barge_util::process::alive(pid)
}

impl Drop for BargeEnv {
    /// Remove every container (killing shims and their containers) and the networks the
    /// test made, and unmount rootfs so the temp dir can go.
    fn drop(&mut self) {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        // Networks the test made (their bridges and host rules are the host's).
        let _ = self.run(&["network", "prune", "-f"]);
        let mut points: Vec<std::path::PathBuf> = barge_util::mountinfo::read_self()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(self.dir.path()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
