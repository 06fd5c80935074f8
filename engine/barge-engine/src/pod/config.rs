//! A pod's configuration (what CRI's PodSandboxConfig, a Kubernetes Pod and `barge pod
//! create` can say) and its stored row.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::network::ports::PortSpec;

/// CRI's PodSandboxMetadata (Kubernetes' pod name, uid, namespace and the attempt number).
/// Empty for pods made by `barge pod create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodMetadata {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
}

/// DNS for the pod's resolv.conf (CRI's DNSConfig, `--dns`, `--dns-search`, `--dns-option`).
/// Empty lists: the host's resolv.conf (its loopback servers dropped, as for containers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl PodDns {
    /// The resolv.conf settings these stand for (checked at create, written at sandbox up).
    pub(crate) fn resolv_options(&self) -> crate::network::files::DnsOptions {
        crate::network::files::DnsOptions {
            servers: self.servers.clone(),
            search: self.searches.clone(),
            options: self.options.clone(),
        }
    }
}

/// Which namespaces the pod's containers share (CRI NamespaceOption: POD for network/IPC
/// means shared; NODE is `network: "host"` / [`PodConfig::host_ipc`]). Network and UTS go
/// together (a pod's hostname is its network identity; a pod on the host's network has the
/// host's UTS namespace too, as in Kubernetes); default: net, ipc and uts shared, pid not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodShare {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    /// Kubernetes' shareProcessNamespace (CRI pid = POD): one PID namespace for the pod,
    /// held by its only process, `barge-pause` (a PID namespace cannot outlive its init).
    pub pid: bool,
}

impl Default for PodShare {
    fn default() -> Self {
        PodShare {
            net: true,
            ipc: true,
            uts: true,
            pid: false,
        }
    }
}

impl PodShare {
    /// Parse `--share ipc,uts,net,pid` (podman's flag; `none` or empty shares nothing).
    pub fn parse(s: &str) -> crate::Result<PodShare> {
        let mut out = PodShare {
            net: false,
            ipc: false,
            uts: false,
            pid: false,
        };
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "net" => out.net = true,
                "ipc" => out.ipc = true,
                "uts" => out.uts = true,
                "pid" => out.pid = true,
                "none" => {}
                other => {
                    return Err(crate::Error::BadParameter(format!(
                        "--share {s:?}: unknown namespace {other:?} (known: ipc, net, pid, uts)"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// Pod-level limits, applied on the pod's cgroup (they bound all its containers together).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodResources {
    /// Bytes.
    pub memory: Option<i64>,
    /// CPUs (1.5 = one and a half), as a CFS quota over a 100 ms period.
    pub cpus: Option<f64>,
    /// cpu.shares (v1) / converted weight (v2).
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// What a pod is made from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodConfig {
    /// The pod's name; None: a random one (for CRI pods, the caller builds a unique name
    /// from the metadata, e.g. `k8s_<name>_<namespace>_<uid>_<attempt>`).
    pub name: Option<String>,
    pub metadata: PodMetadata,
    /// The hostname its containers see (default: the pod's name).
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// CRI's log_directory (containers' log_path is relative to it); barge keeps it only.
    pub log_directory: Option<String>,
    pub dns: PodDns,
    /// `--add-host NAME:IP` lines for /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// Published ports (`-p`, CRI port_mappings), on the pod's primary network.
    pub ports: Vec<PortSpec>,
    /// `""` (the default network `barge`), a network's name, `none` (only `lo`) or `host`
    /// (CRI network NODE: no network namespace of its own).
    pub network: String,
    pub share: PodShare,
    /// Kubernetes' hostIPC (CRI ipc = NODE): the containers use the host's IPC namespace and
    /// its /dev/shm (then `share.ipc` is false).
    pub host_ipc: bool,
    /// The pod cgroup's path (CRI cgroup_parent, cgroupfs form: `/kubepods/pod123`, absolute
    /// from the hierarchy root, or relative to barge's cgroup); None: `barge/pod-<id>` under
    /// barge's cgroup. systemd slice names (`*.slice`) are refused.
    pub cgroup_parent: Option<String>,
    /// Namespaced sysctls set in the sandbox's namespaces (`net.*` in the network namespace,
    /// `kernel.shm*`/`kernel.msg*`/`kernel.sem`/`fs.mqueue.*` in the IPC namespace).
    pub sysctls: BTreeMap<String, String>,
    pub resources: PodResources,
    /// CRI's LinuxSandboxSecurityContext.privileged (kept; containers still say theirs).
    pub privileged: bool,
}

/// Where the pod's sandbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Made, never started: no namespaces yet.
    #[default]
    Created,
    /// Namespaces pinned, network up (CRI SANDBOX_READY).
    Ready,
    /// Stopped: containers stopped, network torn down, namespaces released (CRI NOTREADY).
    Stopped,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Created => "created",
            SandboxState::Ready => "ready",
            SandboxState::Stopped => "stopped",
        }
    }
}

/// One pod's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// 64 hex digits, like container ids.
    pub id: String,
    pub name: String,
    /// Nanoseconds since the epoch.
    pub created: i64,
    /// As created, with defaults filled (hostname, network).
    pub config: PodConfig,
    pub sandbox: SandboxState,
}

impl PodRecord {
    /// When it was created, as RFC 3339 with nanoseconds.
    pub fn created_rfc3339(&self) -> String {
        barge_util::time::rfc3339_nanos(
            self.created / 1_000_000_000,
            (self.created % 1_000_000_000) as u32,
        )
    }
}
