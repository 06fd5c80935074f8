//! Container commands, over `barge_engine`.

pub mod attach;
pub mod create;
pub mod exec;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod ps;
pub mod run;
pub mod stats;
pub mod stream;
pub mod system;
pub mod top;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use barge_engine::{Engine, EngineOptions};

/// Exit code of `run`/`create`/`start` when barge itself failed (docker's 125).
pub const ENGINE_FAILED: i32 = 125;

/// Where things are, for container commands.
pub struct Ctx {
    pub image: crate::image::Ctx,
    pub runroot: PathBuf,
}

impl Ctx {
    pub fn engine(&self) -> Result<Arc<Engine>> {
        let shim = barge_engine::helper_binary("barge-shim", "BARGE_SHIM");
        let exit_helper = barge_engine::helper_binary("barge-exit", "BARGE_EXIT");
        let init = std::env::var_os("BARGE_INIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/tini-static"));
        Ok(Arc::new(
            Engine::open(EngineOptions {
                root: self.image.root.clone(),
                runroot: self.runroot.clone(),
                shim,
                exit_helper,
                registry: crate::image::registry_helper()?,
                init,
                config: self.image.config.clone(),
                network: barge_engine::network::settings::Settings::load(&self.image.config)?,
            })
            .with_context(|| format!("opening the store at {}", self.image.root.display()))?,
        ))
    }
}

/// docker's refusal of `-it` when our stdin is not a terminal (the program would wait for
/// input from a terminal nobody can type in).
pub const NOT_A_TTY: &str = "the input device is not a TTY";

/// Whether our stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// `-t` with `-i` needs a terminal on stdin: print docker's message and give its exit code (1)
/// when there is none.
pub fn refuse_without_tty(tty: bool, stdin: bool) -> Option<i32> {
    if tty && stdin && !stdin_is_tty() {
        eprintln!("barge: {NOT_A_TTY}");
        Some(1)
    } else {
        None
    }
}

/// The first 12 characters of an id, as docker shows it.
pub fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}
