//! Docker's default seccomp profile, as data.
//!
//! Source: moby's `profiles/seccomp/default.json` (generated from `default_linux.go`): deny
//! with EPERM by default, an allow list, the `personality`/`socket`/`clone`/`clone3` argument
//! rules, and rules that depend on the container's capabilities, the architecture or the
//! kernel version, which dockerd resolves per container before handing the runtime a plain
//! OCI `linux.seccomp`. Here they are resolved as follows:
//!
//! - capabilities (`includes.caps` / `excludes.caps`): against the capability set given to
//!   [`default_profile_for_caps`]; [`default_profile`] uses Docker's default set
//!   ([`DOCKER_DEFAULT_CAPS`]). Of the capability rules only `chroot` (CAP_SYS_CHROOT) is then
//!   allowed, while `clone` is allowed without namespace flags and `clone3` fails with ENOSYS
//!   (so libc falls back to `clone`), as without CAP_SYS_ADMIN. barge's default spec
//!   (runc's: AUDIT_WRITE, KILL, NET_BIND_SERVICE) is a subset of Docker's set; the kernel
//!   refuses `chroot` without CAP_SYS_CHROOT anyway.
//! - architectures (`includes.arches`, `archMap`): for the architecture barge is built for, at
//!   compile time (`cfg!(target_arch)`): on x86_64 the filter covers x86_64, x86 and x32 and
//!   allows `arch_prctl` and `modify_ldt`.
//! - kernel version (`minKernel: 4.8` for `ptrace`, `process_vm_readv/writev`): always
//!   included; barge needs a far newer kernel than 4.8.
//!
//! The allow list is moby's as of its `futex_waitv`/`memfd_secret` era plus the system calls
//! later moby releases added (`cachestat`, `fchmodat2`, `futex_wake`/`wait`/`requeue`,
//! `map_shadow_stack`); names the linked libseccomp does not know are skipped when compiling.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Docker's default capability set, which [`default_profile`] resolves the profile for.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Allowed unconditionally.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // `minKernel: 4.8` (before 4.8 ptrace could bypass seccomp).
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
];

/// Allowed only with the capability (`includes.caps`).
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `personality(2)` values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
/// 0xffffffff (query).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `socket(2)` families refused: AF_VSOCK (host/guest sockets).
const AF_VSOCK: u64 = 40;

/// The namespace flags `clone(2)` may not carry without CAP_SYS_ADMIN.
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Architecture-specific system calls allowed on the architecture barge is built for.
fn arch_allowed() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["arch_prctl", "modify_ldt"]
    } else if cfg!(target_arch = "x86") {
        &["modify_ldt"]
    } else if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        &["sync_file_range2", "swapcontext"]
    } else if cfg!(target_arch = "s390x") {
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ]
    } else if cfg!(target_arch = "riscv64") {
        &["riscv_flush_icache"]
    } else {
        &[]
    }
}

/// The architectures the filter covers (Docker's `archMap` entry for the build's architecture;
/// none listed means the native one only).
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(all(target_arch = "mips64", target_endian = "big")) {
        vec![
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips,
            Arch::ScmpArchMips64n32,
        ]
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        vec![
            Arch::ScmpArchMipsel64,
            Arch::ScmpArchMipsel,
            Arch::ScmpArchMipsel64n32,
        ]
    } else if cfg!(target_arch = "s390x") {
        vec![Arch::ScmpArchS390x, Arch::ScmpArchS390]
    } else if cfg!(target_arch = "riscv64") {
        vec![Arch::ScmpArchRiscv64]
    } else {
        Vec::new()
    }
}

/// Docker's default profile resolved for Docker's default capabilities
/// ([`DOCKER_DEFAULT_CAPS`]); see the module documentation for what is resolved how.
pub fn default_profile() -> LinuxSeccomp {
    default_profile_for_caps(DOCKER_DEFAULT_CAPS)
}

/// Docker's default profile resolved for a container with these capabilities (names as in
/// the spec, `CAP_SYS_ADMIN`); with CAP_SYS_ADMIN, `mount`, `unshare`, `setns`, `clone` with
/// namespace flags and the others of its group are allowed, as Docker does.
pub fn default_profile_for_caps(caps: &[&str]) -> LinuxSeccomp {
    let has = |cap: &str| caps.contains(&cap);
    let mut syscalls = vec![allow(ALLOWED.iter().chain(arch_allowed()))];
    syscalls.push(with_arg(
        "socket",
        arg(0, LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK, None),
    ));
    for p in PERSONALITIES {
        syscalls.push(with_arg(
            "personality",
            arg(0, LinuxSeccompOperator::ScmpCmpEq, *p, None),
        ));
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            syscalls.push(allow(names.iter()));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        // clone(flags, ...) without namespace flags; s390 passes the flags second.
        let index = if cfg!(target_arch = "s390x") { 1 } else { 0 };
        syscalls.push(with_arg(
            "clone",
            arg(
                index,
                LinuxSeccompOperator::ScmpCmpMaskedEq,
                CLONE_NAMESPACES,
                Some(0),
            ),
        ));
        // clone3's flags are behind a pointer seccomp cannot read: ENOSYS makes libc fall back
        // to clone.
        let mut clone3 = LinuxSyscall::default();
        clone3
            .set_names(vec!["clone3".into()])
            .set_action(LinuxSeccompAction::ScmpActErrno)
            .set_errno_ret(Some(libc::ENOSYS as u32));
        syscalls.push(clone3);
    }
    let mut s = LinuxSeccomp::default();
    s.set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(libc::EPERM as u32))
        .set_architectures(Some(architectures()))
        .set_syscalls(Some(syscalls));
    s
}

/// An ALLOW rule for these names.
fn allow<'a>(names: impl Iterator<Item = &'a &'a str>) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.map(|n| n.to_string()).collect())
        .set_action(LinuxSeccompAction::ScmpActAllow);
    s
}

/// An ALLOW rule for `name` under one argument condition.
fn with_arg(name: &str, a: LinuxSeccompArg) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(vec![name.into()])
        .set_action(LinuxSeccompAction::ScmpActAllow)
        .set_args(Some(vec![a]));
    s
}

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    // The builder has a default for every field (it has no setters otherwise): static data,
    // not input, cannot fail.
    b.build()
        .expect("LinuxSeccompArgBuilder defaults every field")
}
