//! A pod's state, derived from its containers' (podman's pod states), and what list and
//! inspect show.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::config::PodRecord;
use crate::status::State;

/// podman's pod states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PodStatus {
    /// No container started yet (and the sandbox is not up, or there are no containers).
    Created,
    /// Every (non-init) container runs; or the sandbox is up and it has none.
    Running,
    /// Some containers run, some do not.
    Degraded,
    /// No container runs; they ended by themselves (the sandbox may still be up).
    Exited,
    /// `pod stop` stopped it: the sandbox is down.
    Stopped,
    /// Some container is paused, none runs.
    Paused,
}

impl PodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PodStatus::Created => "Created",
            PodStatus::Running => "Running",
            PodStatus::Degraded => "Degraded",
            PodStatus::Exited => "Exited",
            PodStatus::Stopped => "Stopped",
            PodStatus::Paused => "Paused",
        }
    }

    /// Parse a `status=` filter value (case-insensitive).
    pub fn parse(s: &str) -> crate::Result<PodStatus> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "created" => PodStatus::Created,
            "running" => PodStatus::Running,
            "degraded" => PodStatus::Degraded,
            "exited" => PodStatus::Exited,
            "stopped" => PodStatus::Stopped,
            "paused" => PodStatus::Paused,
            _ => {
                return Err(crate::Error::BadParameter(format!(
                    "unknown pod status {s:?} (created, running, degraded, exited, stopped, paused)"
                )))
            }
        })
    }
}

/// One container of a pod, as list and inspect show it.
#[derive(Debug, Clone, Serialize)]
pub struct PodContainer {
    pub id: String,
    pub name: String,
    pub state: State,
    pub exit_code: Option<i32>,
    /// An init container (runs to completion, in order, before the others start).
    pub init: bool,
}

/// `pod ls` filters (all given must match). CRI's ListPodSandbox filter maps onto these
/// (id prefix, state ready/notready → `ready`, label selector → `labels`).
#[derive(Debug, Clone, Default)]
pub struct PodFilters {
    /// Full id or id prefix.
    pub id: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// `KEY` or `KEY=VALUE` terms, all must match.
    pub labels: Vec<String>,
    /// Any of these statuses (empty: any).
    pub status: Vec<PodStatus>,
    /// Sandbox ready (true) or not (false).
    pub ready: Option<bool>,
}

/// One entry of `pod_list`.
#[derive(Debug, Clone, Serialize)]
pub struct PodListed {
    pub record: PodRecord,
    pub status: PodStatus,
    pub containers: Vec<PodContainer>,
}

/// Where a pod's sandbox lives (paths present while it is ready).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxPaths {
    /// Pinned namespaces: `network`, `ipc`, `uts` → path.
    pub namespaces: BTreeMap<String, PathBuf>,
    /// The directory with its hostname, hosts and resolv.conf.
    pub etc_dir: PathBuf,
    /// The pod cgroup's directories (one per hierarchy), while it exists.
    pub cgroups: Vec<PathBuf>,
}

/// `pod_inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct PodInspect {
    pub record: PodRecord,
    pub status: PodStatus,
    pub containers: Vec<PodContainer>,
    pub sandbox: SandboxPaths,
    /// The pod's addresses on its primary network (CIDR form), while ready.
    pub ips: Vec<String>,
    /// Published ports as bound (host ip, host port, container port, proto), while ready.
    pub ports: Vec<crate::network::ports::PortBinding>,
}

/// The pod status from its sandbox and its containers' states (init containers do not count
/// once the others exist, except while they run).
pub fn derive(rec: &PodRecord, containers: &[PodContainer]) -> PodStatus {
    use super::config::SandboxState;
    if rec.sandbox == SandboxState::Stopped {
        return PodStatus::Stopped;
    }
    let main: Vec<&PodContainer> = containers.iter().filter(|c| !c.init).collect();
    let running = |c: &&&PodContainer| c.state.is_active() && c.state != State::Paused;
    let n_run = main.iter().filter(running).count();
    let n_paused = main.iter().filter(|c| c.state == State::Paused).count();
    if main.is_empty() {
        return if rec.sandbox == SandboxState::Ready {
            PodStatus::Running
        } else {
            PodStatus::Created
        };
    }
    if n_run == main.len() {
        PodStatus::Running
    } else if n_run > 0 {
        PodStatus::Degraded
    } else if n_paused > 0 {
        PodStatus::Paused
    } else if main.iter().all(|c| c.state == State::Created) {
        PodStatus::Created
    } else {
        PodStatus::Exited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::config::{PodConfig, SandboxState};
    use crate::pod::PodShare;

    fn pod(sandbox: SandboxState) -> PodRecord {
        PodRecord {
            id: "p".into(),
            name: "p".into(),
            created: 0,
            config: PodConfig::default(),
            sandbox,
        }
    }

    fn c(state: State, init: bool) -> PodContainer {
        PodContainer {
            id: "c".into(),
            name: "c".into(),
            state,
            exit_code: None,
            init,
        }
    }

    #[test]
    fn status_follows_podman() {
        use SandboxState as S;
        use State as C;
        let d = |s, cs: &[PodContainer]| derive(&pod(s), cs);
        assert_eq!(d(S::Created, &[]), PodStatus::Created);
        assert_eq!(d(S::Ready, &[]), PodStatus::Running);
        assert_eq!(d(S::Created, &[c(C::Created, false)]), PodStatus::Created);
        let both = [
            c(C::Exited, true),
            c(C::Running, false),
            c(C::Running, false),
        ];
        assert_eq!(d(S::Ready, &both), PodStatus::Running);
        let some = [c(C::Running, false), c(C::Exited, false)];
        assert_eq!(d(S::Ready, &some), PodStatus::Degraded);
        let none = [c(C::Exited, false), c(C::Created, false)];
        assert_eq!(d(S::Ready, &none), PodStatus::Exited);
        assert_eq!(d(S::Ready, &[c(C::Paused, false)]), PodStatus::Paused);
        assert_eq!(d(S::Stopped, &none), PodStatus::Stopped);
        assert_eq!(PodStatus::parse("degraded").unwrap(), PodStatus::Degraded);
        assert!(PodStatus::parse("sleepy").is_err());
    }

    #[test]
    fn share_flag() {
        let s = PodShare::parse("ipc,net").unwrap();
        assert!(s.ipc && s.net && !s.uts && !s.pid);
        let none = PodShare::parse("none").unwrap();
        assert!(!none.ipc && !none.net && !none.uts);
        assert!(PodShare::parse("ipc,mnt").is_err());
        assert_eq!(PodShare::default(), PodShare::parse("ipc,uts,net").unwrap());
    }
}
