//! The crate's only unsafe code: a mount done from another working directory.
//!
//! overlayfs takes its layer list as one mount option, and mount(2) copies at most one page of
//! options. With many layers the absolute paths don't fit; relative to the snapshot directory
//! they do (containerd does the same). The working directory is per process, and barge's
//! callers have threads, so the mount is done by a forked child that changes directory, mounts
//! and exits; the mount lands in the shared mount namespace.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a mount argument"))
}

/// `mount(source, target, fstype, 0, data)` with `dir` as the working directory, so relative
/// paths in `data` are resolved against it.
pub fn mount_in_dir(
    dir: &Path,
    source: &str,
    target: &Path,
    fstype: &str,
    data: &str,
) -> io::Result<()> {
    let dir = cstr(dir.as_os_str().as_bytes())?;
    let source = cstr(source.as_bytes())?;
    let target = cstr(target.as_os_str().as_bytes())?;
    let fstype = cstr(fstype.as_bytes())?;
    let data = cstr(data.as_bytes())?;
    // SAFETY: the child only makes raw syscalls (chdir, mount, _exit) on buffers allocated
    // before the fork; it takes no locks and doesn't allocate, so the other threads of the
    // parent being gone at fork time can't deadlock it.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            // SAFETY: all pointers are to NUL-terminated CStrings alive for the call.
            let rc = unsafe {
                if libc::chdir(dir.as_ptr()) != 0 {
                    -1
                } else {
                    libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        fstype.as_ptr(),
                        0,
                        data.as_ptr().cast(),
                    )
                }
            };
            let code = if rc == 0 {
                0
            } else {
                io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
            };
            // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers.
            unsafe { libc::_exit(code.clamp(0, 255)) }
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(WaitStatus::Exited(_, errno)) => {
                    return Err(io::Error::from_raw_os_error(errno))
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    return Err(io::Error::other(format!("mount helper killed by {sig}")))
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        },
    }
}
