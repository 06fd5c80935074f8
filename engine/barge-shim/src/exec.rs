//! Processes started in a running container by `exec`: what the engine asks for
//! (`execs/<id>.json` in the container's directory) and what the shim records about each one
//! it started and reaped (`execs/<id>.state.json`, replaced atomically).
//!
//! A detached exec is started by the shim (request `exec ID` on its socket), so the process
//! is the shim's child: the shim reaps it and records its exit code, whoever started it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

/// The directory of a container's exec records.
pub fn dir(container_dir: &Path) -> PathBuf {
    container_dir.join("execs")
}

/// An exec's configuration file.
pub fn config_path(container_dir: &Path, id: &str) -> PathBuf {
    dir(container_dir).join(format!("{id}.json"))
}

/// An exec's state file.
pub fn state_path(container_dir: &Path, id: &str) -> PathBuf {
    dir(container_dir).join(format!("{id}.state.json"))
}

/// What the engine asks for (docker's exec create).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    pub id: String,
    pub container_id: String,
    /// The full process the runtime starts.
    pub process: Process,
    /// As the user gave it (`--user`), for inspect.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub detach: bool,
}

/// What happened to an exec's process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecState {
    pub running: bool,
    /// Host pid (0 before it runs, or when it never ran).
    pub pid: i32,
    /// The process's start time (/proc/PID/stat), so a reused pid is not mistaken for it.
    #[serde(default)]
    pub pid_start: u64,
    /// Who reaps it: the shim (pid and start time), or 0 for a foreground exec.
    #[serde(default)]
    pub reaper_pid: i32,
    #[serde(default)]
    pub reaper_start: u64,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Why it could not start.
    #[serde(default)]
    pub error: Option<String>,
}

pub fn load_config(path: &Path) -> Result<ExecConfig, String> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_slice(&data).map_err(|e| format!("parse {}: {e}", path.display()))
}

/// Read a state file; `Ok(None)` when there is none (created, never started).
pub fn load_state(path: &Path) -> Result<Option<ExecState>, String> {
    crate::state::load_json(path)
}

/// Write a file atomically and durably (temp file, fsync, rename, fsync of the directory).
pub fn save<T: Serialize>(path: &Path, v: &T) -> Result<(), String> {
    crate::state::save_json(path, v)
}
