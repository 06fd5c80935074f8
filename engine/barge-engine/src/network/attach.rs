//! A container's network, brought up when it starts and down when it stops, exits or is
//! removed: a network namespace pinned under the run root, then CNI ADD on each of its
//! networks (eth0, eth1, ...). What was sent and answered is kept per attachment in the
//! container's `net/` directory (written before ADD, so that a crash mid-ADD still gets
//! its DEL): DEL always runs from there, whatever happened to the container meanwhile.

use std::path::PathBuf;

use barge_cni::{CniResult, NetworkConfigList, RuntimeConf};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ports::{self, PortBinding};
use super::store::Networks;
use super::{bridge, rules, Mode};
use crate::config::Endpoint;
use crate::db::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::Engine;

/// One network a container is on, as set up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub network_id: String,
    pub ifname: String,
    /// The config list as handed to the plugins.
    pub list: Value,
    pub container_id: String,
    pub netns: PathBuf,
    pub args: Vec<(String, String)>,
    pub capability_args: serde_json::Map<String, Value>,
    /// The plugins' answer; None while ADD has not finished.
    pub result: Option<Value>,
    pub ports: Vec<PortBinding>,
    pub aliases: Vec<String>,
    /// Peers on this network get /etc/hosts entries for it.
    pub dns: bool,
    /// Who wired it: None for the CNI plugins of `list`, `barge-bridge` for the in-process
    /// bridge driver (see `bridge`), which then runs only the list's `portmap`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

impl Attachment {
    fn runtime_conf(&self) -> RuntimeConf {
        RuntimeConf {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: self.ifname.clone(),
            args: self.args.clone(),
            capability_args: self.capability_args.clone(),
        }
    }

    fn config_list(&self) -> Result<NetworkConfigList> {
        let data = serde_json::to_vec(&self.list)
            .map_err(Error::encode(format!("network {}", self.network)))?;
        Ok(NetworkConfigList::from_slice(
            &data,
            &format!("cached config of network {}", self.network),
        )?)
    }

    /// DEL of this attachment, from what was recorded. `netns_alive`: the namespace is still
    /// pinned (an in-process attachment then deletes its veth pair itself).
    fn del(&self, cni: &barge_cni::Cni, netns_alive: bool) -> Result<()> {
        let list = self.config_list()?;
        self.del_list(cni, &list, netns_alive)
    }

    fn del_list(
        &self,
        cni: &barge_cni::Cni,
        list: &NetworkConfigList,
        netns_alive: bool,
    ) -> Result<()> {
        let result = self.cni_result();
        if !self.in_process() {
            return Ok(cni.del(list, &self.runtime_conf(), result.as_ref())?);
        }
        let ports = only_portmap(list)
            .map(|l| cni.del(&l, &self.runtime_conf(), result.as_ref()))
            .unwrap_or(Ok(()));
        let wired = bridge::del(
            &self.network,
            &self.container_id,
            &self.ifname,
            result.as_ref(),
            netns_alive,
        );
        ports?;
        wired
    }

    fn in_process(&self) -> bool {
        self.driver.as_deref() == Some(bridge::DRIVER)
    }

    pub fn cni_result(&self) -> Option<CniResult> {
        self.result
            .as_ref()
            .and_then(|v| CniResult::from_value(v.clone()).ok())
    }

    /// The container's addresses on this network: (address, prefix length, gateway).
    pub fn addresses(&self) -> Vec<(std::net::IpAddr, u8, Option<String>)> {
        let Some(r) = self.cni_result() else {
            return Vec::new();
        };
        r.ips
            .iter()
            .filter_map(|ip| {
                let net: ipnet::IpNet = ip.address.parse().ok()?;
                Some((net.addr(), net.prefix_len(), ip.gateway.clone()))
            })
            .collect()
    }

    /// The MAC address of the container's interface.
    pub fn mac(&self) -> Option<String> {
        let r = self.cni_result()?;
        r.interfaces
            .iter()
            .find(|i| i.sandbox.is_some() && i.name == self.ifname)
            .and_then(|i| i.mac.clone())
    }

    /// Its record's name in the container's `net/` directory.
    fn file_name(&self) -> String {
        format!("{}.json", self.ifname)
    }

    fn index(&self) -> u32 {
        self.ifname
            .trim_start_matches("eth")
            .parse()
            .unwrap_or(u32::MAX)
    }
}

impl Engine {
    pub fn networks(&self) -> Networks<'_> {
        Networks {
            settings: &self.opts.network,
            journal: Some(self.journal()),
        }
    }

    /// Where the attachments of a container (or of a pod's sandbox) are recorded.
    pub(crate) fn attachments_dir(&self, id: &str) -> PathBuf {
        let pod = self.pod_dir(id);
        if pod.is_dir() {
            pod.join("net")
        } else {
            self.paths.attachments(id)
        }
    }

    /// The container's attachments while its network is up, eth0 first.
    pub fn attachments(&self, id: &str) -> Vec<Attachment> {
        let dir = self.attachments_dir(id);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<Attachment> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|d| serde_json::from_slice(&d).ok())
            .collect();
        out.sort_by_key(|a| a.index());
        out
    }

    /// Record an attachment; `durable` before ADD (a crash must still find it for DEL), the
    /// result after ADD only needs to be whole.
    fn save_attachment(&self, a: &Attachment, durable: bool) -> Result<()> {
        let dir = self.attachments_dir(&a.container_id);
        std::fs::create_dir_all(&dir).ctx("create", &dir)?;
        let data = serde_json::to_vec(a).map_err(Error::encode(format!(
            "network attachment of container {}",
            a.container_id
        )))?;
        let path = dir.join(a.file_name());
        barge_util::fs::write_atomic(
            &path,
            &data,
            0o600,
            if durable {
                barge_util::fs::Durability::Durable
            } else {
                barge_util::fs::Durability::Atomic
            },
        )
        .ctx("write network attachment", &path)?;
        Ok(())
    }

    fn forget_attachment(&self, a: &Attachment) {
        let p = self.attachments_dir(&a.container_id).join(a.file_name());
        let _ = std::fs::remove_file(p);
    }

    /// Bring the container's network up before its process starts (see the module docs).
    /// Leftovers of a run that was not torn down (a crash, a reboot) are torn down first.
    /// The published host ports are bound before anything else (a port another process
    /// holds fails the start here, before any namespace or rule exists); the returned
    /// sockets hold them and go to the shim, which keeps them while the container lives.
    /// On failure nothing is left: every ADD done is undone.
    pub(crate) fn network_up(&self, rec: &ContainerRecord) -> Result<ports::HeldPorts> {
        match Mode::of(&rec.config) {
            Mode::Host => return Ok(Default::default()),
            Mode::Container(other) => {
                return self.check_joinable(other).map(|()| Default::default())
            }
            Mode::Pod(pod) => return self.pod_sandbox_up(pod).map(|_| Default::default()),
            Mode::None | Mode::Networks => {}
        }
        self.network_down(&rec.id);
        let exposed = ports::parse_exposed(&rec.config.exposed)?;
        let (bindings, held) = if rec.config.networks.is_empty() {
            Default::default()
        } else {
            ports::resolve(&rec.config.ports, rec.config.publish_all, &exposed)?
        };
        let pin = self.paths.netns(&rec.id);
        barge_runtime::netns::create_pinned(
            &pin,
            barge_runtime::netns::Options {
                loopback_up: true,
                no_ipv6_dad: true,
            },
        )?;
        let res = (|| -> Result<()> {
            for (i, ep) in rec.config.networks.iter().enumerate() {
                let b = if i == 0 { &bindings[..] } else { &[] };
                self.attach_one(rec, ep, &format!("eth{i}"), b)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            self.network_down(&rec.id);
            return Err(e);
        }
        let dns: Vec<String> = self
            .attachments(&rec.id)
            .iter()
            .filter(|a| a.dns)
            .map(|a| a.network.clone())
            .collect();
        self.refresh_hosts(&dns, Some(rec));
        Ok(held)
    }

    /// `--network container:X`: X must be up with a pinned namespace.
    fn check_joinable(&self, other: &str) -> Result<()> {
        let o = self.db.find(other)?;
        let st = self.status(&o);
        if !st.state.is_active() || !barge_runtime::netns::is_pinned(&self.paths.netns(&o.id)) {
            return Err(Error::BadState {
                id: o.id.clone(),
                state: st.state.as_str().into(),
                hint: "cannot join the network namespace of a container that is not running".into(),
            });
        }
        Ok(())
    }

    /// CNI ADD of one network; on failure its DEL runs and nothing of it stays.
    pub(crate) fn attach_one(
        &self,
        rec: &ContainerRecord,
        ep: &Endpoint,
        ifname: &str,
        bindings: &[PortBinding],
    ) -> Result<Attachment> {
        let net = self.networks().get(&ep.network)?;
        rules::ensure(&self.paths.runroot, &net)?;
        let list = effective_list(&net.list, !bindings.is_empty())?;
        let mut capability_args = serde_json::Map::new();
        if !bindings.is_empty() {
            capability_args.insert("portMappings".into(), ports::portmap_entries(bindings));
        }
        let mut args = vec![("IgnoreUnknown".to_string(), "1".to_string())];
        if let Some(ip) = &ep.ip {
            args.push(("IP".into(), ip.clone()));
        }
        let mut att = Attachment {
            network: net.name().to_string(),
            network_id: net.id(),
            ifname: ifname.into(),
            list: list.raw.clone(),
            container_id: rec.id.clone(),
            netns: self.paths.netns(&rec.id),
            args,
            capability_args,
            result: None,
            ports: bindings.to_vec(),
            aliases: ep.aliases.clone(),
            dns: net.dns(),
            driver: None,
        };
        let plan = match (&net.meta, self.opts.network.in_process) {
            (Some(_), true) => bridge::Plan::of(&list),
            _ => None,
        };
        if let Some(plan) = plan {
            att.driver = Some(bridge::DRIVER.into());
            self.save_attachment(&att, true)?;
            return self.attach_in_process(att, &plan, &list, ep);
        }
        self.save_attachment(&att, true)?;
        let cni = self.opts.network.cni();
        let rt = att.runtime_conf();
        let added = cni.status(&list).and_then(|()| cni.add(&list, &rt));
        match added {
            Ok(res) => {
                att.result = Some(res.raw.clone());
                self.save_attachment(&att, false)?;
                Ok(att)
            }
            Err(e) => {
                if let Err(d) = cni.del(&list, &rt, None) {
                    tracing::warn!("undoing a failed ADD: {d}");
                }
                self.forget_attachment(&att);
                Err(e.into())
            }
        }
    }

    /// The in-process half of `attach_one` (barge's bridge networks): the bridge driver wires
    /// the interface, then `portmap` runs as a plugin when ports are published. On failure
    /// everything done is undone and the record forgotten.
    fn attach_in_process(
        &self,
        mut att: Attachment,
        plan: &bridge::Plan,
        list: &NetworkConfigList,
        ep: &Endpoint,
    ) -> Result<Attachment> {
        let requested: Vec<std::net::IpAddr> = match &ep.ip {
            Some(ip) => vec![ip.parse().map_err(|_| {
                Error::Invalid(format!("requested address {ip:?} is not an IP address"))
            })?],
            None => Vec::new(),
        };
        let cni = self.opts.network.cni();
        let res = bridge::add(plan, &att.container_id, &att.netns, &att.ifname, &requested)
            .and_then(|wired| {
                att.result = Some(wired.clone());
                let Some(ports) = only_portmap(list) else {
                    return Ok(wired);
                };
                let prev = barge_cni::CniResult::from_value(wired).map_err(|e| {
                    Error::Spec(format!(
                        "the bridge driver's own result is unreadable: {}",
                        e.0
                    ))
                })?;
                cni.add_after(&ports, &att.runtime_conf(), Some(prev))
                    .map(|r| r.raw)
                    .map_err(Error::from)
            });
        match res {
            Ok(result) => {
                att.result = Some(result);
                self.save_attachment(&att, false)?;
                Ok(att)
            }
            Err(e) => {
                if att.result.is_some() {
                    if let Err(d) = att.del_list(&cni, list, true) {
                        tracing::warn!("undoing a failed attach: {d}");
                    }
                }
                self.forget_attachment(&att);
                Err(e)
            }
        }
    }

    /// CNI DEL of every attachment (last first) and the pinned namespace. Failures are
    /// logged, not returned: a container must stay removable when a plugin is gone.
    pub(crate) fn network_down(&self, id: &str) {
        let job = self.teardown_job(id);
        let dns = job.run();
        self.after_teardown(&dns);
    }

    /// What tearing a container's network down takes, detached from the engine (so that
    /// `rm` can run it beside the rest of the removal).
    pub(crate) fn teardown_job(&self, id: &str) -> Teardown {
        Teardown {
            id: id.to_string(),
            atts: self.attachments(id),
            cni: self.opts.network.cni(),
            dir: self.attachments_dir(id),
            pin: self.paths.netns(id),
        }
    }

    /// Refresh the hosts files of the name-resolving networks a teardown left.
    pub(crate) fn after_teardown(&self, dns: &[String]) {
        if !dns.is_empty() {
            self.refresh_hosts(dns, None);
        }
    }
    /// `network connect`: join a network now (a running container gets the next ethN) and
    /// from now on.
    pub fn network_connect(&self, net: &str, key: &str, ep: Endpoint) -> Result<()> {
        let rec = self.db.find(key)?;
        let _lock = crate::lock::ContainerLock::acquire(&self.paths.lock(&rec.id))?;
        let rec = self.db.find(&rec.id)?;
        if Mode::of(&rec.config) != Mode::Networks {
            return Err(Error::Conflict(format!(
                "container {} uses network mode {:?}: it cannot join networks",
                rec.name, rec.config.network
            )));
        }
        let network = self.networks().get(net)?;
        let name = network.name().to_string();
        if rec.config.networks.iter().any(|e| e.network == name) {
            return Err(Error::Conflict(format!(
                "container {} is already connected to network {name}",
                rec.name
            )));
        }
        let ep = Endpoint {
            network: name.clone(),
            ..ep
        };
        if self.status(&rec).state.is_active() {
            let used: Vec<u32> = self
                .attachments(&rec.id)
                .iter()
                .map(|a| a.index())
                .collect();
            let n = (0..).find(|i| !used.contains(i)).unwrap_or(0);
            let att = self.attach_one(&rec, &ep, &format!("eth{n}"), &[])?;
            if att.dns {
                self.refresh_hosts(std::slice::from_ref(&name), Some(&rec));
            }
        }
        let mut config = rec.config.clone();
        config.networks.push(ep);
        self.db.update_config(&rec.id, &config)?;
        self.emit_network(
            &network.id(),
            &name,
            crate::events::Action::Connect,
            Some(&rec.id),
        );
        Ok(())
    }

    /// `network disconnect`.
    pub fn network_disconnect(&self, net: &str, key: &str) -> Result<()> {
        let rec = self.db.find(key)?;
        let _lock = crate::lock::ContainerLock::acquire(&self.paths.lock(&rec.id))?;
        let rec = self.db.find(&rec.id)?;
        let name = match self.networks().get(net) {
            Ok(n) => n.name().to_string(),
            Err(_) => net.to_string(),
        };
        if !rec.config.networks.iter().any(|e| e.network == name) {
            return Err(Error::Conflict(format!(
                "container {} is not connected to network {name}",
                rec.name
            )));
        }
        let cni = self.opts.network.cni();
        for a in self.attachments(&rec.id) {
            if a.network == name {
                let res = a.del(&cni, true);
                self.forget_attachment(&a);
                res?;
                if a.dns {
                    self.refresh_hosts(std::slice::from_ref(&name), Some(&rec));
                }
            }
        }
        let mut config = rec.config.clone();
        config.networks.retain(|e| e.network != name);
        self.db.update_config(&rec.id, &config)?;
        let id = self
            .networks()
            .get(&name)
            .map(|n| n.id())
            .unwrap_or_else(|_| name.clone());
        self.emit_network(&id, &name, crate::events::Action::Disconnect, Some(&rec.id));
        Ok(())
    }

    /// Containers whose network is up on `network`, with their attachment there.
    pub fn network_members(&self, network: &str) -> Result<Vec<(ContainerRecord, Attachment)>> {
        let mut out = Vec::new();
        for rec in self.db.all()? {
            for a in self.attachments(&rec.id) {
                if a.network == network {
                    out.push((rec.clone(), a));
                }
            }
        }
        Ok(out)
    }

    /// `network rm`: refused while a container is on it.
    pub fn network_remove(&self, key: &str) -> Result<String> {
        let net = self.networks().get(key)?;
        if net.is_default() {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name()
            )));
        }
        let users: Vec<String> = self
            .db
            .all()?
            .into_iter()
            .filter(|r| r.config.networks.iter().any(|e| e.network == net.name()))
            .filter(|r| self.status(r).state.is_active())
            .map(|r| r.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "error while removing network: network {} has active endpoints (containers {})",
                net.name(),
                users.join(", ")
            )));
        }
        rules::remove(&self.paths.runroot, &net);
        if let Some(m) = &net.meta {
            delete_link(&m.bridge);
            // host-local's reservations (its default data directory).
            let _ = std::fs::remove_dir_all(PathBuf::from(bridge::ipam::DATA_DIR).join(net.name()));
        }
        self.networks().remove(&net)?;
        self.emit_network(&net.id(), net.name(), crate::events::Action::Destroy, None);
        Ok(net.name().to_string())
    }
}

/// Plugins whose DEL needs nothing from the container's namespace (they clean up by
/// container id, addresses or host-side state): with only these, the namespace goes first
/// and the kernel destroys the veth pair with it, in the background, instead of the bridge
/// plugin deleting it in the foreground (~20 ms of waiting on the kernel per container).
const DEL_WITHOUT_NETNS: [&str; 5] = ["bridge", "host-local", "portmap", "loopback", "firewall"];

/// A container's network teardown (see `Engine::teardown_job`).
pub(crate) struct Teardown {
    id: String,
    atts: Vec<Attachment>,
    cni: barge_cni::Cni,
    dir: PathBuf,
    pin: PathBuf,
}

impl Teardown {
    /// DEL every attachment, last first, and remove the pin; the name-resolving networks
    /// it was on.
    pub(crate) fn run(self) -> Vec<String> {
        let id = &self.id;
        let lists: Vec<Option<NetworkConfigList>> = self
            .atts
            .iter()
            .map(|a| match a.config_list() {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!("container {id}: network teardown: {e}");
                    None
                }
            })
            .collect();
        let netns_first = lists.iter().flatten().all(|l| {
            l.plugins.iter().all(|p| {
                p.get("type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| DEL_WITHOUT_NETNS.contains(&t))
            })
        });
        let remove_pin = || {
            if let Err(e) = barge_runtime::netns::remove_pinned(&self.pin) {
                tracing::warn!("container {id}: {e}");
            }
        };
        if netns_first {
            remove_pin();
        }
        for (a, l) in self.atts.iter().zip(&lists).rev() {
            if let Some(l) = l {
                if let Err(e) = a.del_list(&self.cni, l, !netns_first) {
                    tracing::warn!("container {id}: network teardown: {e}");
                }
            }
            let _ = std::fs::remove_file(self.dir.join(a.file_name()));
        }
        // Also what a write killed half-way left (its temp file).
        let _ = std::fs::remove_dir_all(&self.dir);
        if !netns_first {
            remove_pin();
        }
        self.atts
            .iter()
            .filter(|a| a.dns)
            .map(|a| a.network.clone())
            .collect()
    }
}

/// The list as this container's plugins get it: portmap only runs when ports are published
/// (it does nothing else, and costs a few iptables runs on every start and stop).
fn effective_list(list: &NetworkConfigList, ports: bool) -> Result<NetworkConfigList> {
    if ports {
        return Ok(list.clone());
    }
    let keep = |p: &serde_json::Map<String, Value>| {
        p.get("type").and_then(|t| t.as_str()) != Some("portmap")
    };
    let mut l = list.clone();
    l.plugins.retain(keep);
    if let Some(arr) = l.raw.get_mut("plugins").and_then(|p| p.as_array_mut()) {
        arr.retain(|p| p.as_object().is_none_or(keep));
    }
    if l.plugins.is_empty() {
        return Err(Error::Invalid(format!(
            "network {}: its config list has no plugin besides portmap",
            list.name
        )));
    }
    Ok(l)
}

/// The `portmap` part of a list (None when it has none), for a chain the bridge driver began.
fn only_portmap(list: &NetworkConfigList) -> Option<NetworkConfigList> {
    let is = |p: &serde_json::Map<String, Value>| {
        p.get("type").and_then(|t| t.as_str()) == Some("portmap")
    };
    if !list.plugins.iter().any(is) {
        return None;
    }
    let mut l = list.clone();
    l.plugins.retain(is);
    if let Some(arr) = l.raw.get_mut("plugins").and_then(|p| p.as_array_mut()) {
        arr.retain(|p| p.as_object().is_some_and(is));
    }
    Some(l)
}

/// Delete a network interface (a network's bridge), best effort.
fn delete_link(name: &str) {
    if std::path::Path::new("/sys/class/net").join(name).exists() {
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", name])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
