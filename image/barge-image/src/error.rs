//! One error type for the image layer. Every variant names what failed and on what.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layer entry that would escape its directory or is otherwise refused.
    #[error("layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// A configured limit (entries, bytes, ...) was exceeded.
    #[error("{what} exceeds the limit of {limit} (see {knob})")]
    Limit {
        what: String,
        limit: u64,
        knob: &'static str,
    },
    /// Content whose digest is not the one it was announced with.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Malformed or unsupported input (a reference, a manifest, an archive, a flag value).
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    /// Something asked for is not there (an image, a blob, a snapshot).
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },
    /// A registry refused or failed a request.
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    /// The registry refused the credentials (or asked for some).
    #[error("registry {registry}: {reason}")]
    Unauthorized { registry: String, reason: String },
    /// The metadata database failed.
    #[error("metadata database {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Something failed while handling one layer.
    #[error("layer {layer}: {source}")]
    Layer {
        layer: String,
        #[source]
        source: Box<Error>,
    },
    /// The store (its root or database) is not ours to use: barge runs as root, or on a
    /// root the user can write.
    #[error("permission denied on {}: barge needs root (run it as root, or give a --root the user can write)", path.display())]
    PermissionDenied { path: PathBuf },
    /// An object is in use and can't be removed.
    #[error("{what} {name} is in use: {by}")]
    InUse {
        what: &'static str,
        name: String,
        by: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }
}

/// Attach an operation and a path to an `io::Result`.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
