//! The one module of this crate that calls into the kernel through `unsafe`.
//!
//! Everything else uses the safe wrappers below or nix's safe API.

use std::ffi::{CStr, CString};
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

/// Mark every fd from `first` upwards close-on-exec: `close_range(2)` with CLOSE_RANGE_CLOEXEC,
/// or, if that fails for any reason (a kernel before 5.11, a seccomp filter that denies it),
/// each fd listed in `/proc/self/fd` with `fcntl(F_SETFD)`, as runc does.
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
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(_) => cloexec_listed(first),
    }
}

/// The fallback of [`cloexec_from`]: every fd in `/proc/self/fd` from `first` upwards.
pub(crate) fn cloexec_listed(first: u32) -> nix::Result<()> {
    let io = |e: std::io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    // Collected first: the directory's own fd is listed too, and goes away with the iterator.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(io)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| u32::try_from(*fd).is_ok_and(|fd| fd >= first))
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD only read and change the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            continue; // closed meanwhile (the directory's own fd)
        }
        // SAFETY: as above.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    }
    Ok(())
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

// bpf(2): loading and attaching the cgroup v2 device program (see `cgroups::bpf`).

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;

/// One eBPF instruction, `struct bpf_insn` of linux/bpf.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode: class, operation and source (or size and mode) bits.
    pub code: u8,
    /// The C bitfields `dst_reg:4, src_reg:4`, in the order the C compiler lays them out.
    regs: u8,
    /// Jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    pub imm: i32,
}

impl BpfInsn {
    /// An instruction with registers `dst` and `src` (r0..r10).
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        let (dst, src) = (dst & 0xf, src & 0xf);
        let regs = if cfg!(target_endian = "little") {
            dst | src << 4
        } else {
            dst << 4 | src
        };
        BpfInsn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// `(dst_reg, src_reg)`.
    #[cfg(test)]
    pub fn regs(&self) -> (u8, u8) {
        if cfg!(target_endian = "little") {
            (self.regs & 0xf, self.regs >> 4)
        } else {
            (self.regs >> 4, self.regs & 0xf)
        }
    }
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `log_buf` (the kernel zero-fills the
/// rest and writes nothing back for a size this short).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

/// The `BPF_PROG_ATTACH`/`BPF_PROG_DETACH` part of `union bpf_attr`, up to `attach_flags`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The `BPF_PROG_QUERY` part of `union bpf_attr`, up to `revision`: the kernel writes
/// `attach_flags`, `prog_cnt` and (on recent kernels) `revision` back whatever size it is given,
/// so the struct must cover them all.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The `BPF_PROG_GET_FD_BY_ID` part of `union bpf_attr`, up to `prog_id`.
#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
}

/// The raw `bpf(cmd, attr, sizeof(*attr))` call.
///
/// # Safety
/// `attr` must be the `#[repr(C)]` attr struct of `cmd` above, covering every field the kernel
/// writes back for `cmd`, and every pointer in it must be 0 or valid for the reads and writes
/// `cmd` does through it, with the lengths given next to it.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: the caller guarantees `attr` and its pointers are what `cmd` expects; `attr` is
    // borrowed mutably for the call, so the kernel's write-back is seen by the caller.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(r)
}

/// `BPF_PROG_LOAD`: verify and load `insns` as a program of `prog_type`. A non-empty `log`
/// receives the verifier's log (level 1, NUL-terminated); it must then be at least 128 bytes.
pub fn bpf_prog_load(
    prog_type: u32,
    insns: &[BpfInsn],
    license: &CStr,
    log: &mut [u8],
) -> nix::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // The kernel refuses a buffer without a level and a level without a buffer.
    if !log.is_empty() {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).map_err(|_| Errno::EINVAL)?;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // SAFETY: `attr` is the PROG_LOAD struct; `insns` (insn_cnt `#[repr(C)]` bpf_insn entries)
    // and the NUL-terminated `license` are only read, `log` (log_size bytes) is only written,
    // and all three borrows outlive the call.
    let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
    // SAFETY: on success the kernel returned a new program fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `BPF_PROG_ATTACH`: attach the program `prog` to `target` (a cgroup directory) at
/// `attach_type`, with `BPF_F_*` `flags`.
pub fn bpf_prog_attach(
    target: BorrowedFd,
    prog: BorrowedFd,
    attach_type: u32,
    flags: u32,
) -> nix::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: `attr` is the PROG_ATTACH struct; it holds no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_DETACH`: detach the program `prog` attached to `target` at `attach_type`.
pub fn bpf_prog_detach(target: BorrowedFd, prog: BorrowedFd, attach_type: u32) -> nix::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: 0,
    };
    // SAFETY: `attr` is the PROG_DETACH (= PROG_ATTACH) struct; it holds no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// `BPF_PROG_QUERY`: the ids of the programs attached directly to `target` at `attach_type`.
pub fn bpf_prog_query(target: BorrowedFd, attach_type: u32) -> nix::Result<Vec<u32>> {
    // A cgroup holds at most 64 programs per attach type (BPF_CGROUP_MAX_PROGS); grow anyway if
    // a kernel allows more.
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = ProgQueryAttr {
            target_fd: target.as_raw_fd() as u32,
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: u32::try_from(ids.len()).map_err(|_| Errno::E2BIG)?,
            ..Default::default()
        };
        // SAFETY: `attr` is the PROG_QUERY struct, covering every field the kernel writes back;
        // `prog_ids` points to `ids`, writable for prog_cnt u32s and alive across the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                // On success the kernel reports the number of ids it wrote.
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More programs than room: prog_cnt now holds how many there are.
            Err(Errno::ENOSPC) => {
                let want = (attr.prog_cnt as usize).max(ids.len() * 2);
                ids.resize(want, 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `BPF_PROG_GET_FD_BY_ID`: a new fd for the loaded program `id`.
pub fn bpf_prog_get_fd_by_id(id: u32) -> nix::Result<OwnedFd> {
    let mut attr = GetFdByIdAttr { prog_id: id };
    // SAFETY: `attr` is the GET_FD_BY_ID struct; it holds no pointers.
    let fd = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
    // SAFETY: on success the kernel returned a new program fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

// The new mount API: open_tree(2), mount_setattr(2) and move_mount(2), for idmapped bind mounts
// (see `rootfs::idmap`). libc has the syscall numbers but not these constants for Linux/glibc.

/// `open_tree` flag: clone the tree into a new detached mount instead of opening it.
pub const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `open_tree` flag: the returned fd is close-on-exec.
pub const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
/// `open_tree` / `mount_setattr` flag: the whole tree, not only its top mount.
pub const AT_RECURSIVE: libc::c_uint = libc::AT_RECURSIVE as libc::c_uint;
/// `mount_attr.attr_set`: the mount carries the idmapping of `mount_attr.userns_fd`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `move_mount` flag: the source is the fd itself (empty path).
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
/// `move_mount` flag: the target is the fd itself (empty path).
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `struct mount_attr` of linux/mount.h (MOUNT_ATTR_SIZE_VER0, 32 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    /// `MOUNT_ATTR_*` flags to set.
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` flags to clear.
    pub attr_clr: u64,
    /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE` or `MS_UNBINDABLE`, or 0 to leave it.
    pub propagation: u64,
    /// With `MOUNT_ATTR_IDMAP`: an fd of the user namespace whose mappings the mount gets.
    pub userns_fd: u64,
}

/// `open_tree(AT_FDCWD, path, flags)`: with [`OPEN_TREE_CLONE`], a detached copy of the mount
/// (tree, with [`AT_RECURSIVE`]) at `path`, owned by the returned fd until it is moved.
pub fn open_tree(path: &std::path::Path, flags: libc::c_uint) -> nix::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; the other
    // arguments are integers.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | flags, attr, sizeof(*attr))`: change the attributes
/// of the mount `fd` refers to (and, with [`AT_RECURSIVE`] in `flags`, of the mounts below it).
pub fn mount_setattr(fd: BorrowedFd, flags: libc::c_uint, attr: &MountAttr) -> nix::Result<()> {
    let flags = flags | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: the path is an empty NUL-terminated literal; `attr` is a `#[repr(C)]` mount_attr
    // of the size passed, only read by the kernel and borrowed across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`: attach
/// the (detached) mount `from` exactly on the file or directory `to` is open on (an O_PATH fd
/// is enough), with no path lookup that a symlink could redirect.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    // SAFETY: both paths are empty NUL-terminated literals; the rest are integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

// ---------------------------------------------------------------------------------------------
// seccomp(2)
// ---------------------------------------------------------------------------------------------

/// Size of the kernel's `struct sock_filter` (one classic BPF instruction).
pub const SOCK_FILTER_SIZE: usize = std::mem::size_of::<libc::sock_filter>();

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` with the program given as the raw bytes of
/// `struct sock_filter` entries (as libseccomp exports them). With
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel returns the notify listener fd.
pub fn seccomp_set_filter(bpf: &[u8], flags: libc::c_ulong) -> nix::Result<Option<OwnedFd>> {
    let count = bpf.len() / SOCK_FILTER_SIZE;
    if !bpf.len().is_multiple_of(SOCK_FILTER_SIZE) || count == 0 || count > usize::from(u16::MAX) {
        return Err(nix::errno::Errno::EINVAL);
    }
    let prog = libc::sock_fprog {
        len: count as libc::c_ushort,
        // The kernel copies the instructions in (copy_from_user); this side never reads
        // through the pointer, so the byte buffer's alignment doesn't matter.
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `count` complete sock_filter entries inside `bpf`, which
    // outlives the call; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        Ok(Some(own_fd(r as RawFd)))
    } else {
        Ok(None)
    }
}

/// Set the IFF_UP flag of the interface `name` in the calling thread's network namespace
/// (`ioctl(SIOCGIFFLAGS/SIOCSIFFLAGS)` on a datagram socket).
pub fn set_link_up(name: &str) -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(Errno::EINVAL);
    }
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming the interface; the kernel fills in its flags.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: SIOCGIFFLAGS just set the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: `req` is a valid ifreq with the interface name and the new flags.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

#[cfg(test)]
mod tests {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use std::os::fd::AsRawFd;

    /// The /proc/self/fd walk (close_range's fallback) marks an fd that was not close-on-exec.
    #[test]
    fn cloexec_fallback_marks_listed_fds() {
        let f = std::fs::File::open("/dev/null").unwrap();
        fcntl(&f, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        let flags =
            |f: &std::fs::File| FdFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFD).unwrap());
        assert!(!flags(&f).contains(FdFlag::FD_CLOEXEC));
        super::cloexec_listed(f.as_raw_fd() as u32).unwrap();
        assert!(flags(&f).contains(FdFlag::FD_CLOEXEC));
    }
}
