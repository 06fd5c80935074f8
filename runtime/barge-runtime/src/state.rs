//! Per-container state under the runtime root: `<root>/<id>/state.json`, written atomically,
//! with an flock on the container directory to serialize lifecycle operations.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::cgroups::Placement;
use crate::error::{at, Context, Error, Result};
use barge_util::fs::Durability;

/// OCI lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// Everything the runtime remembers about one container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init process (0 until known).
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat), to detect pid reuse.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    /// Last status written; the live status is computed by [`ContainerState::live_status`].
    pub status: Status,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Placement,
    pub spec: Spec,
}

/// Name of the fifo the container init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

impl ContainerState {
    /// The status right now, from the init process and the exec fifo.
    pub fn live_status(&self, dir: &Path) -> Status {
        if self.status == Status::Creating {
            return Status::Creating;
        }
        if self.pid <= 0 || !barge_util::process::alive_since(self.pid, self.pid_start_time) {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document (`runc state` output), with runc's extra fields.
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        serde_json::json!({
            "ociVersion": self.spec.version(),
            "id": self.id,
            "status": status.to_string(),
            "pid": pid,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }
}

/// Check a container id: non-empty, no path separators, runc's character set.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid container id {id:?}: use letters, digits, '_', '-', '+' and '.'"
        )))
    }
}

/// The runtime root directory holding one directory per container.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive lock on one container directory, released on drop.
pub struct Lock {
    _flock: Flock<File>,
}

impl Store {
    /// Open (creating if needed, mode 0700) the runtime root.
    pub fn open(root: &Path) -> Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .ctx(|| at("create runtime root", root))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Create the directory of a new container; fails if the id is taken.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.to_string()))
            }
            Err(e) => Err(e).ctx(|| at("create container directory", &dir)),
        }
    }

    /// Take the container's lock (blocking).
    pub fn lock(&self, id: &str) -> Result<Lock> {
        validate_id(id)?;
        let dir = self.dir(id);
        let f = File::open(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotExist(id.to_string())
            } else {
                Error::Io {
                    context: at("open container directory", &dir),
                    source: e,
                }
            }
        })?;
        let flock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .ctx(|| at("lock", &dir))?;
        Ok(Lock { _flock: flock })
    }

    /// Load the state of container `id`.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.dir(id).join("state.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| at("read", &path)),
        };
        crate::spec::parse_json(&text)
            .map_err(|e| Error::Container(format!("corrupt state file {}: {e}", path.display())))
    }

    /// Load container `id` for `op` on a live container (created, running or paused): its
    /// state and current status, or an error naming the status it is in.
    pub fn load_live(&self, id: &str, op: &'static str) -> Result<(ContainerState, Status)> {
        let st = self.load(id)?;
        let status = st.live_status(&self.dir(id));
        if matches!(status, Status::Stopped | Status::Creating) {
            return Err(Error::BadState {
                id: id.into(),
                status: status.to_string(),
                op,
                allowed: "created, running or paused",
            });
        }
        Ok((st, status))
    }

    /// Write the state atomically (temp file + rename). Not fsynced: runtime state describes
    /// live processes, which a power cut ends anyway, and it lives on tmpfs by default.
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.dir(&state.id);
        let data = serde_json::to_vec(state)
            .map_err(|e| Error::Container(format!("serialize state of {}: {e}", state.id)))?;
        let path = dir.join("state.json");
        barge_util::fs::write_atomic(&path, &data, 0o600, Durability::Atomic)
            .ctx(|| at("write container state", &path))
    }

    /// Ids of every container under the root (directories with a state file).
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e).ctx(|| at("read runtime root", &self.root)),
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("state.json").exists() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Remove a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx(|| at("remove container directory", &dir)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
