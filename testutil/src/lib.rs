//! Test fixtures for barge: a busybox rootfs built from Debian's `busybox-static` (cached under
//! `target/fixtures`), bundles around it, and a runtime root per test.
//!
//! The rootfs is built once per busybox binary (keyed by its size and mtime) into a temp dir
//! and renamed into place, so parallel test processes never see a half-built tree.
//!
//! For image tests: [`registry`] (a real local `docker-registry`, plain/basic-auth/TLS, plus
//! skopeo and a tiny HTTP client), [`token_proxy`] (Bearer-token auth in front of it) and
//! [`oci_image`] (deterministic OCI/Docker images written as OCI layouts and pushed).
// Test-only helpers: a panic here is a test failure with its message.
#![allow(clippy::unwrap_used)]
#![deny(unsafe_code)]

pub mod engine;
pub mod net;
pub mod oci_image;
pub mod registry;
pub mod token_proxy;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where Debian's busybox-static puts the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Where `scripts/setup.sh` unpacks Debian's busybox-static for another architecture
/// (`arm64`, `armhf`): `<dir>/bin/busybox`.
pub const FOREIGN_BUSYBOX_DIR: &str = "/usr/local/lib/barge-test";

/// A rootfs tar (`bin/busybox`, applet links, `etc`, `tmp`, `proc`, `sys`, `dev`) of Debian's
/// busybox-static for the Debian architecture `deb_arch`, written to `dest`. Panics, naming
/// the fix, when setup.sh has not fetched it.
pub fn foreign_busybox_tar(deb_arch: &str, dest: &Path) {
    let bin = Path::new(FOREIGN_BUSYBOX_DIR)
        .join(format!("busybox-{deb_arch}"))
        .join("bin/busybox");
    let data = fs::read(&bin).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/setup.sh: it fetches busybox-static:{deb_arch})",
            bin.display()
        )
    });
    let mut b = tar::Builder::new(fs::File::create(dest).unwrap());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        if kind == tar::EntryType::Symlink {
            b.append_link(&mut h, path, link).unwrap();
        } else {
            b.append_data(&mut h, path, data).unwrap();
        }
    };
    for d in ["bin", "etc", "proc", "sys", "dev"] {
        add(d, tar::EntryType::Directory, 0o755, &[], "");
    }
    add("tmp", tar::EntryType::Directory, 0o1777, &[], "");
    add("bin/busybox", tar::EntryType::Regular, 0o755, &data, "");
    for a in [
        "sh", "ls", "cat", "echo", "uname", "mkdir", "id", "true", "false", "test",
    ] {
        add(
            &format!("bin/{a}"),
            tar::EntryType::Symlink,
            0o777,
            &[],
            "busybox",
        );
    }
    b.finish().unwrap();
}

/// Directory for cached fixtures: `$BARGE_FIXTURES`, else `<workspace>/target/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BARGE_FIXTURES") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("target/fixtures"))
        .unwrap_or_else(|| PathBuf::from("/tmp/barge-fixtures"))
}

/// The cached, shared busybox rootfs (read-only by convention: tests that write use
/// [`Bundle::own_rootfs`]).
pub fn busybox_rootfs() -> PathBuf {
    let meta = fs::metadata(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX}: {e} (apt-get install busybox-static)"));
    let key = format!("busybox-{}-{}", meta.len(), meta.mtime());
    let dir = fixtures_dir();
    let dest = dir.join(&key);
    if dest.join("bin/sh").exists() {
        return dest;
    }
    fs::create_dir_all(&dir).expect("create fixtures dir");
    let tmp = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(&dir)
        .expect("temp dir for rootfs");
    build_rootfs(tmp.path());
    let built = tmp.keep();
    if fs::rename(&built, &dest).is_err() {
        // Another test process won the race; its tree is complete.
        let _ = fs::remove_dir_all(&built);
    }
    dest
}

/// Build a minimal busybox rootfs at `root`.
pub fn build_rootfs(root: &Path) {
    for d in [
        "bin",
        "sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "var",
        "run",
        "usr/bin",
    ] {
        fs::create_dir_all(root.join(d)).expect("mkdir rootfs dir");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    fs::write(
        root.join("etc/group"),
        "root:x:0:\ntty:x:5:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n",
    )
    .expect("group");
    fs::write(root.join("etc/hostname"), "busybox\n").expect("hostname");
}

/// A bundle directory with a config.json around the busybox rootfs.
pub struct Bundle {
    dir: tempfile::TempDir,
    /// The config, edited by tests before [`Bundle::write`] (called by the helpers).
    pub config: Value,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// barge's default spec, without a terminal, running `true`, on the shared rootfs.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("barge-bundle-")
            .tempdir()
            .expect("bundle tempdir");
        let mut config = barge_runtime::default_spec::default_spec(false);
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        config["root"]["path"] = json!(busybox_rootfs());
        let b = Self { dir, config };
        b.write();
        b
    }

    /// A bundle whose process runs `sh -c script`.
    pub fn sh(script: &str) -> Self {
        let mut b = Self::new();
        b.config["process"]["args"] = json!(["sh", "-c", script]);
        b.write();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Give this bundle a private, writable copy of the rootfs (at `<bundle>/rootfs`).
    pub fn own_rootfs(&mut self) -> PathBuf {
        let dest = self.path().join("rootfs");
        let st = Command::new("cp")
            .arg("-a")
            .arg(busybox_rootfs())
            .arg(&dest)
            .status()
            .expect("cp rootfs");
        assert!(st.success(), "copy rootfs");
        self.config["root"]["path"] = json!("rootfs");
        self.write();
        dest
    }

    /// Set the process args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self.write();
        self
    }

    /// Write `config` to config.json (with [`TEST_SECCOMP_ENV`]'s profile if it names one and
    /// the config has no `linux.seccomp` key: set it to `null` for "no filter, on purpose").
    pub fn write(&self) {
        let mut config = self.config.clone();
        if let Some(profile) = test_seccomp_profile(&config) {
            if config["linux"].get("seccomp").is_none() {
                config["linux"]["seccomp"] = profile;
            }
        }
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&config).expect("encode config"),
        )
        .expect("write config.json");
    }
}

/// Run the runtime tests under a seccomp profile: `docker` (Docker's current default profile)
/// or `old` ([`OLD_SECCOMP_PROFILE`]), each resolved for the bundle's capabilities. Every
/// [`Bundle`] without a `linux.seccomp` of its own then gets it, so a system call the runtime
/// makes after loading the filter and a profile may deny fails the tests (`scripts/test.sh`
/// runs the runtime's container tests once per profile).
pub const TEST_SECCOMP_ENV: &str = "BARGE_TEST_SECCOMP";

/// A Docker 18.09-era profile in Docker's format (`includes`/`excludes` by capability): no
/// system call newer than Linux 4.14, default ERRNO (EPERM).
pub const OLD_SECCOMP_PROFILE: &str =
    include_str!("../../runtime/barge-runtime-cli/tests/data/seccomp-docker-18.09.json");

fn test_seccomp_profile(config: &Value) -> Option<Value> {
    let which = std::env::var(TEST_SECCOMP_ENV).ok()?;
    let caps: Vec<&str> = config["process"]["capabilities"]["bounding"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match which.as_str() {
        "" | "none" => None,
        "docker" => Some(
            serde_json::to_value(barge_runtime::seccomp::default_profile_for_caps(&caps))
                .expect("encode Docker's default profile"),
        ),
        "old" => Some(old_seccomp_profile(&caps)),
        other => panic!("{TEST_SECCOMP_ENV}={other:?}: expected docker, old or none"),
    }
}

/// [`OLD_SECCOMP_PROFILE`] as `linux.seccomp` for a process with these capabilities: a rule
/// with `includes.caps` applies if all are held, one with `excludes.caps` if none is (as
/// dockerd resolves its profiles).
pub fn old_seccomp_profile(caps: &[&str]) -> Value {
    let mut p: Value = serde_json::from_str(OLD_SECCOMP_PROFILE).expect("parse the old profile");
    let holds = |v: &Value| v.as_str().is_some_and(|c| caps.contains(&c));
    let rules = p["syscalls"].as_array().cloned().unwrap_or_default();
    let rules: Vec<Value> = rules
        .into_iter()
        .filter(|r| {
            let inc = r["includes"]["caps"].as_array();
            let exc = r["excludes"]["caps"].as_array();
            inc.is_none_or(|l| l.iter().all(holds)) && !exc.is_some_and(|l| l.iter().any(holds))
        })
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.remove("includes");
                o.remove("excludes");
            }
            r
        })
        .collect();
    p["syscalls"] = Value::Array(rules);
    if let Some(o) = p.as_object_mut() {
        o.remove("comment");
    }
    p
}

/// A runtime root directory plus the binary under test.
pub struct Runtime {
    root: tempfile::TempDir,
    bin: PathBuf,
}

impl Runtime {
    /// Use `bin` (e.g. `env!("CARGO_BIN_EXE_barge-runtime")`) with a fresh root.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let root = tempfile::Builder::new()
            .prefix("barge-root-")
            .tempdir()
            .expect("root tempdir");
        Self {
            root,
            bin: bin.into(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command with `--root` set; stdio piped.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Run a command to completion (at most [`CMD_TIMEOUT`]). stdout/stderr go to files, not
    /// pipes: a container started by the command inherits them, and with pipes the caller would
    /// wait for the container to exit.
    pub fn exec(&self, args: &[&str]) -> Output {
        exec_bounded(self.cmd(args), CMD_TIMEOUT)
    }

    /// `run` the bundle in the foreground and return its output.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        let b = bundle.path().to_string_lossy().into_owned();
        self.exec(&["run", "--bundle", &b, id])
    }

    /// Container ids left under the root (should be empty after each test).
    pub fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.root.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.leftovers() {
            let _ = self.exec(&["delete", "--force", &id]);
        }
    }
}

/// How long one runtime command may take in tests.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Run `cmd` with stdout/stderr in temp files; kill it and panic after `timeout`.
pub fn exec_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    cmd.stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"));
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().expect("spawn runtime");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for runtime") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let read = |f: &mut fs::File| {
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(0)).expect("seek output file");
        f.read_to_end(&mut v).expect("read output file");
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// stdout as a String.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a String.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert success, showing stderr otherwise; returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// This process's cgroup in the v1 hierarchy of `controller` (or the unified one for "").
pub fn own_cgroup(controller: &str) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
        let hit = if controller.is_empty() {
            ctrl.is_empty()
        } else {
            ctrl.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })
}

/// Host mount points containing `needle` (to check that nothing leaked out of a container).
pub fn host_mounts_containing(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Direct children of `pid` (host pids), from /proc/PID/task/*/children.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in rd.flatten() {
            let text = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// Receive one message on `conn` (up to 64 KiB) and the fd sent with it (SCM_RIGHTS), as a
/// runtime sends a console master or a seccomp listener.
#[allow(unsafe_code)] // the one place: taking ownership of an fd the kernel passed (SCM_RIGHTS)
pub fn recv_with_fd(
    conn: &std::os::unix::net::UnixStream,
) -> (Vec<u8>, Option<std::os::fd::OwnedFd>) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("control messages") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    // SAFETY: the kernel just installed this fd for us (SCM_RIGHTS); nothing else owns it.
    let fd = fd.map(|f| unsafe { OwnedFd::from_raw_fd(f) });
    buf.truncate(n);
    (buf, fd)
}

/// `len` incompressible bytes (xorshift), the same for the same `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
