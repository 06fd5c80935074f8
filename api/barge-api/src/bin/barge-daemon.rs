//! `barge-daemon` (run as `barge daemon`): the Docker Engine API on unix sockets, over the
//! same store as the daemonless `barge` CLI.

use std::path::PathBuf;
use std::sync::Arc;

use barge_api::server::{self, Host};
use barge_api::state::{AppState, DaemonInfo};
use barge_engine::{Engine, EngineOptions};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "barge daemon", version, about = "Serve the Docker Engine API")]
struct Args {
    /// Where to listen: unix:///PATH (repeatable) or fd:// (systemd socket activation).
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/barge/docker.sock"
    )]
    hosts: Vec<String>,
    /// Where barge keeps images and containers.
    #[arg(long, env = "BARGE_ROOT", default_value = "/var/lib/barge")]
    root: PathBuf,
    /// Configuration directory: config.json, certs.d/, auth.json.
    #[arg(long, env = "BARGE_CONFIG", default_value = barge_image::config::DEFAULT_DIR)]
    config: PathBuf,
    /// Volatile state (shim sockets, runtime state); a tmpfs.
    #[arg(long, env = "BARGE_RUNROOT", default_value = "/run/barge")]
    runroot: PathBuf,
    /// Group owning the sockets (mode 0660); root's group when it does not exist.
    #[arg(short = 'G', long, default_value = "docker")]
    group: String,
    /// The Kubernetes CRI (runtime.v1 gRPC) socket: unix:///PATH, or none to serve no CRI.
    #[arg(long = "cri", default_value = "unix:///run/barge/cri.sock")]
    cri: String,
    /// Where the CRI streaming server (exec, attach, port-forward URLs) listens.
    #[arg(long = "cri-streaming-address", default_value = "127.0.0.1:0")]
    cri_streaming: std::net::SocketAddr,
}

fn main() {
    barge_api::sys::tune_malloc();
    let args = Args::parse();
    // Before any thread exists: socket activation's variables are read and cleared here.
    let code = match run(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("barge daemon: {e}");
            1
        }
    };
    std::process::exit(code);
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

fn run(args: Args) -> Result<(), String> {
    let hosts: Vec<Host> = args
        .hosts
        .iter()
        .map(|h| Host::parse(h))
        .collect::<Result<_, _>>()?;
    let gid = server::group_id(&args.group);
    let mut listeners = Vec::new();
    let mut created = Vec::new();
    for h in &hosts {
        match h {
            Host::Unix(p) => {
                listeners.push(server::bind_unix(p, gid)?);
                created.push(p.clone());
            }
            Host::Activated => {
                let v = server::activated()?;
                if v.is_empty() {
                    return Err("--host fd://: no sockets were passed (LISTEN_FDS)".into());
                }
                listeners.extend(v);
            }
        }
    }
    let cri_path = barge_cri::server::parse_endpoint(&args.cri)?;
    let cri_listener = match &cri_path {
        Some(p) => {
            let l = barge_cri::server::bind(p)?;
            created.push(p.clone());
            Some(l)
        }
        None => None,
    };
    let opts = engine_options(&args)?;
    let engine = Engine::open(opts)
        .map_err(|e| format!("open the store at {}: {e}", args.root.display()))?;
    let engine = Arc::new(engine);
    let state = AppState {
        engine: engine.clone(),
        info: Arc::new(DaemonInfo {
            started: std::time::SystemTime::now(),
            hosts: args.hosts.clone(),
        }),
        pending: Default::default(),
        lists: Default::default(),
        journal: Default::default(),
    };
    // Two workers are plenty: requests are short, engine work runs on the blocking pool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        // Idle blocking threads go after 2 s (tokio's default is 10): their stacks and
        // arenas are memory a small device wants back.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .build()
        .map_err(|e| format!("start the async runtime: {e}"))?;
    let engine = state.engine.clone();
    let app = server::app(state);
    for h in &args.hosts {
        eprintln!("barge daemon: API listening on {h}");
    }
    rt.spawn(barge_api::state::trim_when_idle(engine.clone()));
    if let (Some(l), Some(p)) = (cri_listener, &cri_path) {
        eprintln!("barge daemon: CRI listening on unix://{}", p.display());
        let config = barge_stream::StreamConfig {
            addr: args.cri_streaming,
            ..Default::default()
        };
        let handle = rt
            .block_on(barge_stream::StreamServer::start(engine.clone(), config))
            .map_err(|e| e.to_string())?;
        eprintln!(
            "barge daemon: CRI streaming server on {}",
            handle.base_url()
        );
        let streams: Arc<dyn barge_cri::Streaming> = Arc::new(barge_cri::Streams { handle });
        let cri = barge_cri::Cri::new(engine, Some(streams));
        // The CRI server stops with the process (the Docker API's serve returns on SIGTERM).
        rt.spawn(async move {
            let never = std::future::pending::<()>();
            if let Err(e) = barge_cri::server::serve(cri, l, never).await {
                eprintln!("barge daemon: {e}");
            }
        });
    }
    rt.block_on(server::serve(app, listeners, created))
}
