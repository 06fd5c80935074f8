//! The networks: CNI config lists in the config directory. barge writes its own (a bridge,
//! host-local IPAM, portmap) with its metadata under a `"barge"` key; lists a user drops
//! there (macvlan, ptp, ...) are networks too, used as they are.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use barge_cni::NetworkConfigList;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::settings::Settings;
use super::subnet;
use crate::error::{Error, IoContext, Result};

/// The network containers join when `--network` is not given (docker calls its `bridge`).
pub const DEFAULT_NETWORK: &str = "barge";
const DEFAULT_BRIDGE: &str = "barge0";
const DEFAULT_SUBNET_V4: &str = "10.66.0.0/16";
const DEFAULT_SUBNET_V6: &str = "fdba:66::/64";
/// Where subnets of new networks come from (one /24, and one /64 with `--ipv6`).
const POOL_V4: &str = "10.67.0.0/16";
const POOL_V6: &str = "fdba:67::/48";

/// What barge knows about a network it made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub id: String,
    pub driver: String,
    pub bridge: String,
    pub subnets: Vec<Subnet>,
    pub internal: bool,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// Containers resolve each other by name (through /etc/hosts entries).
    pub dns: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub list: NetworkConfigList,
    /// None: a config list barge did not write.
    pub meta: Option<Meta>,
}

impl Network {
    pub fn name(&self) -> &str {
        &self.list.name
    }

    /// barge's id for it, or a stable one derived from the name for foreign lists.
    pub fn id(&self) -> String {
        match &self.meta {
            Some(m) if !m.id.is_empty() => m.id.clone(),
            _ => (0u8..4)
                .map(|i| {
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    (i, &self.list.name).hash(&mut h);
                    format!("{:016x}", h.finish())
                })
                .collect(),
        }
    }

    pub fn is_default(&self) -> bool {
        self.name() == DEFAULT_NETWORK
    }

    /// Whether containers on it get /etc/hosts entries for each other.
    pub fn dns(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.dns)
    }

    pub fn driver(&self) -> String {
        match &self.meta {
            Some(m) => m.driver.clone(),
            None => self
                .list
                .plugins
                .first()
                .and_then(|p| p.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .to_string(),
        }
    }

    pub fn subnets(&self) -> &[Subnet] {
        self.meta.as_ref().map(|m| &m.subnets[..]).unwrap_or(&[])
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    /// Only `bridge`.
    pub driver: String,
    pub subnets: Vec<IpNet>,
    /// One per subnet at most, in order; the first host address otherwise.
    pub gateways: Vec<IpAddr>,
    /// Also pick an IPv6 subnet when none is given.
    pub ipv6: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// `-o com.docker.network.bridge.name=NAME`.
    pub bridge: Option<String>,
}

/// The networks in the config directory.
pub struct Networks<'a> {
    pub settings: &'a Settings,
    /// Where `create` records its event (none: no event).
    pub journal: Option<barge_events::Journal>,
}

impl Networks<'_> {
    fn dir(&self) -> &Path {
        &self.settings.config_dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.conflist"))
    }

    /// All networks, in the config directory's order. Unreadable files are skipped with a
    /// warning (one bad file must not take every network down).
    pub fn list(&self) -> Result<Vec<Network>> {
        let (lists, errors) = NetworkConfigList::load_dir(self.dir());
        for e in errors {
            tracing::warn!("skipping a network config: {e}");
        }
        Ok(lists.into_iter().map(to_network).collect())
    }

    /// A network by name, or by a unique prefix of its id.
    pub fn get(&self, key: &str) -> Result<Network> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.name() == key) {
            return Ok(n.clone());
        }
        if key.len() >= 3 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = all.iter().filter(|n| n.id().starts_with(key));
            if let (Some(n), None) = (hits.next(), hits.next()) {
                return Ok(n.clone());
            }
        }
        if key == DEFAULT_NETWORK {
            return self.ensure_default();
        }
        Err(Error::NoSuchNetwork(key.into()))
    }

    /// The default network, written on first use.
    pub fn ensure_default(&self) -> Result<Network> {
        let _lock = self.lock()?;
        if let Some(n) = self.list()?.into_iter().find(|n| n.is_default()) {
            return Ok(n);
        }
        let mut subnets = Vec::new();
        for s in [DEFAULT_SUBNET_V4, DEFAULT_SUBNET_V6] {
            let net = subnet::parse_subnet(s)?;
            subnets.push(Subnet {
                subnet: net,
                gateway: subnet::gateway(&net),
            });
        }
        let meta = Meta {
            id: crate::names::new_id()?,
            driver: "bridge".into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnets,
            internal: false,
            created: now_rfc3339(),
            labels: BTreeMap::new(),
            dns: false,
        };
        self.write(DEFAULT_NETWORK, &meta)
    }

    /// `network create`: a bridge network with its own subnet(s).
    pub fn create(&self, req: &CreateRequest) -> Result<Network> {
        if !barge_cni::conf::is_valid_name(&req.name) {
            return Err(Error::Invalid(format!(
                "network name {:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit",
                req.name
            )));
        }
        if matches!(req.name.as_str(), "none" | "host" | "bridge" | "default")
            || req.name.starts_with("container:")
        {
            return Err(Error::Conflict(format!(
                "{:?} is a pre-defined network mode and cannot be created",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            &req.driver
        };
        if driver != "bridge" {
            return Err(Error::Invalid(format!(
                "network driver {driver:?}: barge makes bridge networks; for others drop a CNI config list into {}",
                self.dir().display()
            )));
        }
        if req.gateways.len() > req.subnets.len() {
            return Err(Error::Invalid(
                "--gateway: each gateway needs a --subnet (given in the same order)".into(),
            ));
        }
        let _lock = self.lock()?;
        let existing = self.list()?;
        if existing.iter().any(|n| n.name() == req.name) {
            return Err(Error::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let taken: Vec<IpNet> = existing
            .iter()
            .flat_map(|n| n.subnets().iter().map(|s| s.subnet))
            .collect();
        let mut nets = req.subnets.clone();
        for n in &nets {
            if let Some(t) = taken.iter().find(|t| subnet::overlaps(n, t)) {
                return Err(Error::Conflict(format!(
                    "subnet {n} overlaps {t}, used by another network"
                )));
            }
        }
        let mut avoid = taken.clone();
        avoid.extend(subnet::host_routes());
        avoid.extend(nets.iter().copied());
        if !nets.iter().any(|n| matches!(n, IpNet::V4(_))) {
            let pool = subnet::parse_subnet(POOL_V4)?;
            let n = subnet::pick_free(pool, 24, &avoid).ok_or_else(|| {
                Error::Conflict(format!("no free /24 left in {POOL_V4}: pass --subnet"))
            })?;
            avoid.push(n);
            nets.insert(0, n);
        }
        if req.ipv6 && !nets.iter().any(|n| matches!(n, IpNet::V6(_))) {
            let pool = subnet::parse_subnet(POOL_V6)?;
            let n = subnet::pick_free(pool, 64, &avoid).ok_or_else(|| {
                Error::Conflict(format!("no free /64 left in {POOL_V6}: pass --subnet"))
            })?;
            nets.push(n);
        }
        let mut subnets = Vec::new();
        for (i, n) in nets.iter().enumerate() {
            // Gateways pair with the subnets the user gave, in order.
            let gateway = match (i < req.subnets.len())
                .then(|| req.gateways.get(i))
                .flatten()
            {
                Some(gw) => {
                    subnet::check_gateway(n, *gw)?;
                    *gw
                }
                None => subnet::gateway(n),
            };
            subnets.push(Subnet {
                subnet: *n,
                gateway,
            });
        }
        let id = crate::names::new_id()?;
        let bridge = match &req.bridge {
            Some(b) => {
                if b.is_empty() || b.len() > 15 || b.contains(['/', ' ', ':']) {
                    return Err(Error::Invalid(format!(
                        "bridge name {b:?}: 1 to 15 characters, no '/', ':' or spaces"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let meta = Meta {
            id,
            driver: "bridge".into(),
            bridge,
            subnets,
            internal: req.internal,
            created: now_rfc3339(),
            labels: req.labels.clone(),
            dns: true,
        };
        let net = self.write(&req.name, &meta)?;
        if let Some(j) = &self.journal {
            let ev = barge_events::Event::now(
                barge_events::Type::Network,
                barge_events::Action::Create,
                net.id(),
            )
            .attr("name", net.name())
            .attr("type", "bridge");
            if let Err(e) = j.append(&ev) {
                tracing::warn!("event network create {}: {e}", net.name());
            }
        }
        Ok(net)
    }

    /// Delete a network's config list (the caller checked nobody uses it and removed its
    /// host rules and bridge).
    pub fn remove(&self, net: &Network) -> Result<()> {
        let _lock = self.lock()?;
        let Some(path) = &net.list.path else {
            return Ok(());
        };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("remove", path),
            _ => Ok(()),
        }
    }

    fn write(&self, name: &str, meta: &Meta) -> Result<Network> {
        let doc = conflist(name, meta);
        let data = serde_json::to_vec_pretty(&doc)
            .map_err(|e| Error::Other(format!("encode network {name}: {e}")))?;
        let path = self.file(name);
        barge_runtime::state::write_atomic(
            &path,
            &data,
            0o644,
            barge_runtime::state::Durability::Durable,
        )?;
        let mut list = NetworkConfigList::from_slice(&data, &path.display().to_string())?;
        list.path = Some(path);
        Ok(to_network(list))
    }

    /// Serialises changes to the config directory.
    fn lock(&self) -> Result<crate::lock::ContainerLock> {
        std::fs::create_dir_all(self.dir()).ctx("create network config directory", self.dir())?;
        crate::lock::ContainerLock::acquire(&self.dir().join(".barge.lock"))
    }
}

fn to_network(list: NetworkConfigList) -> Network {
    let meta = list
        .raw
        .get("barge")
        .and_then(|m| serde_json::from_value::<Meta>(m.clone()).ok());
    Network { list, meta }
}

/// The CNI config list of a barge bridge network. Masquerading and forwarding are host rules
/// barge keeps per network (see `rules`), not per container: the bridge plugin's `ipMasq`
/// would run iptables a dozen times on every start and stop.
fn conflist(name: &str, meta: &Meta) -> serde_json::Value {
    let ranges: Vec<_> = meta
        .subnets
        .iter()
        .map(|s| json!([{"subnet": s.subnet.to_string(), "gateway": s.gateway.to_string()}]))
        .collect();
    let mut routes = Vec::new();
    if !meta.internal {
        if meta.subnets.iter().any(|s| s.subnet.addr().is_ipv4()) {
            routes.push(json!({"dst": "0.0.0.0/0"}));
        }
        if meta.subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
            routes.push(json!({"dst": "::/0"}));
        }
    }
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": meta.bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {"type": "host-local", "ranges": ranges, "routes": routes}
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
        ],
        "barge": meta,
    })
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    barge_runtime::time::format_rfc3339(now.as_secs() as i64, now.subsec_nanos())
}
