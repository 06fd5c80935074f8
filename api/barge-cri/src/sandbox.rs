//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus,
//! ListPodSandbox, over the engine's pods (pinned namespaces, no pause process).

use std::collections::HashMap;

use barge_engine::network::ports::PortSpec;
use barge_engine::pod::{
    PodConfig, PodDns, PodFilters, PodInspect, PodMetadata, PodRecord, PodResources, PodShare,
    SandboxState,
};
use barge_engine::Engine;
use tonic::Status;

use crate::proto::*;
use crate::status::{engine, is_not_found, CriResult};

/// The engine's pod config for a CRI sandbox config.
pub fn pod_config(c: &PodSandboxConfig) -> CriResult<PodConfig> {
    let Some(md) = c.metadata.as_ref() else {
        return Err(Status::invalid_argument(
            "RunPodSandbox: the sandbox config has no metadata",
        ));
    };
    if md.name.is_empty() || md.namespace.is_empty() || md.uid.is_empty() {
        return Err(Status::invalid_argument(format!(
            "RunPodSandbox: the sandbox metadata needs a name, a namespace and a uid (got name {:?}, namespace {:?}, uid {:?})",
            md.name, md.namespace, md.uid
        )));
    }
    let attempt = md.attempt.to_string();
    let name = crate::labels::engine_name(&["k8s", &md.name, &md.namespace, &md.uid, &attempt])
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "RunPodSandbox: sandbox metadata {}/{} (uid {}): not usable as a name",
                md.namespace, md.name, md.uid
            ))
        })?;
    if !c.log_directory.is_empty() {
        crate::logpath::check_directory(&c.log_directory)?;
    }
    let mut ports = Vec::new();
    for p in &c.port_mappings {
        // kubelet lists every declared container port; only those with a host port publish.
        if p.host_port <= 0 {
            continue;
        }
        let port = |v: i32, what: &str| {
            u16::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                Status::invalid_argument(format!("port mapping: {what} {v} is out of range"))
            })
        };
        ports.push(PortSpec {
            host_ip: p.host_ip.clone(),
            host_port: port(p.host_port, "host port")?,
            host_port_end: 0,
            container_port: port(p.container_port, "container port")?,
            proto: match Protocol::try_from(p.protocol) {
                Ok(Protocol::Tcp) => "tcp",
                Ok(Protocol::Udp) => "udp",
                Ok(Protocol::Sctp) => "sctp",
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "port mapping: unknown protocol {}",
                        p.protocol
                    )))
                }
            }
            .into(),
        });
    }
    let linux = c.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    // No namespace options: every namespace the pod's own, PID per container (POD is the
    // proto's zero value, so only options that are there can ask for a shared PID).
    let ns = sc.namespace_options.clone();
    let mode = |f: fn(&NamespaceOption) -> i32, absent: NamespaceMode| {
        ns.as_ref().map_or(absent as i32, f)
    };
    let host_net = mode(|n| n.network, NamespaceMode::Pod) == NamespaceMode::Node as i32;
    let host_ipc = mode(|n| n.ipc, NamespaceMode::Pod) == NamespaceMode::Node as i32;
    let share = PodShare {
        net: !host_net,
        ipc: !host_ipc,
        uts: !host_net,
        pid: mode(|n| n.pid, NamespaceMode::Container) == NamespaceMode::Pod as i32,
    };
    let cgroup_parent = match linux.cgroup_parent.as_str() {
        "" => None,
        p if p.ends_with(".slice") || !p.starts_with('/') => {
            return Err(Status::invalid_argument(format!(
                "cgroup_parent {p:?}: systemd slices are not supported (barge uses the cgroupfs driver: give a cgroupfs path such as /kubepods/besteffort/pod<uid>; set kubelet's cgroupDriver to cgroupfs)"
            )))
        }
        p => Some(p.to_string()),
    };
    let resources = linux
        .resources
        .as_ref()
        .map(|r| {
            let (memory, cpus) = crate::security::limits(r);
            PodResources {
                memory,
                cpus,
                cpu_shares: u64::try_from(r.cpu_shares).ok().filter(|s| *s > 0),
                pids_limit: None,
            }
        })
        .unwrap_or_default();
    let dns = c.dns_config.clone().unwrap_or_default();
    Ok(PodConfig {
        name: Some(name),
        metadata: PodMetadata {
            name: md.name.clone(),
            uid: md.uid.clone(),
            namespace: md.namespace.clone(),
            attempt: md.attempt,
        },
        hostname: c.hostname.clone(),
        labels: c.labels.clone().into_iter().collect(),
        annotations: c.annotations.clone().into_iter().collect(),
        log_directory: Some(c.log_directory.clone()).filter(|d| !d.is_empty()),
        dns: PodDns {
            servers: dns.servers,
            searches: dns.searches,
            options: dns.options,
        },
        extra_hosts: Vec::new(),
        ports,
        network: if host_net {
            "host".into()
        } else {
            String::new()
        },
        share,
        host_ipc,
        cgroup_parent,
        sysctls: linux.sysctls.clone().into_iter().collect(),
        resources,
        privileged: sc.privileged,
    })
}

/// RunPodSandbox: create and start the pod (its sandbox ready); a failed start removes
/// what was made.
pub fn run(e: &Engine, config: &PodSandboxConfig) -> CriResult<String> {
    let pc = pod_config(config)?;
    let rec = engine(e.pod_create(pc))?;
    if let Err(err) = e.pod_start(&rec.id) {
        let _ = e.pod_remove(&rec.id, true);
        return Err(crate::status::from_engine(err));
    }
    Ok(rec.id)
}

/// StopPodSandbox: stop every container and take the sandbox down; a sandbox already gone
/// is fine (kubelet calls it more than once).
pub fn stop(e: &Engine, id: &str) -> CriResult<()> {
    match e.pod_stop(id, None) {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(crate::status::from_engine(err)),
    }
}

/// RemovePodSandbox: remove the pod and its containers; one already gone is fine.
pub fn remove(e: &Engine, id: &str) -> CriResult<()> {
    match e.pod_remove(id, true) {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(crate::status::from_engine(err)),
    }
}

fn metadata(r: &PodRecord) -> PodSandboxMetadata {
    let m = &r.config.metadata;
    PodSandboxMetadata {
        name: m.name.clone(),
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        attempt: m.attempt,
    }
}

fn state(r: &PodRecord) -> i32 {
    if r.sandbox == SandboxState::Ready {
        PodSandboxState::SandboxReady as i32
    } else {
        PodSandboxState::SandboxNotready as i32
    }
}

fn map(m: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The CRI status of an inspected pod.
pub fn status_of(i: &PodInspect) -> PodSandboxStatus {
    let r = &i.record;
    let mut ips = i
        .ips
        .iter()
        .map(|ip| ip.split('/').next().unwrap_or(ip).to_string());
    let ip = ips.next().unwrap_or_default();
    let share = r.config.share;
    let mode = |shared: bool| {
        if shared {
            NamespaceMode::Pod as i32
        } else {
            NamespaceMode::Node as i32
        }
    };
    PodSandboxStatus {
        id: r.id.clone(),
        metadata: Some(metadata(r)),
        state: state(r),
        created_at: r.created,
        network: Some(PodSandboxNetworkStatus {
            ip,
            additional_ips: ips.map(|ip| PodIp { ip }).collect(),
        }),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(NamespaceOption {
                    network: mode(share.net),
                    ipc: mode(share.ipc),
                    pid: if share.pid {
                        NamespaceMode::Pod as i32
                    } else {
                        NamespaceMode::Container as i32
                    },
                    ..Default::default()
                }),
            }),
        }),
        labels: map(&r.config.labels),
        annotations: map(&r.config.annotations),
        runtime_handler: String::new(),
    }
}

/// PodSandboxStatus (with `info` when verbose: the engine's inspect document).
pub fn status(e: &Engine, id: &str, verbose: bool) -> CriResult<PodSandboxStatusResponse> {
    let i = engine(e.pod_inspect(id))?;
    let mut info = HashMap::new();
    if verbose {
        info.insert(
            "info".to_string(),
            serde_json::to_string(&i).unwrap_or_default(),
        );
    }
    let mut containers = Vec::new();
    for c in &i.containers {
        if let Ok(rec) = e.db.find(&c.id) {
            containers.push(crate::container::status_of(e, &rec));
        }
    }
    Ok(PodSandboxStatusResponse {
        status: Some(status_of(&i)),
        info,
        containers_statuses: containers,
        timestamp: crate::time::now_nanos(),
    })
}

/// ListPodSandbox with CRI's filter (id prefix, state, labels).
pub fn list(e: &Engine, f: Option<&PodSandboxFilter>) -> CriResult<Vec<PodSandbox>> {
    let mut filters = PodFilters::default();
    let mut selector = HashMap::new();
    if let Some(f) = f {
        filters.id = Some(f.id.clone()).filter(|s| !s.is_empty());
        filters.ready = f
            .state
            .as_ref()
            .map(|s| s.state == PodSandboxState::SandboxReady as i32);
        selector = f.label_selector.clone();
    }
    let pods = engine(e.pod_list(&filters))?;
    Ok(pods
        .into_iter()
        .filter(|p| crate::labels::select(&selector, &p.record.config.labels))
        .map(|p| {
            let r = &p.record;
            PodSandbox {
                id: r.id.clone(),
                metadata: Some(metadata(r)),
                state: state(r),
                created_at: r.created,
                labels: map(&r.config.labels),
                annotations: map(&r.config.annotations),
                runtime_handler: String::new(),
            }
        })
        .collect())
}
