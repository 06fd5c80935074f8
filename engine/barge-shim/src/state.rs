//! What a shim records about its container: `state.json`, replaced atomically and fsynced, so
//! a power cut leaves the old or the new state, never a mix.

use std::path::Path;

use barge_runtime::state::{write_atomic, Durability};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The shim is creating the container.
    #[default]
    Starting,
    Running,
    /// Exited; waiting out the restart delay.
    Restarting,
    /// Finished for good (or until started again).
    Exited,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimState {
    pub status: Status,
    /// Host pid of the container's init (0 when none).
    pub pid: i32,
    /// The shim process, with its start time (so a reused pid is not mistaken for it).
    pub shim_pid: i32,
    pub shim_start: u64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub restart_count: u32,
    /// Why the container could not start, if it could not.
    #[serde(default)]
    pub error: Option<String>,
    /// The kernel's OOM killer killed a process of the container during its last run.
    #[serde(default)]
    pub oom_killed: bool,
}

impl ShimState {
    /// Whether the shim that wrote this is still alive.
    pub fn shim_alive(&self) -> bool {
        self.shim_pid > 0 && barge_runtime::state::process_alive(self.shim_pid, self.shim_start)
    }
}

/// Read a state file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<ShimState>, String> {
    load_json(path)
}

/// Replace the state file (temp file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, st: &ShimState) -> Result<(), String> {
    save_json(path, st)
}

/// Read a JSON record the shim keeps (its state, an exec's state); `Ok(None)` when there is
/// none.
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| format!("parse {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("read {}: {e}", path.display())),
    }
}

/// Write a JSON record atomically and durably (temp file, fsync, rename, fsync of the
/// directory), private to root.
pub(crate) fn save_json<T: Serialize>(path: &Path, v: &T) -> Result<(), String> {
    let data = serde_json::to_vec(v).map_err(|e| format!("encode {}: {e}", path.display()))?;
    write_atomic(path, &data, 0o600, Durability::Durable).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_file_without_newer_fields_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(
            &p,
            r#"{"status":"exited","pid":0,"shim_pid":5,"shim_start":7,"exit_code":3}"#,
        )
        .unwrap();
        let st = super::load(&p).unwrap().unwrap();
        assert_eq!(st.exit_code, Some(3));
        assert!(!st.oom_killed);
    }
}
