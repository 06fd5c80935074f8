//! Pods: containers that share a sandbox (network, IPC and UTS namespaces, optionally PID),
//! scheduled as one. The sandbox is a set of namespaces pinned by files under the run root
//! (a process only for a shared PID namespace: `barge-pause`), with its own CNI attachment, hostname, /etc/hosts, resolv.conf, port
//! mappings and a cgroup that holds every member's cgroup (pod-level limits apply there).
//!
//! - `config`: what a pod is made from ([`PodConfig`]) and its stored row ([`PodRecord`]).
//! - `store`: the `pods` table.
//! - `sandbox`: the pinned namespaces, the network, the files, the cgroup.
//! - `lifecycle`: create, start, stop, remove (the typed engine API every front end uses).
//! - `status`: a pod's state derived from its containers', list and inspect.

pub mod config;
pub mod lifecycle;
mod pause;
pub mod sandbox;
pub mod status;
pub mod store;

pub use config::{PodConfig, PodDns, PodMetadata, PodRecord, PodResources, PodShare, SandboxState};
pub use status::{PodContainer, PodFilters, PodInspect, PodListed, PodStatus};
