//! `barge pod ls`: podman's columns, `-q`, `--format json`, `--filter`.

use anyhow::{bail, Result};
use barge_engine::pod::{PodFilters, PodListed, PodStatus};
use serde_json::json;

use crate::container::{short, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only print pod IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Output format: table (default) or json (an array).
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: id=, name=, label=KEY[=VALUE], status=.
    #[arg(short, long)]
    pub filter: Vec<String>,
}

fn filters(list: &[String]) -> Result<PodFilters> {
    let mut f = PodFilters::default();
    for s in list {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--filter {s:?}: expected KEY=VALUE");
        };
        match k {
            "id" => f.id = Some(v.to_string()),
            "name" => f.name = Some(v.to_string()),
            "label" => f.labels.push(v.to_string()),
            "status" => f.status.push(PodStatus::parse(v)?),
            _ => bail!("--filter {s:?}: unknown filter {k:?} (id, name, label, status)"),
        }
    }
    Ok(f)
}

/// A listed pod as JSON (podman's `pod ps --format json` field names).
pub fn to_json(p: &PodListed) -> serde_json::Value {
    json!({
        "Id": p.record.id,
        "Name": p.record.name,
        "Status": p.status.as_str(),
        "Created": p.record.created_rfc3339(),
        "Labels": p.record.config.labels,
        "Networks": [p.record.config.network],
        "NumberOfContainers": p.containers.len(),
        "Containers": p.containers.iter().map(|c| json!({
            "Id": c.id, "Names": c.name, "Status": c.state.as_str(), "Init": c.init,
        })).collect::<Vec<_>>(),
    })
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let f = filters(&args.filter)?;
    let engine = ctx.engine()?;
    let pods = engine.pod_list(&f)?;
    let id = |s: &str| {
        if args.no_trunc {
            s.to_string()
        } else {
            short(s).to_string()
        }
    };
    if args.quiet {
        for p in &pods {
            println!("{}", id(&p.record.id));
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some("json") | Some("{{json .}}") => {
            let v: Vec<_> = pods.iter().map(to_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        None | Some("table") => {
            println!(
                "{:<14}{:<24}{:<11}{:<32}# OF CONTAINERS",
                "POD ID", "NAME", "STATUS", "CREATED"
            );
            for p in &pods {
                println!(
                    "{:<14}{:<24}{:<11}{:<32}{}",
                    id(&p.record.id),
                    p.record.name,
                    p.status.as_str(),
                    p.record.created_rfc3339(),
                    p.containers.len()
                );
            }
        }
        Some(other) => bail!("--format {other:?}: use table or json"),
    }
    Ok(0)
}
