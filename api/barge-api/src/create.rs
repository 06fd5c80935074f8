//! docker's `ContainerCreate` body (Config + HostConfig + NetworkingConfig) turned into the
//! engine's typed create request. Every field barge honours is mapped; any other field set to
//! something but its zero value is refused with a 400 naming it (never ignored silently).

use std::collections::BTreeMap;

use barge_engine::config::RestartPolicy;
use barge_engine::config::{ContainerConfig, Endpoint, MountSpec};
use barge_engine::create::CreateOptions;
use barge_engine::health::HealthCheck;
use barge_engine::network::ports::PortSpec;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Body {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub stop_signal: String,
    pub stop_timeout: Option<u32>,
    pub healthcheck: Option<HealthCheck>,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<NetworkingConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub mounts: Option<Vec<Mount>>,
    pub network_mode: String,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub restart_policy: Option<Restart>,
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub pids_limit: Option<i64>,
    pub init: Option<bool>,
    pub log_config: Option<LogConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub volume_options: Option<VolumeOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeOptions {
    pub no_copy: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Restart {
    pub name: String,
    pub maximum_retry_count: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointSettings>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointSettings {
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6: String,
}

/// Config fields barge maps (or that only shape the client's attach, which is its own call).
const CONFIG_FIELDS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Entrypoint",
    "Image",
    "Volumes",
    "WorkingDir",
    "Labels",
    "ExposedPorts",
    "StopSignal",
    "StopTimeout",
    "Healthcheck",
    "HostConfig",
    "NetworkingConfig",
    "ArgsEscaped",
    "OnBuild",
    "Shell",
    "Platform",
];

const HOST_CONFIG_FIELDS: &[&str] = &[
    "Binds",
    "Mounts",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "CapAdd",
    "CapDrop",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "Memory",
    "MemorySwap",
    "NanoCpus",
    "CpuQuota",
    "CpuPeriod",
    "PidsLimit",
    "Init",
    "LogConfig",
    // Client-side or cosmetic: the terminal size comes with resize, the id file is the CLI's.
    "ConsoleSize",
    "ContainerIDFile",
];

/// Whether a JSON value is docker's zero value for its field.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_zero),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// Values the CLI sends for fields barge does not support that mean "the default".
fn is_default(key: &str, v: &Value) -> bool {
    match key {
        "MemorySwappiness" => v.as_i64() == Some(-1),
        "Isolation" => v.as_str() == Some("default"),
        "CgroupnsMode" => matches!(v.as_str(), Some("private" | "host")),
        "IpcMode" => matches!(v.as_str(), Some("private" | "shareable")),
        "ShmSize" => v.as_i64() == Some(64 << 20),
        "OomScoreAdj" => false,
        _ => false,
    }
}

/// Refuse fields outside `known` that are set to something but their zero value.
fn refuse_unknown(obj: &Value, known: &[&str], prefix: &str) -> ApiResult<()> {
    let Some(map) = obj.as_object() else {
        return Ok(());
    };
    for (k, v) in map {
        if known.contains(&k.as_str()) || is_zero(v) || is_default(k, v) {
            continue;
        }
        return Err(ApiError::bad_request(format!(
            "{prefix}{k} = {v} is not supported by barge (only its zero value is accepted)"
        )));
    }
    Ok(())
}

/// Parse and check a create body; the engine's request.
pub fn options(raw: &[u8], name: Option<String>) -> ApiResult<CreateOptions> {
    let v: Value = crate::routes::params::json_body(raw, "container create")?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "invalid JSON in the container create request: expected an object",
        ));
    }
    let body: Body = serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::bad_request(format!("invalid JSON in the container create request: {e}"))
    })?;
    refuse_unknown(&v, CONFIG_FIELDS, "")?;
    if let Some(h) = v.get("HostConfig") {
        refuse_unknown(h, HOST_CONFIG_FIELDS, "HostConfig.")?;
    }
    translate(body, name)
}

fn translate(b: Body, name: Option<String>) -> ApiResult<CreateOptions> {
    if b.image.is_empty() {
        return Err(ApiError::bad_request(
            "config error: no image given (Image)",
        ));
    }
    if !b.domainname.is_empty() {
        return Err(ApiError::bad_request(
            "Domainname is not supported by barge",
        ));
    }
    let h = b.host_config.unwrap_or_default();
    let mut c = ContainerConfig {
        image: b.image,
        env: b.env.unwrap_or_default(),
        working_dir: b.working_dir,
        user: b.user,
        hostname: b.hostname,
        labels: b.labels.unwrap_or_default().into_iter().collect(),
        tty: b.tty,
        open_stdin: b.open_stdin,
        autoremove: h.auto_remove,
        read_only: h.readonly_rootfs,
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        privileged: h.privileged,
        init: h.init.unwrap_or(false),
        publish_all: h.publish_all_ports,
        exposed: b.exposed_ports.unwrap_or_default().into_keys().collect(),
        dns: h.dns.unwrap_or_default(),
        dns_search: h.dns_search.unwrap_or_default(),
        dns_options: h.dns_options.unwrap_or_default(),
        extra_hosts: h.extra_hosts.unwrap_or_default(),
        stop_signal: b.stop_signal,
        stop_timeout: b.stop_timeout,
        healthcheck: b.healthcheck,
        log_max_files: 1,
        ..Default::default()
    };
    if let Some(e) = c
        .env
        .iter()
        .find(|e| e.split('=').next().unwrap_or("").is_empty())
    {
        return Err(ApiError::bad_request(format!(
            "invalid environment variable {e:?}"
        )));
    }
    // Restart policy.
    let restart = h.restart_policy.unwrap_or_default();
    c.restart = match restart.name.as_str() {
        "on-failure" => RestartPolicy::OnFailure {
            max_retries: restart.maximum_retry_count,
        },
        other => RestartPolicy::parse(other).map_err(ApiError::bad_request)?,
    };
    if c.autoremove && c.restart != RestartPolicy::No {
        return Err(ApiError::bad_request(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    // Resources.
    if h.memory < 0 {
        return Err(ApiError::bad_request("Memory must not be negative"));
    }
    c.memory = (h.memory > 0).then_some(h.memory);
    if h.memory_swap != 0 && h.memory_swap != -1 && h.memory_swap != h.memory {
        return Err(ApiError::bad_request(
            "HostConfig.MemorySwap: barge does not limit swap separately (use 0 or -1)",
        ));
    }
    if h.nano_cpus != 0 && h.cpu_quota != 0 {
        return Err(ApiError::bad_request(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if h.nano_cpus != 0 {
        c.cpus = Some(h.nano_cpus as f64 / 1e9);
    } else if h.cpu_quota > 0 {
        let period = if h.cpu_period > 0 {
            h.cpu_period
        } else {
            100_000
        };
        c.cpus = Some(h.cpu_quota as f64 / period as f64);
    } else if h.cpu_period != 0 {
        return Err(ApiError::bad_request(
            "HostConfig.CpuPeriod without CpuQuota is not supported by barge",
        ));
    }
    c.pids_limit = h.pids_limit.filter(|p| *p > 0);
    // Security options.
    for o in h.security_opt.unwrap_or_default() {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((&o, ""));
        match (k, v) {
            ("seccomp", "") => {
                return Err(ApiError::bad_request(format!(
                    "SecurityOpt {o:?}: seccomp needs a value"
                )))
            }
            ("seccomp", p) => c.seccomp = Some(p.to_string()),
            ("no-new-privileges", "" | "true") => c.no_new_privileges = true,
            ("no-new-privileges", "false") => c.no_new_privileges = false,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "SecurityOpt {o:?} is not supported by barge (seccomp=…, no-new-privileges)"
                )))
            }
        }
    }
    // Logging.
    if let Some(l) = h.log_config {
        let log =
            barge_engine::config::logging::from_log_config(&l.kind, &l.config.unwrap_or_default())?;
        c.log_max_size = log.max_size;
        c.log_max_files = log.max_files;
    }
    // Mounts: Binds (docker's -v text), Mounts (--mount), Volumes (anonymous).
    for bind in h.binds.unwrap_or_default() {
        c.mounts.push(MountSpec::parse(&bind)?);
    }
    for m in h.mounts.unwrap_or_default() {
        let kind = match m.kind.as_str() {
            "bind" | "volume" => m.kind.clone(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "mount type {other:?} is not supported by barge (bind, volume)"
                )))
            }
        };
        if !m.target.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "invalid mount config: the target {:?} must be an absolute path",
                m.target
            )));
        }
        if kind == "bind" && !m.source.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "invalid mount config for type \"bind\": the source {:?} must be an absolute path",
                m.source
            )));
        }
        c.mounts.push(MountSpec {
            kind,
            source: m.source,
            destination: m.target,
            readonly: m.read_only,
            nocopy: m.volume_options.is_some_and(|o| o.no_copy),
        });
    }
    for dest in b.volumes.unwrap_or_default().into_keys() {
        if !c.mounts.iter().any(|m| m.destination == dest) {
            c.mounts.push(MountSpec::parse(&dest)?);
        }
    }
    // Network.
    c.network = h.network_mode;
    let endpoints = b
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default();
    if endpoints.len() > 1 {
        return Err(ApiError::bad_request(
            "barge joins one network at create: connect the others after (docker network connect)",
        ));
    }
    if let Some((net, ep)) = endpoints.into_iter().next() {
        if c.network.is_empty() || c.network == "default" {
            c.network = net.clone();
        }
        let ep = ep.unwrap_or_default();
        let aliases = ep.aliases.unwrap_or_default();
        let ipam = ep.ipam_config.unwrap_or_default();
        if !ipam.ipv6.is_empty() {
            return Err(ApiError::bad_request(
                "IPAMConfig.IPv6Address is not supported by barge",
            ));
        }
        if !aliases.is_empty() || !ipam.ipv4.is_empty() {
            c.networks = vec![Endpoint {
                network: String::new(),
                aliases,
                ip: (!ipam.ipv4.is_empty()).then_some(ipam.ipv4),
            }];
        }
    }
    // Ports.
    for (port, bindings) in h.port_bindings.unwrap_or_default() {
        let (cport, proto) = port.split_once('/').unwrap_or((&port, "tcp"));
        let bindings = bindings.unwrap_or_default();
        let bindings = if bindings.is_empty() {
            vec![PortBinding::default()]
        } else {
            bindings
        };
        for pb in bindings {
            let ip = if pb.host_ip.contains(':') {
                format!("[{}]", pb.host_ip)
            } else {
                pb.host_ip.clone()
            };
            let text = if ip.is_empty() {
                format!("{}:{cport}/{proto}", pb.host_port)
            } else {
                format!("{ip}:{}:{cport}/{proto}", pb.host_port)
            };
            c.ports.extend(PortSpec::parse(&text)?);
        }
    }
    Ok(CreateOptions {
        name: name.filter(|n| !n.is_empty()),
        entrypoint: b.entrypoint,
        cmd: b.cmd.unwrap_or_default(),
        config: c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_refuses() {
        let o = options(
            br#"{"Image":"bb","Cmd":["echo","hi"],"Tty":true,"HostConfig":{"Memory":67108864,"NanoCpus":1500000000,"Binds":["/tmp:/h:ro"],"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},"ShmSize":0,"OomKillDisable":false,"ConsoleSize":[24,80]}}"#,
            Some("web".into()),
        )
        .unwrap();
        assert_eq!(o.cmd, ["echo", "hi"]);
        assert_eq!(o.config.memory, Some(64 << 20));
        assert_eq!(o.config.cpus, Some(1.5));
        assert!(o.config.mounts[0].readonly);
        assert_eq!(o.config.ports[0].host_port, 8080);
        assert_eq!(
            o.config.restart,
            RestartPolicy::OnFailure { max_retries: 3 }
        );
        let e = options(
            br#"{"Image":"bb","HostConfig":{"OomKillDisable":true}}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(
            e.message.contains("HostConfig.OomKillDisable"),
            "{}",
            e.message
        );
        let e = options(br#"{"Image":"bb","Tty":"yes"}"#, None).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(options(b"{not json", None).is_err());
        // The health check is mapped (checked by the engine at create).
        let o = options(
            br#"{"Image":"bb","Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":2}}"#,
            None,
        )
        .unwrap();
        let h = o.config.healthcheck.unwrap();
        assert_eq!((h.test.len(), h.interval, h.retries), (2, 1_000_000_000, 2));
    }
}
