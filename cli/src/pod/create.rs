//! `barge pod create`.

use std::collections::BTreeMap;

use anyhow::Result;
use barge_engine::network::ports::PortSpec;
use barge_engine::pod::{PodConfig, PodDns, PodResources, PodShare};

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod's name (default: a random one).
    #[arg(short, long)]
    pub name: Option<String>,
    /// The host name its containers see (default: the pod's name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Publish a port of the pod: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Namespaces its containers share: ipc,net,uts (pid is not supported yet).
    #[arg(long, default_value = "ipc,net,uts")]
    pub share: String,
    /// Set metadata on the pod (KEY=VALUE).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Network: a network's name (default: barge), none or host.
    #[arg(long, alias = "net", default_value = "")]
    pub network: String,
    /// DNS servers (instead of the host's).
    #[arg(long)]
    pub dns: Vec<String>,
    /// DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a line to /etc/hosts (HOST:IP).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Namespaced sysctls for the pod (KEY=VALUE).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// The pod cgroup (a cgroupfs path; default barge/pod-<id>).
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Memory limit of the whole pod (e.g. 512m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPUs for the whole pod.
    #[arg(long)]
    pub cpus: Option<String>,
}

fn key_values(flag: &str, list: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in list {
        let Some((k, v)) = s.split_once('=') else {
            anyhow::bail!("{flag} {s:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            anyhow::bail!("{flag} {s:?}: empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let mut ports = Vec::new();
    for p in &args.publish {
        ports.extend(PortSpec::parse(p)?);
    }
    let config = PodConfig {
        name: args.name,
        hostname: args.hostname.unwrap_or_default(),
        labels: key_values("--label", &args.label)?,
        dns: PodDns {
            servers: args.dns,
            searches: args.dns_search,
            options: args.dns_option,
        },
        extra_hosts: args.add_host,
        ports,
        network: args.network,
        share: PodShare::parse(&args.share)?,
        cgroup_parent: args.cgroup_parent,
        sysctls: key_values("--sysctl", &args.sysctl)?,
        resources: PodResources {
            memory: args
                .memory
                .as_deref()
                .map(|m| barge_engine::config::parse_bytes("-m, --memory", m))
                .transpose()?,
            cpus: args
                .cpus
                .as_deref()
                .map(barge_engine::config::parse_cpus)
                .transpose()?,
            ..Default::default()
        },
        ..Default::default()
    };
    let engine = ctx.engine()?;
    let rec = engine.pod_create(config)?;
    println!("{}", rec.id);
    Ok(0)
}
