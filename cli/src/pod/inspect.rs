//! `barge pod inspect`: the pod as JSON (podman's main field names).

use anyhow::Result;
use barge_engine::pod::PodInspect;
use serde_json::{json, Value};

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format with a template: {{.Field.Sub}} or {{json .Field}}.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub pods: Vec<String>,
}

pub fn to_json(p: &PodInspect) -> Value {
    let c = &p.record.config;
    json!({
        "Id": p.record.id,
        "Name": p.record.name,
        "Created": p.record.created_rfc3339(),
        "State": p.status.as_str(),
        "Sandbox": p.record.sandbox.as_str(),
        "Hostname": c.hostname,
        "Labels": c.labels,
        "Annotations": c.annotations,
        "Metadata": c.metadata,
        "Network": c.network,
        "IPs": p.ips,
        "Ports": p.ports,
        "SharedNamespaces": {
            "net": c.share.net, "ipc": c.share.ipc, "uts": c.share.uts, "pid": c.share.pid,
        },
        "Namespaces": p.sandbox.namespaces,
        "EtcDir": p.sandbox.etc_dir,
        "CgroupParent": c.cgroup_parent,
        "CgroupPaths": p.sandbox.cgroups,
        "Resources": c.resources,
        "DNS": c.dns,
        "Sysctls": c.sysctls,
        "NumContainers": p.containers.len(),
        "Containers": p.containers.iter().map(|x| json!({
            "Id": x.id, "Name": x.name, "State": x.state.as_str(),
            "ExitCode": x.exit_code, "Init": x.init,
        })).collect::<Vec<_>>(),
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let mut docs = Vec::new();
    let mut code = 0;
    for n in &args.pods {
        match engine.pod_inspect(n) {
            Ok(p) => docs.push(to_json(&p)),
            Err(e) => {
                eprintln!("barge: {e}");
                code = 1;
            }
        }
    }
    match &args.format {
        Some(t) => {
            for d in &docs {
                println!("{}", crate::container::inspect::render(t, d)?);
            }
        }
        None => println!("{}", serde_json::to_string_pretty(&Value::Array(docs))?),
    }
    Ok(code)
}
