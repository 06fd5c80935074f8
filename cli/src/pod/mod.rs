//! `barge pod ...`: pods with podman's habits, over `barge_engine::pod`.

pub mod create;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod ls;

use anyhow::Result;

use crate::container::Ctx;

#[derive(Debug, clap::Subcommand)]
pub enum PodCommand {
    /// Create a pod (its namespaces are made when it starts).
    Create(Box<create::Args>),
    /// List pods.
    #[command(alias = "list", alias = "ps")]
    Ls(ls::Args),
    /// Display detailed information on one or more pods.
    Inspect(inspect::Args),
    /// Start one or more pods (init containers first, in order).
    Start(lifecycle::NamesArgs),
    /// Stop one or more pods (their containers, then the sandbox).
    Stop(lifecycle::StopArgs),
    /// Remove one or more pods with their containers.
    Rm(lifecycle::RmArgs),
    /// Fetch the logs of a pod's containers, each line prefixed with its container.
    Logs(logs::Args),
}

pub fn run(ctx: &Ctx, c: PodCommand) -> Result<i32> {
    match c {
        PodCommand::Create(a) => create::run(ctx, *a),
        PodCommand::Ls(a) => ls::run(ctx, a),
        PodCommand::Inspect(a) => inspect::run(ctx, a),
        PodCommand::Start(a) => lifecycle::start(ctx, a),
        PodCommand::Stop(a) => lifecycle::stop(ctx, a),
        PodCommand::Rm(a) => lifecycle::rm(ctx, a),
        PodCommand::Logs(a) => logs::run(ctx, a),
    }
}
