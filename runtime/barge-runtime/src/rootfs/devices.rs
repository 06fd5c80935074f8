//! Device nodes in the container's /dev: the default set, `linux.devices`, and /dev symlinks.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::MsFlags;
use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::mounts::do_mount;
use super::resolve::{Kind, Root};
use crate::error::{Context, Error, Result};

/// A device node to create.
#[derive(Debug, Clone)]
pub struct Device {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (as in runc and the OCI spec's default list).
pub fn defaults() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, major, minor)| Device {
        path: p.into(),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Convert a `linux.devices` entry.
pub fn from_spec(d: &LinuxDevice) -> Result<Device> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::Config(format!(
                "linux.devices {}: type 'a' is only valid in the device cgroup",
                d.path().display()
            )))
        }
    };
    if !d.path().starts_with("/dev") {
        return Err(Error::Config(format!(
            "linux.devices {}: devices must be under /dev",
            d.path().display()
        )));
    }
    let num = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| {
            Error::Config(format!(
                "linux.devices {}: {what} {v} is negative",
                d.path().display()
            ))
        })
    };
    Ok(Device {
        path: d.path().clone(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Create `dev` in the rootfs: mknod, or (in a user namespace) bind the host's node.
pub fn create(root: &Root, dev: &Device, bind: bool) -> Result<()> {
    let parent = dev.path.parent().unwrap_or(Path::new("/dev"));
    let name = dev
        .path
        .file_name()
        .ok_or_else(|| Error::Config(format!("device path {}", dev.path.display())))?;
    let dir = root.create(parent, Kind::Dir)?;
    if bind {
        let target = root.create(&dev.path, Kind::File)?;
        return do_mount(Some(&dev.path), &target, None, MsFlags::MS_BIND, "");
    }
    match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("replace {}", dev.path.display())),
    }
    let what = || format!("create device {}", dev.path.display());
    mknodat(
        dir.as_fd(),
        name,
        dev.kind,
        Mode::from_bits_truncate(dev.mode),
        makedev(dev.major, dev.minor),
    )
    .ctx(what)?;
    // mknod applies the umask; set the exact mode, then the owner.
    fchmodat(
        dir.as_fd(),
        name,
        Mode::from_bits_truncate(dev.mode),
        FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == Errno::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .ctx(what)?;
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(what)
}

/// /dev/fd, /dev/stdin... and /dev/ptmx -> pts/ptmx.
pub fn symlinks(root: &Root) -> Result<()> {
    let dev = root.create(Path::new("/dev"), Kind::Dir)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("symlink /dev/{name}")),
        }
    }
    match unlinkat(dev.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| "remove /dev/ptmx".into()),
    }
    symlinkat("pts/ptmx", dev.as_fd(), "ptmx").ctx(|| "symlink /dev/ptmx".into())
}
