//! Making the rootfs the container's `/`.

use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::error::{at, Context, Result};

/// pivot_root into `rootfs` and detach the old root (the "pivot_root(".", ".")" trick, which
/// needs no directory for the old root inside the rootfs).
pub fn pivot(rootfs: &Path) -> Result<()> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old = open("/", flags, Mode::empty()).ctx(|| "open /".into())?;
    let new = open(rootfs, flags, Mode::empty()).ctx(|| at("open rootfs", rootfs))?;
    fchdir(&new).ctx(|| at("chdir to", rootfs))?;
    pivot_root(".", ".").ctx(|| at("pivot_root to", rootfs))?;
    fchdir(&old).ctx(|| "chdir to the old root".into())?;
    // Don't let the unmount of the old root propagate to the host.
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| "make the old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".into())?;
    chdir("/").ctx(|| "chdir to the new root".into())
}

/// `--no-pivot`: move the rootfs mount over `/` and chroot into it.
pub fn move_root(rootfs: &Path) -> Result<()> {
    chdir(rootfs).ctx(|| at("chdir to", rootfs))?;
    mount(
        Some(rootfs),
        "/",
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .ctx(|| at("move mount to / from", rootfs))?;
    chroot(".").ctx(|| at("chroot to", rootfs))?;
    chdir("/").ctx(|| "chdir to the new root".into())
}
