//! `barge`: the main command line, with docker's habits: containers (`run`, `ps`, `logs`,
//! ...), images (`pull`, `images`, `load`, ...), volumes, `system`, and the OCI runtime
//! (`barge runtime ...`).
#![deny(unsafe_code)]

mod build;
mod container;
mod daemon;
mod format;
mod image;
mod kube;
mod pod;
mod progress;
#[allow(unsafe_code)] // the crate's one syscall-facing module
mod sys;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "barge",
    version,
    about = "barge: containers for edge and IoT devices"
)]
struct Cli {
    /// Where barge keeps images and containers.
    #[arg(long, env = "BARGE_ROOT", default_value = "/var/lib/barge")]
    root: PathBuf,
    /// Configuration directory: config.json, certs.d/, auth.json.
    #[arg(long, env = "BARGE_CONFIG", default_value = barge_image::config::DEFAULT_DIR)]
    config: PathBuf,
    /// Where barge keeps volatile state (shim sockets, runtime state); a tmpfs.
    #[arg(long, env = "BARGE_RUNROOT", default_value = "/run/barge")]
    runroot: PathBuf,
    #[command(subcommand)]
    command: Command,
}

// Only the subcommand given is built (its flags, help, defaults): building all of them for
// every invocation touched code all over the binary, megabytes of resident pages.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
enum Command {
    /// The OCI runtime, with runc's commands and flags (same as the `barge-runtime` binary).
    Runtime(barge_runtime_cli::Cli),
    /// Download an image from a registry.
    Pull(image::pull::Args),
    /// Upload an image to a registry.
    Push(image::push::Args),
    /// List images.
    Images(image::list::Args),
    /// Remove one or more images.
    Rmi(image::remove::Args),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(image::tag::Args),
    /// Load images from a tar archive (docker-archive or OCI archive).
    Load(image::load::Args),
    /// Save images to a tar archive.
    Save(image::save::Args),
    /// Create an image from a rootfs tarball.
    Import(image::import::Args),
    /// Build an image from a Dockerfile.
    Build(Box<build::Args>),
    /// Store credentials for a registry.
    Login(image::login::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(image::login::LogoutArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Create and run a container from an image.
    Run(Box<container::run::Args>),
    /// Create a container without starting it.
    Create(Box<container::create::Args>),
    /// Start one or more stopped containers.
    Start(container::lifecycle::StartArgs),
    /// Stop one or more running containers.
    Stop(container::lifecycle::StopArgs),
    /// Kill one or more running containers.
    Kill(container::lifecycle::KillArgs),
    /// Restart one or more containers.
    Restart(container::lifecycle::StopArgs),
    /// Remove one or more containers.
    Rm(container::lifecycle::RmArgs),
    /// List containers.
    Ps(container::ps::Args),
    /// Fetch the logs of a container.
    Logs(container::logs::Args),
    /// Execute a command in a running container.
    Exec(container::exec::Args),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(container::attach::Args),
    /// Display detailed information on one or more containers.
    Inspect(container::inspect::Args),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(container::lifecycle::NamesArgs),
    /// Display the running processes of a container.
    Top(container::top::Args),
    /// Display a live stream of container resource usage statistics.
    Stats(container::stats::Args),
    /// Pause all processes within one or more containers.
    Pause(container::lifecycle::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(container::lifecycle::NamesArgs),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(container::volume::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(container::network::NetworkCommand),
    /// Manage pods: containers that share network, IPC and UTS namespaces.
    #[command(subcommand)]
    Pod(pod::PodCommand),
    /// Run Kubernetes YAML (Pods, Deployments, ConfigMaps, Secrets, PersistentVolumeClaims).
    #[command(subcommand)]
    Kube(kube::KubeCommand),
    /// Container housekeeping.
    #[command(subcommand, hide = true)]
    Container(container::network::ContainerCommand),
    /// Serve the Docker Engine API (docker CLI, docker-py, docker-compose) on a unix socket.
    #[command(disable_help_flag = true)]
    Daemon(daemon::Args),
    /// The cloud hub of an edge fleet: edges connect over TLS, state in etcd, the fleet API.
    #[command(disable_help_flag = true)]
    Hub(daemon::Args),
    /// A device mapper on an edge: reads Modbus TCP / virtual devices into their twins over
    /// the edge's MQTT broker (`mapper --node N [--mqtt URL] [--protocol P]`).
    #[command(disable_help_flag = true)]
    Mapper(daemon::Args),
    /// The edge agent: `edge join HUB --token T --name N`, then `edge run`.
    #[command(disable_help_flag = true)]
    Edge(daemon::Args),
    /// Operate a fleet through a hub's API: apply, get, describe, delete, logs, exec, token, node.
    #[command(disable_help_flag = true)]
    Fleet(daemon::Args),
    /// Manage barge: disk usage, prune, check and repair, boot.
    #[command(subcommand)]
    System(container::system::SystemCommand),
}

/// Run a container command; failures print `barge: ...` and exit with `fail_code`.
fn container_cmd(f: impl FnOnce() -> anyhow::Result<i32>, fail_code: i32) -> i32 {
    match f() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("barge: {}", format::error_chain(&e));
            fail_code
        }
    }
}

fn main() {
    sys::tune_malloc();
    let cli = Cli::parse();
    let ctx = image::Ctx {
        root: cli.root,
        config: cli.config,
    };
    let cctx = container::Ctx {
        image: image::Ctx {
            root: ctx.root.clone(),
            config: ctx.config.clone(),
        },
        runroot: cli.runroot,
    };
    use container::ENGINE_FAILED;
    let code = match cli.command {
        Command::Runtime(rt) => barge_runtime_cli::run(rt),
        Command::Daemon(a) => daemon::run(
            daemon::Companion::Daemon,
            &ctx.root,
            &ctx.config,
            &cctx.runroot,
            a,
        ),
        Command::Hub(a) => daemon::run(
            daemon::Companion::Hub,
            &ctx.root,
            &ctx.config,
            &cctx.runroot,
            a,
        ),
        Command::Mapper(a) => daemon::run(
            daemon::Companion::Mapper,
            &ctx.root,
            &ctx.config,
            &cctx.runroot,
            a,
        ),
        Command::Edge(a) => daemon::run(
            daemon::Companion::Edge,
            &ctx.root,
            &ctx.config,
            &cctx.runroot,
            a,
        ),
        Command::Fleet(a) => daemon::run(
            daemon::Companion::Fleet,
            &ctx.root,
            &ctx.config,
            &cctx.runroot,
            a,
        ),
        Command::Build(a) => container_cmd(|| build::run(&cctx, *a), 1),
        Command::Run(a) => container_cmd(|| container::run::run(&cctx, *a), ENGINE_FAILED),
        Command::Create(a) => container_cmd(|| container::create::run(&cctx, *a), ENGINE_FAILED),
        Command::Start(a) => container_cmd(|| container::lifecycle::start(&cctx, a), 1),
        Command::Stop(a) => container_cmd(|| container::lifecycle::stop(&cctx, a), 1),
        Command::Kill(a) => container_cmd(|| container::lifecycle::kill(&cctx, a), 1),
        Command::Restart(a) => container_cmd(|| container::lifecycle::restart(&cctx, a), 1),
        Command::Rm(a) => container_cmd(|| container::lifecycle::rm(&cctx, a), 1),
        Command::Ps(a) => container_cmd(|| container::ps::run(&cctx, a), 1),
        Command::Logs(a) => container_cmd(|| container::logs::run(&cctx, a), 1),
        Command::Exec(a) => container_cmd(|| container::exec::run(&cctx, a), 126),
        Command::Attach(a) => container_cmd(|| container::attach::run(&cctx, a), 1),
        Command::Inspect(a) => container_cmd(|| container::inspect::run(&cctx, a), 1),
        Command::Wait(a) => container_cmd(|| container::lifecycle::wait(&cctx, a), 1),
        Command::Top(a) => container_cmd(|| container::top::run(&cctx, a), 1),
        Command::Stats(a) => container_cmd(|| container::stats::run(&cctx, a), 1),
        Command::Pause(a) => container_cmd(|| container::lifecycle::pause(&cctx, a, true), 1),
        Command::Unpause(a) => container_cmd(|| container::lifecycle::pause(&cctx, a, false), 1),
        Command::Volume(c) => container_cmd(|| container::volume::run(&cctx, c), 1),
        Command::Network(c) => container_cmd(|| container::network::run(&cctx, c), 1),
        Command::Container(c) => container_cmd(|| container::network::container(&cctx, c), 1),
        Command::Pod(c) => container_cmd(|| pod::run(&cctx, c), 1),
        Command::Kube(c) => container_cmd(|| kube::run(&cctx, c), 125),
        Command::System(c) => container_cmd(|| container::system::run(&cctx, c), 1),
        other => {
            let result = match other {
                Command::Pull(a) => image::pull::run(&ctx, a),
                Command::Push(a) => image::push::run(&ctx, a),
                Command::Images(a) => image::list::run(&ctx, a),
                Command::Rmi(a) => image::remove::run(&ctx, a),
                Command::Tag(a) => image::tag::run(&ctx, a),
                Command::Load(a) => image::load::run(&ctx, a),
                Command::Save(a) => image::save::run(&ctx, a),
                Command::Import(a) => image::import::run(&ctx, a),
                Command::Login(a) => image::login::login(&ctx, a),
                Command::Logout(a) => image::login::logout(&ctx, a),
                Command::Image(c) => image::dispatch(&ctx, c),
                _ => Ok(()),
            };
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("barge: {}", format::error_chain(&e));
                    1
                }
            }
        }
    };
    std::process::exit(code);
}
