//! `barge network create|ls|inspect|rm|connect|disconnect|prune`, and the hidden
//! `barge container cleanup` shims run when their container has exited.

use anyhow::{bail, Result};
use barge_engine::config::labels::parse_labels;
use barge_engine::config::Endpoint;
use barge_engine::network::store::{CreateRequest, Network};
use clap::Subcommand;

use super::{short, Ctx};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network (a bridge with its own subnet; containers on it resolve each other
    /// by name).
    Create {
        /// Driver to manage the network (bridge).
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format (one IPv4 and/or one IPv6).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway for each subnet, in the same order.
        #[arg(long)]
        gateway: Vec<String>,
        /// Also give the network an IPv6 subnet.
        #[arg(long)]
        ipv6: bool,
        /// No access to the outside (no NAT, no default route).
        #[arg(long)]
        internal: bool,
        /// Set metadata on the network (KEY=VALUE).
        #[arg(long)]
        label: Vec<String>,
        /// Driver options: com.docker.network.bridge.name=NAME.
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(visible_alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format the output using a Go template subset ({{.Field}}, {{json .X}}).
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 or IPv6 address.
        #[arg(long, alias = "ip6")]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove all networks no container uses.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: NetworkCommand) -> Result<i32> {
    let engine = ctx.engine()?;
    match cmd {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            ipv6,
            internal,
            label,
            opt,
            name,
        } => {
            let mut req = CreateRequest {
                name,
                driver,
                ipv6,
                internal,
                labels: parse_labels("--label", &label)?,
                ..Default::default()
            };
            for s in &subnet {
                req.subnets
                    .push(barge_engine::network::subnet::parse_subnet(s)?);
            }
            for g in &gateway {
                req.gateways.push(
                    g.parse()
                        .map_err(|_| anyhow::anyhow!("--gateway {g:?}: not an IP address"))?,
                );
            }
            for (k, v) in parse_labels("-o", &opt)? {
                match k.as_str() {
                    "com.docker.network.bridge.name" => req.bridge = Some(v),
                    _ => bail!("-o {k}: unknown option (com.docker.network.bridge.name is known)"),
                }
            }
            let net = engine.networks().create(&req)?;
            println!("{}", net.id());
        }
        NetworkCommand::Ls { quiet, no_trunc } => {
            let nets = engine.networks().list()?;
            let has_default = nets.iter().any(|n| n.is_default());
            let mut rows: Vec<[String; 4]> = Vec::new();
            if !has_default {
                // Listed before its first use too, as docker always lists `bridge`.
                let n = engine.networks().ensure_default()?;
                rows.push(row(&n));
            }
            rows.extend(nets.iter().map(row));
            rows.push([
                barge_engine::docker::network::pseudo_id("host"),
                "host".into(),
                "host".into(),
                "local".into(),
            ]);
            rows.push([
                barge_engine::docker::network::pseudo_id("none"),
                "none".into(),
                "null".into(),
                "local".into(),
            ]);
            for r in rows.iter_mut() {
                if !no_trunc {
                    r[0] = short(&r[0]).to_string();
                }
            }
            if quiet {
                for r in rows {
                    println!("{}", r[0]);
                }
            } else {
                let mut t = vec![vec![
                    "NETWORK ID".to_string(),
                    "NAME".into(),
                    "DRIVER".into(),
                    "SCOPE".into(),
                ]];
                t.extend(rows.into_iter().map(|r| r.to_vec()));
                crate::image::list::print_table(&t);
            }
        }
        NetworkCommand::Inspect { format, names } => {
            let mut docs = Vec::new();
            let mut code = 0;
            for n in &names {
                match engine.networks().get(n) {
                    Ok(net) => docs.push(barge_engine::docker::network::network(&engine, &net)?),
                    Err(e) => {
                        eprintln!("barge: {e}");
                        code = 1;
                    }
                }
            }
            match format {
                Some(f) => {
                    for d in &docs {
                        println!("{}", super::inspect::render(&f, d)?);
                    }
                }
                None => println!("{}", serde_json::to_string_pretty(&docs)?),
            }
            return Ok(code);
        }
        NetworkCommand::Rm { names } => {
            let mut code = 0;
            for n in names {
                match engine.network_remove(&n) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("barge: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        NetworkCommand::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let ep = Endpoint {
                network: String::new(),
                aliases: alias,
                ip,
            };
            engine.network_connect(&network, &container, ep)?;
        }
        NetworkCommand::Disconnect {
            network, container, ..
        } => engine.network_disconnect(&network, &container)?,
        NetworkCommand::Prune { .. } => {
            let removed = engine.prune_networks()?.deleted;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in &removed {
                    println!("{n}");
                }
            }
        }
    }
    Ok(0)
}

fn row(n: &Network) -> [String; 4] {
    [
        n.id(),
        n.name().to_string(),
        n.driver(),
        "local".to_string(),
    ]
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Tear down an exited container's network (run by its shim).
    #[command(hide = true)]
    Cleanup { id: String },
    /// Show an exec's state (docker's exec inspect): running, exit code, pid, process.
    ExecInspect(super::exec::InspectArgs),
}

pub fn container(ctx: &Ctx, cmd: ContainerCommand) -> Result<i32> {
    match cmd {
        ContainerCommand::Cleanup { id } => {
            ctx.engine()?.cleanup(&id)?;
            Ok(0)
        }
        ContainerCommand::ExecInspect(a) => super::exec::inspect(ctx, a),
    }
}
