//! Network namespaces pinned by a file: a new namespace is bind-mounted (its nsfs file) on a
//! path, so it outlives every process in it. Containers join it by path (the spec's
//! `linux.namespaces[].path`), CNI plugins are handed the path, and containers of one pod
//! can share it. (Mount namespaces made while a pin exists get a copy of it; containers drop
//! theirs with their old root at pivot_root.)

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};
use crate::sys;

/// What to do inside a new namespace before it is pinned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Bring `lo` up (what the CNI loopback plugin does, without running a process).
    pub loopback_up: bool,
    /// Turn off IPv6 duplicate address detection: addresses come from an IPAM that hands
    /// each out once, and DAD would keep them "tentative" (unusable) for a second or more.
    pub no_ipv6_dad: bool,
}

/// NSFS_MAGIC from linux/magic.h.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Whether `path` is a pinned namespace (an nsfs file mounted there).
// f_type is i64 on x86_64 but i32 on 32-bit ARM: the cast is needed there.
#[allow(clippy::unnecessary_cast)]
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|s| s.filesystem_type().0 as i64 == NSFS_MAGIC)
}

/// Create a new network namespace pinned at `path` (a new file; its directory is created
/// and made a shared mount point). Nothing is left behind on failure.
pub fn create_pinned(path: &Path, opts: Options) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Config(format!("netns path {} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| io(format!("create {}", dir.display()), e))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io(format!("create netns pin {}", path.display()), e))?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: do it in a thread of its own,
    // which pins its namespace and ends.
    let res = std::thread::spawn(move || -> Result<()> {
        sys::unshare(libc::CLONE_NEWNET).map_err(|e| Error::Sys {
            context: "unshare(CLONE_NEWNET)".into(),
            source: e,
        })?;
        if opts.no_ipv6_dad {
            for which in ["default", "all"] {
                // Absent when IPv6 is disabled: nothing to turn off then.
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{which}/accept_dad"), b"0");
            }
        }
        if opts.loopback_up {
            sys::set_link_up("lo").map_err(|e| Error::Sys {
                context: "bring up lo in the new network namespace".into(),
                source: e,
            })?;
        }
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::Sys {
            context: format!(
                "bind-mount the new network namespace on {}",
                target.display()
            ),
            source: e,
        })
    })
    .join()
    .unwrap_or_else(|_| Err(Error::Config("netns thread panicked".into())));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unmount and delete a pin (the namespace goes when nothing else holds it). A missing pin
/// is not an error.
pub fn remove_pinned(path: &Path) -> Result<()> {
    if is_pinned(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| Error::Sys {
            context: format!("unmount netns pin {}", path.display()),
            source: e,
        })?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("remove netns pin {}", path.display()), e)),
    }
}

fn io(context: String, source: std::io::Error) -> Error {
    Error::Io { context, source }
}
