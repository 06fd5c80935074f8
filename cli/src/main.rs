//! `barge`: the main command line. It carries the OCI runtime (`barge runtime ...`) and the
//! image commands (`pull`, `images`, `load`, ...); containers and the daemon come in later
//! layers.

mod format;
mod image;
mod progress;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime, with runc's commands and flags (same as the `barge-runtime` binary).
    Runtime(barge_runtime_cli::Cli),
    /// Download an image from a registry.
    Pull(image::pull::Args),
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
    /// Store credentials for a registry.
    Login(image::login::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(image::login::LogoutArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Runtime(rt) => barge_runtime_cli::run(rt),
        other => {
            let ctx = image::Ctx {
                root: cli.root,
                config: cli.config,
            };
            let result = match other {
                Command::Pull(a) => image::pull::run(&ctx, a),
                Command::Images(a) => image::list::run(&ctx, a),
                Command::Rmi(a) => image::remove::run(&ctx, a),
                Command::Tag(a) => image::tag::run(&ctx, a),
                Command::Load(a) => image::load::run(&ctx, a),
                Command::Save(a) => image::save::run(&ctx, a),
                Command::Import(a) => image::import::run(&ctx, a),
                Command::Login(a) => image::login::login(&ctx, a),
                Command::Logout(a) => image::login::logout(&ctx, a),
                Command::Image(c) => image::dispatch(&ctx, c),
                Command::Runtime(_) => unreachable!("handled above"),
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
