//! One file per command, as runc names them.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod resume;
mod run;
mod spec;
mod start;
mod state;
mod update;

use barge_runtime::{Result, Store};
use clap::Subcommand;

use crate::Cli;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its process waits until `start`.
    Create(create::Args),
    /// Run the process of a created container.
    Start(start::Args),
    /// Create and start a container (waits for it unless --detach).
    Run(run::Args),
    /// Print the OCI state of a container as JSON.
    State(state::Args),
    /// Send a signal to a container's init (or all its processes).
    Kill(kill::Args),
    /// Run another process in a running container.
    Exec(Box<exec::Args>),
    /// Delete a container and everything the runtime made for it.
    Delete(delete::Args),
    /// List containers.
    #[command(alias = "ps-all")]
    List(list::Args),
    /// Freeze every process of a running container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(resume::Args),
    /// Change the resource limits of a container.
    Update(Box<update::Args>),
    /// Stream OOM notifications and usage statistics of a container (JSON lines).
    Events(events::Args),
    /// List the processes of a container.
    Ps(ps::Args),
    /// Write a default config.json.
    Spec(spec::Args),
    /// Print the OCI features document of this runtime.
    Features,
}

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let store = || Store::open(&cli.root);
    match &cli.command {
        Command::Create(a) => create::run(&store()?, a),
        Command::Start(a) => start::run(&store()?, a),
        Command::Run(a) => run::run(&store()?, a),
        Command::State(a) => state::run(&store()?, a),
        Command::Kill(a) => kill::run(&store()?, a),
        Command::Exec(a) => exec::run(&store()?, a),
        Command::Delete(a) => delete::run(&store()?, a),
        Command::List(a) => list::run(&store()?, a),
        Command::Pause(a) => pause::run(&store()?, a),
        Command::Resume(a) => resume::run(&store()?, a),
        Command::Update(a) => update::run(&store()?, a),
        Command::Events(a) => events::run(&store()?, a),
        Command::Ps(a) => ps::run(&store()?, a),
        Command::Spec(a) => spec::run(a),
        Command::Features => features::run(),
    }
}

/// `--format` of `list` and `ps`, as runc spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Print JSON to stdout.
fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| barge_runtime::Error::Container(format!("encode JSON: {e}")))?;
    println!("{s}");
    Ok(())
}
