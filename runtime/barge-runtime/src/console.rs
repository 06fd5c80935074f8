//! `process.terminal`: a pty made inside the container, its master sent to the console socket.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, setsid};

use crate::error::{Context, Result};
use crate::rootfs;

/// Create the pty (in the container's devpts), bind its slave on /dev/console, send the master
/// over `socket` with SCM_RIGHTS, and make the slave the controlling terminal and stdio.
pub fn setup(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx in the container".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    if let Some((rows, cols)) = size {
        crate::sys::set_winsize(master.as_raw_fd(), rows, cols)
            .ctx(|| "set console size".into())?;
    }
    let slave = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    let console = rootfs::ensure_file(Path::new("/dev/console"))?;
    rootfs::mounts::do_mount(Some(Path::new(&name)), &console, None, MsFlags::MS_BIND, "")?;
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send the pty master to the console socket".into())?;
    drop(master);
    setsid().ctx(|| "setsid".into())?;
    crate::sys::set_controlling_tty(slave.as_raw_fd())
        .ctx(|| format!("make {name} the controlling terminal"))?;
    dup2_stdin(&slave).ctx(|| "dup pty to stdin".into())?;
    dup2_stdout(&slave).ctx(|| "dup pty to stdout".into())?;
    dup2_stderr(&slave).ctx(|| "dup pty to stderr".into())?;
    Ok(())
}
