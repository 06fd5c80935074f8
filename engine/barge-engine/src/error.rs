//! The engine's errors: each says what failed and on what (container, image, path, flag).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    #[error("No such network: {0}")]
    NoSuchNetwork(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error(transparent)]
    Cni(#[from] barge_cni::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A request docker refuses as a bad parameter, with docker's message (e.g. "Minimum
    /// memory limit allowed is 6MB").
    #[error("{0}")]
    BadParameter(String),
    /// A published host port that another process holds.
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String, proto: String },
    #[error("container {id} is {state}: {hint}")]
    BadState {
        id: String,
        state: String,
        hint: String,
    },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container metadata: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Image(#[from] barge_image::Error),
    #[error(transparent)]
    Runtime(#[from] barge_runtime::Error),
    #[error("shim of container {id}: {msg}")]
    Shim { id: String, msg: String },
    /// The container's (or an exec's) process could not be started; `code` is docker's exit
    /// code for it: 127 (program not found), 126 (not executable), else 125/128.
    #[error("{msg}")]
    StartFailed { code: i32, msg: String },
    /// The container's shim died (SIGKILL, OOM kill): nobody reaps, logs or serves it.
    #[error("container {id}: its shim (pid {shim_pid}) is gone: the container is not supervised (its logs stopped); run `barge system check` to repair")]
    ShimLost { id: String, shim_pid: i32 },
    /// A path that does not exist in a container's filesystem (docker cp).
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath { container: String, path: String },
    /// The container's shim predates a request (an older barge started it): a restart of the
    /// container gives it a current shim.
    #[error(
        "container {id}: its shim, started by an older barge, cannot {what}; restart the container"
    )]
    ShimOutdated { id: String, what: &'static str },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// docker's exit code for a process that could not be started, if this is such an error.
    pub fn start_failure_code(&self) -> Option<i32> {
        match self {
            Error::StartFailed { code, .. } => Some(*code),
            Error::Runtime(e) => e.exec_failure().map(|f| f.exit_code()),
            _ => None,
        }
    }
}

/// Attach the operation and path to an I/O error.
pub trait IoContext<T> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}
