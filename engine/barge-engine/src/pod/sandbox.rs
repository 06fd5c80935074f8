//! A pod's sandbox: namespaces pinned by files (no process holds them), its network, its
//! /etc files, its /dev/shm and its cgroup.
//!
//! - network: `<runroot>/netns/<pod id>` (made like a container's, CNI-attached; the
//!   attachments are recorded in `<root>/pods/<id>/net/`);
//! - IPC and UTS: `<runroot>/pods/<id>/{ipc,uts}`, made by a thread that unshares the
//!   namespace, sets the hostname or the IPC sysctls, and bind-mounts its nsfs file (none
//!   for hostIPC, none for UTS with Kubernetes' hostNetwork: the host's are used);
//! - PID, only with `shareProcessNamespace`: `<runroot>/pods/<id>/pid`, the namespace of a
//!   `barge-pause` process (its init, the pod's only process; PID in `pause.pid`);
//! - `/dev/shm`: a tmpfs at `<runroot>/pods/<id>/shm` bind-mounted into every member (POSIX
//!   shared memory lives there, so sharing IPC means sharing it);
//! - `hostname`, `hosts`, `resolv.conf` in `<root>/pods/<id>/`;
//! - the pod cgroup (members' cgroups are made under it; pod limits are set on it), its
//!   placement kept in `<root>/pods/<id>/cgroup.json`.
//!
//! `sandbox_up` undoes what it did on failure; `sandbox_down` removes everything and
//! tolerates pieces that are already gone.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::config::{PodRecord, SandboxState};
use super::pause;
use crate::config::{ContainerConfig, Endpoint};
use crate::db::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::lock::ContainerLock;
use crate::network::files;
use crate::Engine;

/// Size of a pod's /dev/shm (docker's and Kubernetes' default).
const SHM_SIZE: &str = "size=65536k";

/// The IPC sysctls (set in the pod's IPC namespace).
fn is_ipc_sysctl(k: &str) -> bool {
    k.starts_with("kernel.shm")
        || k.starts_with("kernel.msg")
        || k == "kernel.sem"
        || k.starts_with("fs.mqueue.")
}

/// Check the sysctls a pod asks for: namespaced ones only, in a namespace the pod has.
pub(crate) fn check_sysctls(rec_cfg: &super::PodConfig) -> Result<()> {
    for k in rec_cfg.sysctls.keys() {
        let k2 = k.replace('/', ".");
        if k2.is_empty() || k2.contains("..") || k2.starts_with('.') {
            return Err(Error::BadParameter(format!("sysctl {k:?}: invalid name")));
        }
        let ok = if is_ipc_sysctl(&k2) {
            rec_cfg.share.ipc
        } else if k2.starts_with("net.") {
            rec_cfg.network != "host"
        } else {
            false
        };
        if !ok {
            return Err(Error::BadParameter(format!(
                "sysctl {k}: not a namespaced sysctl of the pod's namespaces (net.* needs the \
                 pod's own network, kernel.shm*/msg*/sem and fs.mqueue.* a shared IPC namespace)"
            )));
        }
    }
    Ok(())
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

fn write_sysctls<'a>(list: impl Iterator<Item = (&'a String, &'a String)>) -> Result<()> {
    for (k, v) in list {
        let p = sysctl_path(k);
        std::fs::write(&p, v).ctx("set sysctl", &p)?;
    }
    Ok(())
}

/// Make a new namespace of `kind` (`ns` = its name under /proc/thread-self/ns) in a thread of
/// its own, run `setup` in it, and pin it at `path` (a new file). Nothing is left on failure.
fn pin_new(
    kind: CloneFlags,
    ns: &'static str,
    path: &Path,
    setup: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .ctx("create namespace pin", path)?;
    let target = path.to_path_buf();
    // unshare moves only the calling thread: a thread of its own takes the namespace, pins
    // it and ends.
    let res = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(kind).map_err(Error::sys(format!("unshare {ns} namespace")))?;
        setup()?;
        mount(
            Some(format!("/proc/thread-self/ns/{ns}").as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(Error::sys(format!(
            "bind-mount the new {ns} namespace on {}",
            target.display()
        )))
    })
    .join()
    .unwrap_or_else(|_| Err(Error::Record(format!("{ns} namespace thread panicked"))));
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Run `f` in a thread that joined the namespace pinned at `path`.
fn in_namespace(
    kind: CloneFlags,
    path: &Path,
    f: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<()> {
    let file = std::fs::File::open(path).ctx("open namespace", path)?;
    let shown = path.display().to_string();
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(&file, kind).map_err(Error::sys(format!("join namespace {shown}")))?;
        f()
    })
    .join()
    .unwrap_or_else(|_| Err(Error::Record("namespace thread panicked".into())))
}

/// Unmount a pin or mount point (if mounted) and remove it; gone is fine.
fn remove_mount_point(path: &Path, dir: bool) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = if dir {
        std::fs::remove_dir(path)
    } else {
        std::fs::remove_file(path)
    };
}

impl Engine {
    /// `<root>/pods/<id>`: the pod's lock, /etc files, network attachments, cgroup record.
    pub fn pod_dir(&self, id: &str) -> PathBuf {
        self.paths.root.join("pods").join(id)
    }

    /// `<runroot>/pods/<id>`: its IPC and UTS pins and its /dev/shm.
    pub fn pod_run_dir(&self, id: &str) -> PathBuf {
        self.paths.runroot.join("pods").join(id)
    }

    /// The pod's lock (its directory is made again if a crash left the row without it, so
    /// such a pod can still be removed).
    pub(crate) fn pod_lock(&self, id: &str) -> Result<ContainerLock> {
        let dir = self.pod_dir(id);
        std::fs::create_dir_all(&dir).ctx("create pod directory", &dir)?;
        ContainerLock::acquire(&dir.join("lock"))
    }

    /// The pinned namespaces the pod's containers join, by OCI type (`network`, `ipc`,
    /// `uts`, `pid`), whether or not they exist now.
    pub fn pod_namespaces(&self, pod: &PodRecord) -> Vec<(&'static str, PathBuf)> {
        let mut v = Vec::new();
        let host_net = pod.config.network == "host";
        if !host_net {
            v.push(("network", self.paths.netns(&pod.id)));
        }
        if pod.config.share.ipc && !pod.config.host_ipc {
            v.push(("ipc", self.pod_run_dir(&pod.id).join("ipc")));
        }
        if pod.config.share.uts {
            v.push(("uts", self.pod_run_dir(&pod.id).join("uts")));
        }
        if pod.config.share.pid {
            v.push(("pid", self.pod_run_dir(&pod.id).join("pid")));
        }
        v
    }

    /// The namespaces the pod's containers take from the host (OCI types): `ipc` with
    /// hostIPC, `uts` on the host's network when the pod shares no UTS namespace of its own
    /// (Kubernetes' hostNetwork; `barge pod create --network host` keeps podman's habit of a
    /// pod hostname in a UTS namespace of the pod's).
    pub fn pod_host_namespaces(&self, pod: &PodRecord) -> Vec<&'static str> {
        let mut v = Vec::new();
        if pod.config.host_ipc {
            v.push("ipc");
        }
        if pod.config.network == "host" && !pod.config.share.uts {
            v.push("uts");
        }
        v
    }

    /// The pod's /dev/shm (shared with IPC), if it shares an IPC namespace of its own.
    pub fn pod_shm(&self, pod: &PodRecord) -> Option<PathBuf> {
        (pod.config.share.ipc && !pod.config.host_ipc)
            .then(|| self.pod_run_dir(&pod.id).join("shm"))
    }

    /// The pod cgroup's path as a `linux.cgroupsPath` prefix (members are `<this>/<id>`).
    pub fn pod_cgroup_path(&self, pod: &PodRecord) -> String {
        match &pod.config.cgroup_parent {
            Some(p) if !p.is_empty() => p.trim_end_matches('/').to_string(),
            _ => format!("barge/pod-{}", pod.id),
        }
    }

    /// Whether the sandbox's namespaces are pinned now.
    pub fn pod_sandbox_is_up(&self, pod: &PodRecord) -> bool {
        self.pod_namespaces(pod)
            .iter()
            .all(|(_, p)| barge_runtime::netns::is_pinned(p))
            && (!pod.config.share.pid || pause::alive(&self.pod_run_dir(&pod.id)).is_some())
    }

    /// The record the network code works on for the pod (its id, its networks).
    fn pod_net_record(&self, pod: &PodRecord) -> ContainerRecord {
        let c = &pod.config;
        let mut config = ContainerConfig {
            hostname: c.hostname.clone(),
            network: c.network.clone(),
            extra_hosts: c.extra_hosts.clone(),
            ports: c.ports.clone(),
            dns: c.dns.servers.clone(),
            dns_search: c.dns.searches.clone(),
            dns_options: c.dns.options.clone(),
            ..Default::default()
        };
        if !matches!(c.network.as_str(), "none" | "host") {
            config.networks = vec![Endpoint {
                network: c.network.clone(),
                ..Default::default()
            }];
        }
        ContainerRecord {
            id: pod.id.clone(),
            name: pod.name.clone(),
            created: pod.created,
            config,
            ready: true,
        }
    }

    /// Bring the sandbox up unless it is (takes the pod's lock). Used by `pod_start` and by
    /// the start of a member container.
    pub fn pod_sandbox_up(&self, key: &str) -> Result<PodRecord> {
        let pod = self.db.find_pod(key)?;
        let _lock = self.pod_lock(&pod.id)?;
        // Read again under the lock: another start or a stop may have finished meanwhile.
        let pod = self.db.find_pod(&pod.id)?;
        if pod.sandbox == SandboxState::Ready && self.pod_sandbox_is_up(&pod) {
            return Ok(pod);
        }
        // Leftovers of a sandbox that was not torn down (a crash, a reboot) go first.
        self.sandbox_teardown(&pod);
        if let Err(e) = self.sandbox_make(&pod) {
            self.sandbox_teardown(&pod);
            return Err(e);
        }
        self.db.set_pod_sandbox(&pod.id, SandboxState::Ready)?;
        self.db.find_pod(&pod.id)
    }

    /// Tear the sandbox down (takes the pod's lock); the caller stopped the containers.
    pub fn pod_sandbox_down(&self, key: &str, state: SandboxState) -> Result<()> {
        let pod = self.db.find_pod(key)?;
        let _lock = self.pod_lock(&pod.id)?;
        self.sandbox_teardown(&pod);
        self.db.set_pod_sandbox(&pod.id, state)
    }

    fn sandbox_make(&self, pod: &PodRecord) -> Result<()> {
        let c = &pod.config;
        let run = self.pod_run_dir(&pod.id);
        std::fs::create_dir_all(&run).ctx("create directory", &run)?;
        // The cgroup first: the members' cgroups go under it.
        self.pod_cgroup_make(pod)?;
        if c.share.ipc && !c.host_ipc {
            let sysctls: Vec<(String, String)> = c
                .sysctls
                .iter()
                .filter(|(k, _)| is_ipc_sysctl(&k.replace('/', ".")))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            pin_new(
                CloneFlags::CLONE_NEWIPC,
                "ipc",
                &run.join("ipc"),
                move || write_sysctls(sysctls.iter().map(|(k, v)| (k, v))),
            )?;
            let shm = run.join("shm");
            std::fs::create_dir_all(&shm).ctx("create directory", &shm)?;
            mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(format!("mode=1777,{SHM_SIZE}").as_str()),
            )
            .map_err(Error::sys(format!(
                "mount the pod's /dev/shm on {}",
                shm.display()
            )))?;
        }
        if c.share.pid {
            pause::start(&run)?;
        }
        if c.share.uts {
            let host = c.hostname.clone();
            pin_new(
                CloneFlags::CLONE_NEWUTS,
                "uts",
                &run.join("uts"),
                move || {
                    nix::unistd::sethostname(&host)
                        .map_err(Error::sys(format!("set the pod's hostname {host:?}")))
                },
            )?;
        }
        let mut ips = Vec::new();
        if c.network != "host" {
            ips = self.pod_network_make(pod)?;
        }
        self.pod_write_etc(pod, &ips)
    }

    /// The pinned network namespace, its sysctls, and CNI ADD on the pod's network (ports
    /// published there). Returns the pod's addresses.
    fn pod_network_make(&self, pod: &PodRecord) -> Result<Vec<String>> {
        use crate::network::ports;
        let rec = self.pod_net_record(pod);
        let pin = self.paths.netns(&pod.id);
        barge_runtime::netns::create_pinned(
            &pin,
            barge_runtime::netns::Options {
                loopback_up: true,
                no_ipv6_dad: true,
            },
        )?;
        let sysctls: Vec<(String, String)> = pod
            .config
            .sysctls
            .iter()
            .filter(|(k, _)| k.replace('/', ".").starts_with("net."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !sysctls.is_empty() {
            in_namespace(CloneFlags::CLONE_NEWNET, &pin, move || {
                write_sysctls(sysctls.iter().map(|(k, v)| (k, v)))
            })?;
        }
        let mut ips = Vec::new();
        if let Some(ep) = rec.config.networks.first() {
            // The sockets that reserve the host ports are dropped after ADD: a pod has no
            // process to hold them (portmap's rules forward the ports).
            let (bindings, _held) = ports::resolve(&rec.config.ports, false, &[])?;
            let att = self.attach_one(&rec, ep, "eth0", &bindings)?;
            for (ip, prefix, _) in att.addresses() {
                ips.push(format!("{ip}/{prefix}"));
            }
        } else if !pod.config.ports.is_empty() {
            return Err(Error::BadParameter(format!(
                "pod {}: port publishing needs a network (not {:?})",
                pod.name, pod.config.network
            )));
        }
        Ok(ips)
    }

    /// hostname, hosts (its addresses under its hostname, extra hosts), resolv.conf.
    fn pod_write_etc(&self, pod: &PodRecord, ips: &[String]) -> Result<()> {
        let c = &pod.config;
        let dir = self.pod_dir(&pod.id);
        let host = c.network == "host";
        let hosts = if host {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            let mut entries = Vec::new();
            for ip in ips {
                entries.push(files::HostEntry {
                    ip: ip.split('/').next().unwrap_or(ip).to_string(),
                    names: vec![c.hostname.clone()],
                });
            }
            if ips.is_empty() {
                entries.push(files::HostEntry {
                    ip: "127.0.1.1".into(),
                    names: vec![c.hostname.clone()],
                });
            }
            for h in &c.extra_hosts {
                entries.push(files::parse_add_host(h)?);
            }
            files::hosts_file(&entries)
        };
        let dns = c.dns.resolv_options();
        let resolv = files::resolv_conf(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            &dns,
            host,
        );
        for (file, content) in [
            ("hostname", format!("{}\n", c.hostname)),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            // In place: members bind-mount these files.
            files::write_in_place(&dir.join(file), &content)?;
        }
        Ok(())
    }

    /// Make the pod cgroup and set the pod's limits on it.
    fn pod_cgroup_make(&self, pod: &PodRecord) -> Result<()> {
        let path = self.pod_cgroup_path(pod);
        let r = &pod.config.resources;
        let mut res = serde_json::json!({});
        if let Some(m) = r.memory {
            res["memory"] = serde_json::json!({ "limit": m });
        }
        if let Some(cpus) = r.cpus {
            res["cpu"] =
                serde_json::json!({"quota": (cpus * 100_000.0).round() as i64, "period": 100_000});
        }
        if let Some(s) = r.cpu_shares {
            res["cpu"]["shares"] = serde_json::json!(s);
        }
        if let Some(p) = r.pids_limit {
            res["pids"] = serde_json::json!({ "limit": p });
        }
        let res: oci_spec::runtime::LinuxResources = serde_json::from_value(res)
            .map_err(|e| Error::BadParameter(format!("pod {} resources: {e}", pod.name)))?;
        barge_runtime::cgroups::resources::validate(&res)?;
        let placement = barge_runtime::cgroups::create(Some(Path::new(&path)), &pod.id, &res)?;
        let record = self.pod_dir(&pod.id).join("cgroup.json");
        let saved = serde_json::to_vec(&placement)
            .map_err(Error::encode(format!("cgroup of pod {}", pod.id)))
            .and_then(|data| {
                barge_util::fs::write_atomic(
                    &record,
                    &data,
                    0o600,
                    barge_util::fs::Durability::Durable,
                )
                .ctx("write", &record)
            });
        if let Err(e) = saved {
            let _ = placement.remove();
            return Err(e);
        }
        placement.apply(&res, &[], barge_runtime::cgroups::resources::Phase::Create)?;
        Ok(())
    }

    /// The pod cgroup's placement, while it exists.
    pub fn pod_cgroup(&self, pod_id: &str) -> Option<barge_runtime::cgroups::Placement> {
        let data = std::fs::read(self.pod_dir(pod_id).join("cgroup.json")).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Remove whatever the sandbox has (network, pins, /dev/shm, cgroup); missing pieces
    /// are fine, failures are logged (a pod must stay removable).
    fn sandbox_teardown(&self, pod: &PodRecord) {
        self.network_down(&pod.id);
        let run = self.pod_run_dir(&pod.id);
        if let Err(e) = pause::stop(&run) {
            tracing::warn!("pod {}: {e}", pod.id);
        }
        for ns in ["ipc", "uts", "pid"] {
            if let Err(e) = barge_runtime::netns::remove_pinned(&run.join(ns)) {
                tracing::warn!("pod {}: {e}", pod.id);
            }
        }
        remove_mount_point(&run.join("shm"), true);
        let _ = std::fs::remove_dir(&run);
        let record = self.pod_dir(&pod.id).join("cgroup.json");
        if let Some(p) = self.pod_cgroup(&pod.id) {
            if let Err(e) = p.remove() {
                tracing::warn!("pod {}: remove its cgroup: {e}", pod.id);
                return;
            }
        }
        let _ = std::fs::remove_file(record);
    }
}
