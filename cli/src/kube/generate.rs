//! `barge kube generate POD`.

use anyhow::Result;

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod (name, id or id prefix).
    pub pod: String,
    /// Write the YAML to this file instead of stdout.
    #[arg(short = 'f', long)]
    pub filename: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let yaml = engine.kube_generate(&args.pod)?;
    match &args.filename {
        Some(f) => barge_util::fs::write_atomic(
            std::path::Path::new(f),
            yaml.as_bytes(),
            0o644,
            barge_util::fs::Durability::Durable,
        )
        .map_err(|e| anyhow::anyhow!("write {f}: {e}"))?,
        None => print!("{yaml}"),
    }
    Ok(0)
}
