//! Paths the kernel escapes in /proc/self/mountinfo (space, tab, newline, backslash) are read
//! back as the paths they are (run as root).
// Test helpers may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use barge_testutil::{ok, Bundle, Runtime};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::json;

fn rt() -> Runtime {
    Runtime::new(env!("CARGO_BIN_EXE_barge-runtime"))
}

/// A tmpfs mounted at `<tempdir>/<name>`, private on the host (nothing a container does
/// propagates back), unmounted (with all below it) on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    at: PathBuf,
}

impl Tmpfs {
    fn new(name: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("barge-mp-")
            .tempdir()
            .unwrap();
        let at = dir.path().join(name);
        std::fs::create_dir(&at).unwrap();
        mount(
            Some("tmpfs"),
            &at,
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        mount(
            None::<&str>,
            &at,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        Tmpfs { _dir: dir, at }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = umount2(&self.at, MntFlags::MNT_DETACH);
    }
}

/// With `rootfsPropagation: rshared` every mount is shared, and pivot_root refuses a new root
/// whose parent mount is shared: the runtime makes the mount holding the rootfs private first.
/// It finds that mount in mountinfo, where a space in its path is written `\040`.
#[test]
fn rshared_rootfs_under_a_mount_point_with_spaces_and_tabs() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    for name in ["a b", "tab\there", "back\\slash"] {
        let fs = Tmpfs::new(name);
        let rootfs = fs.at.join("rootfs");
        let st = Command::new("cp")
            .arg("-a")
            .arg(barge_testutil::busybox_rootfs())
            .arg(&rootfs)
            .status()
            .unwrap();
        assert!(st.success(), "copy rootfs");
        let mut b = Bundle::sh("echo ok");
        b.config["root"]["path"] = json!(rootfs);
        b.config["linux"]["rootfsPropagation"] = json!("rshared");
        b.write();
        let r = rt();
        let out = ok(&r.run(&b, "mp"));
        assert_eq!(out, "ok\n", "{name:?}");
        assert!(r.leftovers().is_empty(), "state left: {:?}", r.leftovers());
        assert!(
            !mounted_below(&rootfs),
            "{name:?}: a container mount leaked to the host"
        );
    }
}

fn mounted_below(p: &Path) -> bool {
    barge_util::mountinfo::read_self()
        .unwrap()
        .iter()
        .any(|m| m.mount_point.starts_with(p))
}
