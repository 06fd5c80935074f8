//! Container networking: pinned network namespaces wired by CNI plugins, the networks
//! themselves (CNI config lists barge writes and reads), published ports, /etc/hosts and
//! /etc/resolv.conf.

pub mod attach;
pub(crate) mod bridge;
pub mod files;
mod hosts;
pub mod ports;
pub mod rules;
pub mod settings;
pub mod store;
pub mod subnet;

use crate::config::ContainerConfig;

/// How a container is networked (`--network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Its own namespace with only `lo`.
    None,
    /// The host's namespace.
    Host,
    /// The namespace of another container (its full id).
    Container(&'a str),
    /// The namespaces of a pod's sandbox (the pod's full id).
    Pod(&'a str),
    /// Its own namespace on the CNI networks of `networks`.
    Networks,
}

impl Mode<'_> {
    pub fn of(c: &ContainerConfig) -> Mode<'_> {
        match c.network.as_str() {
            "none" | "" => Mode::None,
            "host" => Mode::Host,
            n => match (n.strip_prefix("container:"), n.strip_prefix("pod:")) {
                (Some(id), _) => Mode::Container(id),
                (_, Some(id)) => Mode::Pod(id),
                _ => Mode::Networks,
            },
        }
    }
}
