//! Seccomp: `linux.seccomp` compiled into a libseccomp filter, loaded in the container's init,
//! with the `SCMP_ACT_NOTIFY` listener handed to `linux.seccomp.listenerPath`, and Docker's
//! default profile.
//!
//! The flow:
//! 1. `create` calls [`Program::build`] in the runtime process before anything exists: it
//!    takes the BPF program from the cache, or compiles the profile ([`Filter::compile`], so a
//!    bad profile fails early and names its field, `linux.seccomp.syscalls[3].errnoRet: ...`).
//! 2. The init (after fork) calls [`Program::load`], one seccomp(2). Loading needs
//!    `no_new_privs` or `CAP_SYS_ADMIN` in the init's user namespace: the filter never sets
//!    `no_new_privs` itself (that stays `process.noNewPrivileges`' job), so load it while the
//!    init still holds its capabilities, or after setting `no_new_privs`.
//! 3. If [`Program::uses_notify`], `load` returns the listener fd; the init passes it to the
//!    runtime, which calls [`send_to_listener`] before `create` returns.

mod compile;
mod default_profile;
mod enosys;
mod notify;
mod program;

pub use compile::Filter;
pub use default_profile::{default_profile, default_profile_for_caps, DOCKER_DEFAULT_CAPS};
pub use notify::{send_to_listener, CONTAINER_PROCESS_STATE_VERSION};
pub use program::Program;

#[cfg(test)]
mod tests;
