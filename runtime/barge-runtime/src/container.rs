//! The OCI lifecycle operations: create, start, kill, delete, state, list.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{mkfifo, ForkResult, Pid};
use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups;
use crate::error::{at, Context, Error, Result};
use crate::hooks;
use crate::init::{self, InitArgs};
use crate::namespaces::Plan;
use crate::spec::load_bundle;
use crate::state::{self, ContainerState, Status, Store, EXEC_FIFO};
use crate::sync::{self, Msg};
use crate::sys;

/// Options of `create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// An already-connected console socket (used by `run` for its own pty proxy).
    pub console_fd: Option<std::sync::Arc<OwnedFd>>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// Create a container: namespaces, rootfs and cgroup set up, init waiting for `start`.
///
/// On any failure everything made so far (init process, cgroups, state directory) is removed.
pub fn create(store: &Store, opts: &CreateOptions) -> Result<ContainerState> {
    state::validate_id(&opts.id)?;
    let bundle = load_bundle(&opts.bundle)?;
    let spec = &bundle.spec;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Config("linux section is missing".into()))?;
    let plan = Plan::from_spec(linux.namespaces().as_deref().unwrap_or_default());
    let join_files = plan.open_joins()?;
    let console = match (&opts.console_fd, &opts.console_socket) {
        (Some(fd), _) => Some(ConsoleFd::Shared(fd.clone())),
        (None, Some(p)) => Some(ConsoleFd::Owned(
            UnixStream::connect(p)
                .ctx(|| at("connect to console socket", p))?
                .into(),
        )),
        (None, None) => None,
    };
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    if terminal && console.is_none() {
        return Err(Error::InvalidArgument(
            "process.terminal is true: --console-socket is required".into(),
        ));
    }
    let (preserve, extra_env) = passed_fds(opts.preserve_fds);
    let no_resources = Default::default();
    let resources = linux.resources().as_ref().unwrap_or(&no_resources);
    let devices = linux.devices().as_deref().unwrap_or_default();
    cgroups::resources::validate(resources)?;
    let seccomp = compile_seccomp(linux)?;
    // Detached trees: nothing to undo if a later step fails (closing them dissolves them).
    let idmapped = crate::rootfs::idmap::prepare_all(spec, &bundle.dir)?;

    let dir = store.create_dir(&opts.id)?;
    let mut guard = Cleanup {
        store,
        id: &opts.id,
        placement: None,
        pid: None,
        armed: true,
    };
    let _lock = store.lock(&opts.id)?;
    // Rootless without a writable cgroup tree: an empty placement, on which `apply` does
    // nothing (no limits were asked for, and device rules need a devices cgroup).
    let placement = cgroups::create(linux.cgroups_path().as_deref(), &opts.id, resources)?;
    guard.placement = Some(placement.clone());
    placement.apply(resources, devices, cgroups::resources::Phase::Create)?;
    let mut st = ContainerState {
        id: opts.id.clone(),
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: barge_util::time::now_rfc3339(),
        owner: owner_name(),
        status: Status::Creating,
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: placement.clone(),
        spec: spec.clone(),
    };
    store.save(&st)?;
    let fifo = dir.join(EXEC_FIFO);
    mkfifo(&fifo, Mode::from_bits_truncate(0o622)).ctx(|| at("create fifo", &fifo))?;
    // Writable by the init even when it runs as an unprivileged host uid (user namespace);
    // mkfifo applied the umask.
    std::fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .ctx(|| at("chmod", &fifo))?;
    let fifo_fd = nix::fcntl::open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| at("open", &fifo))?;

    let (parent, child) = sync::pair()?;
    let (parent_init, child_init) = sync::pair()?;
    let mut args = InitArgs {
        id: &opts.id,
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        placement: &placement,
        plan: &plan,
        join_files: &join_files,
        console: console.as_ref().map(ConsoleFd::fd),
        fifo: &fifo_fd,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve,
        extra_env: &extra_env,
        join_unified: false,
        seccomp: seccomp.as_ref(),
        idmapped: &idmapped,
    };
    let unified_fd = match &placement.unified {
        Some(dir) => Some(
            nix::fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| at("open cgroup", dir))?,
        ),
        None => None,
    };
    // Born in the unified cgroup where the kernel allows it; else it joins it itself.
    let forked = match &unified_fd {
        Some(fd) => sys::fork_into_cgroup(fd.as_fd()).or_else(|_| {
            args.join_unified = true;
            sys::fork()
        }),
        None => sys::fork(),
    };
    let inter = match forked.ctx(|| "fork".into())? {
        ForkResult::Child => {
            drop(parent);
            drop(parent_init);
            init::intermediate(child, child_init, &args)
        }
        ForkResult::Parent { child: pid } => pid,
    };
    drop(child);
    drop(child_init);
    let chans = Channels {
        inter: &parent,
        init: &parent_init,
    };
    let r = drive_setup(&chans, inter, &plan, spec, &mut st, &mut guard);
    // The intermediate exits right after reporting the init pid (or an error).
    let _ = waitpid(inter, None);
    r.map_err(|e| oom_or(e, &placement, spec))?;
    st.status = Status::Created;
    store.save(&st)?;
    if let Some(p) = &opts.pid_file {
        barge_util::fs::write_atomic(
            p,
            st.pid.to_string().as_bytes(),
            0o644,
            barge_util::fs::Durability::Atomic,
        )
        .ctx(|| at("write pid file", p))?;
    }
    guard.armed = false;
    Ok(st)
}

enum ConsoleFd {
    Owned(OwnedFd),
    Shared(std::sync::Arc<OwnedFd>),
}

impl ConsoleFd {
    fn fd(&self) -> &OwnedFd {
        match self {
            ConsoleFd::Owned(f) => f,
            ConsoleFd::Shared(f) => f,
        }
    }
}

/// The parent's ends of the intermediate's and the init's sync channels.
struct Channels<'a> {
    inter: &'a sync::Channel,
    init: &'a sync::Channel,
}

/// Parent side of the setup handshake.
fn drive_setup(
    ch: &Channels,
    inter: Pid,
    plan: &Plan,
    spec: &oci_spec::runtime::Spec,
    st: &mut ContainerState,
    guard: &mut Cleanup,
) -> Result<()> {
    let fail = |e: Error| {
        let _ = kill(inter, Signal::SIGKILL);
        e
    };
    if plan.creates(LinuxNamespaceType::User) {
        ch.inter.expect(&Msg::WriteIdMaps, "container setup")?;
        crate::idmap::write_id_maps(inter, spec).map_err(fail)?;
        ch.inter.send(&Msg::Continue)?;
    }
    let pid = match ch.inter.recv("container setup")? {
        Msg::InitPid(p) => p,
        Msg::Error(e) => return Err(Error::Container(e)),
        other => return Err(Error::Container(format!("unexpected {other:?}"))),
    };
    guard.pid = Some(pid);
    st.pid = pid;
    st.pid_start_time = barge_util::process::start_time(pid)
        .ok_or_else(|| Error::Container(format!("container init {pid} exited during setup")))?;
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        let path = format!("/proc/{pid}/oom_score_adj");
        std::fs::write(&path, adj.to_string()).ctx(|| format!("write {path}"))?;
    }
    ch.init
        .expect(&Msg::RunCreateRuntimeHooks, "container init")?;
    let state_json = st.oci_state(Status::Creating).to_string();
    let hooks = spec.hooks().as_ref();
    let r = hooks::run_all(
        hooks::Kind::Prestart,
        hooks.and_then(|h| h.prestart().as_ref()),
        &state_json,
    )
    .and_then(|_| {
        hooks::run_all(
            hooks::Kind::CreateRuntime,
            hooks.and_then(|h| h.create_runtime().as_ref()),
            &state_json,
        )
    });
    if let Err(e) = r {
        let _ = ch.init.send(&Msg::Error(e.to_string()));
        return Err(e);
    }
    ch.init
        .send(&Msg::State(state_json))
        .map_err(|e| init_error_or(ch.init, e))?;
    match ch.init.recv_fd("container init")? {
        (Msg::Ready, _) => Ok(()),
        (Msg::SeccompFd, Some(fd)) => {
            hand_seccomp_listener(spec, st.pid, &st.oci_state(Status::Creating), fd.as_fd())?;
            drop(fd);
            ch.init.expect(&Msg::Ready, "container init")
        }
        (m @ (Msg::Error(_) | Msg::ExecFailed(..)), _) => Err(m.into_error()),
        (other, _) => Err(Error::Container(format!(
            "container init sent {other:?}, expected Ready"
        ))),
    }
}

/// `linux.seccomp`, compiled before anything exists so a bad profile leaves no trace.
pub(crate) fn compile_seccomp(
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<crate::seccomp::Program>> {
    let Some(s) = linux.seccomp() else {
        return Ok(None);
    };
    let filter = crate::seccomp::Program::build(s)?;
    if filter.uses_notify() && s.listener_path().is_none() {
        return Err(Error::Config(
            "linux.seccomp.listenerPath is required when a rule uses SCMP_ACT_NOTIFY".into(),
        ));
    }
    Ok(Some(filter))
}

/// Pass the init's seccomp notify listener to the agent at `linux.seccomp.listenerPath`.
/// `pid` and `state` are those of the process whose listener it is (the init, or an exec'd
/// process).
pub(crate) fn hand_seccomp_listener(
    spec: &oci_spec::runtime::Spec,
    pid: i32,
    state: &serde_json::Value,
    fd: std::os::fd::BorrowedFd,
) -> Result<()> {
    let s = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(path) = s.and_then(|s| s.listener_path().as_ref()) else {
        return Err(Error::Config(
            "linux.seccomp.listenerPath is required when a rule uses SCMP_ACT_NOTIFY".into(),
        ));
    };
    let metadata = s
        .and_then(|s| s.listener_metadata().as_deref())
        .unwrap_or("");
    crate::seccomp::send_to_listener(path, metadata, pid, state, fd)
}

/// A setup failure in a memory cgroup that hit its limit is reported as such, naming the
/// limit; any other failure passes through.
fn oom_or(e: Error, p: &cgroups::Placement, spec: &oci_spec::runtime::Spec) -> Error {
    match cgroups::setup_oom::SetupOom::read(p) {
        Some(oom) => {
            let limit = spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.memory().as_ref())
                .and_then(|m| m.limit());
            oom.error(limit, &e)
        }
        None => e,
    }
}

/// If the init already died and told us why, that is the error to report.
fn init_error_or(ch: &sync::Channel, e: Error) -> Error {
    match ch.recv("container init") {
        Ok(m @ (Msg::Error(_) | Msg::ExecFailed(..))) => m.into_error(),
        _ => e,
    }
}

/// fds to keep: `--preserve-fds` plus systemd socket activation (LISTEN_FDS), as runc.
fn passed_fds(preserve_fds: u32) -> (u32, Vec<String>) {
    let listen: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let env = if listen > 0 {
        vec![format!("LISTEN_FDS={listen}"), "LISTEN_PID=1".to_string()]
    } else {
        Vec::new()
    };
    (preserve_fds + listen, env)
}

/// The caller's user name from /etc/passwd (no NSS: it may load modules, and this runs on
/// every create), else the numeric uid.
fn owner_name() -> String {
    let uid = nix::unistd::getuid().as_raw().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or(uid)
}

/// Removes a half-created container on drop unless disarmed.
struct Cleanup<'a> {
    store: &'a Store,
    id: &'a str,
    placement: Option<cgroups::Placement>,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            crate::process::wait_exit(Pid::from_raw(pid), Some(Duration::from_secs(5)));
        }
        if let Some(p) = &self.placement {
            let _ = p.remove();
        }
        let _ = self.store.remove(self.id);
    }
}

/// Start a created container: release init from the exec fifo and confirm the exec.
pub fn start(store: &Store, id: &str) -> Result<ContainerState> {
    let _lock = store.lock(id)?;
    let mut st = store.load(id)?;
    let dir = store.dir(id);
    let status = st.live_status(&dir);
    if status != Status::Created {
        return Err(Error::BadState {
            id: id.into(),
            status: status.to_string(),
            op: "start",
            allowed: "created",
        });
    }
    // The pidfd first: opening the fifo lets init exec, and a short-lived process can exit
    // and be reaped (by its subreaper, e.g. conmon) before a later pidfd_open.
    let pid = Pid::from_raw(st.pid);
    let pidfd = match sys::pidfd_open(pid) {
        Err(Errno::ESRCH) => {
            return Err(Error::Container(format!(
                "container {id}: init {pid} exited before starting"
            )))
        }
        r => r.ctx(|| format!("pidfd_open {pid}"))?,
    };
    let fifo_path = dir.join(EXEC_FIFO);
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| at("open", &fifo_path))?;
    let msg = read_exec_fifo(&fifo, &pidfd)?;
    let _ = std::fs::remove_file(&fifo_path);
    match msg.as_slice() {
        b"0" => {}
        [] => {
            return Err(oom_or(
                Error::Container(format!("container {id}: init exited before starting")),
                &st.cgroup,
                &st.spec,
            ))
        }
        m => {
            return Err(oom_or(
                Error::Container(format!(
                    "container {id}: {}",
                    String::from_utf8_lossy(m.strip_prefix(b"0").unwrap_or(m))
                )),
                &st.cgroup,
                &st.spec,
            ))
        }
    }
    st.status = Status::Running;
    store.save(&st)?;
    let hooks = st.spec.hooks().as_ref();
    hooks::run_all_warn(
        hooks::Kind::Poststart,
        hooks.and_then(|h| h.poststart().as_ref()),
        &st.oci_state(Status::Running).to_string(),
    );
    Ok(st)
}

/// Read the fifo until the writer (init) closes it by exec or exit.
fn read_exec_fifo(fifo: &OwnedFd, pidfd: &OwnedFd) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            r => r.ctx(|| "wait for container init".into())?,
        };
        let fifo_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let init_gone = fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if fifo_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            match nix::unistd::read(fifo, &mut buf) {
                Ok(0) => return Ok(data),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e).ctx(|| "read exec fifo".into()),
            }
        } else if init_gone {
            return Ok(data);
        }
    }
}

/// Send `sig` to the container's init, or with `all` to every process in its cgroup.
pub fn kill_container(store: &Store, id: &str, sig: Signal, all: bool) -> Result<()> {
    let (st, status) = store.load_live(id, "kill")?;
    if all {
        return kill_all(&st, sig, status == Status::Paused);
    }
    kill(Pid::from_raw(st.pid), sig)
        .ctx(|| format!("send {sig} to container {id} (pid {})", st.pid))
}

/// Signal every process in the container's cgroup. The cgroup is frozen meanwhile so no process
/// can fork a child that escapes the signal; a paused container stays paused unless the signal
/// is SIGKILL (frozen tasks only die once thawed).
fn kill_all(st: &ContainerState, sig: Signal, paused: bool) -> Result<()> {
    let froze = !paused && st.cgroup.freezer.is_some() && st.cgroup.set_frozen(true).is_ok();
    let pids = st.cgroup.pids();
    for p in pids.as_deref().unwrap_or_default() {
        let _ = kill(Pid::from_raw(*p), sig);
    }
    if froze || (paused && sig == Signal::SIGKILL) {
        thaw(&st.cgroup)?;
    }
    pids.map(drop)
}

/// Delete a container: stopped (or created) ones always, running ones only with `force`.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let lock = match store.lock(id) {
        Ok(l) => l,
        Err(Error::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = match store.load(id) {
        Ok(st) => st,
        Err(Error::NotExist(_)) => {
            // A directory without state: a create that died early. Remove what's there.
            store.remove(id)?;
            return if force {
                Ok(())
            } else {
                Err(Error::NotExist(id.into()))
            };
        }
        Err(e) => return Err(e),
    };
    let status = st.live_status(&store.dir(id));
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => stop(&st)?,
        Status::Running | Status::Paused if force => stop(&st)?,
        _ => {
            return Err(Error::BadState {
                id: id.into(),
                status: status.to_string(),
                op: "delete",
                allowed: "stopped or created; use --force to kill it first",
            })
        }
    }
    st.cgroup.remove()?;
    store.remove(id)?;
    drop(lock);
    let hooks = st.spec.hooks().as_ref();
    hooks::run_all_warn(
        hooks::Kind::Poststop,
        hooks.and_then(|h| h.poststop().as_ref()),
        &st.oci_state(Status::Stopped).to_string(),
    );
    Ok(())
}

/// SIGKILL every process of the container and wait for init to go.
fn stop(st: &ContainerState) -> Result<()> {
    if st.cgroup.is_frozen() {
        // A frozen task can't die; SIGKILL is delivered once thawed.
        let _ = thaw(&st.cgroup);
    }
    for p in st.cgroup.pids().unwrap_or_default() {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    if st.pid > 0 && barge_util::process::alive_since(st.pid, st.pid_start_time) {
        let pid = Pid::from_raw(st.pid);
        let _ = kill(pid, Signal::SIGKILL);
        if !crate::process::wait_exit(pid, Some(Duration::from_secs(10))) {
            return Err(Error::Container(format!(
                "container {}: init {} did not exit after SIGKILL",
                st.id, st.pid
            )));
        }
    }
    Ok(())
}

fn thaw(p: &cgroups::Placement) -> Result<()> {
    p.set_frozen(false)
}

/// Freeze every process of a running container (`pause`, `paused = true`) or thaw a paused
/// one (`resume`).
pub fn set_paused(store: &Store, id: &str, paused: bool) -> Result<()> {
    let _lock = store.lock(id)?;
    let st = store.load(id)?;
    let status = st.live_status(&store.dir(id));
    let (want, op) = if paused {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if status != want {
        return Err(Error::BadState {
            id: id.into(),
            status: status.to_string(),
            op,
            allowed: if paused { "running" } else { "paused" },
        });
    }
    st.cgroup.set_frozen(paused)
}

/// The OCI state of one container.
pub fn state(store: &Store, id: &str) -> Result<serde_json::Value> {
    let st = store.load(id)?;
    let status = st.live_status(&store.dir(id));
    Ok(st.oci_state(status))
}

/// States of every container under the root.
pub fn list(store: &Store) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for id in store.ids()? {
        if let Ok(v) = state(store, &id) {
            out.push(v);
        }
    }
    Ok(out)
}
