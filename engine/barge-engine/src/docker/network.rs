//! Networks as docker shows them (`docker network inspect`, `GET /networks`).

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::network::store::Network;
use crate::Engine;

/// docker's network document, with the containers attached to it.
pub fn network(engine: &Engine, net: &Network) -> Result<Value> {
    let mut containers = Map::new();
    for (rec, a) in engine.network_members(net.name())? {
        let mut v4 = String::new();
        let mut v6 = String::new();
        for (ip, prefix, _) in a.addresses() {
            let s = format!("{ip}/{prefix}");
            if ip.is_ipv4() {
                v4 = s;
            } else {
                v6 = s;
            }
        }
        containers.insert(
            rec.id.clone(),
            json!({"Name": rec.name, "EndpointID": format!("{}-{}", super::short(&rec.id), a.ifname),
                "MacAddress": a.mac().unwrap_or_default(), "IPv4Address": v4, "IPv6Address": v6}),
        );
    }
    let meta = net.meta.clone().unwrap_or_default();
    let config: Vec<Value> = meta
        .subnets
        .iter()
        .map(|s| json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()}))
        .collect();
    let plugins: Vec<Value> = net
        .list
        .plugins
        .iter()
        .filter_map(|p| p.get("type").cloned())
        .collect();
    let mut options = Map::new();
    if !meta.bridge.is_empty() {
        options.insert("com.docker.network.bridge.name".into(), json!(meta.bridge));
    }
    Ok(json!({
        "Name": net.name(),
        "Id": net.id(),
        "Created": meta.created,
        "Scope": "local",
        "Driver": net.driver(),
        "EnableIPv6": meta.subnets.iter().any(|s| s.subnet.addr().is_ipv6()),
        "IPAM": {"Driver": "host-local", "Options": {}, "Config": config},
        "Internal": meta.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": meta.labels,
        "CNI": {"ConfigFile": net.list.path, "CniVersion": net.list.cni_version, "Plugins": plugins,
                "NameResolution": if net.dns() { "hosts" } else { "none" }},
    }))
}

/// Stable ids for the `host` and `none` pseudo-networks.
pub fn pseudo_id(name: &str) -> String {
    let seed: u8 = if name == "host" { 0x40 } else { 0x80 };
    (0..32u8)
        .map(|i| format!("{:02x}", seed.wrapping_add(i.wrapping_mul(37))))
        .collect()
}

/// The `host` and `none` pseudo-networks docker lists besides the bridges.
pub fn pseudo_network(name: &str) -> Value {
    let driver = if name == "host" { "host" } else { "null" };
    json!({
        "Name": name, "Id": pseudo_id(name), "Created": "0001-01-01T00:00:00Z", "Scope": "local",
        "Driver": driver, "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false, "Attachable": false, "Ingress": false, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {},
    })
}
