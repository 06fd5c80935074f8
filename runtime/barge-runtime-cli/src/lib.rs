//! runc-compatible command line over `barge-runtime`: shared by the lean `barge-runtime`
//! binary and `barge runtime` in the main CLI.
#![forbid(unsafe_code)]

mod commands;
mod logging;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

pub use commands::Command;

/// Global flags, as runc takes them.
#[derive(Debug, Parser)]
#[command(
    name = "barge-runtime",
    version,
    about = "barge's OCI runtime (runc-compatible command line)",
    propagate_version = true
)]
pub struct Cli {
    /// Directory holding container state.
    #[arg(
        long,
        global = true,
        default_value = "/run/barge/runtime",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Write log lines to this file instead of only stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver (not supported yet).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (rootless mode is detected from the config).
    #[arg(long, value_name = "auto|true|false", hide = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parse `std::env::args` and run; returns the process exit code.
pub fn main_from_env() -> i32 {
    run(Cli::parse())
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    if let Err(e) = logging::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        eprintln!("barge-runtime: {e}");
        return 1;
    }
    if cli.systemd_cgroup {
        return fail(&barge_runtime::Error::Unsupported(
            "--systemd-cgroup: the systemd cgroup driver is not supported yet; \
             use the cgroupfs driver (e.g. podman --cgroup-manager=cgroupfs)"
                .into(),
        ));
    }
    match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &barge_runtime::Error) -> i32 {
    tracing::error!("{e}");
    1
}
