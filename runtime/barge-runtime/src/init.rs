//! The processes forked by `create`: the intermediate (joins and creates namespaces, forks) and
//! the container init (sets up the rootfs, waits for `start`, execs the user process).
//!
//! Both run in a forked copy of the single-threaded runtime and report failures to the parent
//! over the sync channel; neither ever returns into the runtime's own code.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, setresgid, setresuid, ForkResult, Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxPersonalityDomain, Spec};

use crate::cgroups::{Placement, V1Tasks};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::process::{self, CapPlan};
use crate::rootfs::{self, resolve::Root};
use crate::sync::{Channel, Msg};
use crate::sys;

/// Everything the forked processes need, captured before fork.
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a std::path::Path,
    pub rootfs: &'a std::path::Path,
    pub placement: &'a Placement,
    pub plan: &'a Plan,
    pub join_files: &'a [(LinuxNamespaceType, File)],
    pub console: Option<&'a OwnedFd>,
    /// O_PATH fd of the container's exec.fifo, opened by the runtime (the init may not be able to
    /// reach the state directory by path from inside a user namespace).
    pub fifo: &'a OwnedFd,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// fds 3..3+preserve stay open in the container (preserve-fds + LISTEN_FDS).
    pub preserve: u32,
    /// The intermediate must join the unified cgroup itself (it wasn't cloned into it).
    pub join_unified: bool,
    pub extra_env: &'a [String],
    /// `linux.seccomp`, compiled by the runtime before fork.
    pub seccomp: Option<&'a crate::seccomp::Program>,
    /// Idmapped clones of mount sources (indexed like spec.mounts), made before fork.
    pub idmapped: &'a [Option<OwnedFd>],
}

/// Body of the intermediate process. Never returns.
///
/// `ch` talks to the parent for the intermediate; `init_ch` is handed to the container init,
/// so the two processes' messages can never interleave on one socket.
pub fn intermediate(ch: Channel, init_ch: Channel, a: &InitArgs) -> ! {
    let forked = intermediate_steps(&ch, a).and_then(|v1_tasks| {
        sys::fork()
            .ctx(|| "fork container init".into())
            .map(|f| (f, v1_tasks))
    });
    match forked {
        Ok((ForkResult::Child, v1_tasks)) => {
            drop(ch);
            init(&init_ch, v1_tasks, a)
        }
        Ok((ForkResult::Parent { child }, v1_tasks)) => {
            drop(v1_tasks);
            drop(init_ch);
            let code = match ch.send(&Msg::InitPid(child.as_raw())) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            sys::exit_now(code)
        }
        Err(e) => {
            let _ = ch.send(&Msg::Error(e.to_string()));
            sys::exit_now(1)
        }
    }
}

/// Namespaces are joined and created here; the cgroup namespace is left to the init, which is
/// the first process born in the container's unified cgroup.
fn intermediate_steps(ch: &Channel, a: &InitArgs) -> Result<V1Tasks> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .ctx(|| "reset signal mask".into())?;
    if a.join_unified {
        a.placement.join_self_unified()?;
    }
    // Memory accounting on cgroup v1 (and hybrid hosts, whose memory controller is a v1
    // hierarchy): the container's v1 cgroups are joined by the init, first thing after it is
    // forked, not by this process. The kernel charges a namespace's own objects (the copy of
    // the host's mount table; a network namespace's devices, sysctl and routing tables: about
    // 120 KiB) and a forked process's kernel structures (task, kernel stack, the page tables
    // and VMAs copied from this process: about 90 KiB) to the memory cgroup of the process
    // that allocates them, and v1 never moves charges with a task. So these are charged to
    // the caller's cgroup, as with crun and runc on v1 (both clone the init with the
    // namespace flags, then move it into the cgroup); everything the container's processes
    // allocate afterwards (rootfs mounts, pages the init dirties, the exec'd program's memory,
    // its children) is charged to the container. A small limit then starts a container
    // (`true` under 256 KiB) instead of being spent on the runtime's setup; the cost is that
    // a container's memory.usage leaves out ~200 KiB of its fixed kernel overhead. With a
    // unified memory controller (v2) nothing changes: the intermediate is born in the
    // container's cgroup (CLONE_INTO_CGROUP), and all of it is charged to the container. The
    // files are opened here, before a user namespace could make them unreachable: the kernel
    // checks a cgroup v1 write against the credentials the file was opened with.
    let v1_tasks = a.placement.open_v1_tasks()?;
    namespaces::enter(a.join_files)?;
    if a.plan.creates(LinuxNamespaceType::User) {
        sys::unshare(libc::CLONE_NEWUSER).ctx(|| "unshare user namespace".into())?;
        ch.send(&Msg::WriteIdMaps)?;
        ch.expect(&Msg::Continue, "runtime")?;
    }
    if a.plan.creates(LinuxNamespaceType::User) || a.plan.joins(LinuxNamespaceType::User) {
        let root_gid = Gid::from_raw(0);
        let root_uid = Uid::from_raw(0);
        setresgid(root_gid, root_gid, root_gid)
            .ctx(|| "become gid 0 in the user namespace".into())?;
        setresuid(root_uid, root_uid, root_uid)
            .ctx(|| "become uid 0 in the user namespace".into())?;
    }
    // CVE-2019-5736: until the container's execve, these processes run the host's runtime
    // binary. Non-dumpable, /proc/<pid>/exe and /proc/<pid>/mem can't be opened by a process
    // without CAP_SYS_PTRACE (container processes, a later `exec`). Set after the id maps are
    // written: a rootless parent needs a dumpable child for that. execve resets it.
    nix::sys::prctl::set_dumpable(false).ctx(|| "set non-dumpable".into())?;
    let rest = a.plan.new & !(libc::CLONE_NEWUSER | libc::CLONE_NEWCGROUP);
    if rest != 0 {
        sys::unshare(rest).ctx(|| format!("unshare namespaces {rest:#x}"))?;
    }
    if a.plan.creates(LinuxNamespaceType::Time) {
        write_time_offsets(a.spec)?;
    }
    Ok(v1_tasks)
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).ctx(|| "write timens_offsets".into())
}

/// Body of the container init. Never returns: execs the user process or exits.
///
/// It first joins the container's v1 cgroups (see `intermediate_steps` on memory accounting),
/// before its cgroup namespace is created, which is rooted at its cgroups.
fn init(ch: &Channel, v1_tasks: V1Tasks, a: &InitArgs) -> ! {
    match v1_tasks.join_self().and_then(|_| init_until_ready(ch, a)) {
        Err(e) => {
            let _ = ch.send(&Msg::failure(&e));
            sys::exit_now(1)
        }
        Ok(mut waiting) => {
            let e = waiting.run(a);
            // Setup failed after `create` returned: `start` reads this from the fifo.
            if let Some(f) = waiting.fifo.as_mut() {
                let _ = f.write_all(e.to_string().as_bytes());
            }
            sys::exit_now(1)
        }
    }
}

/// State of init between `Ready` and exec.
struct Waiting {
    /// `/proc/self/fd` of the host's procfs, opened before pivot_root.
    proc_fd_dir: OwnedFd,
    fifo: Option<File>,
    exe: PathBuf,
    state_json: String,
    caps: Option<CapPlan>,
    setgroups_allowed: bool,
}

fn init_until_ready(ch: &Channel, a: &InitArgs) -> Result<Waiting> {
    let process = a
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("process is missing".into()))?;
    let userns = a.plan.creates(LinuxNamespaceType::User) || a.plan.joins(LinuxNamespaceType::User);
    // Born in the container's cgroups: a new cgroup namespace is rooted there.
    if a.plan.creates(LinuxNamespaceType::Cgroup) {
        sys::unshare(libc::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace".into())?;
    }
    rootfs::prepare(&rootfs::Setup {
        spec: a.spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        placement: a.placement,
        cgroupns: a.plan.creates(LinuxNamespaceType::Cgroup),
        userns,
        idmapped: a.idmapped,
    })?;
    Root::open(a.rootfs)?.create(process.cwd(), rootfs::resolve::Kind::Dir)?;
    let proc_fd_dir = open(
        "/proc/self/fd",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc/self/fd".into())?;
    // Reopening the fifo for writing must work later: without a reader it fails with ENXIO,
    // any other error (permissions) is reported now rather than lost at `start`.
    match openat(
        proc_fd_dir.as_fd(),
        a.fifo.as_raw_fd().to_string().as_str(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Err(nix::errno::Errno::ENXIO) => {}
        Ok(_) => {
            return Err(Error::Container(
                "exec fifo already has a reader before start".into(),
            ))
        }
        Err(e) => return Err(e).ctx(|| "open exec fifo for writing".into()),
    }
    if !a.no_new_keyring {
        // EPERM/ENOSYS (keyrings disabled or not permitted) are not fatal, as in runc.
        let _ = sys::join_session_keyring(&format!("_ses.{}", a.id));
    }

    // prestart + createRuntime hooks run in the runtime's namespaces, by the parent.
    ch.send(&Msg::RunCreateRuntimeHooks)?;
    let state_json = match ch.recv("runtime")? {
        Msg::State(s) => s,
        Msg::Error(e) => return Err(Error::Container(e)),
        other => {
            return Err(Error::Container(format!(
                "unexpected {other:?} from runtime"
            )))
        }
    };
    let hooks = a.spec.hooks().as_ref();
    hooks::run_all(
        hooks::Kind::CreateContainer,
        hooks.and_then(|h| h.create_container().as_ref()),
        &state_json,
    )?;

    rootfs::enter(a.rootfs, a.no_pivot)?;
    if process.terminal() == Some(true) {
        let sock = a.console.ok_or_else(|| {
            Error::Config("process.terminal is true but no console socket was given".into())
        })?;
        let size = process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        crate::console::setup(sock, size)?;
    } else {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
    }
    rootfs::finalize(a.spec)?;
    if let Some(h) = a.spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = a.spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::setdomainname(d).ctx(|| format!("set domainname {d:?}"))?;
    }
    process::set_rlimits(process)?;
    set_personality(
        a.spec
            .linux()
            .as_ref()
            .and_then(|l| l.personality().as_ref()),
    )?;
    let exe = process::find_executable(process)?;
    let caps = CapPlan::from_process(process)?;
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    // A NOTIFY filter goes in now, while the runtime can still hand its listener to the
    // agent; the others as late as possible (see Waiting::run).
    if let Some(f) = a.seccomp.filter(|f| f.uses_notify()) {
        if let Some(fd) = f.load()? {
            ch.send_fd(&Msg::SeccompFd, fd.as_fd())?;
        }
    }
    ch.send(&Msg::Ready)?;
    Ok(Waiting {
        proc_fd_dir,
        fifo: None,
        exe,
        state_json,
        caps,
        setgroups_allowed,
    })
}

impl Waiting {
    /// Block until `start`, then finish the process setup and exec. Returns only on failure.
    fn run(&mut self, a: &InitArgs) -> Error {
        match self.steps(a) {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn steps(&mut self, a: &InitArgs) -> Result<std::convert::Infallible> {
        let n = a.fifo.as_raw_fd().to_string();
        // Blocks until `start` opens the fifo for reading.
        let fd = loop {
            match openat(
                self.proc_fd_dir.as_fd(),
                n.as_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.ctx(|| "open exec fifo".into())?,
            }
        };
        let mut fifo = File::from(fd);
        fifo.write_all(b"0").ctx(|| "write exec fifo".into())?;
        self.fifo = Some(fifo);
        let process = a
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Config("process is missing".into()))?;
        let state = started_state(&self.state_json);
        let hooks = a.spec.hooks().as_ref();
        hooks::run_all(
            hooks::Kind::StartContainer,
            hooks.and_then(|h| h.start_container().as_ref()),
            &state,
        )?;
        let (argv, envp) = process::exec_vectors(process, a.extra_env)?;
        let cwd = process.cwd();
        let early_chdir = chdir(cwd.as_path()).is_ok();
        let nnp = process.no_new_privileges() == Some(true);
        let late_seccomp = a.seccomp.filter(|f| !f.uses_notify());
        // Before any filter goes in: the container's own profile may deny what these need
        // (close_range, which profiles older than Linux 5.9 do not list). What follows opens
        // fds only with O_CLOEXEC.
        process::set_umask(process);
        sys::cloexec_from(3 + a.preserve).ctx(|| "mark fds close-on-exec".into())?;
        sys::reset_signal_dispositions();
        if !nnp {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before caps go.
            if let Some(f) = late_seccomp {
                f.load()?;
            }
        }
        if let Some(c) = &self.caps {
            c.apply_bounding()?;
        }
        nix::sys::prctl::set_keepcaps(true).ctx(|| "set keepcaps".into())?;
        process::set_user(process, self.setgroups_allowed)?;
        nix::sys::prctl::set_keepcaps(false).ctx(|| "clear keepcaps".into())?;
        if !early_chdir {
            chdir(cwd.as_path()).ctx(|| format!("chdir to {}", cwd.display()))?;
        }
        check_cwd_inside(cwd)?;
        if let Some(c) = &self.caps {
            c.apply_rest()?;
        }
        crate::lsm::apply_exec_labels(process)?;
        if nnp {
            nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
            // As late as possible: the fewest of our own system calls go through the filter.
            if let Some(f) = late_seccomp {
                f.load()?;
            }
        }
        // After the filter: only what every profile must allow for any process to run
        // (execve) or that runc needs as well (prctl, capset, setgroups, setres[ug]id, chdir,
        // getcwd, openat/write/close for the LSM label when no_new_privs is off).
        Err(process::exec(&self.exe, &argv, &envp))
    }
}

/// CVE-2024-21626: a cwd reached through an fd the runtime still holds (`/proc/self/fd/N`) can
/// lie outside the container's root. The kernel then reports it "(unreachable)", which glibc's
/// getcwd turns into ENOENT. (Such a cwd is already refused when it is created in the rootfs;
/// this catches whatever gets past that.)
pub(crate) fn check_cwd_inside(cwd: &std::path::Path) -> Result<()> {
    match std::env::current_dir() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::Container(format!(
            "process.cwd {}: outside the container's root filesystem",
            cwd.display()
        ))),
    }
}

/// `linux.personality`, for the init and for exec'd processes.
pub(crate) fn set_personality(p: Option<&oci_spec::runtime::LinuxPersonality>) -> Result<()> {
    let Some(p) = p else {
        return Ok(());
    };
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    sys::personality(persona).ctx(|| format!("set personality {:?}", p.domain()))
}

/// The create-time state with status "created", for startContainer hooks.
fn started_state(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(mut v) => {
            v["status"] = "created".into();
            v.to_string()
        }
        Err(_) => json.to_string(),
    }
}
