//! The one module of this crate that calls into the kernel through `unsafe`.
//!
//! Everything else uses the safe wrappers below or nix's safe API.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

/// Fork the (single-threaded) runtime process.
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the runtime is single-threaded (no tokio, no helper threads), so the child gets a
    // consistent copy of the address space and may allocate; it either execs or `_exit`s.
    unsafe { nix::unistd::fork() }
}

/// `struct clone_args` of clone3(2), up to CLONE_ARGS_SIZE_VER2.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(), with the child born in the cgroup2 directory open at `cgroup`
/// (clone3 + CLONE_INTO_CGROUP): no migration, so no wait on the cgroup rwsem.
///
/// The child must stay simple and must not rely on glibc's cached thread id (clone3 bypasses
/// glibc's fork bookkeeping): it forks again with [`fork`] before running anything complex.
pub fn fork_into_cgroup(cgroup: BorrowedFd) -> nix::Result<ForkResult> {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: like fork(): the runtime is single-threaded, no CLONE_VM or stack is passed so the
    // child gets a copy of the address space; `args` outlives the call and its size is given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// Leave the process immediately without running destructors or atexit handlers (for forked
/// children that must not flush the parent's buffers or remove the parent's files).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `pidfd_open(2)`: a file descriptor that becomes readable when `pid` exits.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this new descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Mark every fd from `first` upwards close-on-exec (`close_range(2)` with CLOSE_RANGE_CLOEXEC).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range only changes fd flags; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map(drop)
}

/// `unshare(2)` with raw flags (nix's CloneFlags lacks CLONE_NEWTIME).
pub fn unshare(flags: libc::c_int) -> nix::Result<()> {
    // SAFETY: unshare takes only an integer flag set.
    Errno::result(unsafe { libc::unshare(flags) }).map(drop)
}

/// `setdomainname(2)`.
pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes, valid for the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// `setrlimit(2)` on a raw resource number.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit struct living across the call.
    let r = unsafe { libc::setrlimit(resource as _, &lim) };
    Errno::result(r).map(drop)
}

/// Join a new anonymous session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`).
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `name` is a valid NUL-terminated string for the call's duration.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    Errno::result(r).map(drop)
}

/// Make `fd` (a terminal) the controlling terminal of this session (`TIOCSCTTY`).
pub fn set_controlling_tty(fd: RawFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no memory.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    Errno::result(r).map(drop)
}

/// Set a terminal's window size (`TIOCSWINSZ`).
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize struct living across the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    Errno::result(r).map(drop)
}

/// Read a terminal's window size (`TIOCGWINSZ`): (rows, cols).
pub fn get_winsize(fd: RawFd) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid, writable winsize struct living across the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    Errno::result(r).map(|_| (ws.ws_row, ws.ws_col))
}

/// Reset every catchable signal to its default disposition (before exec in the container).
pub fn reset_signal_dispositions() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always valid; errors for invalid numbers are ignored.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Take ownership of an fd the kernel handed us (e.g. received with SCM_RIGHTS).
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass an fd that was just created for this process and is owned by no one.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `personality(2)`.
pub fn personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer-only syscall.
    let r = unsafe { libc::personality(persona) };
    Errno::result(r).map(drop)
}
