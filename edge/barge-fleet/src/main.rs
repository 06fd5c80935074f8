//! `barge-fleet`: `barge fleet` execs it. The operator's CLI for a hub's fleet API:
//! apply, get, describe, delete, logs, exec, proxy, token create, node drain|label|revoke,
//! device set, cert create|revoke|list, ca rotate|retire-old.
#![forbid(unsafe_code)]

mod apply;
mod client;
mod config;
mod device;
mod get;
mod node;
mod pki;
mod proxy;
mod resources;
mod stream;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "barge fleet",
    about = "Manage a barge edge fleet through its hub's API",
    after_help = "The config file is the hub's STATE_DIR/admin.conf (default ~/.barge/fleet.conf)."
)]
struct Cli {
    /// The hub's admin.conf.
    #[arg(long, global = true, env = "BARGE_FLEET_CONFIG")]
    config: Option<PathBuf>,
    /// Namespace (default: `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Create or update objects from YAML or JSON (multi-document; `-` for stdin).
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        file: Vec<PathBuf>,
    },
    /// List objects, or show one.
    Get {
        /// nodes, pods, deployments, daemonsets, configmaps, secrets, devicemodels (dm),
        /// devices (dev), ca (the fleet's CAs).
        kind: String,
        name: Option<String>,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// json, yaml or wide (default: a table).
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Show an object in detail.
    Describe { kind: String, name: String },
    /// Delete objects by kind and name, or those a file describes.
    Delete {
        kind: Option<String>,
        name: Option<String>,
        #[arg(short = 'f', long = "filename")]
        file: Vec<PathBuf>,
    },
    /// A pod's logs: NODE/POD.
    Logs {
        target: String,
        #[arg(short = 'c', long)]
        container: Option<String>,
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<u64>,
        #[arg(long)]
        timestamps: bool,
    },
    /// Run a command in a pod's container: NODE/POD -- CMD...
    Exec {
        /// Pass stdin to the command.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Allocate a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        target: String,
        #[arg(short = 'c', long)]
        container: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Call an HTTP service on an edge through the hub (ServiceBus): NODE:PORT (the
    /// device's 127.0.0.1:PORT) or pod/NAME:PORT (the pod's IP, namespace -n).
    Proxy {
        target: String,
        /// Path and query on the service (default `/`).
        #[arg(default_value = "/")]
        path: String,
        /// Method (default GET, or POST with -d).
        #[arg(short = 'X', long = "request")]
        method: Option<String>,
        /// Request body: DATA, @FILE, or @- for stdin.
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Request header 'Name: value' (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Print the status line and headers before the body.
        #[arg(short = 'i', long = "include")]
        include: bool,
    },
    /// Join tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Node operations.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Device operations.
    Device {
        #[command(subcommand)]
        cmd: DeviceCmd,
    },
    /// Admin client certificates (an alternative to the admin token).
    Cert {
        #[command(subcommand)]
        cmd: CertCmd,
    },
    /// The fleet CA: rotation without re-joining edges.
    Ca {
        #[command(subcommand)]
        cmd: CaCmd,
    },
}

#[derive(Debug, Subcommand)]
enum CertCmd {
    /// Make a key here, have the hub sign an admin certificate (CN admin:NAME) for it and
    /// write DIR/NAME.key, DIR/NAME.crt and DIR/NAME.conf (a config that uses them).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Refuse every certificate of NAME from now on (the name cannot be issued again).
    Revoke { name: String },
    /// The admin certificate names issued.
    List {
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CaCmd {
    /// Start a rotation: a new CA signs certificates from now on, both are trusted; edges
    /// get new certificates at their next session or renewal.
    Rotate,
    /// End the rotation: only the new CA stays (edges that did not renew must join again;
    /// admin certificates of the old CA stop working).
    RetireOld,
}

#[derive(Debug, Subcommand)]
enum DeviceCmd {
    /// Set desired values of a device's twin (PROPERTY=VALUE...; each changed value gets
    /// the next version, from the cloud).
    Set {
        name: String,
        #[arg(required = true)]
        values: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Make a join token (one-time unless --reusable); prints only the token.
    Create {
        /// Lifetime (`90s`, `30m`, `1h`, `7d`; default: the hub's).
        #[arg(long)]
        ttl: Option<String>,
        /// Let the token join any number of nodes until it expires (provisioning many
        /// devices with one image, like kubeadm's and k3s's tokens).
        #[arg(long)]
        reusable: bool,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCmd {
    /// Mark unschedulable and move its Deployment replicas to other nodes.
    Drain { name: String },
    /// Make a drained or cordoned node schedulable again.
    Uncordon { name: String },
    /// Set (`k=v`) or remove (`k-`) labels.
    Label {
        name: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
    /// Refuse the node's connections from now on (it must join again).
    Revoke { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("barge fleet: start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli));
    // A read of stdin (exec -i) may still block a runtime thread: do not wait for it.
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("barge fleet: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = config::path(cli.config.as_deref())?;
    let (conf, identity) = config::load(&path)?;
    let c = client::Client::new(&conf, identity.as_ref())?;
    let ns = cli.namespace.as_deref();
    match cli.cmd {
        Cmd::Apply { file } => apply::apply(&c, ns, &file).await,
        Cmd::Get { kind, output, .. } if matches!(kind.as_str(), "ca" | "cas") => {
            pki::ca_get(&c, output.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Get {
            kind,
            name,
            all_namespaces,
            output,
        } => {
            get::get(
                &c,
                &kind,
                name.as_deref(),
                ns,
                all_namespaces,
                output.as_deref(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Describe { kind, name } => {
            get::describe(&c, &kind, &name, ns).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Delete { kind, name, file } => {
            apply::delete(&c, ns, kind.as_deref(), name.as_deref(), &file).await
        }
        Cmd::Logs {
            target,
            container,
            follow,
            tail,
            timestamps,
        } => {
            stream::logs(
                &c,
                &target,
                ns,
                container.as_deref(),
                follow,
                tail,
                timestamps,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec {
            stdin,
            tty,
            target,
            container,
            command,
        } => stream::exec(&c, &target, ns, container.as_deref(), stdin, tty, &command).await,
        Cmd::Proxy {
            target,
            path,
            method,
            data,
            headers,
            include,
        } => {
            let a = proxy::ProxyArgs {
                target: &target,
                path: &path,
                method: method.as_deref(),
                data: data.as_deref(),
                headers: &headers,
                include,
            };
            proxy::proxy(&c, ns, a).await
        }
        Cmd::Token {
            cmd: TokenCmd::Create { ttl, reusable },
        } => {
            node::token_create(&c, ttl.as_deref(), reusable).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Device {
            cmd: DeviceCmd::Set { name, values },
        } => {
            device::set(&c, &name, ns, &values).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Cert { cmd } => {
            match cmd {
                CertCmd::Create { name, out } => pki::cert_create(&c, &conf, &name, &out).await?,
                CertCmd::Revoke { name } => pki::cert_revoke(&c, &name).await?,
                CertCmd::List { output } => pki::cert_list(&c, output.as_deref()).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ca { cmd } => {
            let step = match cmd {
                CaCmd::Rotate => "rotate",
                CaCmd::RetireOld => "retire-old",
            };
            pki::ca_step(&c, step).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Node { cmd } => {
            match cmd {
                NodeCmd::Drain { name } => node::drain(&c, &name).await?,
                NodeCmd::Uncordon { name } => node::uncordon(&c, &name).await?,
                NodeCmd::Label { name, labels } => node::label(&c, &name, &labels).await?,
                NodeCmd::Revoke { name } => node::revoke(&c, &name).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
