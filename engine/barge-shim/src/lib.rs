//! barge's per-container shim (the job of containerd-shim or conmon): the `barge-shim` binary,
//! and the formats it shares with the engine (its configuration, its state file, its socket
//! protocol, the CRI log format, the health check and its record).
#![deny(unsafe_code)]

pub mod config;
pub mod exec;
pub mod health;
pub mod logs;
pub mod protocol;
pub mod shim;
pub mod state;
