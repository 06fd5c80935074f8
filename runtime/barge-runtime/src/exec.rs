//! `exec`: start another process in a running container (the job of `runc exec`).
//!
//! Three processes take part:
//!
//! ```text
//! caller ──fork──▶ joiner ──fork──▶ exec process ──execve──▶ the program
//! ```
//!
//! - The **joiner** is born in the container's unified cgroup (clone3 with CLONE_INTO_CGROUP,
//!   as `create`'s intermediate; else it moves itself there), joins each v1 hierarchy, then
//!   `setns`es into every namespace the container's spec lists (the user namespace first), with
//!   the files of the container's init (`/proc/<init>/ns/<type>`) opened by the caller. Joining
//!   a pid namespace only places the joiner's *children* in it, so it forks once more, reports
//!   that child's host pid to the caller and exits.
//! - The **exec process** is in all the container's namespaces and cgroups. It makes the pty
//!   (when `process.terminal`), applies rlimits, user and groups, capabilities, the container's
//!   seccomp filter, no_new_privs and the AppArmor profile, changes to `process.cwd`, and execs.
//!   Every failure up to and including execve is sent to the caller, which reports it: `exec`
//!   returns only once the program runs (the sync socket closes on execve) or with the error.
//!
//! **Whose child the exec process is.** The caller must be able to `waitpid` it, so it must end
//! up as the caller's child although the joiner forked it. `exec` makes the caller a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`) while the joiner lives: when the joiner exits, the kernel
//! reparents its child to the nearest subreaper among its ancestors, the caller. The previous
//! setting is restored once the joiner is reaped (nothing changes for a caller that already is a
//! subreaper, such as a shim). We chose this over `clone(CLONE_PARENT)` for the last fork, which
//! would need a raw clone whose child then runs all of the process setup with glibc's fork
//! bookkeeping bypassed; with the subreaper both forks are ordinary ones. The cost: while the
//! joiner lives (a few milliseconds) an orphan elsewhere in the caller's process tree would also
//! be reparented to the caller.
//!
//! Like `create`, this forks the calling process: the caller must be single-threaded.

use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chdir, setresgid, setresuid, ForkResult, Gid, Pid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxPersonality, Process};

use crate::cgroups::Placement;
use crate::error::{at, Context, Error, Result};
pub use crate::foreground::Foreground;
use crate::foreground::Signals;
use crate::namespaces;
use crate::process::{self, CapPlan};
use crate::state::{self, ContainerState, Status, Store};
use crate::sync::{self, Channel, Msg};
use crate::sys;
use crate::tty_proxy;

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The container's id.
    pub id: String,
    /// The full process to start: args, env (used exactly as given), cwd, user, capabilities,
    /// noNewPrivileges, terminal, consoleSize, rlimits, apparmorProfile, oomScoreAdj.
    pub process: Process,
    /// With `process.terminal`: the unix socket that receives the pty master (SCM_RIGHTS).
    pub console_socket: Option<PathBuf>,
    /// An already-connected console socket (used instead of `console_socket`).
    pub console_fd: Option<Arc<OwnedFd>>,
    /// Write the new process's host pid here once it runs.
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3..3+N of the caller to the process.
    pub preserve_fds: u32,
}

/// Start a process inside a running container; returns its host pid once it has exec'd.
///
/// The process is a child of the caller (see the module documentation), which must reap it.
/// Setup and exec failures inside the container are returned as errors (e.g. `exec:
/// "nosuch": executable file not found in $PATH`); the process is gone then.
pub fn exec(store: &Store, opts: &ExecOptions) -> Result<i32> {
    state::validate_id(&opts.id)?;
    let _lock = store.lock(&opts.id)?;
    let st = store.load(&opts.id)?;
    require_running(&st, st.live_status(&store.dir(&opts.id)))?;
    let p = &opts.process;
    validate_process(p)?;
    check_lsm(&st, p)?;
    let linux = st
        .spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Config("the container's spec has no linux section".into()))?;
    let seccomp = crate::container::compile_seccomp(linux)?;
    let console: Option<Arc<OwnedFd>> = match (&opts.console_fd, &opts.console_socket) {
        (Some(fd), _) => Some(fd.clone()),
        (None, Some(path)) => Some(Arc::new(
            UnixStream::connect(path)
                .ctx(|| at("connect to console socket", path))?
                .into(),
        )),
        (None, None) => None,
    };
    if p.terminal() == Some(true) && console.is_none() {
        return Err(Error::InvalidArgument(
            "process.terminal is true: a console socket is required".into(),
        ));
    }
    let ns_files = open_namespaces(&st)?;
    // The files were opened from /proc/<pid>: make sure that pid still is the container's init.
    if !barge_util::process::alive_since(st.pid, st.pid_start_time) {
        return Err(bad_state(&opts.id, Status::Stopped));
    }
    let unified_fd = match &st.cgroup.unified {
        Some(dir) => Some(
            open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| at("open cgroup", dir))?,
        ),
        None => None,
    };
    let (joiner_parent, joiner_child) = sync::pair()?;
    let (proc_parent, proc_child) = sync::pair()?;
    let mut ctx = Ctx {
        id: &opts.id,
        process: p,
        placement: &st.cgroup,
        console: console.as_deref(),
        seccomp: seccomp.as_ref(),
        personality: linux.personality().as_ref(),
        preserve: opts.preserve_fds,
        join_unified: false,
    };
    let reaper = Subreaper::enable()?;
    let forked = match &unified_fd {
        Some(fd) => sys::fork_into_cgroup(fd.as_fd()).or_else(|_| {
            ctx.join_unified = true;
            sys::fork()
        }),
        None => sys::fork(),
    };
    let joiner = match forked.ctx(|| "fork".into())? {
        ForkResult::Child => {
            drop(joiner_parent);
            drop(proc_parent);
            // Born in (or about to join) the cgroup: the exec process gets no handle on it.
            drop(unified_fd);
            joiner_main(joiner_child, proc_child, ns_files, &ctx)
        }
        ForkResult::Parent { child } => child,
    };
    drop(joiner_child);
    drop(proc_child);
    drop(ns_files);
    let reported = match joiner_parent.recv("exec setup") {
        Ok(Msg::InitPid(pid)) => Ok(Pid::from_raw(pid)),
        Ok(Msg::Error(e)) => Err(Error::Container(e)),
        Ok(other) => Err(Error::Container(format!(
            "exec setup sent {other:?}, expected the process id"
        ))),
        Err(e) => Err(e),
    };
    wait_for(joiner);
    // The exec process (if any) is our child now: the joiner is gone.
    drop(reaper);
    let pid = reported?;
    if let Err(e) = confirm_exec(&proc_parent, &st, pid) {
        let _ = kill(pid, Signal::SIGKILL);
        wait_for(pid);
        return Err(e);
    }
    if let Some(path) = &opts.pid_file {
        if let Err(e) = barge_util::fs::write_atomic(
            path,
            pid.to_string().as_bytes(),
            0o644,
            barge_util::fs::Durability::Atomic,
        )
        .ctx(|| at("write pid file", path))
        {
            let _ = kill(pid, Signal::SIGKILL);
            wait_for(pid);
            return Err(e);
        }
    }
    Ok(pid.as_raw())
}

/// `exec` in the foreground: start the process, forward signals to it, proxy its terminal when
/// `process.terminal` is set and no console socket was given (as `run` does), wait for it and
/// return its exit code (128+N if killed by signal N).
pub fn exec_and_wait(store: &Store, opts: &ExecOptions) -> Result<i32> {
    exec_and_wait_with(store, opts, Foreground::default())
}

/// [`exec_and_wait`] with a policy for signals and stdin (see [`Foreground`]). A caller that
/// does not forward signals and is ended by one returns 128+N at once: the process, left
/// without its terminal's master, gets a hangup.
pub fn exec_and_wait_with(store: &Store, opts: &ExecOptions, fg: Foreground) -> Result<i32> {
    let signals = Signals::block()?;

    let mut opts = opts.clone();
    let proxy = opts.process.terminal() == Some(true)
        && opts.console_socket.is_none()
        && opts.console_fd.is_none();
    let console_peer = if proxy {
        let (ours, theirs) = UnixStream::pair().ctx(|| "console socketpair".into())?;
        opts.console_fd = Some(Arc::new(theirs.into()));
        Some(ours)
    } else {
        None
    };
    // Raw mode before the program starts, so its first output is not mangled.
    let raw = console_peer.as_ref().map(|_| tty_proxy::RawMode::enter());
    let pid = Pid::from_raw(exec(store, &opts)?);
    opts.console_fd = None;
    let master = match console_peer
        .as_ref()
        .map(tty_proxy::recv_master)
        .transpose()
    {
        Ok(m) => m,
        Err(e) => {
            let _ = kill(pid, Signal::SIGKILL);
            wait_for(pid);
            return Err(e);
        }
    };
    if let Some(m) = &master {
        tty_proxy::sync_size(m);
    }
    let code = signals.wait_with(pid, master.as_ref().zip(raw.as_ref()), reap, fg);
    drop(raw);
    Ok(code)
}

/// Everything the forked processes need, captured before fork.
struct Ctx<'a> {
    id: &'a str,
    process: &'a Process,
    placement: &'a Placement,
    console: Option<&'a OwnedFd>,
    seccomp: Option<&'a crate::seccomp::Program>,
    personality: Option<&'a LinuxPersonality>,
    preserve: u32,
    /// The joiner must move itself into the unified cgroup (it wasn't cloned into it).
    join_unified: bool,
}

fn bad_state(id: &str, status: Status) -> Error {
    Error::BadState {
        id: id.into(),
        status: status.to_string(),
        op: "exec",
        allowed: "running",
    }
}

fn require_running(st: &ContainerState, status: Status) -> Result<()> {
    if status == Status::Running {
        Ok(())
    } else {
        Err(bad_state(&st.id, status))
    }
}

/// What runc checks of an exec process: args, an absolute cwd.
fn validate_process(p: &Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidArgument(
            "exec: process.args is empty: no command to run".into(),
        ));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "exec: process.cwd {:?} must be an absolute path",
            p.cwd()
        )));
    }
    Ok(())
}

/// The AppArmor / SELinux checks of `create`, on the exec process.
fn check_lsm(st: &ContainerState, p: &Process) -> Result<()> {
    let mut spec = st.spec.clone();
    spec.set_process(Some(p.clone()));
    crate::lsm::check(&spec)
}

/// The name of a namespace type under /proc/PID/ns.
fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Open the init's namespace file for every type the spec lists, user namespace first.
/// Namespaces the caller is already in are left out (setns into one's own user namespace
/// fails).
fn open_namespaces(st: &ContainerState) -> Result<Vec<(LinuxNamespaceType, File)>> {
    let listed = st
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| n.typ()).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut out: Vec<(LinuxNamespaceType, File)> = Vec::new();
    for t in listed {
        if out.iter().any(|(seen, _)| *seen == t) {
            continue;
        }
        let name = proc_ns_name(t);
        let path = format!("/proc/{}/ns/{name}", st.pid);
        let f = File::open(&path).ctx(|| format!("open the container's {t} namespace {path}"))?;
        let theirs = f
            .metadata()
            .ctx(|| format!("stat the container's {t} namespace {path}"))?;
        let own = std::fs::metadata(format!("/proc/self/ns/{name}")).ok();
        if own.is_some_and(|o| o.dev() == theirs.dev() && o.ino() == theirs.ino()) {
            continue;
        }
        out.push((t, f));
    }
    out.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    Ok(out)
}

/// Makes the caller a child subreaper until dropped (restoring the previous setting).
struct Subreaper {
    restore: bool,
}

impl Subreaper {
    fn enable() -> Result<Self> {
        let was = nix::sys::prctl::get_child_subreaper().unwrap_or(false);
        if !was {
            nix::sys::prctl::set_child_subreaper(true).ctx(|| "become child subreaper".into())?;
        }
        Ok(Self { restore: !was })
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        if self.restore {
            let _ = nix::sys::prctl::set_child_subreaper(false);
        }
    }
}

/// Restores the signal mask on drop.
/// Reap `pid` (a child of ours), ignoring how it ended.
fn wait_for(pid: Pid) {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Caller side of the exec process's setup: hand over a seccomp listener, then wait for
/// `Ready` and for the socket to close at execve (or an error).
fn confirm_exec(ch: &Channel, st: &ContainerState, pid: Pid) -> Result<()> {
    let peer = "exec process";
    loop {
        match ch.recv_fd(peer) {
            Ok((Msg::SeccompFd, Some(fd))) => crate::container::hand_seccomp_listener(
                &st.spec,
                pid.as_raw(),
                &st.oci_state(Status::Running),
                fd.as_fd(),
            )?,
            Ok((Msg::Ready, _)) => break,
            Ok((m @ (Msg::Error(_) | Msg::ExecFailed(..)), _)) => return Err(m.into_error()),
            Ok((other, _)) => {
                return Err(Error::Container(format!(
                    "{peer} sent {other:?}, expected Ready"
                )))
            }
            Err(e) => return Err(ended_early(pid, e)),
        }
    }
    match ch.recv(peer) {
        Ok(m @ (Msg::Error(_) | Msg::ExecFailed(..))) => Err(m.into_error()),
        Ok(other) => Err(Error::Container(format!(
            "{peer} sent {other:?} instead of exec'ing"
        ))),
        // Closed by execve (the socket is close-on-exec): the program runs.
        Err(_) => Ok(()),
    }
}

/// The error for an exec process that died before reporting anything, with how it ended.
fn ended_early(pid: Pid, e: Error) -> Error {
    let how = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::EINTR) => continue,
            Ok(WaitStatus::Signaled(_, sig, _)) => break format!(" (killed by {sig})"),
            Ok(WaitStatus::Exited(_, code)) => break format!(" (exit status {code})"),
            _ => break String::new(),
        }
    };
    Error::Container(format!("{e}{how}"))
}

/// Body of the joiner. Never returns.
fn joiner_main(
    ch: Channel,
    proc_ch: Channel,
    ns_files: Vec<(LinuxNamespaceType, File)>,
    c: &Ctx,
) -> ! {
    let joined = join_container(c, &ns_files);
    // The exec process gets no handle on the namespace files.
    drop(ns_files);
    let forked = joined.and_then(|()| sys::fork().ctx(|| "fork the exec process".into()));
    match forked {
        Ok(ForkResult::Child) => {
            drop(ch);
            process_main(proc_ch, c)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(proc_ch);
            match ch.send(&Msg::InitPid(child.as_raw())) {
                Ok(()) => sys::exit_now(0),
                Err(_) => {
                    let _ = kill(child, Signal::SIGKILL);
                    sys::exit_now(1)
                }
            }
        }
        Err(e) => {
            let _ = ch.send(&Msg::Error(e.to_string()));
            sys::exit_now(1)
        }
    }
}

/// The joiner's steps: cgroups, then namespaces (user first).
fn join_container(c: &Ctx, ns_files: &[(LinuxNamespaceType, File)]) -> Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .ctx(|| "reset signal mask".into())?;
    // While /proc is still the host's: inherited by the exec process.
    if let Some(adj) = c.process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    // Cgroups before namespaces: the cgroup files are the host's, writable by host root.
    c.placement.join_self_v1()?;
    if c.join_unified {
        c.placement.join_self_unified()?;
    }
    // CVE-2019-5736: until its execve the exec process runs the host's runtime binary, and it is
    // visible to the container's processes: /proc/<pid>/exe and /mem must not open for them.
    // Inherited by the fork; execve resets it.
    nix::sys::prctl::set_dumpable(false).ctx(|| "set non-dumpable".into())?;
    namespaces::enter(ns_files)?;
    if ns_files.iter().any(|(t, _)| *t == LinuxNamespaceType::User) {
        let root_gid = Gid::from_raw(0);
        let root_uid = Uid::from_raw(0);
        setresgid(root_gid, root_gid, root_gid)
            .ctx(|| "become gid 0 in the user namespace".into())?;
        setresuid(root_uid, root_uid, root_uid)
            .ctx(|| "become uid 0 in the user namespace".into())?;
    }
    Ok(())
}

/// Body of the exec process. Never returns: execs the program or exits.
fn process_main(ch: Channel, c: &Ctx) -> ! {
    let e = match process_steps(&ch, c) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = ch.send(&Msg::failure(&e));
    sys::exit_now(1)
}

/// The exec process's setup, in the order the container init does it (see `init.rs`).
fn process_steps(ch: &Channel, c: &Ctx) -> Result<std::convert::Infallible> {
    let p = c.process;
    // A new session, as runc; with a terminal, the pty becomes its controlling terminal.
    match (p.terminal() == Some(true), c.console) {
        (true, Some(sock)) => {
            let size = p
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            setup_terminal(sock, size)?;
        }
        (true, None) => {
            return Err(Error::Config(
                "process.terminal is true but no console socket was given".into(),
            ))
        }
        (false, _) => {
            nix::unistd::setsid().ctx(|| "setsid".into())?;
        }
    }
    // EPERM/ENOSYS (keyrings disabled or not permitted) are not fatal, as in runc.
    let _ = sys::join_session_keyring(&format!("_ses.{}", c.id));
    process::set_rlimits(p)?;
    crate::init::set_personality(c.personality)?;
    let exe = process::find_executable(p)?;
    let caps = CapPlan::from_process(p)?;
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    let (argv, envp) = process::exec_vectors(p, &[])?;
    let cwd = p.cwd();
    let early_chdir = chdir(cwd.as_path()).is_ok();
    let nnp = p.no_new_privileges() == Some(true);
    // Before any filter goes in: the profile may deny what these need (close_range).
    process::set_umask(p);
    sys::cloexec_from(3 + c.preserve).ctx(|| "mark fds close-on-exec".into())?;
    sys::reset_signal_dispositions();
    let mut listener = None;
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before caps go.
        if let Some(f) = c.seccomp {
            listener = f.load()?;
        }
    }
    if let Some(caps) = &caps {
        caps.apply_bounding()?;
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "set keepcaps".into())?;
    process::set_user(p, setgroups_allowed)?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "clear keepcaps".into())?;
    if !early_chdir {
        chdir(cwd.as_path()).ctx(|| format!("chdir to {}", cwd.display()))?;
    }
    crate::init::check_cwd_inside(cwd)?;
    if let Some(caps) = &caps {
        caps.apply_rest()?;
    }
    crate::lsm::apply_exec_labels(p)?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
        // As late as possible: the fewest of our own system calls go through the filter.
        if let Some(f) = c.seccomp {
            listener = f.load()?;
        }
    }
    if let Some(fd) = listener {
        ch.send_fd(&Msg::SeccompFd, fd.as_fd())?;
    }
    ch.send(&Msg::Ready)?;
    Err(process::exec(&exe, &argv, &envp))
}

/// A pty from the container's devpts (/dev/ptmx as the container sees it): the master goes to
/// the console socket, the slave becomes the controlling terminal and stdio. Unlike the init's
/// console (`console::setup`), nothing is mounted on /dev/console: the container has one.
fn setup_terminal(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx in the container".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "ptsname".into())?;
    if let Some((rows, cols)) = size.filter(|(r, c)| *r > 0 && *c > 0) {
        sys::set_winsize(master.as_raw_fd(), rows, cols).ctx(|| "set console size".into())?;
    }
    let slave = open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {name}"))?;
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(|| "send the pty master to the console socket".into())?;
    drop(master);
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    sys::set_controlling_tty(slave.as_raw_fd())
        .ctx(|| format!("make {name} the controlling terminal"))?;
    nix::unistd::dup2_stdin(&slave).ctx(|| "dup pty to stdin".into())?;
    nix::unistd::dup2_stdout(&slave).ctx(|| "dup pty to stdout".into())?;
    nix::unistd::dup2_stderr(&slave).ctx(|| "dup pty to stderr".into())?;
    Ok(())
}

/// The exit code of `pid` once it has exited (128+N if killed by signal N).
fn reap(pid: Pid) -> Option<i32> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Some(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(128 + sig as i32),
            Err(Errno::EINTR) => continue,
            // Not our child (any more): nothing to wait for.
            Err(_) => return Some(255),
            Ok(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_needs_args_and_an_absolute_cwd() {
        let mut p = Process::default();
        p.set_args(Some(vec![]));
        assert!(validate_process(&p)
            .unwrap_err()
            .to_string()
            .contains("args is empty"));
        p.set_args(Some(vec!["sh".into()]));
        p.set_cwd("tmp".into());
        assert!(validate_process(&p)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        p.set_cwd("/tmp".into());
        assert!(validate_process(&p).is_ok());
    }

    #[test]
    fn namespace_file_names() {
        assert_eq!(proc_ns_name(LinuxNamespaceType::Network), "net");
        assert_eq!(proc_ns_name(LinuxNamespaceType::Mount), "mnt");
        assert_eq!(proc_ns_name(LinuxNamespaceType::Time), "time");
    }
}
