//! The shim's only unsafe code: fork, fd adoption.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::unistd::ForkResult;

/// fork(2).
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the shim is single-threaded (no threads are ever started), so the child may run
    // any code, not just async-signal-safe functions.
    unsafe { nix::unistd::fork() }
}

/// Take ownership of an inherited file descriptor.
pub fn adopt_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: called once at startup for a descriptor the engine passed on purpose (inherited,
    // or just installed by the kernel from an SCM_RIGHTS message) and that nothing else in
    // this process owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD reads flags of a descriptor number and touches no memory.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Leave the process now, without unwinding or atexit handlers (the child of a fork).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process immediately; no Rust state is used afterwards.
    unsafe { libc::_exit(code) }
}
