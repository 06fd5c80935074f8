//! What the engine tells a shim: `shim.json` in the container's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A container's restart policy, with docker's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never restart.
    #[default]
    No,
    /// Restart when the exit code is not 0; at most `max_retries` times (0: no limit).
    OnFailure { max_retries: u32 },
    /// Always restart, unless stopped by the user.
    Always,
    /// Like `always`, but a container the user stopped also stays stopped across reboots.
    UnlessStopped,
}

impl RestartPolicy {
    /// Parse docker's `--restart` syntax: `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let policy = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = match count {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| {
                        format!("invalid restart policy {s:?}: maximum retry count {c:?} is not a non-negative number")
                    })?,
                };
                return Ok(RestartPolicy::OnFailure { max_retries });
            }
            _ => {
                return Err(format!(
                    "invalid restart policy {s:?}: use no, on-failure[:max-retries], always or unless-stopped"
                ))
            }
        };
        if count.is_some() {
            return Err(format!(
                "invalid restart policy {s:?}: maximum retry count can only be used with on-failure"
            ));
        }
        Ok(policy)
    }

    /// Whether a container that exited with `code` after `restarts` restarts goes again.
    /// `stopped_by_user` is set when the user asked it to stop (`barge stop`, `kill`).
    pub fn should_restart(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match *self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || restarts < max_retries)
            }
        }
    }

    /// Whether `barge system boot` starts the container again after a host reboot.
    pub fn restart_on_boot(&self, stopped_by_user: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped => !stopped_by_user,
            _ => false,
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
            RestartPolicy::OnFailure { max_retries: 0 } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max_retries } => write!(f, "on-failure:{max_retries}"),
        }
    }
}

/// Everything a shim needs to run one container, written by the engine before it starts the
/// shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// The OCI bundle: the container's directory with `config.json` and `rootfs/`.
    pub bundle: PathBuf,
    /// barge-runtime's state root.
    pub runtime_root: PathBuf,
    /// The shim's socket (attach, resize, wait, wake).
    pub socket: PathBuf,
    /// Where the shim records the container's state (`state.json`).
    pub state: PathBuf,
    /// The container's log (CRI format) and its rotation.
    pub log: PathBuf,
    #[serde(default)]
    pub log_max_size: Option<u64>,
    #[serde(default = "one")]
    pub log_max_files: u32,
    /// The process has a terminal (`-t`).
    #[serde(default)]
    pub terminal: bool,
    /// Keep the container's stdin open for attached clients (`-i`).
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Exists when the user stopped the container: no restart then.
    pub stop_marker: PathBuf,
    /// Run when the container is finished for good (e.g. `barge container cleanup --rm ID`).
    #[serde(default)]
    pub exit_command: Vec<String>,
    /// Descriptors inherited from the engine that hold the container's published host ports
    /// (bound sockets, as docker-proxy holds them): kept open across restarts and closed when
    /// the container is finished for good, before its exit is recorded.
    #[serde(default)]
    pub held_fds: Vec<i32>,
    /// How many such sockets the engine sends on the shim's stdin (SCM_RIGHTS, in messages
    /// of one byte each, before any attach request): never inheritable in the engine's
    /// process, so a child another thread of a daemon spawns meanwhile can't hold a port.
    #[serde(default)]
    pub held_passed: usize,
    /// The store's event journal directory (see `barge_events::Journal`): the shim appends the
    /// container's `start`, `oom`, `die` and `restart` events. None: no events.
    #[serde(default)]
    pub journal: Option<PathBuf>,
    /// The attributes of the container's events (`name`, `image`, its labels).
    #[serde(default)]
    pub event_attributes: BTreeMap<String, String>,
    /// The container's health check, run by the shim while the container runs (records in
    /// `health.json` of the bundle, see [`crate::health`]). None: no health check.
    #[serde(default)]
    pub health: Option<crate::health::HealthProbe>,
}

fn one() -> u32 {
    1
}

impl ShimConfig {
    /// The file name of a shim's configuration inside the container's directory.
    pub const FILE: &'static str = "shim.json";

    pub fn load(path: &Path) -> Result<ShimConfig, String> {
        let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        serde_json::from_slice(&data).map_err(|e| format!("parse {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("always").unwrap(),
            RestartPolicy::Always
        );
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("on-failure").unwrap(),
            RestartPolicy::OnFailure { max_retries: 0 }
        );
        assert!(RestartPolicy::parse("sometimes")
            .unwrap_err()
            .contains("sometimes"));
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        assert!(RestartPolicy::parse("always:3").is_err());
        for s in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:2",
        ] {
            assert_eq!(RestartPolicy::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn decides_like_docker() {
        let f = RestartPolicy::OnFailure { max_retries: 2 };
        assert!(f.should_restart(1, 0, false));
        assert!(f.should_restart(1, 1, false));
        assert!(!f.should_restart(1, 2, false));
        assert!(!f.should_restart(0, 0, false));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(RestartPolicy::Always.restart_on_boot(true));
        assert!(!RestartPolicy::UnlessStopped.restart_on_boot(true));
        assert!(RestartPolicy::UnlessStopped.restart_on_boot(false));
        assert!(!f.restart_on_boot(false));
    }
}
