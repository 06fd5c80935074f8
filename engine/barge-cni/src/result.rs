//! What plugins print: the result of ADD, the error object of a failure, and the answer to
//! VERSION.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Why some plugin output could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOutput(pub String);

/// The result of a successful ADD (spec 0.3.0 to 1.1.0 share this shape).
///
/// Parsing is lenient: unknown keys are ignored, as is the `version` key of 0.3.x/0.4.0 IP
/// entries. [`raw`](Self::raw) keeps the exact JSON the plugin printed; that is what the next
/// plugin gets as `prevResult` and what should be cached for DEL and CHECK. (De)serializing a
/// `CniResult` with serde reads and writes that raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// The spec version of the result (empty if the plugin left it out).
    pub cni_version: String,
    /// The interfaces created or used.
    pub interfaces: Vec<Interface>,
    /// The IP addresses assigned.
    pub ips: Vec<IpConfig>,
    /// The routes added.
    pub routes: Vec<Route>,
    /// DNS settings for the container.
    pub dns: Dns,
    /// The result exactly as the plugin printed it.
    pub raw: Value,
}

/// An interface of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address.
    pub mac: Option<String>,
    /// The namespace path when the interface is inside the container; `None` on the host.
    pub sandbox: Option<String>,
    /// MTU (spec 1.1.0).
    pub mtu: Option<u32>,
}

/// An IP address of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct IpConfig {
    /// Index into [`CniResult::interfaces`] of the interface holding the address.
    pub interface: Option<usize>,
    /// The address in CIDR notation, e.g. `10.88.0.5/16`.
    pub address: String,
    /// The default gateway, if any.
    pub gateway: Option<String>,
}

/// A route of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Route {
    /// Destination in CIDR notation.
    pub dst: String,
    /// Next hop; `None` means the default gateway.
    pub gw: Option<String>,
}

/// DNS settings of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(deserialize_with = "null_as_default")]
    pub nameservers: Vec<String>,
    /// The local domain.
    pub domain: Option<String>,
    /// Search domains.
    #[serde(deserialize_with = "null_as_default")]
    pub search: Vec<String>,
    /// resolv.conf options.
    #[serde(deserialize_with = "null_as_default")]
    pub options: Vec<String>,
}

/// An address of the container, split up for use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxAddr {
    /// The address itself.
    pub addr: IpAddr,
    /// The prefix length of its subnet.
    pub prefix_len: u8,
    /// The gateway, if the result names one.
    pub gateway: Option<IpAddr>,
    /// The name of the interface holding it, when the result says.
    pub interface: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "cniVersion", default)]
    cni_version: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    interfaces: Vec<Interface>,
    #[serde(default, deserialize_with = "null_as_default")]
    ips: Vec<IpConfig>,
    #[serde(default, deserialize_with = "null_as_default")]
    routes: Vec<Route>,
    #[serde(default, deserialize_with = "null_as_default")]
    dns: Dns,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Splits `10.0.0.2/24` into the address and the prefix length.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

impl CniResult {
    /// Parses plugin output (see the type's documentation for how lenient this is).
    pub fn from_slice(data: &[u8]) -> Result<Self, InvalidOutput> {
        let raw: Value = serde_json::from_slice(data)
            .map_err(|e| InvalidOutput(format!("result is not valid JSON: {e}")))?;
        Self::from_value(raw)
    }

    /// Interprets an already parsed result.
    pub fn from_value(raw: Value) -> Result<Self, InvalidOutput> {
        if !raw.is_object() {
            return Err(InvalidOutput("result is not a JSON object".to_owned()));
        }
        let wire = Wire::deserialize(&raw)
            .map_err(|e| InvalidOutput(format!("result does not have the CNI shape: {e}")))?;
        for ip in &wire.ips {
            if parse_cidr(&ip.address).is_none() {
                return Err(InvalidOutput(format!(
                    "result has an invalid IP address {:?} (expected CIDR notation)",
                    ip.address
                )));
            }
            if let Some(gw) = &ip.gateway {
                if gw.parse::<IpAddr>().is_err() {
                    return Err(InvalidOutput(format!(
                        "result has an invalid gateway {gw:?} for {}",
                        ip.address
                    )));
                }
            }
        }
        Ok(CniResult {
            cni_version: wire.cni_version.unwrap_or_default(),
            interfaces: wire.interfaces,
            ips: wire.ips,
            routes: wire.routes,
            dns: wire.dns,
            raw,
        })
    }

    /// The raw result as compact JSON.
    pub fn to_json(&self) -> String {
        self.raw.to_string()
    }

    /// Whether an interface index refers to an interface inside the container. IPs that name no
    /// interface count as the container's.
    fn in_sandbox(&self, index: Option<usize>) -> bool {
        match index {
            None => true,
            Some(i) => self
                .interfaces
                .get(i)
                .is_some_and(|iface| iface.sandbox.as_deref().is_some_and(|s| !s.is_empty())),
        }
    }

    fn sandbox_addrs(&self, want_v4: bool) -> Vec<SandboxAddr> {
        self.ips
            .iter()
            .filter(|ip| self.in_sandbox(ip.interface))
            .filter_map(|ip| {
                let (addr, prefix_len) = parse_cidr(&ip.address)?;
                (addr.is_ipv4() == want_v4).then(|| SandboxAddr {
                    addr,
                    prefix_len,
                    gateway: ip.gateway.as_deref().and_then(|g| g.parse().ok()),
                    interface: ip
                        .interface
                        .and_then(|i| self.interfaces.get(i))
                        .map(|iface| iface.name.clone()),
                })
            })
            .collect()
    }

    /// The IPv4 addresses of the container's interface(s).
    pub fn ipv4(&self) -> Vec<SandboxAddr> {
        self.sandbox_addrs(true)
    }

    /// The IPv6 addresses of the container's interface(s).
    pub fn ipv6(&self) -> Vec<SandboxAddr> {
        self.sandbox_addrs(false)
    }

    /// The interfaces inside the container.
    pub fn sandbox_interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces
            .iter()
            .filter(|i| i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
    }

    /// The MAC address of the first container interface that reports one.
    pub fn sandbox_mac(&self) -> Option<&str> {
        self.sandbox_interfaces().find_map(|i| i.mac.as_deref())
    }
}

impl Serialize for CniResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CniResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        CniResult::from_value(raw).map_err(serde::de::Error::custom)
    }
}

/// The error object a failing plugin prints on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The spec version (plugins often leave it out).
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cni_version: Option<String>,
    /// The error code: 1-99 are defined by the spec, 100 and up by plugins.
    pub code: u64,
    /// A short message.
    #[serde(default)]
    pub msg: String,
    /// Longer details (may be empty).
    #[serde(default)]
    pub details: String,
}

impl ErrorObject {
    /// Parses an error object; `None` if `data` is not one.
    pub fn from_slice(data: &[u8]) -> Option<Self> {
        serde_json::from_slice(data).ok()
    }
}

/// A plugin's answer to VERSION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The spec version of the answer.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The spec versions the plugin can speak.
    #[serde(rename = "supportedVersions", default)]
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// Parses a VERSION answer.
    pub fn from_slice(data: &[u8]) -> Result<Self, InvalidOutput> {
        serde_json::from_slice(data)
            .map_err(|e| InvalidOutput(format!("VERSION answer is not valid: {e}")))
    }

    /// Whether the plugin says it speaks `version`.
    pub fn supports(&self, version: &str) -> bool {
        self.supported_versions.iter().any(|v| v == version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RESULT_100: &str = r#"{
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "barge0", "mac": "aa:aa:aa:aa:aa:01"},
            {"name": "veth1", "mac": "aa:aa:aa:aa:aa:02"},
            {"name": "eth0", "mac": "02:42:0a:58:00:05", "sandbox": "/run/netns/c1", "mtu": 1500}
        ],
        "ips": [
            {"interface": 2, "address": "10.88.0.5/16", "gateway": "10.88.0.1"},
            {"interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"},
            {"interface": 0, "address": "10.88.0.1/16"}
        ],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.0.0.0/8", "gw": "10.88.0.1", "mtu": 1400}],
        "dns": {"nameservers": ["10.88.0.1"], "search": ["example.org"]},
        "custom": {"kept": true}
    }"#;

    #[test]
    fn parses_a_1_0_result_and_finds_the_container_addresses() {
        let r = CniResult::from_slice(RESULT_100.as_bytes()).unwrap();
        assert_eq!(r.cni_version, "1.0.0");
        assert_eq!(r.interfaces.len(), 3);
        assert_eq!(r.interfaces[2].mtu, Some(1500));
        assert_eq!(r.routes[1].gw.as_deref(), Some("10.88.0.1"));
        assert_eq!(r.dns.nameservers, ["10.88.0.1"]);
        assert_eq!(r.dns.domain, None);
        assert_eq!(r.raw["custom"]["kept"], true);
        let v4 = r.ipv4();
        assert_eq!(
            v4.len(),
            1,
            "the host-side bridge address is not the container's"
        );
        assert_eq!(v4[0].addr, "10.88.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(v4[0].prefix_len, 16);
        assert_eq!(v4[0].gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(v4[0].interface.as_deref(), Some("eth0"));
        let v6 = r.ipv6();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].prefix_len, 64);
        assert_eq!(r.sandbox_mac(), Some("02:42:0a:58:00:05"));
    }

    #[test]
    fn parses_0_3_results_and_nulls_leniently() {
        let r = CniResult::from_slice(
            br#"{"cniVersion":"0.3.1","interfaces":null,"ips":[{"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1"}],"dns":{}}"#,
        )
        .unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.ips[0].interface, None);
        // An IP without an interface counts as the container's.
        assert_eq!(r.ipv4()[0].addr.to_string(), "10.1.0.2");
        assert_eq!(r.sandbox_mac(), None);
        assert!(r.dns.nameservers.is_empty());
    }

    #[test]
    fn rejects_non_results() {
        for (data, want) in [
            (&b"not json"[..], "not valid JSON"),
            (b"[1,2]", "not a JSON object"),
            (
                br#"{"ips":[{"address":"10.0.0.1"}]}"#,
                "invalid IP address \"10.0.0.1\"",
            ),
            (
                br#"{"ips":[{"address":"10.0.0.1/33"}]}"#,
                "invalid IP address",
            ),
            (
                br#"{"ips":[{"address":"10.0.0.1/8","gateway":"x"}]}"#,
                "invalid gateway \"x\"",
            ),
            (br#"{"interfaces":"eth0"}"#, "does not have the CNI shape"),
        ] {
            let e = CniResult::from_slice(data).unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }

    #[test]
    fn serde_round_trips_the_raw_json() {
        let r = CniResult::from_slice(RESULT_100.as_bytes()).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        let back: CniResult = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::from_str::<Value>(&r.to_json()).unwrap(), r.raw);
        assert!(serde_json::from_str::<CniResult>("[]").is_err());
    }

    #[test]
    fn error_objects_and_version_answers() {
        let e = ErrorObject::from_slice(
            br#"{"cniVersion":"1.0.0","code":7,"msg":"bad conf","details":"no bridge"}"#,
        )
        .unwrap();
        assert_eq!(
            (e.code, e.msg.as_str(), e.details.as_str()),
            (7, "bad conf", "no bridge")
        );
        assert_eq!(
            ErrorObject::from_slice(br#"{"code":999,"msg":"x"}"#)
                .unwrap()
                .cni_version,
            None
        );
        assert!(ErrorObject::from_slice(b"oops").is_none());
        assert!(ErrorObject::from_slice(br#"{"msg":"no code"}"#).is_none());

        let v = VersionInfo::from_slice(
            json!({"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert!(v.supports("1.0.0") && !v.supports("1.1.0"));
        assert!(VersionInfo::from_slice(b"{}").is_err());
    }
}
