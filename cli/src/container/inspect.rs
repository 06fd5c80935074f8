//! `barge inspect`: docker's container JSON (the fields barge has), `--format '{{.Path}}'`.

use anyhow::{bail, Result};
use barge_engine::db::ContainerRecord;
use barge_engine::status::{State, Status};
use barge_engine::Engine;
use serde_json::{json, Value};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format with a template: {{.Field.Sub}} or {{json .Field}}.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn document(engine: &Engine, rec: &ContainerRecord, st: &Status) -> Value {
    let c = &rec.config;
    let (policy, retries) = match c.restart {
        barge_shim::config::RestartPolicy::OnFailure { max_retries } => {
            ("on-failure".to_string(), max_retries)
        }
        p => (p.to_string(), 0),
    };
    let args: Vec<&String> = c.entrypoint.iter().chain(&c.cmd).collect();
    json!({
        "Id": rec.id,
        "Created": rec.created_rfc3339(),
        "Path": args.first(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": {
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
            "StartedAt": st.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": st.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": c.image_id,
        "ResolvConfPath": engine.paths.container(&rec.id).join("resolv.conf"),
        "HostnamePath": engine.paths.container(&rec.id).join("hostname"),
        "HostsPath": engine.paths.container(&rec.id).join("hosts"),
        "LogPath": engine.paths.log(&rec.id),
        "Name": format!("/{}", rec.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "HostConfig": {
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
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
            "SecurityOpt": c.seccomp.iter().map(|s| format!("seccomp={s}")).chain(c.no_new_privileges.then(|| "no-new-privileges".to_string())).collect::<Vec<_>>(),
            "Init": c.init,
            "LogConfig": {"Type": "cri", "Config": {
                "max-size": c.log_max_size.map(|s| s.to_string()).unwrap_or_default(),
                "max-file": c.log_max_files.to_string()}},
        },
        "Mounts": c.mounts.iter().map(|m| json!({
            "Type": m.kind,
            "Name": if m.kind == "volume" { m.source.clone() } else { String::new() },
            "Source": if m.kind == "volume" { engine.volume_path(&m.source).display().to_string() } else { m.source.clone() },
            "Destination": m.destination,
            "RW": !m.readonly,
        })).collect::<Vec<_>>(),
        "Config": {
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
            "ExposedPorts": c.exposed.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        },
        "NetworkSettings": network_settings(engine, rec),
    })
}

/// `HostConfig.PortBindings`: the `-p` flags as asked (host port "" when picked at start).
fn port_bindings(c: &barge_engine::config::ContainerConfig) -> Value {
    let mut m = serde_json::Map::new();
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

/// `NetworkSettings`: the addresses and ports of the running container, per network.
pub fn network_settings(engine: &Engine, rec: &ContainerRecord) -> Value {
    let c = &rec.config;
    let atts = engine.attachments(&rec.id);
    let exposed = barge_engine::network::ports::parse_exposed(&c.exposed).unwrap_or_default();
    let bindings: Vec<_> = atts.iter().flat_map(|a| a.ports.clone()).collect();
    let mut networks = serde_json::Map::new();
    let mut primary = None;
    for ep in &c.networks {
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
        if primary.is_none() {
            primary = Some(v.clone());
        }
        networks.insert(ep.network.clone(), v);
    }
    let p = primary.unwrap_or_else(|| json!({}));
    let field = |k: &str| p.get(k).cloned().unwrap_or(json!(""));
    let sandbox =
        if atts.is_empty() && !barge_runtime::netns::is_pinned(&engine.paths.netns(&rec.id)) {
            String::new()
        } else {
            engine.paths.netns(&rec.id).display().to_string()
        };
    json!({
        "SandboxKey": sandbox,
        "Ports": barge_engine::network::ports::docker_ports_map(&bindings, &exposed),
        "IPAddress": field("IPAddress"),
        "IPPrefixLen": p.get("IPPrefixLen").cloned().unwrap_or(json!(0)),
        "Gateway": field("Gateway"),
        "GlobalIPv6Address": field("GlobalIPv6Address"),
        "GlobalIPv6PrefixLen": p.get("GlobalIPv6PrefixLen").cloned().unwrap_or(json!(0)),
        "IPv6Gateway": field("IPv6Gateway"),
        "MacAddress": field("MacAddress"),
        "Networks": networks,
    })
}

/// A tiny subset of Go templates: `{{.A.B}}`, `{{json .A}}`, text around them.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            bail!("--format {template:?}: unclosed {{{{");
        };
        let expr = rest[i + 2..i + j].trim();
        let (json_out, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let Some(path) = path.strip_prefix('.') else {
            bail!("--format: unsupported expression {expr:?} (use .Field or json .Field)");
        };
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            cur = cur.get(part).unwrap_or(&Value::Null);
        }
        match (json_out, cur) {
            (true, x) => out.push_str(&x.to_string()),
            (false, Value::String(s)) => out.push_str(s),
            (false, Value::Null) => out.push_str("<no value>"),
            (false, x) => out.push_str(&x.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &args.containers {
        match engine.db.find(n) {
            Ok(rec) => {
                let st = engine.status(&rec);
                docs.push(document(&engine, &rec, &st));
            }
            Err(e) => {
                eprintln!("barge: {e}");
                code = 1;
            }
        }
    }
    match &args.format {
        Some(t) => {
            for d in &docs {
                println!("{}", render(t, d)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    Ok(code)
}
