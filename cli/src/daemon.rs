//! Commands served by companion binaries next to `barge`: `barge daemon` execs
//! `barge-daemon`, `barge hub` execs `barge-hub`, `barge edge` execs `barge-edge`,
//! `barge fleet` execs `barge-fleet`, `barge mapper` execs `barge-mapper` (each found next
//! to this binary, or at the path in its environment variable: `BARGE_DAEMON`, `BARGE_HUB`,
//! `BARGE_EDGE`, `BARGE_FLEET`, `BARGE_MAPPER_BIN`). They are
//! their own binaries so that the CLI does not map HTTP/TLS servers and they do not map the
//! CLI. The store locations (`--root`, `--config`, `--runroot`) are passed on to those that
//! use the engine (the daemon and the edge agent).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The command's flags (`barge COMMAND --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// A companion binary.
#[derive(Debug, Clone, Copy)]
pub enum Companion {
    Daemon,
    Hub,
    Edge,
    Fleet,
    Mapper,
}

impl Companion {
    fn binary(self) -> &'static str {
        match self {
            Companion::Daemon => "barge-daemon",
            Companion::Hub => "barge-hub",
            Companion::Edge => "barge-edge",
            Companion::Fleet => "barge-fleet",
            Companion::Mapper => "barge-mapper",
        }
    }

    fn env(self) -> &'static str {
        match self {
            Companion::Daemon => "BARGE_DAEMON",
            Companion::Hub => "BARGE_HUB",
            Companion::Edge => "BARGE_EDGE",
            Companion::Fleet => "BARGE_FLEET",
            // Not BARGE_MAPPER: the mapper's own flags read BARGE_MAPPER_* variables.
            Companion::Mapper => "BARGE_MAPPER_BIN",
        }
    }

    /// Does it run containers (and so need the store locations)?
    fn uses_engine(self) -> bool {
        matches!(self, Companion::Daemon | Companion::Edge)
    }
}

/// Replace this process with the companion; returns (an exit code) only on failure.
pub fn run(which: Companion, root: &Path, config: &Path, runroot: &Path, args: Args) -> i32 {
    let exe = match std::env::var_os(which.env()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::current_exe() {
            Ok(e) => e.with_file_name(which.binary()),
            Err(e) => {
                eprintln!("barge: locate the barge binary: {e}");
                return 1;
            }
        },
    };
    let mut cmd = std::process::Command::new(&exe);
    if which.uses_engine() {
        cmd.arg("--root")
            .arg(root)
            .arg("--config")
            .arg(config)
            .arg("--runroot")
            .arg(runroot);
    }
    let err = cmd.args(&args.args).exec();
    eprintln!("barge: run {}: {err}", exe.display());
    1
}
