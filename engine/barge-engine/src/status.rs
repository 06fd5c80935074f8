//! A container's state, as docker shows it, from its shim's state file and liveness.

use serde::Serialize;

use barge_shim::state::{self, Status as ShimStatus};

use crate::db::ContainerRecord;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    /// Half made or half removed; `barge system check` repairs it.
    Dead,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
        }
    }

    /// The container has a live process (or is about to).
    pub fn is_active(&self) -> bool {
        matches!(self, State::Running | State::Paused | State::Restarting)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: State,
    pub pid: i32,
    pub exit_code: Option<i32>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    pub error: Option<String>,
    /// The kernel's OOM killer killed a process of the container in its last run.
    pub oom_killed: bool,
    pub shim_pid: i32,
    /// The shim died before the container was finished (SIGKILL, OOM): nobody reaps,
    /// logs or serves the container; its exit code (if it ended) was not recorded.
    pub shim_lost: bool,
    /// The health check's status while it runs (None: no check, or not running).
    pub health: Option<crate::health::HealthStatus>,
}

/// The message of a lost shim (in `State.Error`).
pub const SHIM_LOST: &str =
    "shim lost: the container's shim died; its output is no longer logged and its exit code will not be recorded (run `barge system check`)";

impl Engine {
    /// The container `key` and its status when it runs (or is paused); else
    /// [`crate::Error::BadState`] with `hint` saying why it must run.
    pub fn find_active(&self, key: &str, hint: &str) -> crate::Result<(ContainerRecord, Status)> {
        let rec = self.db.find(key)?;
        let st = self.status(&rec);
        if !st.state.is_active() {
            return Err(crate::Error::BadState {
                id: rec.id,
                state: st.state.as_str().into(),
                hint: hint.into(),
            });
        }
        Ok((rec, st))
    }

    pub fn status(&self, rec: &ContainerRecord) -> Status {
        let mut s = Status {
            state: State::Created,
            pid: 0,
            exit_code: None,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            error: None,
            oom_killed: false,
            shim_pid: 0,
            shim_lost: false,
            health: None,
        };
        let dir = self.paths.container(&rec.id);
        if !rec.ready || !dir.is_dir() {
            // A create in progress holds the container's lock: created (in a moment). A
            // create that died left it unlocked: half made.
            if !self.being_created(rec) {
                // The create may have finished (row ready, lock released) between reading
                // the row and looking at the lock: read the row again before saying dead.
                if let Ok(fresh) = self.db.find(&rec.id) {
                    if fresh.ready && dir.is_dir() {
                        return self.status(&fresh);
                    }
                }
                s.state = State::Dead;
            }
            return s;
        }
        let st = match state::load(&self.paths.shim_state(&rec.id)) {
            Ok(Some(st)) => st,
            Ok(None) => return s,
            Err(e) => {
                s.state = State::Dead;
                s.error = Some(e);
                return s;
            }
        };
        s.started_at = st.started_at.clone();
        s.finished_at = st.finished_at.clone();
        s.restart_count = st.restart_count;
        s.error = st.error.clone();
        s.exit_code = st.exit_code;
        s.oom_killed = st.oom_killed;
        s.shim_pid = st.shim_pid;
        let alive = st.shim_alive();
        s.state = match st.status {
            ShimStatus::Exited => State::Exited,
            ShimStatus::Restarting if alive => State::Restarting,
            // Not running until the shim has its pid (docker: created until started).
            ShimStatus::Starting if alive => State::Created,
            ShimStatus::Running if alive => State::Running,
            // The shim is gone (killed, or the host rebooted). The container may still run
            // (orphaned: `system check` deals with it); otherwise it ended unrecorded.
            _ if st.pid > 0 && self.runtime_alive(&rec.id) => {
                s.shim_lost = true;
                s.error = Some(SHIM_LOST.into());
                State::Running
            }
            _ => {
                if st.status != ShimStatus::Exited {
                    s.shim_lost = true;
                    s.error = Some(SHIM_LOST.into());
                }
                s.exit_code = Some(
                    s.exit_code
                        .filter(|_| st.status == ShimStatus::Exited)
                        .unwrap_or(255),
                );
                State::Exited
            }
        };
        if s.state == State::Running {
            s.pid = st.pid;
            // Only a container paused through the engine can be paused: the runtime's state
            // (its whole spec) is read for those alone, not for every running container.
            if self.paths.pause_marker(&rec.id).exists()
                && self.runtime_status(&rec.id).as_deref() == Some("paused")
            {
                s.state = State::Paused;
            }
            s.health = self.health(rec).map(|h| h.status);
        }
        s
    }

    /// A create is making this container right now (it holds the lock of a not-ready row).
    pub fn being_created(&self, rec: &ContainerRecord) -> bool {
        !rec.ready
            && self.paths.container(&rec.id).is_dir()
            && crate::lock::ContainerLock::is_held(&self.paths.lock(&rec.id))
    }

    /// The runtime's view of the container (`running`, `paused`, `stopped`, ...).
    pub fn runtime_status(&self, id: &str) -> Option<String> {
        let store = self.runtime().ok()?;
        let v = barge_runtime::container::state(&store, id).ok()?;
        v["status"].as_str().map(str::to_string)
    }

    fn runtime_alive(&self, id: &str) -> bool {
        matches!(
            self.runtime_status(id).as_deref(),
            Some("running" | "paused")
        )
    }
}
