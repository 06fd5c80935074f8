//! Operations on existing containers: start (through a new shim), stop, kill, restart,
//! remove, wait, attach, pause.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barge_shim::config::ShimConfig;
use barge_shim::protocol::{Reply, Request};
use nix::sys::signal::Signal;

use crate::db::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::events::{Action, Filters, Next, SubscribeOptions, Type};
use crate::lock::ContainerLock;
use crate::status::State;
use crate::Engine;

/// How long `wait` trusts the event stream alone before looking at the container's state
/// again (a shim that dies writes no `die`).
const WAIT_RECHECK: Duration = Duration::from_secs(1);

/// A wait whose event subscription is in place ([`Engine::wait_prepare`]), advanced by
/// [`Engine::wait_step`].
pub struct PreparedWait {
    key: String,
    rec: ContainerRecord,
    sub: crate::events::Subscription,
    /// The exit code seen so far (a `removed` wait answers the last one).
    last_code: Option<i32>,
    /// When the next step looks at the container's state again.
    next_check: Instant,
}

impl PreparedWait {
    /// How long until the next look at the container's state is due: wait for events at
    /// most that long before the next [`Engine::wait_step`].
    pub fn recheck_in(&self) -> Duration {
        self.next_check.saturating_duration_since(Instant::now())
    }
}

/// docker's wait conditions (`condition=` of `POST /containers/{id}/wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Return at once if the container is not running, else at its next exit.
    #[default]
    NotRunning,
    /// Return at the container's next exit, even if it is not running now.
    NextExit,
    /// Return when the container is removed.
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = Error;
    fn from_str(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            _ => Err(Error::BadParameter(format!(
                "invalid condition: {s:?}: use not-running, next-exit or removed"
            ))),
        }
    }
}

/// Streams to attach when starting.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Streams {
    /// The shim's request line for these streams.
    fn request(self) -> String {
        Request::Attach {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
        }
        .line()
    }
}

impl Engine {
    fn lock(&self, id: &str) -> Result<ContainerLock> {
        if !self.paths.container(id).is_dir() {
            return Err(Error::NoSuchContainer(id.into()));
        }
        ContainerLock::acquire(&self.paths.lock(id))
    }

    /// Start a created or exited container under a new shim. With `attach`, the returned
    /// socket carries the container's output from its first byte (see
    /// `barge_shim::protocol`). Starting a running container does nothing.
    ///
    /// A container made with `--rm` (auto-remove) that fails to start is removed, with its
    /// anonymous volumes, before the error is returned, as dockerd does: the docker CLI's
    /// `run --rm` waits for that removal (`wait?condition=removed`) after a failed start.
    pub fn start(
        &self,
        key: &str,
        attach: Option<Streams>,
    ) -> Result<(ContainerRecord, Option<UnixStream>)> {
        let res = self.start_once(key, attach);
        if res.is_err() {
            if let Ok(rec) = self.db.find(key) {
                if rec.config.autoremove && !self.status(&rec).state.is_active() {
                    // The shim may be removing it too (its exit helper runs `--rm` after a
                    // failed exec): whichever comes second finds nothing to do.
                    let _ = self.remove(&rec.id, true, true);
                }
            }
        }
        res
    }

    fn start_once(
        &self,
        key: &str,
        attach: Option<Streams>,
    ) -> Result<(ContainerRecord, Option<UnixStream>)> {
        let rec = self.db.find(key)?;
        let _lock = self.lock(&rec.id)?;
        // Read again under the lock: a create may have finished (or died) meanwhile.
        let rec = self.db.find(&rec.id)?;
        let st = self.status(&rec);
        match st.state {
            State::Created | State::Exited if rec.ready => {}
            State::Dead | State::Created | State::Exited => {
                return Err(Error::BadState {
                    id: rec.id.clone(),
                    state: "dead".into(),
                    hint: "run `barge system check` to repair or remove it".into(),
                })
            }
            _ => {
                let sock = match attach {
                    Some(s) => Some(self.attach_socket(&rec.id, s)?),
                    None => None,
                };
                return Ok((rec, sock));
            }
        }
        if st.shim_lost {
            // Its last run ended while its shim was gone: do the clean-up the shim did not
            // (the runtime's record would make the new create fail "already exists").
            if let Ok(Some(mut ss)) = barge_shim::state::load(&self.paths.shim_state(&rec.id)) {
                self.finish_without_shim(
                    &rec.id,
                    &mut ss,
                    "shim lost: the container ended while its shim was gone (exit code not recorded)",
                );
            }
        }
        let marker = self.paths.stop_marker(&rec.id);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).ctx("remove stop marker", &marker)
            }
            _ => {}
        }
        // The previous run's shim may still be finishing (telling clients, unmounting the
        // rootfs, removing its socket): its clean-up must not hit the new run.
        self.wait_shim_gone(&rec.id, Duration::from_secs(10))?;
        self.mount_rootfs(&rec.id)?;
        let held = self.network_up(&rec)?;
        let res = self.launch_shim(&rec, attach, held);
        if res.is_err() {
            self.network_down(&rec.id);
        }
        res.map(|sock| (rec, sock))
    }

    /// Write the shim's config and start it; the socket to attach through, if asked. The
    /// sockets holding the published ports are handed to the shim (inherited: close-on-exec
    /// is cleared on them for the spawn only) and closed here once it has them.
    fn launch_shim(
        &self,
        rec: &ContainerRecord,
        attach: Option<Streams>,
        held: crate::network::ports::HeldPorts,
    ) -> Result<Option<UnixStream>> {
        let mut cfg = self.shim_config(rec);
        // The port sockets go to the shim over its stdin (SCM_RIGHTS), never inheritable
        // here: a child another thread of a daemon spawns meanwhile must not hold a port.
        cfg.held_passed = held.sockets.len();
        let path = self.paths.container(&rec.id).join(ShimConfig::FILE);
        let data = serde_json::to_vec(&cfg).map_err(Error::encode(format!(
            "shim config of container {}",
            rec.id
        )))?;
        barge_util::fs::write_atomic(&path, &data, 0o600, barge_util::fs::Durability::Durable)
            .ctx("write shim config", &path)?;
        let (ours, theirs) = if attach.is_some() || !held.sockets.is_empty() {
            let (mut a, b) = UnixStream::pair().map_err(|e| Error::Shim {
                id: rec.id.clone(),
                msg: format!("socketpair for the shim's stdin: {e}"),
            })?;
            // Queued before the spawn: the shim reads the sockets first, then the request.
            send_held(&a, &held).map_err(|e| Error::Shim {
                id: rec.id.clone(),
                msg: format!("pass the published ports' sockets: {e}"),
            })?;
            if let Some(s) = attach {
                a.write_all(s.request().as_bytes())
                    .map_err(|e| Error::Shim {
                        id: rec.id.clone(),
                        msg: format!("attach: {e}"),
                    })?;
            }
            // Without an attach the socket only carries the ports: our end can go now (what
            // is queued stays readable for the shim).
            (
                attach.is_some().then_some(a),
                Stdio::from(std::os::fd::OwnedFd::from(b)),
            )
        } else {
            (None, Stdio::null())
        };
        let mut cmd = Command::new(&self.opts.shim);
        cmd.arg(&path);
        if attach.is_some() {
            cmd.args(["--attach-fd", "0"]);
        }
        let mut child = cmd
            .stdin(theirs)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ctx("run shim", &self.opts.shim)?;
        drop(held);
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|o| BufReader::new(o).read_line(&mut line));
        let _ = child.wait();
        let shim_err = |msg: String| Error::Shim {
            id: rec.id.clone(),
            msg,
        };
        match read {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(shim_err(format!("read its answer: {e}"))),
            None => return Err(shim_err("no stdout".into())),
        }
        // The shim records a failed start (exited) before it answers: what follows (`run
        // --rm` removing it) sees an exited container.
        match Reply::parse(&line) {
            Some(Reply::Ok { .. }) => Ok(ours),
            Some(Reply::Err { code, msg }) => Err(Error::StartFailed {
                code,
                msg: format!("start container {}: {msg}", &rec.id[..12]),
            }),
            None => Err(shim_err(format!("unexpected answer {:?}", line.trim_end()))),
        }
    }

    /// Wait until the shim recorded in the container's state has exited (its pidfd says so).
    fn wait_shim_gone(&self, id: &str, timeout: Duration) -> Result<()> {
        let st = barge_shim::state::load(&self.paths.shim_state(id))
            .ok()
            .flatten();
        let Some(st) = st.filter(|st| st.shim_alive()) else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(st.shim_pid);
        if barge_runtime::process::wait_exit(pid, Some(timeout)) || !st.shim_alive() {
            Ok(())
        } else {
            Err(Error::Shim {
                id: id.into(),
                msg: format!("the shim of its last run is still finishing after {timeout:?}"),
            })
        }
    }

    fn shim_config(&self, rec: &ContainerRecord) -> ShimConfig {
        let id = &rec.id;
        // What the shim runs when it is done (`barge-exit`): remove the container (`--rm`),
        // or tear its network down (podman's `container cleanup`).
        let mut exit_command = vec![
            self.opts.exit_helper.display().to_string(),
            "--root".into(),
            self.paths.root.display().to_string(),
            "--runroot".into(),
            self.paths.runroot.display().to_string(),
            "--config".into(),
            self.opts.config.display().to_string(),
        ];
        if rec.config.autoremove {
            exit_command.extend(["--rm".into(), id.clone()]);
        } else if crate::network::Mode::of(&rec.config) != crate::network::Mode::Host {
            exit_command.push(id.clone());
        } else {
            exit_command.clear();
        }
        ShimConfig {
            id: id.clone(),
            bundle: self.paths.container(id),
            runtime_root: self.paths.runtime_root(),
            socket: self.paths.socket(id),
            state: self.paths.shim_state(id),
            log: self.log_file(rec),
            log_max_size: rec.config.log_max_size,
            log_max_files: rec.config.log_max_files.max(1),
            terminal: rec.config.tty,
            stdin: rec.config.open_stdin,
            restart: rec.config.restart,
            stop_marker: self.paths.stop_marker(id),
            exit_command,
            held_fds: Vec::new(),
            held_passed: 0,
            journal: Some(self.journal().dir().to_path_buf()),
            event_attributes: crate::events::container_attributes(rec),
            health: rec
                .config
                .healthcheck
                .as_ref()
                .and_then(crate::health::HealthCheck::probe),
        }
    }

    /// Mount the container's rootfs unless it is mounted.
    pub fn mount_rootfs(&self, id: &str) -> Result<()> {
        let rootfs = self.paths.rootfs(id);
        if is_mounted(&rootfs) {
            return Ok(());
        }
        let mounts = self.images.snapshots.mounts(id)?;
        std::fs::create_dir_all(&rootfs).ctx("create rootfs directory", &rootfs)?;
        barge_image::mount::mount_all(&mounts, &rootfs)?;
        Ok(())
    }

    /// Connect to a running container's shim and attach.
    pub fn attach_socket(&self, id: &str, s: Streams) -> Result<UnixStream> {
        let mut sock = self.connect(id).map_err(|e| self.shim_lost_or(id, e))?;
        sock.write_all(s.request().as_bytes())
            .map_err(|e| Error::Shim {
                id: id.to_string(),
                msg: format!("attach: {e}"),
            })?;
        Ok(sock)
    }

    /// [`Error::ShimLost`] when the container's shim is dead, else `e`.
    pub(crate) fn shim_lost_or(&self, id: &str, e: Error) -> Error {
        match barge_shim::state::load(&self.paths.shim_state(id)) {
            Ok(Some(st)) if st.status != barge_shim::state::Status::Exited && !st.shim_alive() => {
                Error::ShimLost {
                    id: id.to_string(),
                    shim_pid: st.shim_pid,
                }
            }
            _ => e,
        }
    }

    pub(crate) fn connect(&self, id: &str) -> Result<UnixStream> {
        let p = self.paths.socket(id);
        UnixStream::connect(&p).map_err(|e| Error::Shim {
            id: id.into(),
            msg: format!("connect to {}: {e}", p.display()),
        })
    }

    pub(crate) fn request(
        &self,
        id: &str,
        req: Request,
        timeout: Option<Duration>,
    ) -> Result<String> {
        let mut sock = self.connect(id)?;
        sock.set_read_timeout(timeout).ok();
        let shim_err = |e: std::io::Error| Error::Shim {
            id: id.to_string(),
            msg: e.to_string(),
        };
        sock.write_all(req.line().as_bytes()).map_err(shim_err)?;
        let mut out = String::new();
        sock.read_to_string(&mut out).map_err(shim_err)?;
        Ok(out)
    }

    /// The file the container's log is written to: the CRI `log_path` it was created with, or
    /// `container.log` in its directory.
    pub fn log_file(&self, rec: &ContainerRecord) -> std::path::PathBuf {
        rec.config
            .log_path
            .clone()
            .unwrap_or_else(|| self.paths.log(&rec.id))
    }

    /// Make the running container's shim reopen its log file (CRI ReopenContainerLog: the
    /// caller renamed the file away; the shim creates it anew and writes there).
    pub fn reopen_log(&self, key: &str) -> Result<()> {
        let (rec, _) = self.find_active(key, "only a running container's log can be reopened")?;
        let answer = self.request(&rec.id, Request::ReopenLog, Some(Duration::from_secs(5)))?;
        match answer.trim_end().strip_prefix("err ") {
            None if answer.starts_with("ok") => Ok(()),
            Some(msg) => Err(Error::Shim {
                id: rec.id,
                msg: format!("reopen the log: {msg}"),
            }),
            None => Err(Error::ShimOutdated {
                id: rec.id,
                what: "reopen its log",
            }),
        }
    }

    /// Set the terminal size of a container started with `-t`.
    pub fn resize(&self, key: &str, rows: u16, cols: u16) -> Result<()> {
        let rec = self.db.find(key)?;
        self.request(
            &rec.id,
            Request::Resize { rows, cols },
            Some(Duration::from_secs(5)),
        )
        .map(drop)
    }

    /// Wait until the container is not running; its exit code (docker's `wait`, condition
    /// `not-running`). See [`Engine::wait_for`].
    pub fn wait(&self, key: &str) -> Result<i32> {
        self.wait_for(key, WaitCondition::NotRunning)
    }

    /// docker's `wait` with a condition; the container's exit code. Driven by the container's
    /// `die` and `destroy` events: a container that restarts by its policy is waited for
    /// until its next exit (docker's behaviour). A container whose shim is gone (nobody will
    /// record its exit) is [`Error::ShimLost`].
    pub fn wait_for(&self, key: &str, cond: WaitCondition) -> Result<i32> {
        let mut w = self.prepare_wait(key, false)?;
        loop {
            if let Some(code) = self.wait_step(&mut w, cond)? {
                return Ok(code);
            }
            w.sub.wait(w.recheck_in())?;
        }
    }

    /// The first half of a wait for a server: find the container and follow its events
    /// (passively: the server watches the journal once for all its waits, see
    /// [`Engine::watch_journal`]), so that an exit after this returns is seen by
    /// [`Engine::wait_step`] (the API answers a `wait` request's headers in between, before
    /// the client starts the container).
    pub fn wait_prepare(&self, key: &str) -> Result<PreparedWait> {
        self.prepare_wait(key, true)
    }

    fn prepare_wait(&self, key: &str, passive: bool) -> Result<PreparedWait> {
        let rec = self.db.find(key)?;
        // Follow first: an exit between the check below and the wait is in the stream.
        let opts = SubscribeOptions {
            since: None,
            until: None,
            filters: Filters {
                types: vec![Type::Container],
                containers: vec![rec.id.clone()],
                actions: vec!["die".into(), "destroy".into()],
                ..Default::default()
            },
        };
        let sub = if passive {
            self.subscribe_passive(&opts)?
        } else {
            self.subscribe(&opts)?
        };
        Ok(PreparedWait {
            key: key.to_string(),
            rec,
            sub,
            last_code: None,
            // The first step looks at the state.
            next_check: Instant::now(),
        })
    }

    /// One look of a wait that does not block: the container's state first when it is due
    /// (at the start, then about once a second: a shim that died writes no `die`,
    /// an event may have been lost), then the events that came. `Some(exit code)` when the
    /// condition holds; `None`: look again when the journal changed or after
    /// [`PreparedWait::recheck_in`]. An async server waits so without holding a thread.
    pub fn wait_step(&self, w: &mut PreparedWait, cond: WaitCondition) -> Result<Option<i32>> {
        let key = w.key.as_str();
        let now = Instant::now();
        if now >= w.next_check {
            w.next_check = now + WAIT_RECHECK;
            if self.db.find(&w.rec.id).is_err() {
                return match cond {
                    WaitCondition::Removed => Ok(Some(w.last_code.unwrap_or(0))),
                    _ => Err(Error::NoSuchContainer(key.into())),
                };
            }
            let st = self.status(&w.rec);
            w.last_code = st.exit_code.or(w.last_code);
            if st.shim_lost && cond != WaitCondition::Removed {
                return Err(Error::ShimLost {
                    id: w.rec.id.clone(),
                    shim_pid: st.shim_pid,
                });
            }
            if cond == WaitCondition::NotRunning && !st.state.is_active() {
                return Ok(Some(st.exit_code.unwrap_or(0)));
            }
        }
        loop {
            match w.sub.next_timeout(Duration::ZERO)? {
                Next::Event(ev) if ev.action == Action::Die => {
                    let code = ev.exit_code().unwrap_or(255);
                    w.last_code = Some(code);
                    if cond != WaitCondition::Removed {
                        return Ok(Some(code));
                    }
                }
                Next::Event(ev) if ev.action == Action::Destroy => {
                    if cond == WaitCondition::Removed {
                        return Ok(Some(w.last_code.unwrap_or(0)));
                    }
                    return Err(Error::NoSuchContainer(key.into()));
                }
                Next::Event(_) => {}
                Next::Timeout | Next::End => return Ok(None),
            }
        }
    }

    /// Wait for the container to stop being active, up to `timeout`.
    fn wait_inactive(&self, rec: &ContainerRecord, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if !self.status(rec).state.is_active() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            let _ = self.request(
                &rec.id,
                Request::Wait,
                Some(left.min(Duration::from_millis(500))),
            );
        }
        !self.status(rec).state.is_active()
    }

    /// Mark the container as stopped by the user (no restart; `unless-stopped` stays down
    /// after a reboot) and cancel a pending restart.
    fn mark_stopped(&self, id: &str) -> Result<()> {
        let marker = self.paths.stop_marker(id);
        barge_util::fs::write_atomic(&marker, b"", 0o600, barge_util::fs::Durability::Durable)
            .ctx("write stop marker", &marker)?;
        let _ = self.request(id, Request::Wake, Some(Duration::from_secs(2)));
        Ok(())
    }

    /// docker stop: the stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, key: &str, timeout: Option<u32>) -> Result<ContainerRecord> {
        let rec = self.db.find(key)?;
        let _lock = self.lock(&rec.id)?;
        let was_active = self.status(&rec).state.is_active();
        self.stop_locked(&rec, timeout)?;
        self.network_down(&rec.id);
        if was_active {
            self.emit_container(&rec, Action::Stop, &[]);
        }
        Ok(rec)
    }

    /// What a shim runs after its container exited for good: tear the network down. When
    /// someone holds the container's lock (a stop, start or rm in progress), they do it.
    pub fn cleanup(&self, key: &str) -> Result<()> {
        let rec = self.db.find(key)?;
        let Some(_lock) = ContainerLock::try_acquire(&self.paths.lock(&rec.id)) else {
            return Ok(());
        };
        if !self.status(&rec).state.is_active() {
            self.network_down(&rec.id);
        }
        Ok(())
    }

    fn stop_locked(&self, rec: &ContainerRecord, timeout: Option<u32>) -> Result<()> {
        let st = self.status(rec);
        if st.shim_lost {
            // Nobody else will record the exit or clean up: stop it and do it here.
            let stopped = self.stop_without_shim(rec, timeout);
            if let Ok(Some(mut ss)) = barge_shim::state::load(&self.paths.shim_state(&rec.id)) {
                self.finish_without_shim(
                    &rec.id,
                    &mut ss,
                    "shim lost: the container was stopped by the user (its exit code and the output after the shim died are lost)",
                );
            }
            return stopped;
        }
        if !st.state.is_active() {
            return Ok(());
        }
        self.mark_stopped(&rec.id)?;
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let store = self.runtime()?;
        if st.state != State::Restarting {
            let sig =
                barge_runtime::signal::parse(&rec.config.stop_signal).unwrap_or(Signal::SIGTERM);
            if st.state == State::Paused {
                let _ = barge_runtime::container::set_paused(&store, &rec.id, false);
            }
            self.emit_container(rec, Action::Kill, &[("signal", (sig as i32).to_string())]);
            let _ = barge_runtime::container::kill_container(&store, &rec.id, sig, false);
            if self.wait_inactive(rec, Duration::from_secs(secs as u64)) {
                return Ok(());
            }
            self.emit_container(
                rec,
                Action::Kill,
                &[("signal", (Signal::SIGKILL as i32).to_string())],
            );
            let _ =
                barge_runtime::container::kill_container(&store, &rec.id, Signal::SIGKILL, true);
        }
        if self.wait_inactive(rec, Duration::from_secs(10)) {
            Ok(())
        } else {
            Err(Error::DidNotStop { id: rec.id.clone() })
        }
    }

    /// The stop signal, then SIGKILL after the timeout, to a container without its shim.
    fn stop_without_shim(&self, rec: &ContainerRecord, timeout: Option<u32>) -> Result<()> {
        if !self.status(rec).state.is_active() {
            return Ok(());
        }
        let store = self.runtime()?;
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let sig = barge_runtime::signal::parse(&rec.config.stop_signal).unwrap_or(Signal::SIGTERM);
        let _ = barge_runtime::container::set_paused(&store, &rec.id, false);
        let _ = barge_runtime::container::kill_container(&store, &rec.id, sig, false);
        let end = Instant::now() + Duration::from_secs(secs as u64);
        while Instant::now() < end && self.status(rec).state.is_active() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = barge_runtime::container::kill_container(&store, &rec.id, Signal::SIGKILL, true);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && self.status(rec).state.is_active() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.status(rec).state.is_active() {
            Err(Error::DidNotStop { id: rec.id.clone() })
        } else {
            Ok(())
        }
    }

    /// docker kill: send a signal to the container's init. SIGKILL and the stop signal count
    /// as a user stop (no restart).
    pub fn kill(&self, key: &str, signal: &str) -> Result<ContainerRecord> {
        let rec = self.db.find(key)?;
        let sig = barge_runtime::signal::parse(signal)
            .map_err(|_| Error::Invalid(format!("invalid signal {signal:?}")))?;
        let st = self.status(&rec);
        if !matches!(st.state, State::Running | State::Paused) {
            return Err(Error::BadState {
                id: rec.id.clone(),
                state: st.state.as_str().into(),
                hint: "cannot kill a container that is not running".into(),
            });
        }
        let stop_sig = barge_runtime::signal::parse(&rec.config.stop_signal).ok();
        if sig == Signal::SIGKILL || Some(sig) == stop_sig {
            self.mark_stopped(&rec.id)?;
        }
        let store = self.runtime()?;
        barge_runtime::container::kill_container(&store, &rec.id, sig, false)?;
        self.emit_container(&rec, Action::Kill, &[("signal", (sig as i32).to_string())]);
        Ok(rec)
    }

    pub fn restart(&self, key: &str, timeout: Option<u32>) -> Result<ContainerRecord> {
        let rec = self.stop(key, timeout)?;
        self.start(&rec.id, None)?;
        self.emit_container(&rec, Action::Restart, &[]);
        Ok(rec)
    }

    pub fn pause(&self, key: &str, paused: bool) -> Result<ContainerRecord> {
        let rec = self.db.find(key)?;
        // Check the state first: a container that never ran (or is gone) has no runtime
        // state, and the runtime would say it "does not exist".
        let (want, hint) = if paused {
            (
                State::Running,
                "cannot pause a container that is not running",
            )
        } else {
            (
                State::Paused,
                "cannot unpause a container that is not paused",
            )
        };
        let st = self.status(&rec);
        if st.state != want {
            return Err(Error::BadState {
                id: rec.id.clone(),
                state: st.state.as_str().into(),
                hint: hint.into(),
            });
        }
        let store = self.runtime()?;
        let marker = self.paths.pause_marker(&rec.id);
        if paused {
            std::fs::write(&marker, b"").ctx("write pause marker", &marker)?;
        }
        barge_runtime::container::set_paused(&store, &rec.id, paused)?;
        if !paused {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).ctx("remove pause marker", &marker)
                }
                _ => {}
            }
        }
        let action = if paused {
            Action::Pause
        } else {
            Action::Unpause
        };
        self.emit_container(&rec, action, &[]);
        Ok(rec)
    }

    /// docker rm: a running container only with `force` (killed first); `volumes` also
    /// removes its anonymous volumes.
    pub fn remove(&self, key: &str, force: bool, volumes: bool) -> Result<ContainerRecord> {
        let rec = self.db.find(key)?;
        let _lock = match self.lock(&rec.id) {
            Ok(l) => Some(l),
            // A row without a directory: a half-removed container.
            Err(Error::NoSuchContainer(_)) => None,
            Err(e) => return Err(e),
        };
        let st = self.status(&rec);
        if st.state.is_active() {
            if !force {
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    rec.name,
                    st.state.as_str()
                )));
            }
            self.mark_stopped(&rec.id)?;
            let store = self.runtime()?;
            if st.state == State::Paused {
                let _ = barge_runtime::container::set_paused(&store, &rec.id, false);
            }
            self.emit_container(
                &rec,
                Action::Kill,
                &[("signal", (Signal::SIGKILL as i32).to_string())],
            );
            let _ =
                barge_runtime::container::kill_container(&store, &rec.id, Signal::SIGKILL, true);
            self.wait_inactive(&rec, Duration::from_secs(10));
        }
        // Always, whatever the state says: DEL is idempotent, and a crash may have left
        // the network up behind an exited container. It runs beside the rest of the
        // removal (the plugins mostly wait on the kernel).
        // The directory (with the attachment records) goes only after DEL returned.
        let job = self.teardown_job(&rec.id);
        let dns = std::thread::scope(|s| {
            let net = s.spawn(move || job.run());
            self.release(&rec.id);
            net.join().unwrap_or_default()
        });
        self.forget(&rec.id);
        self.emit_container(&rec, Action::Destroy, &[]);
        self.after_teardown(&dns);
        if volumes {
            for m in &rec.config.mounts {
                if m.kind == "volume" {
                    if let Ok(v) = self.db.volume(&m.source) {
                        if v.anonymous {
                            let _ = self.volume_remove(&v.name);
                        }
                    }
                }
            }
        }
        Ok(rec)
    }

    /// docker rename: give the container a new name (a `rename` event with `oldName`).
    pub fn rename(&self, key: &str, new_name: &str) -> Result<ContainerRecord> {
        let rec = self.db.find(key)?;
        let name = new_name.strip_prefix('/').unwrap_or(new_name);
        crate::names::validate(name)?;
        if let Ok(other) = self.db.find(name) {
            if other.name == name && other.id != rec.id {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
        }
        self.db.rename(&rec.id, name)?;
        let renamed = ContainerRecord {
            name: name.to_string(),
            ..rec.clone()
        };
        self.emit_container(
            &renamed,
            Action::Rename,
            &[("oldName", format!("/{}", rec.name))],
        );
        Ok(renamed)
    }

    /// Containers, newest first; without `all` only running ones.
    pub fn list(&self, all: bool) -> Result<Vec<(ContainerRecord, crate::status::Status)>> {
        let mut out = Vec::new();
        for rec in self.db.all()? {
            if self.being_created(&rec) {
                continue;
            }
            let st = self.status(&rec);
            if all || st.state.is_active() {
                out.push((rec, st));
            }
        }
        Ok(out)
    }
}

/// Whether `path` is a mount point: its device differs from its parent's, or (a bind mount
/// from the same file system) it is listed in /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let (Ok(a), Some(Ok(b))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    if a.dev() != b.dev() {
        return true;
    }
    barge_util::mountinfo::read_self()
        .unwrap_or_default()
        .iter()
        .any(|m| m.mount_point == path)
}

/// Unmount a container's rootfs (all stacked mounts).
pub fn unmount_rootfs(path: &Path) {
    for _ in 0..8 {
        if !is_mounted(path) {
            return;
        }
        if nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).is_err() {
            return;
        }
    }
}

/// Send the port sockets on `sock` with SCM_RIGHTS, in messages of one byte each.
fn send_held(
    sock: &UnixStream,
    held: &crate::network::ports::HeldPorts,
) -> std::result::Result<(), nix::Error> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let fds: Vec<std::os::fd::RawFd> = held.sockets.iter().map(|s| s.as_raw_fd()).collect();
    for chunk in fds.chunks(barge_shim::shim::MAX_FDS_PER_MESSAGE) {
        sendmsg::<()>(
            sock.as_raw_fd(),
            &[std::io::IoSlice::new(b"P")],
            &[ControlMessage::ScmRights(chunk)],
            MsgFlags::empty(),
            None,
        )?;
    }
    Ok(())
}
