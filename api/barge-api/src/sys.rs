//! Adopting the listening sockets systemd passes (socket activation: `LISTEN_PID`,
//! `LISTEN_FDS`, fds from 3 on).

use std::os::fd::{FromRawFd, OwnedFd};

/// The fds systemd handed to this process, each taken once (the variables are removed so
/// nothing adopts them twice). Only fds that are listening unix stream sockets are taken.
pub fn listen_fds() -> Result<Vec<std::os::unix::net::UnixListener>, String> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let n: i32 = match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) if pid_ok && n > 0 => n,
        _ => return Ok(Vec::new()),
    };
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let mut out = Vec::new();
    for fd in 3..3 + n {
        // Check before taking ownership: the fd must be open and a listening socket.
        let accepting =
            nix::sys::socket::getsockopt(&unsafe_borrow(fd), nix::sys::socket::sockopt::AcceptConn)
                .map_err(|e| format!("socket activation: fd {fd} is not a socket: {e}"))?;
        if !accepting {
            return Err(format!("socket activation: fd {fd} is not listening"));
        }
        // SAFETY: fd is one of the LISTEN_FDS systemd passed to this process (LISTEN_PID is
        // ours), checked above to be an open listening socket; the variables are cleared, so
        // this is the only owner taking it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| format!("socket activation: fd {fd}: {e}"))?;
        out.push(std::os::unix::net::UnixListener::from(owned));
    }
    Ok(out)
}

fn unsafe_borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: used only for the getsockopt check just above on an fd systemd passed us and
    // that stays open for the whole process (we never close it before adopting it).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// At most two malloc arenas: glibc gives each thread that allocates its own (up to 8 per
/// core), each keeping its freed memory; the daemon's blocking threads come and go with the
/// requests, and their arenas would keep what they once used.
///
/// Fixed mmap and trim thresholds (128 KiB): glibc otherwise raises them after each large
/// free, up to 32 MiB, and from then on keeps a burst's big buffers (a thousand-entry list,
/// a JSON document) in the heap, where what is left around them stays resident.
pub fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
    }
}

/// Give the memory malloc holds free (at the top of each arena, and whole free pages inside
/// them) back to the system.
pub fn trim_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory the allocator owns; it takes no
    // pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A pidfd for `pid` (Linux 5.3+): it becomes readable when the process ends, and it keeps
/// naming that process (a reused pid is another process). `None` when there is no such
/// process or no fd to spare.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags (none) and returns a new fd or -1; it reads
    // and writes no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this fd (close-on-exec, as every pidfd is); nothing
    // else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fd` registered with tokio's reactor for readability (see [`crate::journal_wake`]).
pub fn async_readable(fd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes the OwnedFd, which owns its fd: it stays open and names the
    // same open file description until the AsyncFd (and the OwnedFd in it) is dropped, and
    // as_raw_fd always returns that fd.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
