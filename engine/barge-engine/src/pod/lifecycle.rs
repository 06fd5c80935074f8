//! The pod API every front end calls (CLI, CRI, `kube play`): create, start, stop, remove,
//! list, inspect.

use barge_events::{Action, Event, Type};

use super::config::{PodConfig, PodRecord, SandboxState};
use super::status::{self, PodContainer, PodFilters, PodInspect, PodListed, SandboxPaths};
use crate::db::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::network::files;
use crate::Engine;

impl Engine {
    /// Create a pod (no namespaces yet: `pod_start` or its first container's start makes the
    /// sandbox). Duplicate name: Conflict; bad config: BadParameter; nothing is left on error.
    pub fn pod_create(&self, config: PodConfig) -> Result<PodRecord> {
        let mut config = config;
        let name = match config.name.take() {
            Some(n) => {
                crate::names::validate(&n).map_err(|e| Error::BadParameter(e.to_string()))?;
                n
            }
            None => crate::names::random_free_name(|n| {
                self.db.name_taken(crate::db::NameTable::Pods, n)
            })?,
        };
        self.pod_check(&mut config, &name)?;
        config.name = Some(name.clone());
        let rec = PodRecord {
            id: crate::names::new_id()?,
            name,
            created: barge_image::meta::now_nanos() as i64,
            config,
            sandbox: SandboxState::Created,
        };
        self.db.insert_pod(&rec)?;
        let dir = self.pod_dir(&rec.id);
        let made = std::fs::create_dir_all(&dir)
            .ctx("create pod directory", &dir)
            .and_then(|()| self.pod_write_files_initial(&rec));
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = self.db.delete_pod(&rec.id);
            return Err(e);
        }
        self.emit_pod(&rec, Action::Create);
        Ok(rec)
    }

    /// Check a pod config as `pod_create` would, making nothing (`kube play` checks every pod
    /// of a file before it makes any). Same errors as `pod_create` except a taken name.
    pub fn pod_validate(&self, config: &PodConfig) -> Result<()> {
        let mut c = config.clone();
        let name = match c.name.take() {
            Some(n) => {
                crate::names::validate(&n).map_err(|e| Error::BadParameter(e.to_string()))?;
                n
            }
            None => "pod".to_string(),
        };
        self.pod_check(&mut c, &name)
    }

    /// Check a pod's config and fill its defaults (hostname, network).
    fn pod_check(&self, c: &mut PodConfig, name: &str) -> Result<()> {
        if c.host_ipc && c.share.ipc {
            return Err(Error::BadParameter(
                "hostIPC with a shared IPC namespace: the pod uses either the host's or its own"
                    .into(),
            ));
        }
        if matches!(c.network.as_str(), "" | "bridge" | "default") {
            c.network = crate::network::store::DEFAULT_NETWORK.into();
        }
        if !c.share.net && c.network != "host" {
            return Err(Error::BadParameter(
                "--share without net: a pod's containers always share its network namespace (use network host for none of its own)".into(),
            ));
        }
        if c.hostname.is_empty() {
            c.hostname = name.to_string();
        }
        if c.hostname.len() > 64 || c.hostname.contains(['/', ' ', '\n']) {
            return Err(Error::BadParameter(format!(
                "hostname {:?}: not a valid host name",
                c.hostname
            )));
        }
        if let Some(p) = &c.cgroup_parent {
            if p.ends_with(".slice") {
                return Err(Error::BadParameter(format!(
                    "cgroup parent {p:?}: systemd slices need the systemd cgroup driver, which barge does not have; give a cgroupfs path"
                )));
            }
            if p.split('/').any(|x| x == "..") {
                return Err(Error::BadParameter(format!(
                    "cgroup parent {p:?}: \"..\" is not allowed"
                )));
            }
        }
        c.dns
            .resolv_options()
            .validate()
            .map_err(|e| Error::BadParameter(e.to_string()))?;
        for h in &c.extra_hosts {
            files::parse_add_host(h).map_err(|e| Error::BadParameter(e.to_string()))?;
        }
        super::sandbox::check_sysctls(c)?;
        if let Some(m) = c.resources.memory {
            if m < 6 * 1024 * 1024 && m != 0 {
                return Err(Error::BadParameter(
                    "pod memory limit: the minimum is 6MB".into(),
                ));
            }
        }
        if let Some(cpus) = c.resources.cpus {
            if !(cpus.is_finite() && cpus > 0.0 && cpus <= 1024.0) {
                return Err(Error::BadParameter(format!(
                    "pod cpus {cpus}: out of range"
                )));
            }
        }
        if !matches!(c.network.as_str(), "none" | "host") {
            let net = self.networks().get(&c.network)?;
            c.network = net.name().to_string();
        } else if !c.ports.is_empty() {
            return Err(Error::BadParameter(format!(
                "port publishing needs a network of the pod's own, not {:?}",
                c.network
            )));
        }
        // Ports: the same checks as a container's (a bad spec fails here, not at start).
        // Host ports are only reserved at start.
        for p in &c.ports {
            if p.container_port == 0 {
                return Err(Error::BadParameter(format!(
                    "port mapping {p}: no container port"
                )));
            }
        }
        Ok(())
    }

    /// hostname, hosts and resolv.conf before the sandbox exists (members created before
    /// the pod starts bind-mount them; the start rewrites them in place).
    fn pod_write_files_initial(&self, rec: &PodRecord) -> Result<()> {
        let dir = self.pod_dir(&rec.id);
        for f in ["hostname", "hosts", "resolv.conf"] {
            let p = dir.join(f);
            std::fs::write(&p, "").ctx("write", &p)?;
        }
        Ok(())
    }

    /// Bring the sandbox up (idempotent), run the init containers in creation order (each
    /// must exit 0: a failure stops the pod and is returned), then start the other
    /// containers (all are tried; the first failure is returned).
    pub fn pod_start(&self, key: &str) -> Result<PodRecord> {
        let pod = self.db.find_pod(key)?;
        self.pod_sandbox_up(&pod.id)?;
        let members = self.pod_containers(&pod.id)?;
        for c in members.iter().filter(|c| c.config.init_container) {
            let code = self
                .start(&c.id, None)
                .and_then(|_| self.wait(&c.id))
                .map_err(|e| {
                    Error::Conflict(format!(
                        "pod {}: init container {} failed to start: {e}",
                        pod.name, c.name
                    ))
                });
            let failed = match code {
                Ok(0) => None,
                Ok(n) => Some(Error::Conflict(format!(
                    "pod {}: init container {} exited with code {n}; the pod was stopped",
                    pod.name, c.name
                ))),
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                let _ = self.pod_stop(&pod.id, None);
                return Err(e);
            }
        }
        let mut first_err = None;
        for c in members.iter().filter(|c| !c.config.init_container) {
            if self.status(c).state.is_active() {
                continue;
            }
            if let Err(e) = self.start(&c.id, None) {
                first_err.get_or_insert(e);
            }
        }
        let rec = self.db.find_pod(&pod.id)?;
        self.emit_pod(&rec, Action::Start);
        first_err.map_or(Ok(rec), Err)
    }

    /// Stop every container, last made first (`timeout` seconds before SIGKILL, None: each
    /// one's own), then tear the sandbox down (network, namespaces, /dev/shm, cgroup).
    pub fn pod_stop(&self, key: &str, timeout: Option<u32>) -> Result<PodRecord> {
        let pod = self.db.find_pod(key)?;
        let mut first_err = None;
        for c in self.pod_containers(&pod.id)?.iter().rev() {
            if let Err(e) = self.stop(&c.id, timeout) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.pod_sandbox_down(&pod.id, SandboxState::Stopped)?;
        let rec = self.db.find_pod(&pod.id)?;
        self.emit_pod(&rec, Action::Stop);
        Ok(rec)
    }

    /// Remove a pod with its containers. Running containers: Conflict unless `force` (then
    /// they are stopped). Leaves no pin, veth, mount or cgroup.
    pub fn pod_remove(&self, key: &str, force: bool) -> Result<PodRecord> {
        let pod = self.db.find_pod(key)?;
        let members = self.pod_containers(&pod.id)?;
        let running: Vec<&str> = members
            .iter()
            .filter(|c| self.status(c).state.is_active())
            .map(|c| c.name.as_str())
            .collect();
        if !running.is_empty() && !force {
            return Err(Error::Conflict(format!(
                "pod {} has running containers ({}): stop the pod first or force the removal",
                pod.name,
                running.join(", ")
            )));
        }
        for c in members.iter().rev() {
            self.remove(&c.id, true, false)?;
        }
        self.pod_sandbox_down(&pod.id, SandboxState::Stopped)?;
        let dir = self.pod_dir(&pod.id);
        std::fs::remove_dir_all(&dir).ctx("remove pod directory", &dir)?;
        self.db.delete_pod(&pod.id)?;
        self.emit_pod(&pod, Action::Destroy);
        Ok(pod)
    }

    /// Every pod matching `filters`, newest first, with status and containers.
    pub fn pod_list(&self, filters: &PodFilters) -> Result<Vec<PodListed>> {
        let all = self.db.all()?;
        let mut out = Vec::new();
        for record in self.db.pods()? {
            let record = self.with_live_sandbox(record);
            if let Some(id) = &filters.id {
                if !record.id.starts_with(id.as_str()) {
                    continue;
                }
            }
            if filters.name.as_ref().is_some_and(|n| *n != record.name) {
                continue;
            }
            if !filters
                .labels
                .iter()
                .all(|t| crate::filters::label_matches(t, &record.config.labels))
            {
                continue;
            }
            if let Some(ready) = filters.ready {
                if (record.sandbox == SandboxState::Ready) != ready {
                    continue;
                }
            }
            let containers = self.pod_members_of(&record.id, &all);
            let status = status::derive(&record, &containers);
            if !filters.status.is_empty() && !filters.status.contains(&status) {
                continue;
            }
            out.push(PodListed {
                record,
                status,
                containers,
            });
        }
        Ok(out)
    }

    /// One pod in detail.
    pub fn pod_inspect(&self, key: &str) -> Result<PodInspect> {
        let record = self.with_live_sandbox(self.db.find_pod(key)?);
        let containers = self.pod_members_of(&record.id, &self.db.all()?);
        let status = status::derive(&record, &containers);
        let namespaces = self
            .pod_namespaces(&record)
            .into_iter()
            .filter(|(_, p)| barge_runtime::netns::is_pinned(p))
            .map(|(t, p)| (t.to_string(), p))
            .collect();
        let cgroups = self
            .pod_cgroup(&record.id)
            .map(|p| p.paths)
            .unwrap_or_default();
        let atts = self.attachments(&record.id);
        let ips = atts
            .first()
            .map(|a| {
                a.addresses()
                    .into_iter()
                    .map(|(ip, prefix, _)| format!("{ip}/{prefix}"))
                    .collect()
            })
            .unwrap_or_default();
        let ports = atts.first().map(|a| a.ports.clone()).unwrap_or_default();
        Ok(PodInspect {
            sandbox: SandboxPaths {
                namespaces,
                etc_dir: self.pod_dir(&record.id),
                cgroups,
            },
            record,
            status,
            containers,
            ips,
            ports,
        })
    }

    /// The pod's row by id, name or id prefix.
    pub fn pod_find(&self, key: &str) -> Result<PodRecord> {
        self.db.find_pod(key)
    }

    /// The pod's containers, in creation order.
    pub fn pod_containers(&self, pod_id: &str) -> Result<Vec<ContainerRecord>> {
        let mut v: Vec<ContainerRecord> = self
            .db
            .all()?
            .into_iter()
            .filter(|r| r.config.pod.as_deref() == Some(pod_id))
            .collect();
        v.sort_by_key(|r| r.created);
        Ok(v)
    }

    fn pod_members_of(&self, pod_id: &str, all: &[ContainerRecord]) -> Vec<PodContainer> {
        let mut v: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| r.config.pod.as_deref() == Some(pod_id))
            .collect();
        v.sort_by_key(|r| r.created);
        v.into_iter()
            .map(|r| {
                let st = self.status(r);
                PodContainer {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    state: st.state,
                    exit_code: st.exit_code,
                    init: r.config.init_container,
                }
            })
            .collect()
    }

    /// The record with the sandbox state as it is: a sandbox recorded Ready whose pins are
    /// gone (a reboot wiped the run root, a crash mid-teardown) shows as Stopped.
    fn with_live_sandbox(&self, mut rec: PodRecord) -> PodRecord {
        if rec.sandbox == SandboxState::Ready && !self.pod_sandbox_is_up(&rec) {
            rec.sandbox = SandboxState::Stopped;
        }
        rec
    }

    fn emit_pod(&self, rec: &PodRecord, action: Action) {
        let mut ev = Event::now(Type::Pod, action, rec.id.clone()).attr("name", rec.name.clone());
        for (k, v) in &rec.config.labels {
            ev = ev.attr(k.as_str(), v.clone());
        }
        self.emit(&ev);
    }
}
