//! `barge top CONTAINER [ps OPTIONS]`: the host's `ps` lines of the container's processes
//! (`Engine::top`).

use anyhow::Result;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub container: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let top = engine.top(&args.container, &args.ps_args)?;
    let mut table = vec![top.titles];
    table.extend(top.processes);
    crate::image::list::print_table(&table);
    Ok(0)
}
