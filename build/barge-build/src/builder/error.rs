//! The builder's error: what failed, and where in the Dockerfile when an instruction did.

/// A failed build. `At` names the Dockerfile line (`Dockerfile:12: RUN … exited with 2`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("Dockerfile:{line}: {msg}")]
    At { line: usize, msg: String },
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// An error at Dockerfile line `line`.
    pub fn at(line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::At {
            line,
            msg: msg.into(),
        }
    }

    /// An error not tied to a line.
    pub fn other(msg: impl Into<String>) -> BuildError {
        BuildError::Other(msg.into())
    }

    /// The same error, tied to `line` if it was not tied to one.
    pub fn on_line(self, line: usize) -> BuildError {
        match self {
            BuildError::Other(msg) => BuildError::At { line, msg },
            e => e,
        }
    }
}

impl From<barge_image::Error> for BuildError {
    fn from(e: barge_image::Error) -> BuildError {
        BuildError::Other(e.to_string())
    }
}

impl From<barge_engine::Error> for BuildError {
    fn from(e: barge_engine::Error) -> BuildError {
        BuildError::Other(e.to_string())
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
