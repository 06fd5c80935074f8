//! barge's API daemon: the Docker Engine API served over the engine library, so the docker
//! CLI, docker-py and docker-compose drive barge unchanged. Thin transport only: every handler
//! turns a request into a typed engine call (run on a blocking thread: the engine is sync) and
//! the engine's answer into docker's JSON; no container logic lives here.
//!
//! The daemon never forks in its own (multi-threaded) process: containers run under their
//! shims, and everything the runtime does for the daemon happens in a shim or a child that
//! execs at once.
#![deny(unsafe_code)]
// docker's /info document is one big json! literal.
#![recursion_limit = "256"]

pub mod create;
pub mod detach;
pub mod error;
pub mod hijack;
pub mod journal_wake;
pub mod list_cache;
pub mod routes;
pub mod server;
pub mod state;
pub mod stdcopy;
#[allow(unsafe_code)] // the crate's one syscall-facing module: socket-activation fds, malloc
pub mod sys;
pub mod version;

pub use error::ApiError;
pub use state::AppState;
