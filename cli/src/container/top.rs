//! `barge top CONTAINER [ps OPTIONS]`: the host's `ps` lines of the container's processes.

use anyhow::{bail, Result};
use clap::Parser;

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
    let rec = engine.db.find(&args.container)?;
    if !engine.status(&rec).state.is_active() {
        bail!("container {} is not running", args.container);
    }
    let root = engine.paths.runtime_root();
    let mut argv = vec![
        "barge-runtime".to_string(),
        "--root".into(),
        root.display().to_string(),
        "ps".into(),
        rec.id.clone(),
    ];
    argv.extend(args.ps_args);
    let cli = barge_runtime_cli::Cli::try_parse_from(argv)?;
    Ok(barge_runtime_cli::run(cli))
}
