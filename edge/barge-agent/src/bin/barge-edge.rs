//! `barge-edge` (run as `barge edge`): join a hub, then run the node's workloads from the
//! hub's desired state, offline too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use barge_agent::config::{parse_labels, EdgePaths};
use barge_agent::edged::EngineWorkloads;
use barge_agent::edgehub::RunOptions;
use barge_agent::join::JoinRequest;
use barge_engine::{Engine, EngineOptions};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "barge edge", version, about = "barge's edge agent")]
struct Args {
    /// Where barge keeps images and containers (the agent's state is under ROOT/edge).
    #[arg(long, env = "BARGE_ROOT", default_value = "/var/lib/barge")]
    root: PathBuf,
    /// Configuration directory.
    #[arg(long, env = "BARGE_CONFIG", default_value = barge_image::config::DEFAULT_DIR)]
    config: PathBuf,
    /// Volatile state (shim sockets, runtime state).
    #[arg(long, env = "BARGE_RUNROOT", default_value = "/run/barge")]
    runroot: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Join a hub: make this node's key, get its certificate with a one-time token.
    Join {
        /// The hub's edge endpoint: https://ADDR:PORT.
        hub: String,
        #[arg(long)]
        token: String,
        /// This node's name.
        #[arg(long)]
        name: String,
        /// A node label KEY=VALUE (repeatable).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Run the agent in the foreground (SIGTERM stops the agent, not the pods).
    Run {
        /// First reconnection backoff ceiling, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        backoff_base_ms: u64,
        /// Largest reconnection backoff, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        backoff_max_ms: u64,
        /// Heartbeat until the hub sets its own.
        #[arg(long, default_value_t = 10)]
        heartbeat_secs: u64,
        /// The MQTT broker of the device EventBus: tcp://HOST:PORT, or `none` (no devices).
        /// Default: `mqtt` in edge.json, else tcp://127.0.0.1:1883.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Run many hollow agents (real TLS and protocol, no containers) for scale tests.
    Sim {
        /// How many agents.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// The hub's edge endpoint: https://ADDR:PORT.
        #[arg(long)]
        hub: String,
        /// A join token the hub accepts for every simulated node.
        #[arg(long)]
        token: String,
        /// Node names are PREFIX0, PREFIX1, ...
        #[arg(long, default_value = "sim-")]
        prefix: String,
        /// Where the agents keep their state (default ROOT/edge-sim).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        backoff_base_ms: u64,
        #[arg(long, default_value_t = 60_000)]
        backoff_max_ms: u64,
        /// Start the agents evenly over this many milliseconds (0: all at once).
        #[arg(long, default_value_t = 0)]
        ramp_ms: u64,
        /// Append `UNIX_MS NODE NS/POD REVISION` to FILE when an agent applies a pod revision.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

fn engine_options(args: &Args) -> Result<EngineOptions, String> {
    Ok(EngineOptions {
        root: args.root.clone(),
        runroot: args.runroot.clone(),
        shim: barge_engine::helper_binary("barge-shim", "BARGE_SHIM"),
        exit_helper: barge_engine::helper_binary("barge-exit", "BARGE_EXIT"),
        registry: barge_engine::helper_binary("barge-registry", "BARGE_REGISTRY"),
        init: std::env::var_os("BARGE_INIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/tini-static")),
        config: args.config.clone(),
        network: barge_engine::network::settings::Settings::load(&args.config)
            .map_err(|e| e.to_string())?,
    })
}

fn main() {
    let args = Args::parse();
    let code = match real_main(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("barge edge: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let paths = EdgePaths::new(&args.root);
    // One thread for the agent's I/O: the link, the MQTT bus and the tunnels are light, and
    // everything that blocks (the engine, SQLite) runs on the blocking pool, so tasks hand
    // work to each other without waking a second worker (a twin report crosses four
    // tasks). The simulator's ten thousand agents get two workers.
    let rt = match &args.cmd {
        Cmd::Sim { .. } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    match &args.cmd {
        Cmd::Join {
            hub,
            token,
            name,
            labels,
        } => {
            let req = JoinRequest {
                hub: hub.clone(),
                token: token.clone(),
                name: name.clone(),
                labels: parse_labels(labels)?,
            };
            let f = rt.block_on(barge_agent::join::join(&paths, &req))?;
            println!(
                "joined as node {} (hubs: {}); start the agent with `barge edge run`",
                f.name,
                f.hubs.join(", ")
            );
            Ok(())
        }
        Cmd::Sim {
            count,
            hub,
            token,
            prefix,
            dir,
            backoff_base_ms,
            backoff_max_ms,
            ramp_ms,
            report,
        } => {
            let o = barge_agent::sim::SimOptions {
                count: *count,
                hub: hub.clone(),
                token: token.clone(),
                prefix: prefix.clone(),
                dir: dir.clone().unwrap_or_else(|| args.root.join("edge-sim")),
                run: RunOptions {
                    backoff_base: Duration::from_millis(*backoff_base_ms),
                    backoff_max: Duration::from_millis(*backoff_max_ms),
                    ..Default::default()
                },
                ramp: Duration::from_millis(*ramp_ms),
                report: report.clone(),
            };
            let r = rt.block_on(async move {
                tokio::select! {
                    r = barge_agent::sim::run(o) => r,
                    _ = stop_signal() => Ok(()),
                }
            });
            rt.shutdown_background();
            r
        }
        Cmd::Run {
            backoff_base_ms,
            backoff_max_ms,
            heartbeat_secs,
            mqtt,
        } => {
            let mqtt = match mqtt {
                Some(m) => m.clone(),
                None => paths
                    .load()?
                    .mqtt
                    .unwrap_or_else(|| barge_agent::eventbus::DEFAULT_URL.to_string()),
            };
            if mqtt != "none" {
                barge_agent::eventbus::parse_url(&mqtt)?;
            }
            let opts = RunOptions {
                backoff_base: Duration::from_millis(*backoff_base_ms),
                backoff_max: Duration::from_millis(*backoff_max_ms),
                heartbeat: Duration::from_secs((*heartbeat_secs).max(1)),
                mqtt: Some(mqtt),
                ..Default::default()
            };
            let engine = Engine::open(engine_options(&args).map_err(anyhow::Error::msg)?)
                .map_err(|e| anyhow::anyhow!("open the store at {}: {e}", args.root.display()))?;
            let work = Arc::new(EngineWorkloads::new(Arc::new(engine)));
            let r = rt.block_on(async move {
                tokio::select! {
                    r = barge_agent::edgehub::run(paths, work, opts) => r,
                    _ = stop_signal() => {
                        eprintln!("barge-edge: stopping (pods keep running)");
                        Ok(())
                    }
                }
            });
            // An engine call in flight (a pull, a play) is not waited for: what it made is
            // found by its labels at the next start.
            rt.shutdown_background();
            r
        }
    }
}

/// SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
