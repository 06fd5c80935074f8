//! barge's OCI runtime library: the job runc does, as a synchronous library with no async
//! runtime, used by the lean `barge-runtime` binary, `barge runtime`, and the engine.
//!
//! A container is created by forking (no re-exec): an intermediate process joins and creates
//! namespaces, then forks the container init, which sets up the rootfs, reports `Ready`, and
//! blocks on `<root>/<id>/exec.fifo` until `start` opens it. See `container` for the lifecycle.
#![deny(unsafe_code)]

pub mod cgroups;
pub mod console;
pub mod container;
pub mod default_spec;
pub mod error;
pub mod events;
pub mod exec;
pub mod features;
mod foreground;
pub mod hooks;
mod idmap;
mod init;
mod json_path;
mod lsm;
pub mod namespaces;
pub mod netns;
pub mod process;
pub mod rootfs;
pub mod run;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
mod sync;
#[allow(unsafe_code)] // the crate's one syscall-facing module
mod sys;
pub mod tty_proxy;
pub mod update;

pub use container::CreateOptions;
pub use error::{Error, ExecFailure, Result};
pub use state::{Status, Store};
