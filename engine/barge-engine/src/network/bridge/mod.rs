//! barge's own bridge networks wired in-process (the "barge-bridge" driver): what the CNI
//! `bridge` + `host-local` plugins would do for a container, done with netlink requests and the
//! host-local address store from this process, instead of running two Go programs on every
//! ADD and DEL. Only a list of barge's own shape (bridge with a gateway, no ipMasq, host-local
//! with plain ranges, then optionally `portmap`) goes this way; any other list still runs its
//! plugins. `portmap` (published ports) still runs as a plugin, chained after the in-process
//! result. The result recorded is the bridge plugin's (same interfaces, addresses, routes), so
//! inspect, hosts files and port rules read it unchanged.
//!
//! ADD: allocate addresses (host-local's files), make sure the bridge is up with the gateway
//! addresses, create a veth pair whose container end is created directly inside the pinned
//! namespace under its final name, then (over a netlink socket opened inside the namespace)
//! address it and add the routes. DEL: release the addresses; delete the host end of the
//! pair while the namespace still lives (otherwise the kernel takes the pair with it).

pub(crate) mod ipam;
mod netlink;

use std::net::IpAddr;
use std::path::Path;

use barge_cni::NetworkConfigList;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::error::{Error, IoContext, Result};
use ipam::RangeSet;
use netlink::Netlink;

/// The name attachments record for this driver.
pub(crate) const DRIVER: &str = "barge-bridge";

/// A route handed to the container: destination and optional gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    dst: IpNet,
    gw: Option<IpAddr>,
}

/// What the in-process driver needs from a config list of barge's bridge shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    network: String,
    bridge: String,
    hairpin: bool,
    sets: Vec<RangeSet>,
    routes: Vec<Route>,
    /// The list goes on with `portmap` (published ports).
    pub portmap: bool,
}

fn only_keys(o: &Map<String, Value>, keys: &[&str]) -> bool {
    o.keys().all(|k| keys.contains(&k.as_str()))
}

impl Plan {
    /// The plan for `list` when it is of barge's bridge shape, None when its plugins must run.
    pub(crate) fn of(list: &NetworkConfigList) -> Option<Plan> {
        let (first, rest) = list.plugins.split_first()?;
        if rest
            .iter()
            .any(|p| p.get("type").and_then(Value::as_str) != Some("portmap"))
        {
            return None;
        }
        if first.get("type")?.as_str()? != "bridge"
            || !only_keys(
                first,
                &[
                    "type",
                    "bridge",
                    "isGateway",
                    "ipMasq",
                    "hairpinMode",
                    "ipam",
                ],
            )
            || !first.get("isGateway")?.as_bool()?
            || first
                .get("ipMasq")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        {
            return None;
        }
        let bridge = first.get("bridge")?.as_str()?.to_string();
        let hairpin = first
            .get("hairpinMode")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ipam = first.get("ipam")?.as_object()?;
        if ipam.get("type")?.as_str()? != "host-local"
            || !only_keys(ipam, &["type", "ranges", "routes"])
        {
            return None;
        }
        let mut sets = Vec::new();
        for set in ipam.get("ranges")?.as_array()? {
            let [r] = &set.as_array()?[..] else {
                return None;
            };
            let r = r.as_object()?;
            if !only_keys(r, &["subnet", "gateway"]) {
                return None;
            }
            let subnet: IpNet = r.get("subnet")?.as_str()?.parse().ok()?;
            let gateway = match r.get("gateway") {
                Some(g) => Some(g.as_str()?.parse().ok()?),
                None => None,
            };
            sets.push(RangeSet {
                subnet: subnet.trunc(),
                gateway,
            });
        }
        if sets.is_empty() {
            return None;
        }
        let mut routes = Vec::new();
        for r in ipam
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_object()?;
            if !only_keys(r, &["dst", "gw"]) {
                return None;
            }
            routes.push(Route {
                dst: r.get("dst")?.as_str()?.parse().ok()?,
                gw: match r.get("gw") {
                    Some(g) => Some(g.as_str()?.parse().ok()?),
                    None => None,
                },
            });
        }
        Some(Plan {
            network: list.name.clone(),
            bridge,
            hairpin,
            sets,
            routes,
            portmap: !rest.is_empty(),
        })
    }
}

fn random_mac() -> Result<[u8; 6]> {
    let mut b = crate::names::random_bytes::<6>()?;
    // Locally administered, unicast.
    b[0] = (b[0] & 0xfe) | 0x02;
    Ok(b)
}

fn mac_text(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Turn forwarding on for the families the container gets (what the bridge plugin does).
fn enable_forwarding(v4: bool, v6: bool) {
    for (on, path) in [
        (v4, "/proc/sys/net/ipv4/ip_forward"),
        (v6, "/proc/sys/net/ipv6/conf/all/forwarding"),
    ] {
        if on
            && std::fs::read_to_string(path)
                .map(|s| s.trim() != "1")
                .unwrap_or(false)
            && std::fs::write(path, b"1").is_err()
        {
            tracing::warn!("could not turn on forwarding in {path}");
        }
    }
}

/// The bridge's index, the bridge made (up, with the gateway addresses) if missing.
fn ensure_bridge(host: &mut Netlink, plan: &Plan) -> Result<u32> {
    let index = match host.link_index(&plan.bridge)? {
        Some(i) => i,
        None => {
            match host.add_bridge(&plan.bridge) {
                Err(e) if netlink::is_exists(&e) => {}
                r => r?,
            }
            host.link_index(&plan.bridge)?.ok_or_else(|| {
                Error::Spec(format!("bridge {} vanished after it was made", plan.bridge))
            })?
        }
    };
    host.set_up(index, &plan.bridge)?;
    for s in &plan.sets {
        if let Some(gw) = s.gateway {
            match host.add_address(index, gw, s.subnet.prefix_len(), true, &plan.bridge) {
                Err(e) if netlink::is_exists(&e) => {}
                r => r?,
            }
        }
    }
    enable_forwarding(
        plan.sets.iter().any(|s| s.subnet.addr().is_ipv4()),
        plan.sets.iter().any(|s| s.subnet.addr().is_ipv6()),
    );
    Ok(index)
}

/// Attach container `id`'s namespace at `netns` as `ifname`: the bridge plugin's result.
/// On failure nothing of it is left (addresses released, veth pair deleted).
pub(crate) fn add(
    plan: &Plan,
    id: &str,
    netns: &Path,
    ifname: &str,
    requested: &[IpAddr],
) -> Result<Value> {
    let store = ipam::Store::new(&plan.network);
    let ips = store.allocate(&plan.sets, id, ifname, requested)?;
    let mut host_veth = None;
    let res = wire(plan, netns, ifname, &ips, &mut host_veth);
    if res.is_err() {
        if let Some(v) = &host_veth {
            if let Err(e) = Netlink::open().and_then(|mut h| h.del_link(v)) {
                tracing::warn!("container {id}: undoing a failed attach: {e}");
            }
        }
        let known: Vec<IpAddr> = ips.iter().map(|i| i.0).collect();
        if let Err(e) = store.release(id, ifname, &known) {
            tracing::warn!("container {id}: undoing a failed attach: {e}");
        }
    }
    res
}

fn wire(
    plan: &Plan,
    netns: &Path,
    ifname: &str,
    ips: &[(IpAddr, u8, Option<IpAddr>)],
    host_veth: &mut Option<String>,
) -> Result<Value> {
    let mut host = Netlink::open()?;
    let br = ensure_bridge(&mut host, plan)?;
    let ns_file = std::fs::File::open(netns).ctx("open network namespace", netns)?;
    let (mac, peer_mac) = (random_mac()?, random_mac()?);
    let mut tries = 0;
    let veth = loop {
        let name = format!(
            "veth{}",
            crate::names::hex_of(&crate::names::random_bytes::<4>()?)
        );
        match host.add_veth(&name, mac, br, ifname, peer_mac, &ns_file) {
            Err(e) if netlink::is_exists(&e) && tries < 3 => tries += 1,
            Err(e) => return Err(e),
            Ok(()) => break name,
        }
    };
    *host_veth = Some(veth.clone());
    if plan.hairpin {
        let p = format!("/sys/class/net/{veth}/brport/hairpin_mode");
        std::fs::write(&p, b"1").ctx("turn on hairpin mode", Path::new(&p))?;
    }
    let mut ns = Netlink::open_in(netns)?;
    let index = ns.link_index(ifname)?.ok_or_else(|| {
        Error::Spec(format!(
            "{ifname} is missing in {} right after it was made",
            netns.display()
        ))
    })?;
    ns.set_up(index, ifname)?;
    for (ip, prefix, _) in ips {
        // The namespace was made with DAD off (see netns::Options): no flag needed.
        ns.add_address(index, *ip, *prefix, false, ifname)?;
    }
    for r in &plan.routes {
        let gw = r.gw.or_else(|| {
            ips.iter()
                .find(|(ip, _, _)| ip.is_ipv4() == r.dst.addr().is_ipv4())
                .and_then(|(_, _, gw)| *gw)
        });
        if let Some(gw) = gw {
            // A route another interface already has (a second network's default route):
            // the first one wins, as with the plugins.
            match ns.add_route(index, r.dst.trunc().addr(), r.dst.prefix_len(), gw, ifname) {
                Err(e) if netlink::is_exists(&e) => {}
                r => r?,
            }
        }
    }
    let bridge_mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", plan.bridge))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let ips_json: Vec<Value> = ips
        .iter()
        .map(|(ip, prefix, gw)| {
            let mut o = json!({"interface": 2, "address": format!("{ip}/{prefix}")});
            if let Some(gw) = gw {
                o["gateway"] = json!(gw.to_string());
            }
            o
        })
        .collect();
    let routes_json: Vec<Value> = plan
        .routes
        .iter()
        .map(|r| {
            let mut o = json!({"dst": r.dst.to_string()});
            if let Some(gw) = r.gw {
                o["gw"] = json!(gw.to_string());
            }
            o
        })
        .collect();
    Ok(json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": plan.bridge, "mac": bridge_mac},
            {"name": veth, "mac": mac_text(&mac)},
            {"name": ifname, "mac": mac_text(&peer_mac), "sandbox": netns.display().to_string()},
        ],
        "ips": ips_json,
        "routes": routes_json,
        "dns": {},
    }))
}

/// Detach: release the addresses of `id`'s `ifname` and, when the namespace still lives
/// (`netns_alive`), delete the host end of the veth pair (the container end goes with it).
/// `result` is what ADD answered (None when ADD did not finish).
pub(crate) fn del(
    network: &str,
    id: &str,
    ifname: &str,
    result: Option<&barge_cni::CniResult>,
    netns_alive: bool,
) -> Result<()> {
    let mut first_err = None;
    if netns_alive {
        if let Some(veth) = result.and_then(|r| {
            r.interfaces
                .iter()
                .find(|i| i.sandbox.is_none() && i.name.starts_with("veth"))
        }) {
            if let Err(e) = Netlink::open().and_then(|mut h| h.del_link(&veth.name)) {
                first_err.get_or_insert(e);
            }
        }
    }
    let known: Vec<IpAddr> = result
        .map(|r| {
            r.ips
                .iter()
                .filter_map(|i| i.address.parse::<IpNet>().ok())
                .map(|n| n.addr())
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = ipam::Store::new(network).release(id, ifname, &known) {
        first_err.get_or_insert(e);
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: Value) -> NetworkConfigList {
        NetworkConfigList::from_value(v, "test").unwrap()
    }

    #[test]
    fn plan_only_for_barge_shaped_lists() {
        let good = json!({"cniVersion": "1.0.0", "name": "n", "plugins": [
            {"type": "bridge", "bridge": "b0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
             "ipam": {"type": "host-local",
                      "ranges": [[{"subnet": "10.1.0.0/16", "gateway": "10.1.0.1"}], [{"subnet": "fd00::/64", "gateway": "fd00::1"}]],
                      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]});
        let p = Plan::of(&list(good.clone())).expect("plan");
        assert_eq!(p.bridge, "b0");
        assert!(p.hairpin && p.portmap);
        assert_eq!(p.sets.len(), 2);
        assert_eq!(p.routes.len(), 2);
        for (path, v) in [
            ("/plugins/0/ipMasq", json!(true)),
            ("/plugins/0/isGateway", json!(false)),
            ("/plugins/0/mtu", json!(1400)),
            ("/plugins/0/ipam/type", json!("dhcp")),
            ("/plugins/0/ipam/dataDir", json!("/tmp/x")),
            ("/plugins/0/ipam/ranges/0/0/rangeStart", json!("10.1.0.5")),
            ("/plugins/1/type", json!("firewall")),
        ] {
            let mut l = good.clone();
            let (parent, key) = path.rsplit_once('/').unwrap();
            l.pointer_mut(parent).unwrap()[key] = v;
            assert_eq!(Plan::of(&list(l)), None, "{path}");
        }
    }
}
