//! One error type for the runtime; every variant says what failed and on what.

use std::path::Path;

/// Errors returned by the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed; `context` names the operation and its target.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A system call failed; `context` names the call and its target.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    /// The bundle's config.json is missing, malformed or asks for something invalid.
    #[error("invalid config: {0}")]
    Config(String),
    /// No container with this id exists under the runtime root.
    #[error("container {0:?} does not exist")]
    NotExist(String),
    /// A container with this id already exists under the runtime root.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// The operation is not allowed in the container's current state.
    #[error("container {id:?} is {status}: cannot {op} (requires {allowed})")]
    BadState {
        id: String,
        status: String,
        op: &'static str,
        allowed: &'static str,
    },
    /// A lifecycle hook failed.
    #[error("{0}")]
    Hook(String),
    /// The container process reported a failure during setup.
    #[error("{0}")]
    Container(String),
    /// A feature the config asks for is not supported by this build.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The caller passed an invalid argument (bad signal name, bad id, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The process's program could not be executed, for `reason` (docker exits 127 or 126).
    #[error("{message}")]
    ExecFailed {
        reason: ExecFailure,
        message: String,
    },
}

/// Why a process's program could not be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExecFailure {
    /// No such file, or not found in `$PATH` (docker: exit 127).
    NotFound,
    /// Found but not executable: no execute permission, a directory (docker: exit 126).
    NotExecutable,
}

impl ExecFailure {
    /// The exit code shells and docker use for this failure.
    pub fn exit_code(self) -> i32 {
        match self {
            ExecFailure::NotFound => 127,
            ExecFailure::NotExecutable => 126,
        }
    }
}

impl Error {
    /// Why the program could not be executed, when that is what this error is.
    pub fn exec_failure(&self) -> Option<ExecFailure> {
        match self {
            Error::ExecFailed { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// Result alias for the runtime library.
pub type Result<T> = std::result::Result<T, Error>;

/// Attach context to low-level errors.
pub trait Context<T> {
    /// Wrap the error with a message built lazily.
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: f(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: f(),
            source,
        })
    }
}

/// Shorthand for "<verb> <path>" contexts.
pub(crate) fn at(verb: &str, path: &Path) -> String {
    format!("{verb} {}", path.display())
}
