//! `create`: a container from an image. The order makes a crash at any point repairable:
//! directory and lock first, then the row (not ready), the snapshot, the rootfs mount, the
//! spec and files, and last the row marked ready. `system check` removes whatever a killed
//! create left (an unlocked, not-ready row, a directory without a row, an orphan snapshot).

use std::path::PathBuf;

use barge_image::store::Image;

use crate::config::{ContainerConfig, MountSpec};
use crate::db::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::lock::ContainerLock;
use crate::spec::{self, SpecInput};
use crate::Engine;

/// What the user asked for; image defaults fill the gaps.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    /// `--entrypoint` (Some(vec![]) clears the image's).
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name (empty: the image's Cmd).
    pub cmd: Vec<String>,
    /// Everything else; `image`, `entrypoint`, `cmd` are filled in here.
    pub config: ContainerConfig,
}

impl Engine {
    /// Create a container from a local image (the caller pulls missing ones first).
    pub fn create(&self, opts: CreateOptions) -> Result<ContainerRecord> {
        let image_rec = self.images.resolve(&opts.config.image)?;
        let image = self.images.image(&image_rec)?;
        self.create_from_image(opts, &image)
    }

    /// Create a container from `image` as given (not looked up by name): the image builder
    /// runs `RUN` steps on a stage's layers this way, before the stage is an image in the
    /// store. Its rootfs is a writable snapshot on `image.top()`; `opts.config.image` is only
    /// the name shown for it.
    pub fn create_from_image(&self, opts: CreateOptions, image: &Image) -> Result<ContainerRecord> {
        let id = crate::names::new_id()?;
        let name = match &opts.name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                crate::names::validate(n)?;
                n.to_string()
            }
            None => crate::names::random_free_name(|n| {
                self.db.name_taken(crate::db::NameTable::Containers, n)
            })?,
        };
        let pod = self.pod_for_create(&opts.config)?;
        if let Some(h) = &opts.config.healthcheck {
            h.validate("Healthcheck")?;
        }
        // The image's HEALTHCHECK is only in its raw config (not in the OCI config type). A
        // builder stage's image may not be in the content store: it has none then.
        let image_health = self
            .images
            .content
            .read(&image.record.config)
            .ok()
            .and_then(|raw| crate::health::HealthCheck::from_image_config(&raw));
        let mut config = merge_image(opts, image, &id, image_health)?;
        if let Some(pod) = &pod {
            config.pod = Some(pod.id.clone());
            config.network = format!("pod:{}", pod.id);
            config.networks.clear();
            config.hostname = pod.config.hostname.clone();
        }
        crate::validate::request(&mut config)?;
        if pod.is_none() {
            self.resolve_network(&mut config)?;
        }
        let dir = self.paths.container(&id);
        std::fs::create_dir_all(&dir).ctx("create container directory", &dir)?;
        let _lock = match ContainerLock::acquire(&self.paths.lock(&id)) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut rec = ContainerRecord {
            id: id.clone(),
            name,
            created: barge_image::meta::now_nanos() as i64,
            config,
            ready: false,
        };
        if let Err(e) = self.db.insert(&rec) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        match self.make(&mut rec, image) {
            Ok(()) => {
                rec.ready = true;
                self.emit_container(&rec, crate::events::Action::Create, &[]);
                Ok(rec)
            }
            Err(e) => {
                self.discard(&id);
                Err(e)
            }
        }
    }

    fn make(&self, rec: &mut ContainerRecord, image: &Image) -> Result<()> {
        let id = rec.id.clone();
        let dir = self.paths.container(&id);
        let parent = image.top().map(|d| d.to_string());
        let mounts = self.images.snapshots.prepare(&id, parent.as_deref())?;
        let rootfs = self.paths.rootfs(&id);
        std::fs::create_dir_all(&rootfs).ctx("create rootfs directory", &rootfs)?;
        barge_image::mount::mount_all(&mounts, &rootfs)?;
        crate::populate::working_dir(&rootfs, &rec.config.working_dir)?;
        // Volumes: named ones are created on first use; the image's VOLUMEs not covered by a
        // -v become anonymous volumes. An empty volume gets the image's content at its
        // mount point (unless `nocopy`).
        let mut sources = Vec::new();
        for m in rec.config.mounts.iter_mut() {
            if m.kind == "volume" {
                let anonymous = m.source.is_empty();
                if anonymous {
                    m.source = crate::names::new_id()?;
                }
                self.volume_create(&m.source, Default::default(), anonymous)?;
                let path = self.volume_path(&m.source);
                if !m.nocopy {
                    crate::populate::volume_from_image(&rootfs, &m.destination, &path)?;
                }
                sources.push(path);
            } else {
                let p = PathBuf::from(&m.source);
                if !p.exists() {
                    return Err(Error::Invalid(format!(
                        "-v {}:{}: bind source path does not exist",
                        m.source, m.destination
                    )));
                }
                sources.push(p);
            }
        }
        self.write_etc_files(rec, &dir)?;
        let mut pod_join = None;
        let (etc_dir, netns) = match crate::network::Mode::of(&rec.config) {
            crate::network::Mode::Host => (dir.clone(), None),
            crate::network::Mode::Pod(pod) => {
                let pod = self.db.find_pod(pod)?;
                let mut namespaces = self.pod_namespaces(&pod);
                let net = namespaces
                    .iter()
                    .position(|(t, _)| *t == "network")
                    .map(|i| namespaces.remove(i).1);
                pod_join = Some(crate::spec::PodJoin {
                    namespaces,
                    host: self.pod_host_namespaces(&pod),
                    shm: self.pod_shm(&pod),
                    cgroup: self.pod_cgroup_path(&pod),
                });
                (self.pod_dir(&pod.id), net)
            }
            crate::network::Mode::Container(other) => {
                (self.paths.container(other), Some(self.paths.netns(other)))
            }
            _ => (dir.clone(), Some(self.paths.netns(&id))),
        };
        let spec = spec::build(&SpecInput {
            id: &id,
            config: &rec.config,
            rootfs: &rootfs,
            dir: &dir,
            mount_sources: &sources,
            init_path: &self.opts.init,
            etc_dir: &etc_dir,
            netns: netns.as_deref(),
            pod: pod_join,
        })?;
        if rec.config.init && !self.opts.init.is_file() {
            return Err(Error::Invalid(format!(
                "--init: {} not found (install Debian's tini package)",
                self.opts.init.display()
            )));
        }
        let path = dir.join("config.json");
        let data = serde_json::to_vec_pretty(&spec)
            .map_err(Error::encode(format!("runtime spec of container {id}")))?;
        barge_util::fs::write_atomic(&path, &data, 0o600, barge_util::fs::Durability::Durable)
            .ctx("write runtime spec", &path)?;
        self.db.update_config(&id, &rec.config)?;
        self.db.set_ready(&id)
    }

    fn write_etc_files(&self, rec: &ContainerRecord, dir: &std::path::Path) -> Result<()> {
        use crate::network::files;
        let c = &rec.config;
        let host = crate::network::Mode::of(c) == crate::network::Mode::Host;
        if matches!(
            crate::network::Mode::of(c),
            crate::network::Mode::Container(_) | crate::network::Mode::Pod(_)
        ) {
            // It uses the other container's hosts and resolv.conf.
            let p = dir.join("hostname");
            return std::fs::write(&p, format!("{}\n", c.hostname)).ctx("write", &p);
        }
        let hosts = if host {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            let mut entries = Vec::new();
            if c.networks.is_empty() {
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
        let dns = files::DnsOptions {
            servers: c.dns.clone(),
            search: c.dns_search.clone(),
            options: c.dns_options.clone(),
        };
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
            let p = dir.join(file);
            std::fs::write(&p, content).ctx("write", &p)?;
        }
        Ok(())
    }

    /// The pod a container is created in (`config.pod`), checked: a member takes its
    /// network, ports and hostname from the pod.
    fn pod_for_create(&self, c: &ContainerConfig) -> Result<Option<crate::pod::PodRecord>> {
        let Some(key) = c.pod.as_deref() else {
            if c.init_container {
                return Err(Error::BadParameter(
                    "an init container must belong to a pod (--pod)".into(),
                ));
            }
            return Ok(None);
        };
        let pod = self.db.find_pod(key)?;
        let mut refused = Vec::new();
        if !c.ports.is_empty() || c.publish_all {
            refused.push("-p/--publish");
        }
        if !matches!(c.network.as_str(), "" | "bridge" | "default") || c.networks.len() > 1 {
            refused.push("--network");
        }
        if !c.hostname.is_empty() {
            refused.push("--hostname");
        }
        if !c.dns.is_empty() || !c.dns_search.is_empty() || !c.dns_options.is_empty() {
            refused.push("--dns");
        }
        if !c.extra_hosts.is_empty() {
            refused.push("--add-host");
        }
        if !refused.is_empty() {
            return Err(Error::BadParameter(format!(
                "{} cannot be used with --pod {}: a pod's containers share its network, ports, hostname and DNS (set them on the pod)",
                refused.join(", "),
                pod.name
            )));
        }
        Ok(Some(pod))
    }

    /// Check and normalise `--network` and what goes with it (ports, aliases, DNS flags);
    /// the default network is created on first use.
    fn resolve_network(&self, c: &mut ContainerConfig) -> Result<()> {
        use crate::network::{files, store::DEFAULT_NETWORK};
        if matches!(c.network.as_str(), "" | "bridge" | "default") {
            c.network = DEFAULT_NETWORK.into();
        }
        files::DnsOptions {
            servers: c.dns.clone(),
            search: c.dns_search.clone(),
            options: c.dns_options.clone(),
        }
        .validate()?;
        for h in &c.extra_hosts {
            files::parse_add_host(h)?;
        }
        let first = c.networks.first().cloned().unwrap_or_default();
        let special =
            matches!(c.network.as_str(), "none" | "host") || c.network.starts_with("container:");
        if special {
            if !c.ports.is_empty() || c.publish_all {
                return Err(Error::Invalid(format!(
                    "conflicting options: port publishing and --network {}",
                    c.network
                )));
            }
            if !first.aliases.is_empty() || first.ip.is_some() {
                return Err(Error::Invalid(format!(
                    "conflicting options: --network-alias/--ip and --network {}",
                    c.network
                )));
            }
            c.networks.clear();
            if let Some(other) = c.network.strip_prefix("container:") {
                let o = self.db.find(other)?;
                if o.config.network.starts_with("container:") {
                    // Join the namespace where it really lives.
                    c.network = o.config.network.clone();
                } else if o.config.network == "host" {
                    c.network = "host".into();
                } else {
                    c.network = format!("container:{}", o.id);
                }
            }
            return Ok(());
        }
        let net = self.networks().get(&c.network)?;
        if net.is_default() && !first.aliases.is_empty() {
            return Err(Error::Invalid(
                "--network-alias: network-scoped aliases need a user-defined network".into(),
            ));
        }
        c.network = net.name().to_string();
        c.networks = vec![crate::config::Endpoint {
            network: net.name().to_string(),
            ..first
        }];
        Ok(())
    }

    /// Remove everything a container has on disk and in the database, whatever state it is
    /// in (used for failed creates, `rm` and `system check`). The caller holds the lock or
    /// knows nobody does.
    pub(crate) fn discard(&self, id: &str) {
        self.release(id);
        self.forget(id);
    }

    /// The first half of `discard`: the rootfs mount, the runtime's state, the snapshot,
    /// the socket.
    pub(crate) fn release(&self, id: &str) {
        let rootfs = self.paths.rootfs(id);
        crate::container::unmount_rootfs(&rootfs);
        if let Ok(store) = self.runtime() {
            let _ = barge_runtime::container::delete(&store, id, true);
        }
        let _ = self.images.snapshots.remove(id);
        let _ = std::fs::remove_file(self.paths.socket(id));
    }

    /// The second half of `discard`: the directory and the row.
    pub(crate) fn forget(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.paths.container(id));
        let _ = self.db.delete(id);
    }
}

/// The image's defaults under the user's flags, as docker merges them.
fn merge_image(
    opts: CreateOptions,
    image: &Image,
    id: &str,
    image_health: Option<crate::health::HealthCheck>,
) -> Result<ContainerConfig> {
    let mut c = opts.config;
    c.healthcheck = crate::health::HealthCheck::merge(c.healthcheck.take(), image_health);
    let ic = image.config.config().clone().unwrap_or_default();
    c.image_id = image.record.config.to_string();
    c.entrypoint = match opts.entrypoint {
        Some(e) => e,
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    c.cmd = if !opts.cmd.is_empty() {
        opts.cmd
    } else if c.entrypoint.is_empty() || ic.entrypoint().is_some() {
        // docker: --entrypoint resets the image's Cmd.
        ic.cmd().clone().unwrap_or_default()
    } else {
        Vec::new()
    };
    c.env = crate::config::merge_env(ic.env().as_deref().unwrap_or_default(), &c.env);
    if c.working_dir.is_empty() {
        c.working_dir = ic.working_dir().clone().unwrap_or_default();
    }
    if c.user.is_empty() {
        c.user = ic.user().clone().unwrap_or_default();
    }
    if c.hostname.is_empty() {
        c.hostname = id[..12].to_string();
    }
    let mut labels = ic.labels().clone().unwrap_or_default();
    labels.extend(std::mem::take(&mut c.labels));
    c.labels = labels.into_iter().collect();
    if c.stop_signal.is_empty() {
        c.stop_signal = ic.stop_signal().clone().unwrap_or_else(|| "SIGTERM".into());
    }
    barge_runtime::signal::parse(&c.stop_signal)
        .map_err(|_| Error::Invalid(format!("stop signal {:?} is not a signal", c.stop_signal)))?;
    let mut exposed: Vec<String> = ic.exposed_ports().clone().unwrap_or_default();
    exposed.append(&mut c.exposed);
    let mut ports = Vec::new();
    for (port, proto) in crate::network::ports::parse_exposed(&exposed)? {
        let p = format!("{port}/{proto}");
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    c.exposed = ports;
    for v in ic.volumes().as_deref().unwrap_or_default() {
        if !c.mounts.iter().any(|m| &m.destination == v) {
            c.mounts.push(MountSpec {
                kind: "volume".into(),
                source: String::new(),
                destination: v.clone(),
                readonly: false,
                nocopy: false,
            });
        }
    }
    if c.log_max_files == 0 {
        c.log_max_files = 1;
    }
    Ok(c)
}
