//! `docker inspect CONTAINER`: docker's container document, with the fields barge has.

use barge_shim::config::RestartPolicy;
use serde_json::{json, Map, Value};

use crate::config::{ContainerConfig, MountSpec};
use crate::db::ContainerRecord;
use crate::network::attach::Attachment;
use crate::network::ports::{docker_ports_map, parse_exposed};
use crate::status::{State, Status};
use crate::Engine;

/// docker's zero time, for a container never started or never finished.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The container's inspect document (`GET /containers/{id}/json`). `State.Health` is there
/// when the container has a health check and was started.
pub fn inspect(engine: &Engine, rec: &ContainerRecord, st: &Status) -> Value {
    let c = &rec.config;
    let args: Vec<&String> = c.entrypoint.iter().chain(&c.cmd).collect();
    let dir = engine.paths.container(&rec.id);
    let mut state = state(st);
    // docker: a container gets its health at its first start.
    let health = (st.state != State::Created)
        .then(|| engine.health(rec))
        .flatten();
    if let (Some(h), Some(obj)) = (health, state.as_object_mut()) {
        obj.insert("Health".into(), crate::health::docker_json(&h));
    }
    json!({
        "Id": rec.id,
        "Created": rec.created_rfc3339(),
        "Path": args.first(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": engine.log_file(rec),
        "Name": format!("/{}", rec.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": host_config(c),
        "Mounts": c.mounts.iter().map(|m| mount_point(engine, m)).collect::<Vec<_>>(),
        "Config": config(c),
        "NetworkSettings": network_settings(engine, rec),
    })
}

/// `State`: status, pid, exit code and times.
pub fn state(st: &Status) -> Value {
    json!({
        "Status": st.state.as_str(),
        "Running": matches!(st.state, State::Running | State::Paused),
        "Paused": st.state == State::Paused,
        "Restarting": st.state == State::Restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.state == State::Dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code.unwrap_or(0),
        "Error": st.error.clone().unwrap_or_default(),
        "ShimLost": st.shim_lost,
        "StartedAt": st.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "FinishedAt": st.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
    })
}

/// docker's `RestartPolicy` object.
pub fn restart_policy(p: RestartPolicy) -> Value {
    let (name, retries) = match p {
        RestartPolicy::OnFailure { max_retries } => ("on-failure".to_string(), max_retries),
        p => (p.to_string(), 0),
    };
    json!({"Name": name, "MaximumRetryCount": retries})
}

/// `HostConfig`: the settings of `run` that are not the process's.
pub fn host_config(c: &ContainerConfig) -> Value {
    let security: Vec<String> = c
        .seccomp
        .iter()
        .map(|s| format!("seccomp={s}"))
        .chain(c.no_new_privileges.then(|| "no-new-privileges".to_string()))
        .collect();
    json!({
        "Binds": binds(&c.mounts),
        "RestartPolicy": restart_policy(c.restart),
        "AutoRemove": c.autoremove,
        "NetworkMode": c.network,
        "PortBindings": port_bindings(c),
        "PublishAllPorts": c.publish_all,
        "Dns": c.dns,
        "DnsSearch": c.dns_search,
        "DnsOptions": c.dns_options,
        "ExtraHosts": c.extra_hosts,
        "Memory": c.memory.unwrap_or(0),
        "NanoCpus": c.cpus.map(|x| (x * 1e9) as i64).unwrap_or(0),
        "PidsLimit": c.pids_limit,
        "ReadonlyRootfs": c.read_only,
        "CapAdd": c.cap_add,
        "CapDrop": c.cap_drop,
        "Privileged": c.privileged,
        "SecurityOpt": security,
        "Init": c.init,
        "Mounts": [],
        "LogConfig": {"Type": "cri", "Config": {
            "max-size": c.log_max_size.map(|s| s.to_string()).unwrap_or_default(),
            "max-file": c.log_max_files.to_string()}},
    })
}

/// `HostConfig.Binds`: the `-v` mounts as given (`SRC:DST[:ro]`).
pub fn binds(mounts: &[MountSpec]) -> Vec<String> {
    mounts
        .iter()
        .filter(|m| !m.source.is_empty())
        .map(|m| {
            let mut s = format!("{}:{}", m.source, m.destination);
            if m.readonly {
                s.push_str(":ro");
            }
            s
        })
        .collect()
}

/// One entry of the top-level `Mounts`: where a bind or volume comes from and goes.
pub fn mount_point(engine: &Engine, m: &MountSpec) -> Value {
    let volume = m.kind == "volume";
    json!({
        "Type": m.kind,
        "Name": if volume { m.source.clone() } else { String::new() },
        "Source": if volume { engine.volume_path(&m.source).display().to_string() } else { m.source.clone() },
        "Destination": m.destination,
        "Driver": if volume { "local" } else { "" },
        "RW": !m.readonly,
    })
}

/// `Config`: the process and its metadata.
pub fn config(c: &ContainerConfig) -> Value {
    json!({
        "Hostname": c.hostname,
        "User": c.user,
        "Tty": c.tty,
        "OpenStdin": c.open_stdin,
        "Env": c.env,
        "Cmd": c.cmd,
        "Entrypoint": c.entrypoint,
        "Image": c.image,
        "WorkingDir": c.working_dir,
        "Labels": c.labels,
        "StopSignal": c.stop_signal,
        "ExposedPorts": c.exposed.iter().map(|p| (p.clone(), json!({}))).collect::<Map<_, _>>(),
        "Healthcheck": c.healthcheck,
    })
}

/// `HostConfig.PortBindings`: the `-p` flags as asked (host port "" when picked at start).
pub fn port_bindings(c: &ContainerConfig) -> Value {
    let mut m = Map::new();
    for p in &c.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let port = if p.host_port == 0 {
            String::new()
        } else {
            p.host_port.to_string()
        };
        if let Some(arr) = m.entry(key).or_insert_with(|| json!([])).as_array_mut() {
            arr.push(json!({"HostIp": p.host_ip, "HostPort": port}));
        }
    }
    Value::Object(m)
}

/// `NetworkSettings.Networks`: per network, the container's endpoint (addresses, MAC).
pub fn networks(engine: &Engine, rec: &ContainerRecord) -> Map<String, Value> {
    networks_of(rec, &engine.attachments(&rec.id))
}

/// [`networks`] from the container's attachments, already read.
pub fn networks_of(rec: &ContainerRecord, atts: &[Attachment]) -> Map<String, Value> {
    let mut networks = Map::new();
    for ep in &rec.config.networks {
        let a = atts.iter().find(|a| a.network == ep.network);
        let mut v = json!({
            "Aliases": ep.aliases, "NetworkID": a.map(|a| a.network_id.clone()).unwrap_or_default(),
            "EndpointID": a.map(|a| format!("{}-{}", super::short(&rec.id), a.ifname)).unwrap_or_default(),
            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": a.and_then(|a| a.mac()).unwrap_or_default(),
        });
        for (ip, prefix, gw) in a.map(|a| a.addresses()).unwrap_or_default() {
            let gw = gw.unwrap_or_default();
            if ip.is_ipv4() {
                v["IPAddress"] = json!(ip.to_string());
                v["IPPrefixLen"] = json!(prefix);
                v["Gateway"] = json!(gw);
            } else {
                v["GlobalIPv6Address"] = json!(ip.to_string());
                v["GlobalIPv6PrefixLen"] = json!(prefix);
                v["IPv6Gateway"] = json!(gw);
            }
        }
        networks.insert(ep.network.clone(), v);
    }
    networks
}

/// `NetworkSettings`: the addresses and ports of the running container, per network; the
/// first network's addresses also at the top level, as docker does.
pub fn network_settings(engine: &Engine, rec: &ContainerRecord) -> Value {
    let atts = engine.attachments(&rec.id);
    let exposed = parse_exposed(&rec.config.exposed).unwrap_or_default();
    let bindings: Vec<_> = atts.iter().flat_map(|a| a.ports.clone()).collect();
    let networks = networks_of(rec, &atts);
    let primary = rec
        .config
        .networks
        .first()
        .and_then(|ep| networks.get(&ep.network))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let field = |k: &str| primary.get(k).cloned().unwrap_or(json!(""));
    let sandbox =
        if atts.is_empty() && !barge_runtime::netns::is_pinned(&engine.paths.netns(&rec.id)) {
            String::new()
        } else {
            engine.paths.netns(&rec.id).display().to_string()
        };
    json!({
        "SandboxKey": sandbox,
        "Ports": docker_ports_map(&bindings, &exposed),
        "IPAddress": field("IPAddress"),
        "IPPrefixLen": primary.get("IPPrefixLen").cloned().unwrap_or(json!(0)),
        "Gateway": field("Gateway"),
        "GlobalIPv6Address": field("GlobalIPv6Address"),
        "GlobalIPv6PrefixLen": primary.get("GlobalIPv6PrefixLen").cloned().unwrap_or(json!(0)),
        "IPv6Gateway": field("IPv6Gateway"),
        "MacAddress": field("MacAddress"),
        "Networks": networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_restart_policy() {
        let m = |kind: &str, src: &str, dst: &str, ro| MountSpec {
            kind: kind.into(),
            source: src.into(),
            destination: dst.into(),
            readonly: ro,
            nocopy: false,
        };
        assert_eq!(
            binds(&[
                m("bind", "/h", "/c", true),
                m("volume", "v1", "/d", false),
                m("volume", "", "/anon", false)
            ]),
            ["/h:/c:ro", "v1:/d"]
        );
        assert_eq!(
            restart_policy(RestartPolicy::OnFailure { max_retries: 3 }),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(
            restart_policy(RestartPolicy::UnlessStopped)["Name"],
            "unless-stopped"
        );
    }
}
