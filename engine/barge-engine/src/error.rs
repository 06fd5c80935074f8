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
    #[error("No such pod: {0}")]
    NoSuchPod(String),
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
    /// The container's shim predates a request (an older barge started it): a restart of the
    /// container gives it a current shim.
    #[error(
        "container {id}: its shim, started by an older barge, cannot {what}; restart the container"
    )]
    ShimOutdated { id: String, what: &'static str },
    /// A container did not stop within the time it was given (and after SIGKILL).
    #[error("container {id} did not stop")]
    DidNotStop { id: String },
    /// Encoding something barge writes (a spec, a config, a record) failed.
    #[error("encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A path that does not exist in a container's filesystem (docker cp).
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath { container: String, path: String },
    /// A record barge keeps (a container's stored config, a shim's or an exec's state file)
    /// could not be read or is damaged; the message names it.
    #[error("{0}")]
    Record(String),
    /// The runtime spec barge built for a container is not valid.
    #[error("container spec: {0}")]
    Spec(String),
    /// A system call failed; `what` names the call and its object.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    /// A host firewall (iptables) rule could not be set up.
    #[error("{0}")]
    Firewall(String),
    /// A pull or login check failed in the registry helper; `kind` says how (an image the
    /// registry does not have is NotFound, an unreachable registry Unavailable).
    #[error("{msg}")]
    Registry { kind: ErrorKind, msg: String },
    /// A container's files could not be packed or unpacked (docker cp, export).
    #[error("{0}")]
    Archive(String),
    /// The event journal could not be read or followed.
    #[error("{0}")]
    Journal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// What kind of failure an [`Error`] is, for a caller that must decide what to do (the API's
/// status code, `run`'s exit code) without reading its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such container, exec, image, volume or network (HTTP 404).
    NotFound,
    /// The request conflicts with the object's state: a name in use, a container not running
    /// or in use, a port already held (HTTP 409).
    Conflict,
    /// The request itself is wrong: a malformed or refused value (HTTP 400).
    BadParameter,
    /// The container's (or an exec's) program exists but cannot be executed (`run` exits 126).
    NotExecutable,
    /// The container's (or an exec's) program was not found (`run` exits 127).
    ProgramNotFound,
    /// Something barge relies on is not answering: a registry, a lost shim, a plugin that
    /// timed out.
    Unavailable,
    /// A registry refused the credentials given (HTTP 401).
    Unauthorized,
    /// Anything else: barge or the system failed (HTTP 500).
    Internal,
}

impl ErrorKind {
    /// docker's exit code for `run` (and `create`/`start`) failing this way: 127 program not
    /// found, 126 not executable, 125 the engine failed.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::ProgramNotFound => 127,
            ErrorKind::NotExecutable => 126,
            _ => 125,
        }
    }
}

impl Error {
    /// What kind of failure this is, including the errors of the layers it wraps.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::NoSuchContainer(_)
            | Error::NoSuchImage(_)
            | Error::NoSuchPath { .. }
            | Error::NoSuchExec(_)
            | Error::NoSuchVolume(_)
            | Error::NoSuchNetwork(_)
            | Error::NoSuchPod(_) => K::NotFound,
            Error::Conflict(_) | Error::PortAllocated { .. } | Error::BadState { .. } => {
                K::Conflict
            }
            Error::Invalid(_) | Error::BadParameter(_) => K::BadParameter,
            Error::StartFailed { code, .. } => start_failure_kind(*code),
            Error::ShimLost { .. } => K::Unavailable,
            Error::ShimOutdated { .. } => K::Conflict,
            Error::Registry { kind, .. } => *kind,
            Error::Cni(e) => cni_kind(e),
            Error::Image(e) => image_kind(e),
            Error::Runtime(e) => runtime_kind(e),
            Error::Io { .. }
            | Error::Db(_)
            | Error::Shim { .. }
            | Error::DidNotStop { .. }
            | Error::Encode { .. }
            | Error::Record(_)
            | Error::Spec(_)
            | Error::Sys { .. }
            | Error::Firewall(_)
            | Error::Journal(_)
            | Error::Archive(_) => K::Internal,
        }
    }

    /// docker's exit code for `run` failing with this error (see [`ErrorKind::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// docker's exit code for a process that could not be started (126 or 127), if this is
    /// such an error.
    pub fn start_failure_code(&self) -> Option<i32> {
        matches!(
            self.kind(),
            ErrorKind::NotExecutable | ErrorKind::ProgramNotFound
        )
        .then(|| self.exit_code())
    }

    /// An encoding failure of `what`.
    pub fn encode(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.into();
        move |source| Error::Encode { what, source }
    }

    /// A failed system call `what`.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }
}

fn start_failure_kind(code: i32) -> ErrorKind {
    match code {
        127 => ErrorKind::ProgramNotFound,
        126 => ErrorKind::NotExecutable,
        _ => ErrorKind::Internal,
    }
}

/// The kind of an image-layer error (also used by the registry helper to type its failures).
pub fn image_kind(e: &barge_image::Error) -> ErrorKind {
    use barge_image::Error as I;
    match e {
        I::NotFound { .. } => ErrorKind::NotFound,
        I::InUse { .. } => ErrorKind::Conflict,
        I::Invalid { .. } | I::UnsafeEntry { .. } | I::Limit { .. } => ErrorKind::BadParameter,
        I::Registry { .. } => ErrorKind::Unavailable,
        I::Unauthorized { .. } => ErrorKind::Unauthorized,
        I::Layer { source, .. } => image_kind(source),
        I::Io { .. } | I::DigestMismatch { .. } | I::Db { .. } | I::PermissionDenied { .. } => {
            ErrorKind::Internal
        }
    }
}

fn runtime_kind(e: &barge_runtime::Error) -> ErrorKind {
    use barge_runtime::error::ExecFailure;
    use barge_runtime::Error as R;
    match e {
        R::NotExist(_) => ErrorKind::NotFound,
        R::Exists(_) | R::BadState { .. } => ErrorKind::Conflict,
        R::Config(_) | R::Unsupported(_) | R::InvalidArgument(_) => ErrorKind::BadParameter,
        R::ExecFailed { reason, .. } => match reason {
            ExecFailure::NotFound => ErrorKind::ProgramNotFound,
            ExecFailure::NotExecutable => ErrorKind::NotExecutable,
        },
        R::Io { .. } | R::Sys { .. } | R::Hook(_) | R::Container(_) => ErrorKind::Internal,
    }
}

fn cni_kind(e: &barge_cni::Error) -> ErrorKind {
    use barge_cni::Error as C;
    match e {
        C::Config { .. } => ErrorKind::BadParameter,
        C::Timeout { .. } => ErrorKind::Unavailable,
        C::Plugin { .. } | C::NotFound { .. } | C::BadOutput { .. } | C::Io { .. } => {
            ErrorKind::Internal
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

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind as K;

    fn io(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::from(kind)
    }

    #[test]
    fn engine_errors_map_to_kinds() {
        let cases: Vec<(Error, ErrorKind)> = vec![
            (Error::NoSuchContainer("web".into()), K::NotFound),
            (Error::NoSuchExec("e1".into()), K::NotFound),
            (Error::NoSuchVolume("v".into()), K::NotFound),
            (Error::NoSuchNetwork("n".into()), K::NotFound),
            (Error::Conflict("name in use".into()), K::Conflict),
            (
                Error::PortAllocated {
                    addr: "0.0.0.0:80".into(),
                    proto: "tcp".into(),
                },
                K::Conflict,
            ),
            (
                Error::BadState {
                    id: "c".into(),
                    state: "exited".into(),
                    hint: "start it".into(),
                },
                K::Conflict,
            ),
            (Error::Invalid("--memory".into()), K::BadParameter),
            (
                Error::BadParameter("Minimum memory".into()),
                K::BadParameter,
            ),
            (
                Error::StartFailed {
                    code: 127,
                    msg: "not found".into(),
                },
                K::ProgramNotFound,
            ),
            (
                Error::StartFailed {
                    code: 126,
                    msg: "permission denied".into(),
                },
                K::NotExecutable,
            ),
            (
                Error::StartFailed {
                    code: 125,
                    msg: "boom".into(),
                },
                K::Internal,
            ),
            (
                Error::ShimLost {
                    id: "c".into(),
                    shim_pid: 7,
                },
                K::Unavailable,
            ),
            (
                Error::Shim {
                    id: "c".into(),
                    msg: "no stdout".into(),
                },
                K::Internal,
            ),
            (Error::DidNotStop { id: "c".into() }, K::Internal),
            (Error::Record("parse x: eof".into()), K::Internal),
            (
                Error::Io {
                    what: "read",
                    path: "/x".into(),
                    source: io(std::io::ErrorKind::NotFound),
                },
                K::Internal,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.kind(), want, "{e}");
        }
    }

    #[test]
    fn wrapped_image_errors_keep_their_kind() {
        let not_found = barge_image::Error::NotFound {
            what: "image",
            name: "alpine:nope".into(),
        };
        assert_eq!(Error::from(not_found).kind(), K::NotFound);
        let in_use = barge_image::Error::InUse {
            what: "image",
            name: "alpine".into(),
            by: "container c".into(),
        };
        assert_eq!(Error::from(in_use).kind(), K::Conflict);
        let bad_ref = barge_image::Error::invalid("reference", "UPPER case");
        assert_eq!(Error::from(bad_ref).kind(), K::BadParameter);
        let registry = barge_image::Error::Registry {
            registry: "localhost:5000".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(Error::from(registry).kind(), K::Unavailable);
        let layer = barge_image::Error::Layer {
            layer: "sha256:ab".into(),
            source: Box::new(barge_image::Error::NotFound {
                what: "blob",
                name: "sha256:ab".into(),
            }),
        };
        assert_eq!(Error::from(layer).kind(), K::NotFound);
        let io = barge_image::Error::io("read", "/x", io(std::io::ErrorKind::Other));
        assert_eq!(Error::from(io).kind(), K::Internal);
    }

    #[test]
    fn wrapped_runtime_errors_keep_their_kind() {
        use barge_runtime::error::ExecFailure;
        let r = |e: barge_runtime::Error| Error::from(e).kind();
        assert_eq!(r(barge_runtime::Error::NotExist("c".into())), K::NotFound);
        assert_eq!(r(barge_runtime::Error::Exists("c".into())), K::Conflict);
        assert_eq!(
            r(barge_runtime::Error::InvalidArgument("signal FOO".into())),
            K::BadParameter
        );
        assert_eq!(
            r(barge_runtime::Error::ExecFailed {
                reason: ExecFailure::NotFound,
                message: "exec: \"nope\": not found".into(),
            }),
            K::ProgramNotFound
        );
        assert_eq!(
            r(barge_runtime::Error::ExecFailed {
                reason: ExecFailure::NotExecutable,
                message: "exec: \"/etc\": is a directory".into(),
            }),
            K::NotExecutable
        );
        assert_eq!(
            r(barge_runtime::Error::Container("setup failed".into())),
            K::Internal
        );
    }

    #[test]
    fn wrapped_cni_errors_keep_their_kind() {
        let timeout = barge_cni::Error::Timeout {
            network: Some("n".into()),
            plugin: "bridge".into(),
            command: barge_cni::Command::Add,
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(Error::from(timeout).kind(), K::Unavailable);
        let config = barge_cni::Error::Config {
            origin: "network n".into(),
            msg: "bad subnet".into(),
        };
        assert_eq!(Error::from(config).kind(), K::BadParameter);
        let plugin = barge_cni::Error::NotFound {
            network: None,
            plugin: "bridge".into(),
            dirs: vec![],
        };
        assert_eq!(Error::from(plugin).kind(), K::Internal);
    }

    #[test]
    fn run_exit_codes() {
        let code = |code: i32| {
            Error::StartFailed {
                code,
                msg: String::new(),
            }
            .exit_code()
        };
        assert_eq!(code(127), 127);
        assert_eq!(code(126), 126);
        assert_eq!(code(1), 125);
        assert_eq!(Error::NoSuchContainer("c".into()).exit_code(), 125);
        let image = barge_image::Error::NotFound {
            what: "image",
            name: "x".into(),
        };
        assert_eq!(Error::from(image).exit_code(), 125);
        assert_eq!(
            Error::StartFailed {
                code: 127,
                msg: String::new()
            }
            .start_failure_code(),
            Some(127)
        );
        assert_eq!(
            Error::DidNotStop { id: "c".into() }.start_failure_code(),
            None
        );
    }
}
