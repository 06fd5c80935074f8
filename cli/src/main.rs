//! `barge`: the main command line. Today it carries the OCI runtime (`barge runtime ...`);
//! images, containers and the daemon come in later layers.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "barge",
    version,
    about = "barge: containers for edge and IoT devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The OCI runtime, with runc's commands and flags (same as the `barge-runtime` binary).
    Runtime(barge_runtime_cli::Cli),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Runtime(rt) => barge_runtime_cli::run(rt),
    };
    std::process::exit(code);
}
