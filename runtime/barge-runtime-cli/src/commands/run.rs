use barge_runtime::{Result, Store};

use super::create::CreateArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Return once the container runs instead of waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    barge_runtime::run::run(store, &a.create.options(), a.detach)
}
